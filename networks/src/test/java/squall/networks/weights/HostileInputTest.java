package squall.networks.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.SquallException;
import squall.api.Tensor;

/** Malicious and damaged files, built byte by byte: each is refused with a message naming the fault. */
class HostileInputTest {
    @TempDir
    Path tmp;

    private static final byte[] TWO_FLOATS = PickleBytes.floats(1.5f, -2.25f);

    private Path zip(byte[] pickle) throws IOException {
        return PickleBytes.zipCheckpoint(tmp.resolve("model.pth"), pickle, Map.of("0", TWO_FLOATS));
    }

    private Path legacy(byte[] pickle) throws IOException {
        return PickleBytes.legacyCheckpoint(tmp.resolve("legacy.pth"), pickle, Map.of("0", TWO_FLOATS), 4);
    }

    private static String refusal(Path file) {
        return assertThrows(SquallException.BadFile.class, () -> Weights.load(file)).getMessage();
    }

    /** The positive control: the hand-made containers are right, so refusals below are about the payload. */
    @Test
    void handMadeCheckpointsLoad() throws IOException {
        for (String rebuild : new String[] {"_rebuild_tensor_v2", "_rebuild_tensor"}) {
            byte[] pickle = PickleBytes.stateDict(rebuild, "w", 2, 2).bytes();
            for (Path file : new Path[] {zip(pickle), legacy(pickle)}) {
                Map<String, Tensor> w = Weights.load(file);
                assertArrayEquals(new float[] {1.5f, -2.25f}, w.get("w").data(), rebuild + " in " + file);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"os,system", "builtins,eval", "subprocess,Popen", "posix,system", "torch,load", "__builtin__,exec"})
    void dangerousGlobalIsRefusedBeforeAnythingRuns(String module, String name) throws IOException {
        Path marker = tmp.resolve("pwned");
        byte[] viaGlobal = new PickleBytes().proto(2).global(module, name).str("touch " + marker).op(0x85, 'R', '.').bytes();
        byte[] viaStackGlobal = new PickleBytes().proto(4).stackGlobal(module, name).shortStr("touch " + marker)
                .op(0x85, 'R', '.').bytes();
        for (byte[] pickle : new byte[][] {viaGlobal, viaStackGlobal}) {
            for (Path file : new Path[] {zip(pickle), legacy(pickle)}) {
                String message = refusal(file);
                assertTrue(message.contains("refused global '" + module + "." + name + "'")
                        && message.contains(file.toString()), message);
                assertTrue(message.contains(pickle == viaGlobal ? "GLOBAL" : "STACK_GLOBAL"), message);
            }
        }
        assertFalse(Files.exists(marker), "nothing from the file may run");
    }

    @Test
    void reduceOnANonCallableIsRefused() throws IOException {
        byte[] storageCall = new PickleBytes().proto(2).global("torch", "FloatStorage").op(')', 'R', '.').bytes();
        assertTrue(refusal(zip(storageCall)).contains("REDUCE on torch.FloatStorage"));
        byte[] stringCall = new PickleBytes().proto(2).str("os.system").op(')', 'R', '.').bytes();
        assertTrue(refusal(zip(stringCall)).contains("REDUCE on 'os.system'"));
        byte[] newObj = new PickleBytes().proto(2).global("torch._utils", "_rebuild_tensor_v2").op(')', 0x81, '.').bytes();
        assertTrue(refusal(zip(newObj)).contains("NEWOBJ on torch._utils._rebuild_tensor_v2"));
        byte[] build = new PickleBytes().proto(2).op(']').op('}').op('b', '.').bytes();
        assertTrue(refusal(zip(build)).contains("BUILD of a list"));
    }

    @Test
    void unknownOpcodeIsNamedWithItsOffset() throws IOException {
        String inst = refusal(zip(new PickleBytes().proto(2).op('i').bytes()));
        assertTrue(inst.contains("opcode INST") && inst.contains("byte 2"), inst);
        String garbage = refusal(zip(new PickleBytes().proto(2).op(']', 0xff).bytes()));
        assertTrue(garbage.contains("0xff") && garbage.contains("byte 3"), garbage);
    }

    @Test
    void truncatedPickleIsRefused() throws IOException {
        byte[] whole = PickleBytes.stateDict("w", 2, 2).bytes();
        for (int cut : new int[] {1, 3, whole.length / 2, whole.length - 1}) {
            String message = refusal(zip(Arrays.copyOf(whole, cut)));
            assertTrue(message.contains("truncated"), cut + ": " + message);
        }
    }

    @Test
    void deepNestingIsBounded() throws IOException {
        PickleBytes lists = new PickleBytes().proto(2);
        for (int i = 0; i < 200; i++) {
            lists.op(']');
        }
        for (int i = 0; i < 199; i++) {
            lists.op('a');
        }
        assertTrue(refusal(zip(lists.op('.').bytes())).contains("nested deeper than"));

        PickleBytes marks = new PickleBytes().proto(2);
        for (int i = 0; i < 200; i++) {
            marks.op('(');
        }
        assertTrue(refusal(zip(marks.op('.').bytes())).contains("nested MARKs"));

        // A list appended to itself (via the memo) would make a cycle; it is caught by the same bound.
        PickleBytes cycle = new PickleBytes().proto(2).op(']', 'q', 0);
        for (int i = 0; i < 100; i++) {
            cycle.op('h', 0, 'a');
        }
        assertTrue(refusal(zip(cycle.op('.').bytes())).contains("nested deeper than"));
    }

    @Test
    void memoAndStackAreBounded() throws IOException {
        PickleBytes memo = new PickleBytes().proto(4).op(']');
        for (int i = 0; i <= RestrictedUnpickler.MAX_ENTRIES; i++) {
            memo.op(0x94); // MEMOIZE: a new entry each time
        }
        assertTrue(refusal(zip(memo.op('.').bytes())).contains("memo entries"));
        PickleBytes stack = new PickleBytes().proto(2);
        for (int i = 0; i <= RestrictedUnpickler.MAX_ENTRIES; i++) {
            stack.op('N');
        }
        assertTrue(refusal(zip(stack.op('.').bytes())).contains("objects on the stack"));
    }

    @Test
    void memoReadBeforeWriteIsRefused() throws IOException {
        assertTrue(refusal(zip(new PickleBytes().proto(2).op('j').le(123456, 4).op('.').bytes()))
                .contains("memo entry 123456"));
    }

    @Test
    void hugeStringLengthIsCheckedBeforeAllocating() throws IOException {
        byte[] pickle = new PickleBytes().proto(4).op(0x8d).le(Long.MAX_VALUE, 8).op('.').bytes();
        assertTrue(refusal(zip(pickle)).contains("truncated"));
    }

    @Test
    void storageSizeMismatchAndHugeCountsAreRefused() throws IOException {
        // The pickle says 3 floats, the entry holds 2.
        String mismatch = refusal(zip(PickleBytes.stateDict("w", 3, 3).bytes()));
        assertTrue(mismatch.contains("data/0") && mismatch.contains("12"), mismatch);
        // numel * 4 overflows a long.
        String overflow = refusal(zip(PickleBytes.stateDict("w", Long.MAX_VALUE / 2, 2).bytes()));
        assertTrue(overflow.contains("more than 64 bits"), overflow);
        // A view past the end of its storage.
        String outside = refusal(zip(PickleBytes.stateDict("w", 2, 3).bytes()));
        assertTrue(outside.contains("'w'") && outside.contains("storage holding 2"), outside);
        // Legacy: the storage section is shorter than declared.
        byte[] pickle = PickleBytes.stateDict("w", 2, 2).bytes();
        Path file = legacy(pickle);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 3));
        assertTrue(refusal(file).contains("truncated"));
    }

    /** Overwrites the sizes of entry archive/data/0 in the zip's central directory. */
    private static void forgeStorageSize(Path file, long forged) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        byte[] name = "archive/data/0".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i + 46 < bytes.length; i++) {
            if (b.getInt(i) == 0x02014b50 && Arrays.equals(bytes, i + 46, i + 46 + name.length, name, 0, name.length)) {
                b.putInt(i + 20, (int) forged); // compressed size
                b.putInt(i + 24, (int) forged); // uncompressed size
            }
        }
        Files.write(file, bytes);
    }

    /** A zip whose central directory claims a 2 GB entry that the file cannot hold. */
    @ParameterizedTest
    @ValueSource(longs = {0x7ffffff0L, 0xfffffffeL, 9})
    void zipEntryWithForgedSizeIsRefused(long forged) throws IOException {
        Path file = zip(PickleBytes.stateDict("w", 2, 2).bytes());
        forgeStorageSize(file, forged);
        String message = refusal(file);
        assertTrue(message.contains(file.toString()), message);
    }

    @Test
    void zipEntryAgreeingWithAForgedPickleIsStillRefused() throws IOException {
        long forged = 0x7ffffff0L;
        Path file = zip(PickleBytes.stateDict("w", forged / 4, 2).bytes());
        forgeStorageSize(file, forged);
        String message = refusal(file);
        assertTrue(message.contains("impossible") || message.contains("damaged zip"), message);
    }

    @Test
    void aStateDictOfNonTensorsIsRefused() throws IOException {
        byte[] pickle = new PickleBytes().proto(2).op('}').str("epoch").int1(3).op('s', '.').bytes();
        String message = refusal(zip(pickle));
        assertTrue(message.contains("epoch") && message.contains("not a tensor"), message);
    }

    // ---- safetensors ----

    private Path safetensors(String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        return Files.write(tmp.resolve("w.safetensors"), b.array());
    }

    @Test
    void wellFormedHandMadeSafetensorsLoads() throws IOException {
        Path file = safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}", 16);
        Map<String, Tensor> w = Weights.load(file);
        assertEquals(java.util.List.of("a"), java.util.List.copyOf(w.keySet()));
    }

    @Test
    void truncatedSafetensorsIsRefused() throws IOException {
        Path file = safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 4));
        assertTrue(refusal(file).contains("outside the 4 data bytes"));
        Files.write(file, Arrays.copyOf(bytes, 20));
        assertTrue(refusal(file).contains("truncated"));
        Files.write(file, Arrays.copyOf(bytes, 5));
        assertThrows(SquallException.BadFile.class, () -> Weights.load(file));
    }

    @Test
    void headerLengthBeyondTheFileIsRefused() throws IOException {
        byte[] bytes = Files.readAllBytes(safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0));
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Path file = Files.write(tmp.resolve("w.safetensors"), bytes);
        String message = refusal(file);
        assertTrue(message.contains("1099511627776") && message.contains("w.safetensors"), message);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}|8|outside the 8 data bytes",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}|8|outside",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}|12|overlaps",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}|12|unused bytes",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}|8|needs 12",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}|8|overflows 64 bits",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}|8|does not fit 64 bits",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2],\"data_offsets\":[0,8]}}|8|needs 17179869176",
            "{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}|8|dtype C64",
            "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}|8|dtype I64",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}|8|duplicate key",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}|8|fraction",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}|8|not {dtype, shape, data_offsets}",
            "{\"__metadata__\":{\"n\":1}}|0|__metadata__",
            "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}|0|nested deeper",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}|8|malformed JSON",
    })
    void badSafetensorsHeaderIsRefused(String header, int dataBytes, String expected) throws IOException {
        String message = refusal(safetensors(header, dataBytes));
        assertTrue(message.contains(expected) && message.contains("w.safetensors"), message);
    }

    @Test
    void writerRoundTripsFloat32AndRoundsFloat16LikeTheJdk() throws IOException {
        float[] values = {0f, -0f, 1f / 3, 65504f, 1e-8f, -3.75f, Float.MIN_NORMAL, 70000f};
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("z.first", Tensor.of(squall.api.Shape.of(2, 4), values.clone()));
        tensors.put("a.second", Tensor.of(squall.api.Shape.of(), 7f));
        Path f32 = tmp.resolve("f32.safetensors");
        Safetensors.write(f32, tensors);
        Map<String, Tensor> back = Weights.load(f32);
        assertEquals(java.util.List.of("z.first", "a.second"), java.util.List.copyOf(back.keySet()));
        assertArrayEquals(values, back.get("z.first").data());
        assertEquals(squall.api.Shape.of(), back.get("a.second").shape());

        Path f16 = tmp.resolve("f16.safetensors");
        Safetensors.write(f16, tensors, DType.F16, Map.of("source", "test"));
        float[] rounded = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            rounded[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
        }
        assertArrayEquals(rounded, Weights.load(f16).get("z.first").data());
        assertEquals(0, Files.readAllBytes(f16)[0] % 8, "header padded to 8 bytes");
    }
}
