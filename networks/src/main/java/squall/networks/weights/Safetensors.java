package squall.networks.weights;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to {dtype, shape, data_offsets} (plus optional string {@code __metadata__}), then
 * the raw little-endian bytes. Read through a memory map of the whole file ({@code FileChannel.map}
 * into an {@link Arena}, which has no 2 GB limit and unmaps when the read ends), writes F32 or F16.
 */
public final class Safetensors {
    /** The reference implementation's limit; a header this big is damage, not a model. */
    static final long MAX_HEADER_BYTES = 100_000_000;
    static final String METADATA = "__metadata__";
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Safetensors() {}

    /** One header entry, validated: bytes [begin, end) of the data section. */
    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    /** Reads every float tensor in header order; {@code num_batches_tracked} counters are skipped. */
    static Map<String, Tensor> read(Path file) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw bad(file, "is " + fileSize + " bytes, too short for the 8-byte header length");
            }
            MemorySegment bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            long headerLength = bytes.get(I64_LE, 0);
            if (headerLength < 2 || headerLength > fileSize - 8) {
                throw bad(file, "declares a header of " + Long.toUnsignedString(headerLength) + " bytes but the file is "
                        + fileSize + " bytes; it is truncated or not safetensors");
            }
            if (headerLength > MAX_HEADER_BYTES) {
                throw bad(file, "declares a header of " + headerLength + " bytes, over the " + MAX_HEADER_BYTES
                        + " byte limit of the format");
            }
            long dataStart = 8 + headerLength;
            List<Entry> entries = parseHeader(file, bytes.asSlice(8, headerLength), fileSize - dataStart);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Entry e : entries) {
                if (!e.dtype.isFloating()) {
                    if (e.name.endsWith("num_batches_tracked")) {
                        continue; // BatchNorm's step counter: a training statistic, not a weight
                    }
                    throw bad(file, "tensor '" + e.name + "' has dtype " + e.dtype.safetensorsName()
                            + "; Squall reads float weights (F32, F16, BF16, F64). Remove it or convert it to float");
                }
                Shape shape = shape(file, e.name, e.shape);
                float[] data = Weights.floats(file, e.name, shape.size());
                e.dtype.toFloats(bytes, dataStart + e.begin, data, data.length);
                tensors.put(e.name, new Tensor(shape, data));
            }
            return tensors;
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read safetensors file " + file + ": " + e.getMessage(), e);
        }
    }

    private static List<Entry> parseHeader(Path file, MemorySegment headerBytes, long dataLength) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(headerBytes.asByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw bad(file, "has a header that is not UTF-8 text");
        }
        if (!text.startsWith("{")) {
            throw bad(file, "has a header that does not start with '{'");
        }
        Object root;
        try {
            root = Json.parse(text);
        } catch (IllegalArgumentException e) {
            throw bad(file, "has a malformed JSON header: " + e.getMessage());
        }
        if (!(root instanceof Map<?, ?> header)) {
            throw bad(file, "has a header that is not a JSON object");
        }
        List<Entry> entries = new ArrayList<>();
        for (var item : header.entrySet()) {
            String name = (String) item.getKey();
            if (name.equals(METADATA)) {
                checkMetadata(file, item.getValue());
            } else {
                entries.add(entry(file, name, item.getValue(), dataLength));
            }
        }
        checkLayout(file, entries, dataLength);
        return entries;
    }

    private static void checkMetadata(Path file, Object value) {
        if (!(value instanceof Map<?, ?> m) || !m.values().stream().allMatch(v -> v instanceof String)) {
            throw bad(file, "has a __metadata__ entry that is not an object of strings");
        }
    }

    private static Entry entry(Path file, String name, Object value, long dataLength) {
        String where = "tensor '" + name + "'";
        if (!(value instanceof Map<?, ?> m) || m.size() != 3 || !(m.get("dtype") instanceof String dtypeName)
                || !(m.get("shape") instanceof List<?> shapeList) || !(m.get("data_offsets") instanceof List<?> offsets)) {
            throw bad(file, "has a header entry for " + where + " that is not {dtype, shape, data_offsets}");
        }
        DType dtype = DType.fromSafetensors(dtypeName);
        if (dtype == null) {
            throw bad(file, where + " has dtype " + dtypeName + ", which Squall does not read (it reads F32, F16, "
                    + "BF16, F64). Convert the file to float32 or float16");
        }
        long[] shape = new long[shapeList.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            if (!(shapeList.get(i) instanceof Long d) || d < 0) {
                throw bad(file, where + " has shape " + shapeList + "; dimensions must be non-negative integers");
            }
            shape[i] = d;
            count = multiply(file, where, shapeList, count, d);
        }
        long byteCount = multiply(file, where, shapeList, count, dtype.byteSize());
        if (offsets.size() != 2 || !(offsets.get(0) instanceof Long begin) || !(offsets.get(1) instanceof Long end)) {
            throw bad(file, where + " has data_offsets " + offsets + "; expected [begin, end]");
        }
        if (begin < 0 || end < begin || end > dataLength) {
            throw bad(file, where + " has data_offsets " + offsets + " outside the " + dataLength
                    + " data bytes of the file; it is truncated or damaged");
        }
        if (end - begin != byteCount) {
            throw bad(file, where + " has data_offsets " + offsets + " spanning " + (end - begin) + " bytes, but "
                    + dtypeName + " " + shapeList + " needs " + byteCount);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long multiply(Path file, String where, List<?> shape, long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw bad(file, where + " has shape " + shape + " whose byte size overflows 64 bits");
        }
    }

    /** Tensors must tile the data section exactly, as the reference implementation requires. */
    private static void checkLayout(Path file, List<Entry> entries, long dataLength) {
        List<Entry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long covered = 0;
        String previous = null;
        for (Entry e : byOffset) {
            if (e.begin < covered) {
                throw bad(file, "tensor '" + e.name + "' (bytes " + e.begin + "-" + e.end + ") overlaps tensor '"
                        + previous + "' (ending at " + covered + ")");
            }
            if (e.begin > covered) {
                throw bad(file, "has " + (e.begin - covered) + " unused bytes before tensor '" + e.name
                        + "' (at " + covered + "-" + e.begin + "); the data section must hold the tensors and nothing else");
            }
            covered = e.end;
            previous = e.name;
        }
        if (covered != dataLength) {
            throw bad(file, "has " + (dataLength - covered) + " bytes after the last tensor; the file is damaged");
        }
    }

    private static Shape shape(Path file, String name, long[] dims) {
        try {
            Shape shape = Shape.of(dims);
            shape.size();
            return shape;
        } catch (SquallException.BadShape e) {
            throw bad(file, "tensor '" + name + "' cannot be held: " + e.getMessage());
        }
    }

    /** Writes float32 tensors with no metadata. */
    public static void write(Path file, Map<String, Tensor> tensors) {
        write(file, tensors, DType.F32, Map.of());
    }

    /**
     * Writes tensors in map order, stored as {@code F32} or {@code F16} (rounded to nearest even),
     * with optional string metadata; the header is padded with spaces to 8 bytes as the reference
     * writer does, so the data stays aligned.
     */
    public static void write(Path file, Map<String, Tensor> tensors, DType storedAs, Map<String, String> metadata) {
        if (storedAs != DType.F32 && storedAs != DType.F16) {
            throw new SquallException("safetensors writer stores F32 or F16, not " + storedAs);
        }
        StringBuilder header = new StringBuilder("{");
        if (!metadata.isEmpty()) {
            Json.writeString(header, METADATA);
            header.append(":{");
            String sep = "";
            for (var m : metadata.entrySet()) {
                header.append(sep);
                Json.writeString(header, m.getKey());
                header.append(':');
                Json.writeString(header, m.getValue());
                sep = ",";
            }
            header.append('}');
        }
        long offset = 0;
        for (var t : tensors.entrySet()) {
            if (header.length() > 1) {
                header.append(',');
            }
            long bytes = (long) t.getValue().data().length * storedAs.byteSize();
            Json.writeString(header, t.getKey());
            header.append(":{\"dtype\":\"").append(storedAs.safetensorsName()).append("\",\"shape\":")
                    .append(t.getValue().shape().toString().replace(" ", ""))
                    .append(",\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
            offset += bytes;
        }
        header.append('}');
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(out, head.flip());
            ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors.values()) {
                for (float v : t.data()) {
                    if (chunk.remaining() < 4) {
                        writeFully(out, chunk.flip());
                        chunk.clear();
                    }
                    if (storedAs == DType.F32) {
                        chunk.putFloat(v);
                    } else {
                        chunk.putShort(Float.floatToFloat16(v));
                    }
                }
            }
            writeFully(out, chunk.flip());
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot write safetensors file " + file + ": " + e.getMessage(), e);
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }

    private static SquallException.BadFile bad(Path file, String what) {
        return new SquallException.BadFile("safetensors file " + file + " " + what);
    }
}
