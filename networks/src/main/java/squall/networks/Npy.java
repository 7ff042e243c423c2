package squall.networks;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * NumPy's {@code .npy} format (versions 1.0-3.0), enough to exchange tensors with Python:
 * float32 in C order as {@link Tensor}s, uint8 (images) widened to float, int64 (labels,
 * indices) as longs. Anything else (other dtypes, Fortran order, object arrays) is refused with
 * a message saying how to re-save the array.
 *
 * <p>The format: the magic {@code \x93NUMPY}, a major and minor version byte, the header length
 * (2 bytes little-endian in version 1, 4 bytes in 2 and 3), then the header, a Python dict literal
 * such as {@code {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }} padded with spaces
 * and a newline so that the data starts on a 64-byte boundary, then the raw elements.
 */
public final class Npy {
    /** An int64 array: shape and elements in C order. */
    public record Longs(Shape shape, long[] data) {
        public Longs {
            if (data.length != shape.size()) {
                throw new SquallException.BadShape("int64 array of shape " + shape + " needs " + shape.size()
                        + " elements, got " + data.length);
            }
        }
    }

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int ALIGNMENT = 64;
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");
    private static final Pattern DIMENSION = Pattern.compile("\\s*(\\d+)L?\\s*");

    private Npy() {
    }

    /** The header fields Squall uses, and where the data starts. */
    private record Header(String descr, Shape shape, int dataOffset) {
        ByteOrder order() {
            return descr.charAt(0) == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        }

        /** The dtype without its byte-order character: "f4", "u1", "i8". */
        String type() {
            char first = descr.charAt(0);
            return first == '<' || first == '>' || first == '|' || first == '=' ? descr.substring(1) : descr;
        }
    }

    /** Reads a float32 array ({@code <f4} or {@code >f4}), or a uint8 one as floats 0-255. */
    public static Tensor read(Path file) {
        byte[] bytes = readBytes(file);
        Header header = header(file, bytes);
        ByteBuffer data = data(file, bytes, header);
        float[] values = new float[header.shape().size()];
        switch (header.type()) {
            case "f4" -> data.asFloatBuffer().get(values);
            case "u1" -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = data.get(i) & 0xff;
                }
            }
            default -> throw unsupported(file, header, "float32 ('<f4') or uint8 ('|u1')",
                    "a.astype(numpy.float32)");
        }
        return new Tensor(header.shape(), values);
    }

    /** Reads an int64 array ({@code <i8} or {@code >i8}). */
    public static Longs readLongs(Path file) {
        byte[] bytes = readBytes(file);
        Header header = header(file, bytes);
        if (!header.type().equals("i8")) {
            throw unsupported(file, header, "int64 ('<i8')", "a.astype(numpy.int64)");
        }
        long[] values = new long[header.shape().size()];
        data(file, bytes, header).asLongBuffer().get(values);
        return new Longs(header.shape(), values);
    }

    /** Writes a tensor as a float32, C-order, version 1.0 {@code .npy} file, as {@code numpy.save} does. */
    public static void write(Path file, Tensor tensor) {
        byte[] header = headerBytes(tensor.shape());
        ByteBuffer data = ByteBuffer.allocate(Math.multiplyExact(tensor.data().length, Float.BYTES))
                .order(ByteOrder.LITTLE_ENDIAN);
        data.asFloatBuffer().put(tensor.data());
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(header);
            out.write(data.array());
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static byte[] headerBytes(Shape shape) {
        StringBuilder dims = new StringBuilder();
        for (int d : shape.dims()) {
            dims.append(d).append(", ");
        }
        // Python writes a 1-tuple as "(n,)" and longer ones without the trailing comma.
        String tuple = shape.rank() == 1 ? dims.substring(0, dims.length() - 1)
                : shape.rank() == 0 ? "" : dims.substring(0, dims.length() - 2);
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + tuple + "), }";
        int prefix = MAGIC.length + 2 + 2;
        int padded = (prefix + dict.length() + 1 + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        String text = dict + " ".repeat(padded - prefix - dict.length() - 1) + "\n";
        ByteBuffer header = ByteBuffer.allocate(padded).order(ByteOrder.LITTLE_ENDIAN);
        header.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) text.length());
        header.put(text.getBytes(StandardCharsets.US_ASCII));
        return header.array();
    }

    private static byte[] readBytes(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read .npy file " + file + ": " + e, e);
        }
    }

    private static Header header(Path file, byte[] bytes) {
        if (bytes.length < MAGIC.length + 4 || !startsWithMagic(bytes)) {
            throw new SquallException.BadFile(file + " is not a .npy file: it does not start with \\x93NUMPY "
                    + "(write it with numpy.save)");
        }
        int major = bytes[6];
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int length;
        int start;
        switch (major) {
            case 1 -> {
                length = Short.toUnsignedInt(buffer.getShort(8));
                start = 10;
            }
            case 2, 3 -> {
                if (bytes.length < 12) {
                    throw new SquallException.BadFile(file + ": .npy header is truncated");
                }
                length = buffer.getInt(8);
                start = 12;
            }
            default -> throw new SquallException.BadFile(file + ": .npy format version " + major + "." + bytes[7]
                    + " is not supported (only 1.0-3.0); save it with numpy.save");
        }
        if (length < 0 || start + (long) length > bytes.length) {
            throw new SquallException.BadFile(file + ": .npy header says it is " + Integer.toUnsignedString(length)
                    + " bytes long, but the file has only " + (bytes.length - start) + " bytes after the prelude: "
                    + "the file is truncated or not a .npy file");
        }
        String text = new String(bytes, start, length,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1).strip();
        if (!text.startsWith("{") || !text.endsWith("}")) {
            throw badHeader(file, text, "it is not a dict literal");
        }
        Matcher fortran = find(file, text, FORTRAN, "fortran_order");
        if (fortran.group(1).equals("True")) {
            throw new SquallException.BadFile(file + " holds a Fortran-order (column-major) array; Squall reads "
                    + "C order only: save numpy.ascontiguousarray(a) instead");
        }
        String descr = find(file, text, DESCR, "descr").group(1);
        if (descr.isEmpty()) {
            throw badHeader(file, text, "'descr' is empty");
        }
        return new Header(descr, shape(file, text), start + length);
    }

    private static boolean startsWithMagic(byte[] bytes) {
        for (int i = 0; i < MAGIC.length; i++) {
            if (bytes[i] != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    private static Shape shape(Path file, String text) {
        String tuple = find(file, text, SHAPE, "shape").group(1).strip();
        List<Long> dims = new ArrayList<>();
        if (!tuple.isEmpty()) {
            String[] parts = tuple.split(",", -1);
            for (int i = 0; i < parts.length; i++) {
                boolean trailingComma = i == parts.length - 1 && parts[i].isBlank() && i > 0;
                if (trailingComma) {
                    continue;
                }
                Matcher m = DIMENSION.matcher(parts[i]);
                if (!m.matches()) {
                    throw badHeader(file, text, "shape entry '" + parts[i].strip() + "' is not a non-negative integer");
                }
                try {
                    dims.add(Long.parseLong(m.group(1)));
                } catch (NumberFormatException e) {
                    throw badHeader(file, text, "shape entry " + m.group(1) + " is too large");
                }
            }
        }
        long[] array = new long[dims.size()];
        for (int i = 0; i < array.length; i++) {
            array[i] = dims.get(i);
        }
        return Shape.of(array);
    }

    private static Matcher find(Path file, String text, Pattern pattern, String key) {
        Matcher m = pattern.matcher(text);
        if (!m.find()) {
            throw badHeader(file, text, "'" + key + "' is missing or malformed");
        }
        return m;
    }

    private static ByteBuffer data(Path file, byte[] bytes, Header header) {
        int itemSize = switch (header.type()) {
            case "f4", "i4", "u4" -> 4;
            case "f8", "i8", "u8", "c8" -> 8;
            case "f2", "i2", "u2" -> 2;
            case "u1", "i1", "b1" -> 1;
            default -> 0;
        };
        if (itemSize == 0) {
            throw unsupported(file, header, "float32, uint8 or int64", "a.astype(numpy.float32)");
        }
        long expected = (long) header.shape().size() * itemSize;
        long actual = bytes.length - header.dataOffset();
        if (actual != expected) {
            throw new SquallException.BadFile(file + ": shape " + header.shape() + " of '" + header.descr()
                    + "' needs " + expected + " data bytes, the file has " + actual + " (truncated, or not written "
                    + "by numpy.save)");
        }
        return ByteBuffer.wrap(bytes, header.dataOffset(), (int) actual).slice().order(header.order());
    }

    private static SquallException unsupported(Path file, Header header, String wanted, String conversion) {
        return new SquallException.BadFile(file + " holds dtype '" + header.descr() + "' but " + wanted
                + " is needed here: save " + conversion + " instead");
    }

    private static SquallException badHeader(Path file, String text, String problem) {
        String shown = text.length() > 200 ? text.substring(0, 200) + "..." : text;
        return new SquallException.BadFile(file + ": bad .npy header (" + problem + "): " + shown);
    }
}
