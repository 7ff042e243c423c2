package squall.networks.onnx;

import com.google.protobuf.ByteString;
import java.util.List;
import java.util.Map;

/**
 * The messages of ONNX's {@code onnx.proto} that Squall reads and writes, as plain records. Field
 * numbers live in {@link OnnxReader} and {@link OnnxExporter}; only the fields a CNN needs are kept
 * (training info, sparse tensors, functions and quantization annotations are skipped).
 */
public final class OnnxProto {
    private OnnxProto() {
    }

    /** {@code TensorProto.DataType}: the element types by their wire numbers. */
    public enum DataType {
        UNDEFINED(0, 0), FLOAT(1, 4), UINT8(2, 1), INT8(3, 1), UINT16(4, 2), INT16(5, 2), INT32(6, 4), INT64(7, 8),
        STRING(8, 0), BOOL(9, 1), FLOAT16(10, 2), DOUBLE(11, 8), UINT32(12, 4), UINT64(13, 8), COMPLEX64(14, 8),
        COMPLEX128(15, 16), BFLOAT16(16, 2);

        public final int code;
        /** Bytes per element in raw_data; 0 where raw_data cannot hold the type. */
        public final int bytes;

        DataType(int code, int bytes) {
            this.code = code;
            this.bytes = bytes;
        }

        /** The type with this wire number, or null for one Squall does not know (the float8 types, ...). */
        public static DataType of(int code) {
            for (DataType t : values()) {
                if (t.code == code) {
                    return t;
                }
            }
            return null;
        }

        public static String describe(int code) {
            DataType t = of(code);
            return t == null ? "data type " + code : t.name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public record OperatorSetId(String domain, long version) {
    }

    public record ModelProto(long irVersion, List<OperatorSetId> opsetImport, String producerName,
                             String producerVersion, String domain, long modelVersion, String docString,
                             GraphProto graph) {
        /** The version of the default ("" or "ai.onnx") operator set, or 0 when none is imported. */
        public long defaultOpset() {
            for (OperatorSetId o : opsetImport) {
                if (o.domain().isEmpty() || o.domain().equals("ai.onnx")) {
                    return o.version();
                }
            }
            return 0;
        }
    }

    public record GraphProto(String name, List<NodeProto> nodes, List<TensorProto> initializers,
                             List<ValueInfoProto> inputs, List<ValueInfoProto> outputs, List<ValueInfoProto> valueInfo,
                             String docString) {
    }

    public record NodeProto(String name, String opType, String domain, List<String> inputs, List<String> outputs,
                            List<AttributeProto> attributes, String docString) {
        public AttributeProto attribute(String attributeName) {
            for (AttributeProto a : attributes) {
                if (a.name().equals(attributeName)) {
                    return a;
                }
            }
            return null;
        }

        /** Input {@code i}, or "" when the node has fewer inputs (an absent optional input). */
        public String input(int i) {
            return i < inputs.size() ? inputs.get(i) : "";
        }

        public String output(int i) {
            return i < outputs.size() ? outputs.get(i) : "";
        }
    }

    /** {@code AttributeProto.AttributeType} by wire number. */
    public enum AttributeType {
        UNDEFINED(0), FLOAT(1), INT(2), STRING(3), TENSOR(4), GRAPH(5), FLOATS(6), INTS(7), STRINGS(8), TENSORS(9),
        GRAPHS(10), SPARSE_TENSOR(11), SPARSE_TENSORS(12), TYPE_PROTO(13), TYPE_PROTOS(14);

        public final int code;

        AttributeType(int code) {
            this.code = code;
        }

        public static AttributeType of(int code) {
            for (AttributeType t : values()) {
                if (t.code == code) {
                    return t;
                }
            }
            return UNDEFINED;
        }
    }

    /**
     * One attribute. Fields that the file does not set hold their proto defaults (0, empty). Old
     * writers leave {@code type} UNDEFINED; {@link #kind()} then infers it from the field that is set.
     */
    public record AttributeProto(String name, AttributeType type, float f, long i, ByteString s, TensorProto t,
                                 GraphProto g, float[] floats, long[] ints, List<ByteString> strings,
                                 List<TensorProto> tensors, List<GraphProto> graphs, String refAttrName) {
        public AttributeType kind() {
            if (type != AttributeType.UNDEFINED) {
                return type;
            }
            if (ints.length > 0) {
                return AttributeType.INTS;
            }
            if (floats.length > 0) {
                return AttributeType.FLOATS;
            }
            if (!strings.isEmpty()) {
                return AttributeType.STRINGS;
            }
            if (t != null) {
                return AttributeType.TENSOR;
            }
            if (g != null) {
                return AttributeType.GRAPH;
            }
            if (!s.isEmpty()) {
                return AttributeType.STRING;
            }
            return f != 0 ? AttributeType.FLOAT : AttributeType.INT;
        }

        public String string() {
            return s.toStringUtf8();
        }
    }

    /**
     * A tensor: name, type, dims and its values in whichever field the writer used. External data
     * ({@code data_location} EXTERNAL) names a file beside the model in {@code externalData}.
     */
    public record TensorProto(String name, int dataType, long[] dims, ByteString rawData, float[] floatData,
                              int[] int32Data, long[] int64Data, double[] doubleData, long[] uint64Data,
                              Map<String, String> externalData, boolean external, String docString) {
        public long elementCount() {
            long n = 1;
            for (long d : dims) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        public static TensorProto ofFloats(String name, long[] dims, float[] values) {
            return new TensorProto(name, DataType.FLOAT.code, dims.clone(), null, values.clone(), new int[0],
                    new long[0], new double[0], new long[0], Map.of(), false, "");
        }

        public static TensorProto ofLongs(String name, long[] dims, long[] values) {
            return new TensorProto(name, DataType.INT64.code, dims.clone(), null, new float[0], new int[0],
                    values.clone(), new double[0], new long[0], Map.of(), false, "");
        }

        public String describe() {
            return "tensor '" + name + "' (" + DataType.describe(dataType) + " " + java.util.Arrays.toString(dims) + ")";
        }
    }

    /** A dimension: a fixed size ({@code value} >= 0) or a symbolic one ({@code param}, value -1). */
    public record Dimension(long value, String param) {
        public boolean isFixed() {
            return value >= 0;
        }
    }

    /**
     * A graph input or output: its name and, when it is a tensor, element type and shape. A null
     * {@code shape} means the rank is unknown; {@code elemType} 0 means not a tensor or not given.
     */
    public record ValueInfoProto(String name, int elemType, List<Dimension> shape, String docString) {
    }
}
