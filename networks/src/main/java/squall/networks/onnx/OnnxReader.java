package squall.networks.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.WireFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import squall.api.SquallException;
import squall.networks.onnx.OnnxProto.AttributeProto;
import squall.networks.onnx.OnnxProto.AttributeType;
import squall.networks.onnx.OnnxProto.Dimension;
import squall.networks.onnx.OnnxProto.GraphProto;
import squall.networks.onnx.OnnxProto.ModelProto;
import squall.networks.onnx.OnnxProto.NodeProto;
import squall.networks.onnx.OnnxProto.OperatorSetId;
import squall.networks.onnx.OnnxProto.TensorProto;
import squall.networks.onnx.OnnxProto.ValueInfoProto;

/**
 * Reads ONNX protobuf files with protobuf-java's wire-format API and the field numbers of
 * {@code onnx.proto}, into the records of {@link OnnxProto}. Unknown fields are skipped, as
 * protobuf requires. A truncated file, a length that runs past its message or a field of the wrong
 * wire type is a {@link SquallException.BadFile} naming the file and the message being read.
 */
public final class OnnxReader {
    /** A byte[] (and so a protobuf message read here) holds at most this much. */
    static final long MAX_FILE_BYTES = Integer.MAX_VALUE - 8;
    private static final int MAX_NESTING = 64;

    private final String file;
    private final CodedInputStream in;
    /** The message path being read ("ModelProto.graph", "GraphProto.node[3]", ...), for errors. */
    private final Deque<String> path = new ArrayDeque<>();

    private OnnxReader(String file, byte[] bytes) {
        this.file = file;
        this.in = CodedInputStream.newInstance(bytes);
        // raw_data then shares the file's byte[] instead of copying every weight once more
        in.enableAliasing(true);
        try {
            // a limit at the file's end lets every length be checked against the bytes really left
            in.pushLimit(bytes.length);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reads a {@code .onnx} model file. */
    public static ModelProto readModel(Path file) {
        OnnxReader r = new OnnxReader(file.toString(), readFile(file));
        return r.parse("ModelProto", r::model);
    }

    /** Reads a standalone serialized TensorProto (the conformance data's {@code input_0.pb}). */
    public static TensorProto readTensor(Path file) {
        OnnxReader r = new OnnxReader(file.toString(), readFile(file));
        return r.parse("TensorProto", r::tensor);
    }

    /** Reads a model from bytes; {@code source} names them in errors. */
    public static ModelProto readModel(byte[] bytes, String source) {
        OnnxReader r = new OnnxReader(source, bytes);
        return r.parse("ModelProto", r::model);
    }

    static byte[] readFile(Path file) {
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new SquallException.BadFile(file + " is " + size / (1 << 20) + " MiB; Squall reads ONNX files "
                        + "of at most 2 GiB (protobuf's own limit). Export big models with their weights as external "
                        + "data (onnx.save_model(..., save_as_external_data=True)) and load the small .onnx file.");
            }
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read ONNX file " + file + ": " + e, e);
        }
    }

    private interface Message<T> {
        T read() throws IOException;
    }

    private <T> T parse(String root, Message<T> message) {
        path.push(root);
        try {
            T value = message.read();
            if (!in.isAtEnd()) {
                throw bad("unexpected data after the message");
            }
            return value;
        } catch (InvalidProtocolBufferException e) {
            throw bad(e.getMessage() + " (the file is truncated or is not an ONNX protobuf file)");
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read " + file + ": " + e, e);
        }
    }

    private SquallException.BadFile bad(String what) {
        List<String> p = new ArrayList<>(path);
        java.util.Collections.reverse(p);
        return new SquallException.BadFile("bad ONNX file " + file + " at " + String.join(" > ", p) + ": " + what);
    }

    /** Reads a length-delimited sub-message named {@code where} with {@code body}. */
    private <T> T nested(int tag, String where, Message<T> body) throws IOException {
        expectWireType(tag, WireFormat.WIRETYPE_LENGTH_DELIMITED, where);
        path.push(where);
        if (path.size() > MAX_NESTING) {
            throw bad("messages nested more than " + MAX_NESTING + " deep");
        }
        int length = in.readRawVarint32();
        if (length < 0 || length > in.getBytesUntilLimit()) {
            throw bad("a length of " + Integer.toUnsignedLong(length) + " bytes runs past the end of the enclosing "
                    + "message (" + in.getBytesUntilLimit() + " bytes left): the file is truncated or corrupt");
        }
        int oldLimit = in.pushLimit(length);
        T value = body.read();
        in.popLimit(oldLimit);
        path.pop();
        return value;
    }

    private void expectWireType(int tag, int wireType, String field) {
        if (WireFormat.getTagWireType(tag) != wireType) {
            throw bad("field " + field + " (number " + WireFormat.getTagFieldNumber(tag) + ") has wire type "
                    + WireFormat.getTagWireType(tag) + ", expected " + wireType);
        }
    }

    private String string(int tag, String field) throws IOException {
        expectWireType(tag, WireFormat.WIRETYPE_LENGTH_DELIMITED, field);
        return in.readStringRequireUtf8();
    }

    private ByteString bytes(int tag, String field) throws IOException {
        expectWireType(tag, WireFormat.WIRETYPE_LENGTH_DELIMITED, field);
        return in.readBytes();
    }

    private long varint(int tag, String field) throws IOException {
        expectWireType(tag, WireFormat.WIRETYPE_VARINT, field);
        return in.readInt64();
    }

    // ---- ModelProto ------------------------------------------------------------------------

    private ModelProto model() throws IOException {
        long irVersion = 0;
        long modelVersion = 0;
        List<OperatorSetId> opsets = new ArrayList<>();
        String producerName = "";
        String producerVersion = "";
        String domain = "";
        String doc = "";
        GraphProto graph = null;
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> irVersion = varint(tag, "ir_version");
                case 2 -> producerName = string(tag, "producer_name");
                case 3 -> producerVersion = string(tag, "producer_version");
                case 4 -> domain = string(tag, "domain");
                case 5 -> modelVersion = varint(tag, "model_version");
                case 6 -> doc = string(tag, "doc_string");
                case 7 -> graph = nested(tag, "graph", this::graph);
                case 8 -> opsets.add(nested(tag, "opset_import[" + opsets.size() + "]", this::opset));
                default -> in.skipField(tag);
            }
        }
        if (graph == null) {
            throw bad("the model has no graph (field 7): is this an ONNX model file?");
        }
        return new ModelProto(irVersion, List.copyOf(opsets), producerName, producerVersion, domain, modelVersion,
                doc, graph);
    }

    private OperatorSetId opset() throws IOException {
        String domain = "";
        long version = 0;
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> domain = string(tag, "domain");
                case 2 -> version = varint(tag, "version");
                default -> in.skipField(tag);
            }
        }
        return new OperatorSetId(domain, version);
    }

    // ---- GraphProto, NodeProto -----------------------------------------------------------------

    private GraphProto graph() throws IOException {
        String name = "";
        String doc = "";
        List<NodeProto> nodes = new ArrayList<>();
        List<TensorProto> initializers = new ArrayList<>();
        List<ValueInfoProto> inputs = new ArrayList<>();
        List<ValueInfoProto> outputs = new ArrayList<>();
        List<ValueInfoProto> valueInfo = new ArrayList<>();
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> nodes.add(nested(tag, "node[" + nodes.size() + "]", this::node));
                case 2 -> name = string(tag, "name");
                case 5 -> initializers.add(nested(tag, "initializer[" + initializers.size() + "]", this::tensor));
                case 10 -> doc = string(tag, "doc_string");
                case 11 -> inputs.add(nested(tag, "input[" + inputs.size() + "]", this::valueInfo));
                case 12 -> outputs.add(nested(tag, "output[" + outputs.size() + "]", this::valueInfo));
                case 13 -> valueInfo.add(nested(tag, "value_info[" + valueInfo.size() + "]", this::valueInfo));
                default -> in.skipField(tag);
            }
        }
        return new GraphProto(name, List.copyOf(nodes), List.copyOf(initializers), List.copyOf(inputs),
                List.copyOf(outputs), List.copyOf(valueInfo), doc);
    }

    private NodeProto node() throws IOException {
        List<String> inputs = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        List<AttributeProto> attributes = new ArrayList<>();
        String name = "";
        String opType = "";
        String domain = "";
        String doc = "";
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> inputs.add(string(tag, "input"));
                case 2 -> outputs.add(string(tag, "output"));
                case 3 -> name = string(tag, "name");
                case 4 -> opType = string(tag, "op_type");
                case 5 -> attributes.add(nested(tag, "attribute[" + attributes.size() + "]", this::attribute));
                case 6 -> doc = string(tag, "doc_string");
                case 7 -> domain = string(tag, "domain");
                default -> in.skipField(tag);
            }
        }
        return new NodeProto(name, opType, domain, List.copyOf(inputs), List.copyOf(outputs), List.copyOf(attributes),
                doc);
    }

    private AttributeProto attribute() throws IOException {
        String name = "";
        String refAttrName = "";
        int type = 0;
        float f = 0;
        long i = 0;
        ByteString s = ByteString.EMPTY;
        TensorProto t = null;
        GraphProto g = null;
        Numbers floats = new Numbers();
        Numbers ints = new Numbers();
        List<ByteString> strings = new ArrayList<>();
        List<TensorProto> tensors = new ArrayList<>();
        List<GraphProto> graphs = new ArrayList<>();
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> name = string(tag, "name");
                case 2 -> {
                    expectWireType(tag, WireFormat.WIRETYPE_FIXED32, "f");
                    f = in.readFloat();
                }
                case 3 -> i = varint(tag, "i");
                case 4 -> s = bytes(tag, "s");
                case 5 -> t = nested(tag, "t", this::tensor);
                case 6 -> g = nested(tag, "g", this::graph);
                case 7 -> repeatedFixed32(tag, "floats", floats);
                case 8 -> repeatedVarint(tag, "ints", ints);
                case 9 -> strings.add(bytes(tag, "strings"));
                case 10 -> tensors.add(nested(tag, "tensors[" + tensors.size() + "]", this::tensor));
                case 11 -> graphs.add(nested(tag, "graphs[" + graphs.size() + "]", this::graph));
                case 20 -> type = (int) varint(tag, "type");
                case 21 -> refAttrName = string(tag, "ref_attr_name");
                default -> in.skipField(tag);
            }
        }
        return new AttributeProto(name, AttributeType.of(type), f, i, s, t, g, floats.toFloats(), ints.toLongs(),
                List.copyOf(strings), List.copyOf(tensors), List.copyOf(graphs), refAttrName);
    }

    // ---- TensorProto -------------------------------------------------------------------------

    private TensorProto tensor() throws IOException {
        Numbers dims = new Numbers();
        int dataType = 0;
        ByteString raw = null;
        Numbers floatData = new Numbers();
        Numbers int32Data = new Numbers();
        Numbers int64Data = new Numbers();
        Numbers doubleData = new Numbers();
        Numbers uint64Data = new Numbers();
        Map<String, String> external = new LinkedHashMap<>();
        boolean isExternal = false;
        String name = "";
        String doc = "";
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> repeatedVarint(tag, "dims", dims);
                case 2 -> dataType = (int) varint(tag, "data_type");
                case 4 -> repeatedFixed32(tag, "float_data", floatData);
                case 5 -> repeatedVarint(tag, "int32_data", int32Data);
                case 7 -> repeatedVarint(tag, "int64_data", int64Data);
                case 8 -> name = string(tag, "name");
                case 9 -> raw = bytes(tag, "raw_data");
                case 10 -> repeatedFixed64(tag, "double_data", doubleData);
                case 11 -> repeatedVarint(tag, "uint64_data", uint64Data);
                case 12 -> doc = string(tag, "doc_string");
                case 13 -> {
                    String[] kv = nested(tag, "external_data[" + external.size() + "]", this::stringEntry);
                    external.put(kv[0], kv[1]);
                }
                case 14 -> isExternal = varint(tag, "data_location") == 1;
                default -> in.skipField(tag);
            }
        }
        long[] shape = dims.toLongs();
        for (long d : shape) {
            if (d < 0) {
                throw bad("tensor '" + name + "' has a negative dimension in " + Arrays.toString(shape));
            }
        }
        int[] int32 = Arrays.stream(int32Data.toLongs()).mapToInt(v -> (int) v).toArray();
        return new TensorProto(name, dataType, shape, raw, floatData.toFloats(), int32, int64Data.toLongs(),
                doubleData.toDoubles(), uint64Data.toLongs(), Map.copyOf(external), isExternal, doc);
    }

    private String[] stringEntry() throws IOException {
        String key = "";
        String value = "";
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> key = string(tag, "key");
                case 2 -> value = string(tag, "value");
                default -> in.skipField(tag);
            }
        }
        return new String[] {key, value};
    }

    // ---- ValueInfoProto, TypeProto, TensorShapeProto -------------------------------------------

    private ValueInfoProto valueInfo() throws IOException {
        String name = "";
        String doc = "";
        Object[] type = {0, null};
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> name = string(tag, "name");
                case 2 -> type = nested(tag, "type", this::typeProto);
                case 3 -> doc = string(tag, "doc_string");
                default -> in.skipField(tag);
            }
        }
        @SuppressWarnings("unchecked")
        List<Dimension> shape = (List<Dimension>) type[1];
        return new ValueInfoProto(name, (Integer) type[0], shape, doc);
    }

    /** TypeProto: {elem_type, shape} of its tensor_type; other kinds (sequence, map) give {0, null}. */
    private Object[] typeProto() throws IOException {
        Object[] type = {0, null};
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            if (WireFormat.getTagFieldNumber(tag) == 1) {
                type = nested(tag, "tensor_type", this::tensorType);
            } else {
                in.skipField(tag);
            }
        }
        return type;
    }

    private Object[] tensorType() throws IOException {
        int elemType = 0;
        List<Dimension> shape = null;
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> elemType = (int) varint(tag, "elem_type");
                case 2 -> shape = nested(tag, "shape", this::tensorShape);
                default -> in.skipField(tag);
            }
        }
        return new Object[] {elemType, shape};
    }

    private List<Dimension> tensorShape() throws IOException {
        List<Dimension> dims = new ArrayList<>();
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            if (WireFormat.getTagFieldNumber(tag) == 1) {
                dims.add(nested(tag, "dim[" + dims.size() + "]", this::dimension));
            } else {
                in.skipField(tag);
            }
        }
        return List.copyOf(dims);
    }

    private Dimension dimension() throws IOException {
        long value = -1;
        String param = "";
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            switch (WireFormat.getTagFieldNumber(tag)) {
                case 1 -> value = varint(tag, "dim_value");
                case 2 -> param = string(tag, "dim_param");
                default -> in.skipField(tag);
            }
        }
        return new Dimension(value, param);
    }

    // ---- repeated scalars, packed or not ---------------------------------------------------

    private void repeatedVarint(int tag, String field, Numbers out) throws IOException {
        if (WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
            int oldLimit = pushPacked(field);
            while (!in.isAtEnd()) {
                out.add(in.readInt64());
            }
            in.popLimit(oldLimit);
        } else {
            out.add(varint(tag, field));
        }
    }

    private void repeatedFixed32(int tag, String field, Numbers out) throws IOException {
        if (WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
            int oldLimit = pushPacked(field);
            while (!in.isAtEnd()) {
                out.add(in.readRawLittleEndian32());
            }
            in.popLimit(oldLimit);
        } else {
            expectWireType(tag, WireFormat.WIRETYPE_FIXED32, field);
            out.add(in.readRawLittleEndian32());
        }
    }

    private void repeatedFixed64(int tag, String field, Numbers out) throws IOException {
        if (WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
            int oldLimit = pushPacked(field);
            while (!in.isAtEnd()) {
                out.add(in.readRawLittleEndian64());
            }
            in.popLimit(oldLimit);
        } else {
            expectWireType(tag, WireFormat.WIRETYPE_FIXED64, field);
            out.add(in.readRawLittleEndian64());
        }
    }

    private int pushPacked(String field) throws IOException {
        int length = in.readRawVarint32();
        if (length < 0 || length > in.getBytesUntilLimit()) {
            throw bad("packed field " + field + " claims " + Integer.toUnsignedLong(length) + " bytes but only "
                    + in.getBytesUntilLimit() + " are left: the file is truncated or corrupt");
        }
        return in.pushLimit(length);
    }

    /** A growable long[] holding varints or the raw bits of fixed32/fixed64 values. */
    private static final class Numbers {
        private long[] values = new long[8];
        private int size;

        void add(long v) {
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            values[size++] = v;
        }

        long[] toLongs() {
            return Arrays.copyOf(values, size);
        }

        float[] toFloats() {
            float[] f = new float[size];
            for (int k = 0; k < size; k++) {
                f[k] = Float.intBitsToFloat((int) values[k]);
            }
            return f;
        }

        double[] toDoubles() {
            double[] d = new double[size];
            for (int k = 0; k < size; k++) {
                d[k] = Double.longBitsToDouble(values[k]);
            }
            return d;
        }
    }
}
