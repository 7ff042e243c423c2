package squall.networks.weights;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Hand-assembled pickles and checkpoint containers for hostile-input tests, written opcode by
 * opcode from the pickle spec (Lib/pickletools.py) so no Python is needed.
 */
final class PickleBytes {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    PickleBytes op(int... bytes) {
        for (int b : bytes) {
            out.write(b);
        }
        return this;
    }

    PickleBytes proto(int version) {
        return op(0x80, version);
    }

    /** BINUNICODE: 'X', u32 length, UTF-8. */
    PickleBytes str(String s) {
        byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
        op('X');
        le(utf8.length, 4);
        out.writeBytes(utf8);
        return this;
    }

    /** SHORT_BINUNICODE (protocol 4). */
    PickleBytes shortStr(String s) {
        byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
        op(0x8c, utf8.length);
        out.writeBytes(utf8);
        return this;
    }

    PickleBytes global(String module, String name) {
        op('c');
        out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        return this;
    }

    PickleBytes stackGlobal(String module, String name) {
        return shortStr(module).shortStr(name).op(0x93);
    }

    PickleBytes int1(int v) {
        return op('K', v);
    }

    /** BININT: a signed 32-bit integer. */
    PickleBytes int4(int v) {
        op('J');
        le(v, 4);
        return this;
    }

    /** LONG1 holding a 64-bit value. */
    PickleBytes long8(long v) {
        op(0x8a, 8);
        le(v, 8);
        return this;
    }

    PickleBytes le(long v, int n) {
        for (int i = 0; i < n; i++) {
            out.write((int) (v >>> (8 * i)));
        }
        return this;
    }

    byte[] bytes() {
        return out.toByteArray();
    }

    /**
     * What torch.save writes for {@code {name: tensor}} where the tensor is a float32 view
     * (offset 0, the given size) of storage '0' holding {@code numel} elements.
     */
    static PickleBytes stateDict(String name, long numel, int... size) {
        return stateDict("_rebuild_tensor_v2", name, numel, size);
    }

    /** As above through {@code rebuild}: "_rebuild_tensor_v2", or the 4-argument "_rebuild_tensor" of torch 0.4. */
    static PickleBytes stateDict(String rebuild, String name, long numel, int... size) {
        PickleBytes p = new PickleBytes().proto(2).global("collections", "OrderedDict").op(')', 'R')
                .str(name).global("torch._utils", rebuild).op('(')
                .op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").long8(numel).op('t', 'Q')
                .int1(0).op('(');
        for (int d : size) {
            p.int4(d);
        }
        p.op('t', '(');
        long stride = 1;
        long[] strides = new long[size.length];
        for (int i = size.length - 1; i >= 0; i--) {
            strides[i] = stride;
            stride *= size[i];
        }
        for (long s : strides) {
            p.long8(s);
        }
        p.op('t');
        if (rebuild.equals("_rebuild_tensor_v2")) {
            p.op(0x89).global("collections", "OrderedDict").op(')', 'R'); // requires_grad, backward_hooks
        }
        return p.op('t', 'R', 's', '.');
    }

    /** A zip checkpoint as torch writes it: {@code archive/data.pkl} and stored {@code archive/data/<key>}. */
    static Path zipCheckpoint(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(file))) {
            stored(zip, "archive/data.pkl", pickle);
            for (var s : storages.entrySet()) {
                stored(zip, "archive/data/" + s.getKey(), s.getValue());
            }
            stored(zip, "archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        }
        return file;
    }

    private static void stored(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(data);
        zip.closeEntry();
    }

    /** A legacy checkpoint: magic, protocol, sys info, the object, the key list, then the storages. */
    static Path legacyCheckpoint(Path file, byte[] pickle, Map<String, byte[]> storages, int elementSize)
            throws IOException {
        ByteArrayOutputStream f = new ByteArrayOutputStream();
        f.writeBytes(new PickleBytes().proto(2).op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19)
                .op('.').bytes());
        f.writeBytes(new PickleBytes().proto(2).op('M').le(1001, 2).op('.').bytes());
        f.writeBytes(new PickleBytes().proto(2).op('}', '(').str("protocol_version").op('M').le(1001, 2)
                .str("little_endian").op(0x88).op('u', '.').bytes());
        f.writeBytes(pickle);
        PickleBytes keys = new PickleBytes().proto(2).op(']', '(');
        storages.keySet().forEach(keys::str);
        f.writeBytes(keys.op('e', '.').bytes());
        for (byte[] data : storages.values()) {
            f.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(data.length / elementSize).array());
            f.writeBytes(data);
        }
        return Files.write(file, f.toByteArray());
    }

    static byte[] floats(float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return b.array();
    }
}
