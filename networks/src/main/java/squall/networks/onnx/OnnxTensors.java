package squall.networks.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Arrays;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.onnx.OnnxProto.DataType;
import squall.networks.onnx.OnnxProto.TensorProto;

/**
 * Turns ONNX TensorProtos into Squall tensors (float32) and int64 arrays, from whichever field the
 * writer filled: raw_data (little-endian), the typed fields, or external data in a file beside the
 * model. Float64, float16 and bfloat16 values are converted to float32.
 */
public final class OnnxTensors {
    private OnnxTensors() {
    }

    /** Reads a standalone TensorProto file ({@code input_0.pb}) as a float32 tensor. */
    public static Tensor readTensorFile(Path file) {
        return toTensor(OnnxReader.readTensor(file), file.toAbsolutePath().getParent(), file.toString());
    }

    /** Reads a standalone TensorProto file holding integers (a Reshape's shape, say). */
    public static long[] readLongsFile(Path file) {
        return toLongs(OnnxReader.readTensor(file), file.toAbsolutePath().getParent(), file.toString());
    }

    public static boolean isFloat(int dataType) {
        return dataType == DataType.FLOAT.code || dataType == DataType.DOUBLE.code
                || dataType == DataType.FLOAT16.code || dataType == DataType.BFLOAT16.code;
    }

    public static boolean isInteger(int dataType) {
        DataType t = DataType.of(dataType);
        return t != null && switch (t) {
            case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64, BOOL -> true;
            default -> false;
        };
    }

    /**
     * The tensor as float32. {@code dir} is the model's folder (for external data); {@code source}
     * names the file in errors.
     */
    public static Tensor toTensor(TensorProto t, Path dir, String source) {
        if (!isFloat(t.dataType())) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " is not a floating-point tensor; "
                    + "Squall computes in float32 and reads float, double, float16 and bfloat16 tensors as values");
        }
        Shape shape = shapeOf(t, source);
        int n = shape.size();
        float[] values = new float[n];
        ByteBuffer raw = rawBytes(t, dir, source);
        DataType type = DataType.of(t.dataType());
        if (raw != null) {
            checkBytes(t, raw, n, type.bytes, source);
            switch (type) {
                case FLOAT -> raw.asFloatBuffer().get(values);
                case DOUBLE -> {
                    for (int i = 0; i < n; i++) {
                        values[i] = (float) raw.getDouble(i * 8);
                    }
                }
                case FLOAT16 -> {
                    for (int i = 0; i < n; i++) {
                        values[i] = Float.float16ToFloat(raw.getShort(i * 2));
                    }
                }
                default -> {
                    for (int i = 0; i < n; i++) {
                        values[i] = bfloat16ToFloat(raw.getShort(i * 2));
                    }
                }
            }
            return new Tensor(shape, values);
        }
        switch (type) {
            case FLOAT -> {
                checkCount(t, t.floatData().length, n, "float_data", source);
                System.arraycopy(t.floatData(), 0, values, 0, n);
            }
            case DOUBLE -> {
                checkCount(t, t.doubleData().length, n, "double_data", source);
                for (int i = 0; i < n; i++) {
                    values[i] = (float) t.doubleData()[i];
                }
            }
            // float16 and bfloat16 keep their bits in the low half of int32_data
            case FLOAT16 -> {
                checkCount(t, t.int32Data().length, n, "int32_data", source);
                for (int i = 0; i < n; i++) {
                    values[i] = Float.float16ToFloat((short) t.int32Data()[i]);
                }
            }
            default -> {
                checkCount(t, t.int32Data().length, n, "int32_data", source);
                for (int i = 0; i < n; i++) {
                    values[i] = bfloat16ToFloat((short) t.int32Data()[i]);
                }
            }
        }
        return new Tensor(shape, values);
    }

    /** An integer (or bool) tensor's values as longs. */
    public static long[] toLongs(TensorProto t, Path dir, String source) {
        DataType type = DataType.of(t.dataType());
        if (!isInteger(t.dataType())) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " should hold integers");
        }
        long count;
        try {
            count = t.elementCount();
        } catch (ArithmeticException e) {
            count = Long.MAX_VALUE; // more elements than a long counts: refused just below
        }
        if (count > OnnxReader.MAX_FILE_BYTES / 8) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " is too large for an integer tensor");
        }
        int n = (int) count;
        long[] values = new long[n];
        ByteBuffer raw = rawBytes(t, dir, source);
        if (raw != null) {
            checkBytes(t, raw, n, type.bytes, source);
            for (int i = 0; i < n; i++) {
                values[i] = switch (type) {
                    case INT64, UINT64 -> raw.getLong(i * 8);
                    case INT32 -> raw.getInt(i * 4);
                    case UINT32 -> Integer.toUnsignedLong(raw.getInt(i * 4));
                    case INT16 -> raw.getShort(i * 2);
                    case UINT16 -> Short.toUnsignedInt(raw.getShort(i * 2));
                    case INT8 -> raw.get(i);
                    default -> Byte.toUnsignedInt(raw.get(i));
                };
            }
            return values;
        }
        long[] field = switch (type) {
            case INT64 -> t.int64Data();
            case UINT32, UINT64 -> t.uint64Data();
            default -> Arrays.stream(t.int32Data()).asLongStream().toArray();
        };
        checkCount(t, field.length, n, type == DataType.INT64 ? "int64_data"
                : type == DataType.UINT32 || type == DataType.UINT64 ? "uint64_data" : "int32_data", source);
        System.arraycopy(field, 0, values, 0, n);
        return values;
    }

    static Shape shapeOf(TensorProto t, String source) {
        try {
            return Shape.of(t.dims());
        } catch (SquallException e) {
            throw new SquallException.BadFile(t.describe() + " in " + source + ": " + e.getMessage());
        }
    }

    private static float bfloat16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    private static void checkCount(TensorProto t, int have, int need, String field, String source) {
        if (have != need) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " needs " + need + " values but its "
                    + field + " holds " + have + " (and it has no raw_data): the file is corrupt");
        }
    }

    private static void checkBytes(TensorProto t, ByteBuffer raw, int n, int bytesPerElement, String source) {
        if (raw.remaining() != (long) n * bytesPerElement) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " needs " + (long) n * bytesPerElement
                    + " bytes of data (" + n + " x " + bytesPerElement + "), found " + raw.remaining()
                    + ": the file is truncated or corrupt");
        }
    }

    /** raw_data or the external data, little-endian; null when the values are in a typed field. */
    private static ByteBuffer rawBytes(TensorProto t, Path dir, String source) {
        ByteString bytes = t.external() ? externalData(t, dir, source) : t.rawData();
        // slice(): absolute get(i) then counts from the tensor's first byte, not the file's
        return bytes == null ? null : bytes.asReadOnlyByteBuffer().slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Reads external data: {@code location} is a file relative to the model's folder (it may not
     * leave it), {@code offset} and {@code length} pick the bytes.
     */
    private static ByteString externalData(TensorProto t, Path dir, String source) {
        String location = t.externalData().get("location");
        if (location == null || location.isEmpty()) {
            throw new SquallException.BadFile(t.describe() + " in " + source
                    + " is stored externally but names no location");
        }
        if (dir == null) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " is stored in external file '"
                    + location + "', but the model was not read from a folder: load it from its file");
        }
        Path base = dir.toAbsolutePath().normalize();
        Path file;
        try {
            file = base.resolve(location).normalize();
        } catch (InvalidPathException e) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " names external data '"
                    + location.replace("\0", "\\0") + "', which is not a file name: " + e.getReason());
        }
        if (Path.of(location).isAbsolute() || !file.startsWith(base)) {
            throw new SquallException.BadFile(t.describe() + " in " + source + " names external data '" + location
                    + "' outside the model's folder " + base + "; Squall only reads external data beside the model");
        }
        long offset = parseLong(t, "offset", 0, source);
        try (FileChannel ch = FileChannel.open(file)) {
            long size = ch.size();
            long length = parseLong(t, "length", size - offset, source);
            if (offset < 0 || length < 0 || offset + length > size) {
                throw new SquallException.BadFile(t.describe() + " in " + source + " wants bytes " + offset + ".."
                        + (offset + length) + " of " + file + ", which has " + size + " bytes");
            }
            if (length > OnnxReader.MAX_FILE_BYTES) {
                throw new SquallException.BadFile(t.describe() + " in " + source + " has " + length
                        + " bytes of external data; a Squall tensor holds at most 2 GiB");
            }
            ByteBuffer buffer = ByteBuffer.allocate((int) length);
            while (buffer.hasRemaining()) {
                if (ch.read(buffer, offset + buffer.position()) < 0) {
                    throw new SquallException.BadFile(file + " ended early while reading " + t.describe());
                }
            }
            return UnsafeByteOperations.unsafeWrap(buffer.array());
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read external data " + file + " of " + t.describe() + " in "
                    + source + ": " + e + (Files.exists(file) ? "" : " (keep the data file beside the .onnx file)"), e);
        }
    }

    private static long parseLong(TensorProto t, String key, long fallback, String source) {
        String v = t.externalData().get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new SquallException.BadFile(t.describe() + " in " + source + ": external data " + key + " '" + v
                    + "' is not a number");
        }
    }
}
