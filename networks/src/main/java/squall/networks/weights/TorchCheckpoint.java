package squall.networks.weights;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.weights.RestrictedUnpickler.StorageRef;
import squall.networks.weights.RestrictedUnpickler.TensorRef;

/**
 * PyTorch {@code torch.save} checkpoints holding a state dict (possibly under a "state_dict" or
 * "model" key), in both layouts:
 * <ul>
 * <li>zip (torch >= 1.6): {@code <name>/data.pkl} plus one entry {@code <name>/data/<key>} per
 *     storage; the folder name is the saved file's stem, so it is found, not assumed;</li>
 * <li>legacy (torch < 1.6, or {@code _use_new_zipfile_serialization=False}): five pickles in a row
 *     (magic number, protocol version, system info, the object, the sorted storage keys), then for
 *     each key an 8-byte element count and the storage's raw bytes.</li>
 * </ul>
 * Both pickles go through {@link RestrictedUnpickler}; tensors must be contiguous views.
 */
final class TorchCheckpoint {
    static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long LEGACY_PROTOCOL = 1001;
    /** Deflate cannot expand data more than about 1032:1, so a larger declared size is a lie. */
    private static final long MAX_DEFLATE_RATIO = 1032;
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private TorchCheckpoint() {}

    static Map<String, Tensor> readZip(Path file) {
        try (ZipFile zip = new ZipFile(file.toFile())) {
            long fileSize = Files.size(file);
            ZipEntry pickle = zip.stream().filter(e -> e.getName().matches("[^/]+/data\\.pkl"))
                    .findFirst().orElseThrow(() -> new SquallException.BadFile("PyTorch zip checkpoint " + file
                            + " has no <folder>/data.pkl entry; it is a zip file but not a torch.save checkpoint"));
            String folder = pickle.getName().substring(0, pickle.getName().length() - "data.pkl".length());
            String source = file + " (" + pickle.getName() + ")";
            ZipEntry byteOrder = zip.getEntry(folder + "byteorder");
            if (byteOrder != null && !new String(readEntry(zip, byteOrder, file, fileSize, -1),
                    java.nio.charset.StandardCharsets.US_ASCII).strip().equals("little")) {
                throw new SquallException.BadFile("PyTorch zip checkpoint " + file + " stores big-endian data; "
                        + "re-save it on a little-endian machine");
            }
            byte[] pickleBytes = readEntry(zip, pickle, file, fileSize, -1);
            Object root = new RestrictedUnpickler(MemorySegment.ofArray(pickleBytes), 0, source).load();
            Map<String, TensorRef> refs = stateDict(root, source);

            storagesByKey(file, refs);
            // Read each storage once, keeping it only while some tensor still needs it.
            Map<String, Integer> users = new HashMap<>();
            refs.values().forEach(r -> users.merge(r.storage().key(), 1, Integer::sum));
            Map<String, MemorySegment> storages = new HashMap<>();
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (var e : refs.entrySet()) {
                StorageRef s = e.getValue().storage();
                if (skipped(file, e.getKey(), s)) {
                    continue;
                }
                MemorySegment bytes = storages.get(s.key());
                if (bytes == null) {
                    bytes = MemorySegment.ofArray(readStorage(zip, folder, s, e.getKey(), file, fileSize));
                    storages.put(s.key(), bytes);
                }
                tensors.put(e.getKey(), tensor(file, e.getKey(), e.getValue(), bytes, 0));
                if (users.merge(s.key(), -1, Integer::sum) == 0) {
                    storages.remove(s.key());
                }
            }
            return tensors;
        } catch (ZipException e) {
            throw new SquallException.BadFile("PyTorch zip checkpoint " + file + " is a damaged zip file: "
                    + e.getMessage(), e);
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read PyTorch checkpoint " + file + ": " + e.getMessage(), e);
        }
    }

    private static byte[] readStorage(ZipFile zip, String folder, StorageRef s, String tensor, Path file, long fileSize)
            throws IOException {
        ZipEntry entry = zip.getEntry(folder + "data/" + s.key());
        if (entry == null) {
            throw new SquallException.BadFile("PyTorch zip checkpoint " + file + ": storage '" + s.key()
                    + "' of tensor '" + tensor + "' is missing (no entry " + folder + "data/" + s.key() + ")");
        }
        long needed = storageBytes(file, tensor, s);
        return readEntry(zip, entry, file, fileSize, needed);
    }

    /**
     * Reads a whole entry after checking its declared sizes against the file and against
     * {@code expected} (when not -1), so a forged size cannot make us allocate gigabytes.
     */
    private static byte[] readEntry(ZipFile zip, ZipEntry entry, Path file, long fileSize, long expected)
            throws IOException {
        long size = entry.getSize();
        long compressed = entry.getCompressedSize();
        String where = "PyTorch zip checkpoint " + file + ": entry " + entry.getName();
        if (expected >= 0 && size != expected) {
            throw new SquallException.BadFile(where + " declares " + size + " bytes but the pickle says the storage "
                    + "holds " + expected + "; the file is damaged");
        }
        boolean stored = entry.getMethod() == ZipEntry.STORED;
        if (size < 0 || compressed < 0 || compressed > fileSize || (stored && size != compressed)
                || (!stored && size > compressed * MAX_DEFLATE_RATIO + 1024)) {
            throw new SquallException.BadFile(where + " declares " + size + " bytes (" + compressed
                    + " compressed) in a file of " + fileSize + " bytes; the sizes are impossible, the file is damaged");
        }
        if (size > Integer.MAX_VALUE - 8) {
            throw new SquallException.BadFile(where + " holds " + size + " bytes; storages over 2 GB are not read "
                    + "from .pth files, convert the checkpoint to safetensors");
        }
        try (InputStream in = zip.getInputStream(entry)) {
            byte[] bytes;
            try {
                bytes = new byte[(int) size];
            } catch (OutOfMemoryError e) {
                throw Weights.outOfHeap(file, "entry " + entry.getName(), size);
            }
            int read = in.readNBytes(bytes, 0, bytes.length);
            if (read != size || in.read() != -1) {
                throw new SquallException.BadFile(where + " declares " + size + " bytes but holds "
                        + (read != size ? read : "more") + "; the file is damaged");
            }
            return bytes;
        }
    }

    static Map<String, Tensor> readLegacy(Path file) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long fileSize = channel.size();
            MemorySegment bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            String source = file + " (legacy PyTorch format)";
            RestrictedUnpickler pickles = new RestrictedUnpickler(bytes, 0, source);
            Object magic = pickles.load();
            if (!LEGACY_MAGIC.equals(magic)) {
                throw new SquallException.BadFile(file + " is a Python pickle but not a PyTorch checkpoint (it does "
                        + "not start with torch's magic number); Squall reads state dicts saved with torch.save");
            }
            Object protocol = pickles.load();
            if (!(protocol instanceof Long p) || p != LEGACY_PROTOCOL) {
                throw new SquallException.BadFile(source + ": protocol version " + protocol + ", expected "
                        + LEGACY_PROTOCOL);
            }
            if (!(pickles.load() instanceof Map<?, ?> sysInfo) || !Boolean.TRUE.equals(sysInfo.get("little_endian"))) {
                throw new SquallException.BadFile(source + ": the system info does not say little-endian; "
                        + "big-endian checkpoints are not supported, re-save the file on a little-endian machine");
            }
            Map<String, TensorRef> refs = stateDict(pickles.load(), source);
            if (!(pickles.load() instanceof List<?> keys) || !keys.stream().allMatch(k -> k instanceof String)) {
                throw new SquallException.BadFile(source + ": the storage key list is not a list of strings");
            }
            Map<String, Long> offsets = storageOffsets(file, bytes, pickles.position(), keys, refs);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (var e : refs.entrySet()) {
                StorageRef s = e.getValue().storage();
                if (!skipped(file, e.getKey(), s)) {
                    tensors.put(e.getKey(), tensor(file, e.getKey(), e.getValue(), bytes, offsets.get(s.key())));
                }
            }
            return tensors;
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read PyTorch checkpoint " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Walks the storage section: per key, an 8-byte element count then the bytes. The element size
     * comes from the pickle, so every listed key must be one the state dict uses.
     */
    private static Map<String, Long> storageOffsets(Path file, MemorySegment bytes, long start, List<?> keys,
                                                    Map<String, TensorRef> refs) {
        Map<String, StorageRef> byKey = storagesByKey(file, refs);
        Map<String, Long> offsets = new HashMap<>();
        long pos = start;
        for (Object k : keys) {
            String key = (String) k;
            StorageRef s = byKey.get(key);
            if (s == null || offsets.containsKey(key)) {
                throw new SquallException.BadFile(file + ": storage key '" + key + "' is listed "
                        + (s == null ? "but no tensor uses it, so its size is unknown" : "twice"));
            }
            if (pos > bytes.byteSize() - 8) {
                throw truncated(file, key, pos, 8, bytes.byteSize());
            }
            long count = bytes.get(I64_LE, pos);
            if (count != s.numel()) {
                throw new SquallException.BadFile(file + ": storage '" + key + "' records " + count
                        + " elements but the pickle declares " + s.numel() + "; the file is damaged");
            }
            long size = storageBytes(file, key, s);
            if (size > bytes.byteSize() - pos - 8) {
                throw truncated(file, key, pos + 8, size, bytes.byteSize());
            }
            offsets.put(key, pos + 8);
            pos += 8 + size;
        }
        for (String key : byKey.keySet()) {
            if (!offsets.containsKey(key)) {
                throw new SquallException.BadFile(file + ": storage '" + key + "' is used by a tensor but not "
                        + "stored in the file; the file is damaged");
            }
        }
        return offsets;
    }

    /** Every storage once; a key declared twice with different types or sizes is damage. */
    private static Map<String, StorageRef> storagesByKey(Path file, Map<String, TensorRef> refs) {
        Map<String, StorageRef> byKey = new HashMap<>();
        for (var e : refs.entrySet()) {
            StorageRef s = e.getValue().storage();
            StorageRef seen = byKey.putIfAbsent(s.key(), s);
            if (seen != null && (seen.dtype() != s.dtype() || seen.numel() != s.numel())) {
                throw new SquallException.BadFile(file + ": storage '" + s.key() + "' is declared twice with "
                        + "different types or sizes (" + seen.dtype() + " x" + seen.numel() + ", " + s.dtype()
                        + " x" + s.numel() + " for tensor '" + e.getKey() + "')");
            }
        }
        return byKey;
    }

    private static SquallException.BadFile truncated(Path file, String key, long at, long needed, long fileSize) {
        return new SquallException.BadFile(file + ": storage '" + key + "' needs " + needed + " bytes at offset "
                + at + " but the file ends at " + fileSize + "; the file is truncated");
    }

    private static long storageBytes(Path file, String tensor, StorageRef s) {
        try {
            return Math.multiplyExact(s.numel(), (long) s.dtype().byteSize());
        } catch (ArithmeticException e) {
            throw new SquallException.BadFile(file + ": storage '" + s.key() + "' of tensor '" + tensor
                    + "' declares " + s.numel() + " elements, more than 64 bits of bytes");
        }
    }

    /**
     * Finds the state dict: the top-level dict itself when it holds tensors, else its "state_dict"
     * or "model" entry (what training scripts wrap checkpoints in).
     */
    private static Map<String, TensorRef> stateDict(Object root, String source) {
        if (!(root instanceof Map<?, ?> top)) {
            throw new SquallException.BadFile(source + ": the checkpoint holds a " + kind(root)
                    + ", not a state dict; save model.state_dict()");
        }
        Map<?, ?> dict = top;
        if (top.values().stream().noneMatch(v -> v instanceof TensorRef)) {
            for (String wrapper : List.of("state_dict", "model")) {
                if (top.get(wrapper) instanceof Map<?, ?> inner) {
                    dict = inner;
                    break;
                }
            }
        }
        Map<String, TensorRef> refs = new LinkedHashMap<>();
        for (var e : dict.entrySet()) {
            if (!(e.getKey() instanceof String key) || !(e.getValue() instanceof TensorRef ref)) {
                String keys = top.keySet().stream().limit(20).map(String::valueOf).toList().toString();
                throw new SquallException.BadFile(source + ": entry " + e.getKey() + " is a " + kind(e.getValue())
                        + ", not a tensor; expected a state dict of tensors (or one under 'state_dict' or 'model'), "
                        + "the top-level keys are " + keys);
            }
            refs.put(key, ref);
        }
        return refs;
    }

    private static String kind(Object o) {
        return o == null ? "None" : o instanceof Map<?, ?> ? "dict" : o instanceof List<?> ? "list"
                : o instanceof RestrictedUnpickler.Tuple ? "tuple" : o.getClass().getSimpleName();
    }

    /** BatchNorm's num_batches_tracked is an integer counter, not a weight; other integer tensors are refused. */
    private static boolean skipped(Path file, String name, StorageRef s) {
        if (s.dtype().isFloating()) {
            return false;
        }
        if (name.endsWith("num_batches_tracked")) {
            return true;
        }
        throw new SquallException.BadFile(file + ": tensor '" + name + "' holds " + s.dtype()
                + " values; Squall reads float weights (float32, float16, bfloat16, float64). Drop it from the state dict");
    }

    /** Copies a contiguous view of a storage whose first byte is at {@code base} in {@code bytes}. */
    private static Tensor tensor(Path file, String name, TensorRef ref, MemorySegment bytes, long base) {
        String where = file + ": tensor '" + name + "'";
        long[] size = ref.size();
        long[] stride = ref.stride();
        if (stride.length != size.length) {
            throw new SquallException.BadFile(where + " has size " + Arrays.toString(size) + " but stride "
                    + Arrays.toString(stride));
        }
        Shape shape;
        try {
            shape = Shape.of(size);
            shape.size();
        } catch (SquallException.BadShape e) {
            throw new SquallException.BadFile(where + " cannot be held: " + e.getMessage());
        }
        int count = shape.size();
        long expected = 1;
        for (int i = size.length - 1; i >= 0; i--) {
            // A dimension of extent 1 is never stepped over, so its stride carries no meaning.
            if (size[i] != 1 && stride[i] != expected && count > 0) {
                throw new SquallException.BadFile(where + " is a non-contiguous view (size " + Arrays.toString(size)
                        + ", stride " + Arrays.toString(stride) + "); save tensor.contiguous() or clone() it first");
            }
            expected *= size[i];
        }
        StorageRef s = ref.storage();
        if (ref.offset() < 0 || ref.offset() > s.viewSize() - count) {
            throw new SquallException.BadFile(where + " reads elements " + ref.offset() + " to "
                    + (ref.offset() + count) + " of a storage holding " + s.viewSize() + "; the file is damaged");
        }
        float[] data = Weights.floats(file, name, count);
        s.dtype().toFloats(bytes, base + (s.viewOffset() + ref.offset()) * s.dtype().byteSize(), data, count);
        return new Tensor(shape, data);
    }
}
