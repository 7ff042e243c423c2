package squall.networks.onnx;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import squall.api.Attributes;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * Writes a Squall {@link Model} as an ONNX model (opset {@value #OPSET}) with protobuf-java's
 * {@link CodedOutputStream} and the field numbers of {@code onnx.proto}. Fused activations and
 * residuals of conv2d and linear become nodes of their own; ops ONNX 13 lacks are written as the
 * decompositions PyTorch exports (silu as x * Sigmoid(x), hardswish as x * HardSigmoid(x), relu6 as
 * Clip), which {@link OnnxImporter} folds back.
 */
public final class OnnxExporter {
    public static final int OPSET = 13;
    /** ONNX IR version 7 goes with opset 13. */
    private static final int IR_VERSION = 7;

    private final List<byte[]> nodes = new ArrayList<>();
    private final List<byte[]> initializers = new ArrayList<>();

    private OnnxExporter() {
    }

    /** Writes {@code model} to {@code file}, with output shapes inferred by the operators on the classpath. */
    public static void write(Model model, Path file) {
        write(model, file, Operators.discover());
    }

    public static void write(Model model, Path file, Operators operators) {
        try {
            Files.write(file, toBytes(model, operators));
        } catch (IOException e) {
            throw new SquallException("cannot write ONNX file " + file + ": " + e, e);
        }
    }

    /** The serialized ModelProto; {@code operators} infer the output shapes ONNX's checker wants. */
    public static byte[] toBytes(Model model, Operators operators) {
        return new OnnxExporter().model(model, outputShapes(model.graph(), operators));
    }

    /**
     * Output shapes for a batch of one; a free input batch size makes the outputs' first dimension
     * free too (a classifier's outputs are per image).
     */
    private static Map<String, Shape> outputShapes(Graph graph, Operators operators) {
        Map<String, Shape> probe = new HashMap<>();
        boolean freeBatch = false;
        for (var in : graph.inputs().entrySet()) {
            int[] dims = in.getValue().dims();
            freeBatch |= dims.length > 0 && dims[0] < 0;
            for (int i = 0; i < dims.length; i++) {
                dims[i] = Math.max(dims[i], 1);
            }
            probe.put(in.getKey(), Shape.of(dims));
        }
        Map<String, Shape> shapes = graph.inferShapes(probe, operators);
        Map<String, Shape> outputs = new HashMap<>();
        for (String out : graph.outputs()) {
            int[] dims = shapes.get(out).dims();
            if (freeBatch && dims.length > 0) {
                dims[0] = -1;
            }
            outputs.put(out, Shape.of(dims));
        }
        return outputs;
    }

    private byte[] model(Model model, Map<String, Shape> outputShapes) {
        long bytes = 0;
        for (Tensor t : model.weights().values()) {
            bytes += 4L * t.data().length;
        }
        if (bytes > OnnxReader.MAX_FILE_BYTES) {
            throw new SquallException("model '" + model.graph().name() + "' has " + bytes / (1 << 20)
                    + " MiB of weights; an ONNX file without external data holds at most 2 GiB");
        }
        for (var w : model.weights().entrySet()) {
            initializers.add(floatTensor(w.getKey(), w.getValue().shape().dims(), w.getValue().data()));
        }
        for (Node node : model.graph().nodes()) {
            node(node);
        }
        return message(out -> {
            out.writeInt64(1, IR_VERSION);
            out.writeString(2, "squall");
            out.writeString(3, "0.1.0");
            out.writeByteArray(7, graph(model, outputShapes));
            out.writeByteArray(8, message(o -> {
                o.writeString(1, "");
                o.writeInt64(2, OPSET);
            }));
        });
    }

    private byte[] graph(Model model, Map<String, Shape> outputShapes) {
        return message(out -> {
            for (byte[] n : nodes) {
                out.writeByteArray(1, n);
            }
            out.writeString(2, model.graph().name());
            for (byte[] t : initializers) {
                out.writeByteArray(5, t);
            }
            for (var in : model.graph().inputs().entrySet()) {
                out.writeByteArray(11, valueInfo(in.getKey(), in.getValue()));
            }
            for (String o : model.graph().outputs()) {
                out.writeByteArray(12, valueInfo(o, outputShapes.get(o)));
            }
        });
    }

    // ---- Squall ops as ONNX nodes --------------------------------------------------------------

    private void node(Node n) {
        Attributes a = n.attributes();
        String x = n.input(0);
        String y = n.output();
        switch (n.op()) {
            case "conv2d" -> {
                String conv = fusedTail(n, y);
                onnxNode("Conv", n.name(), List.of(x, n.input(1), n.input(2)), conv, out -> {
                    ints(out, "dilations", a.getInts("dilation", 2, 1));
                    integer(out, "group", a.getInt("groups", 1));
                    // kernel_shape is left out: ONNX takes it from the weight
                    ints(out, "pads", padding(a));
                    ints(out, "strides", a.getInts("stride", 2, 1));
                });
                fusedActivationAndResidual(n, conv, y, n.input(3));
            }
            case "linear" -> {
                String gemm = fusedTail(n, y);
                onnxNode("Gemm", n.name(), List.of(x, n.input(1), n.input(2)), gemm, out -> integer(out, "transB", 1));
                fusedActivationAndResidual(n, gemm, y, "");
            }
            case "batch_norm" -> onnxNode("BatchNormalization", n.name(), n.inputs(), y,
                    out -> real(out, "epsilon", a.getFloat("epsilon", 1e-5f)));
            case "relu", "relu6", "sigmoid", "silu", "hardsigmoid", "hardswish" ->
                    activation(n.op(), n.name(), x, y, a);
            case "clip" -> clip(n.name(), x, y, a.getFloat("min", Float.NEGATIVE_INFINITY),
                    a.getFloat("max", Float.POSITIVE_INFINITY));
            case "add" -> onnxNode("Add", n.name(), n.inputs(), y, out -> { });
            case "mul" -> onnxNode("Mul", n.name(), n.inputs(), y, out -> { });
            case "global_avg_pool" -> onnxNode("GlobalAveragePool", n.name(), n.inputs(), y, out -> { });
            case "avg_pool2d", "max_pool2d" -> pool(n, a);
            case "gemm" -> onnxNode("Gemm", n.name(), n.inputs(), y, out -> {
                real(out, "alpha", a.getFloat("alpha", 1));
                real(out, "beta", a.getFloat("beta", 1));
                integer(out, "transA", a.getInt("trans_a", 0));
                integer(out, "transB", a.getInt("trans_b", 0));
            });
            case "flatten" -> onnxNode("Flatten", n.name(), n.inputs(), y,
                    out -> integer(out, "axis", a.getInt("axis", 1)));
            case "reshape" -> {
                int[] shape = a.getInts("shape");
                String shapeName = n.name() + "/shape";
                initializers.add(longTensor(shapeName, shape));
                onnxNode("Reshape", n.name(), List.of(x, shapeName), y, out -> { });
            }
            case "softmax" -> onnxNode("Softmax", n.name(), n.inputs(), y,
                    out -> integer(out, "axis", a.getInt("axis", -1)));
            case "dropout", "stochastic_depth", "identity" -> onnxNode("Identity", n.name(), List.of(x), y, out -> { });
            default -> throw new SquallException("cannot export " + n + " to ONNX: op '" + n.op()
                    + "' has no ONNX equivalent in Squall's exporter (it writes the built-in ops of docs/operators.md)");
        }
    }

    /** The name the main op writes when an activation or residual follows it. */
    private static String fusedTail(Node n, String y) {
        boolean hasTail = !n.attributes().getString("activation", "none").equals("none") || !n.input(3).isEmpty();
        return hasTail ? y + "/linear" : y;
    }

    /** out = act(z) + residual, as conv2d and linear define their fused tail. */
    private void fusedActivationAndResidual(Node n, String z, String y, String residual) {
        String act = n.attributes().getString("activation", "none");
        String activated = residual.isEmpty() ? y : y + "/activated";
        if (act.equals("none")) {
            activated = z;
        } else {
            activation(act, n.name() + "/" + act, z, activated, Attributes.EMPTY);
        }
        if (!residual.isEmpty()) {
            onnxNode("Add", n.name() + "/residual", List.of(activated, residual), y, out -> { });
        }
    }

    private void activation(String op, String name, String x, String y, Attributes a) {
        switch (op) {
            case "relu" -> onnxNode("Relu", name, List.of(x), y, out -> { });
            case "sigmoid" -> onnxNode("Sigmoid", name, List.of(x), y, out -> { });
            case "relu6" -> clip(name, x, y, 0, 6);
            case "hardsigmoid" -> hardSigmoid(name, x, y, a.getFloat("alpha", 1f / 6), a.getFloat("beta", 0.5f));
            case "silu" -> {
                onnxNode("Sigmoid", name + "/sigmoid", List.of(x), y + "/gate", out -> { });
                onnxNode("Mul", name, List.of(x, y + "/gate"), y, out -> { });
            }
            case "hardswish" -> {
                hardSigmoid(name + "/hardsigmoid", x, y + "/gate", 1f / 6, 0.5f);
                onnxNode("Mul", name, List.of(x, y + "/gate"), y, out -> { });
            }
            default -> throw new SquallException("cannot export activation '" + op + "' of node '" + name
                    + "' to ONNX; known: relu, relu6, sigmoid, silu, hardsigmoid, hardswish");
        }
    }

    private void hardSigmoid(String name, String x, String y, float alpha, float beta) {
        onnxNode("HardSigmoid", name, List.of(x), y, out -> {
            real(out, "alpha", alpha);
            real(out, "beta", beta);
        });
    }

    private void clip(String name, String x, String y, float min, float max) {
        initializers.add(floatTensor(name + "/min", new int[0], new float[] {min}));
        initializers.add(floatTensor(name + "/max", new int[0], new float[] {max}));
        onnxNode("Clip", name, List.of(x, name + "/min", name + "/max"), y, out -> { });
    }

    private void pool(Node n, Attributes a) {
        boolean max = n.op().equals("max_pool2d");
        int[] kernel = a.getInts("kernel_size", 2, 1);
        onnxNode(max ? "MaxPool" : "AveragePool", n.name(), List.of(n.input(0)), n.output(), out -> {
            integer(out, "ceil_mode", a.getInt("ceil_mode", 0));
            if (max) {
                ints(out, "dilations", a.getInts("dilation", 2, 1));
            } else {
                integer(out, "count_include_pad", a.getInt("count_include_pad", 0));
            }
            ints(out, "kernel_shape", kernel);
            ints(out, "pads", padding(a));
            // Squall's stride defaults to the kernel size (as torch's); ONNX's to 1
            ints(out, "strides", a.has("stride") ? a.getInts("stride", 2, 1) : kernel);
        });
    }

    /** Squall's padding (int, [h, w] or [top, left, bottom, right]) as ONNX pads [top, left, bottom, right]. */
    private static int[] padding(Attributes a) {
        if (!a.has("padding")) {
            return new int[4];
        }
        Object p = a.asMap().get("padding");
        if (p instanceof Integer i) {
            return new int[] {i, i, i, i};
        }
        int[] v = a.getInts("padding");
        return switch (v.length) {
            case 1 -> new int[] {v[0], v[0], v[0], v[0]};
            case 2 -> new int[] {v[0], v[1], v[0], v[1]};
            case 4 -> v;
            default -> throw new SquallException.BadShape("padding " + java.util.Arrays.toString(v)
                    + " should have 1, 2 or 4 values");
        };
    }

    // ---- protobuf writing ------------------------------------------------------------------

    private interface Body {
        void write(CodedOutputStream out) throws IOException;
    }

    private static byte[] message(Body body) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            CodedOutputStream out = CodedOutputStream.newInstance(bytes);
            body.write(out);
            out.flush();
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A NodeProto; trailing absent inputs are left out, inner ones written as "". */
    private void onnxNode(String opType, String name, List<String> inputs, String output, Body attributes) {
        int count = inputs.size();
        while (count > 0 && inputs.get(count - 1).isEmpty()) {
            count--;
        }
        List<String> used = inputs.subList(0, count);
        nodes.add(message(out -> {
            for (String in : used) {
                out.writeString(1, in);
            }
            out.writeString(2, output);
            out.writeString(3, name);
            out.writeString(4, opType);
            attributes.write(out);
        }));
    }

    // AttributeProto: name 1, f 2, i 3, floats 7, ints 8, type 20 (FLOAT 1, INT 2, INTS 7)
    private static void integer(CodedOutputStream out, String name, long value) throws IOException {
        out.writeByteArray(5, message(o -> {
            o.writeString(1, name);
            o.writeInt64(3, value);
            o.writeInt32(20, 2);
        }));
    }

    private static void real(CodedOutputStream out, String name, float value) throws IOException {
        out.writeByteArray(5, message(o -> {
            o.writeString(1, name);
            o.writeFloat(2, value);
            o.writeInt32(20, 1);
        }));
    }

    private static void ints(CodedOutputStream out, String name, int[] values) throws IOException {
        out.writeByteArray(5, message(o -> {
            o.writeString(1, name);
            for (int v : values) {
                o.writeInt64(8, v);
            }
            o.writeInt32(20, 7);
        }));
    }

    // TensorProto: dims 1, data_type 2, name 8, raw_data 9
    private static byte[] floatTensor(String name, int[] dims, float[] values) {
        ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(values);
        return tensor(name, dims, OnnxProto.DataType.FLOAT.code, raw.array());
    }

    private static byte[] longTensor(String name, int[] values) {
        ByteBuffer raw = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            raw.putLong(v);
        }
        return tensor(name, new int[] {values.length}, OnnxProto.DataType.INT64.code, raw.array());
    }

    private static byte[] tensor(String name, int[] dims, int dataType, byte[] raw) {
        return message(out -> {
            for (int d : dims) {
                out.writeInt64(1, d);
            }
            out.writeInt32(2, dataType);
            out.writeString(8, name);
            out.writeByteArray(9, raw);
        });
    }

    // ValueInfoProto: name 1, type 2; TypeProto.tensor_type 1: elem_type 1, shape 2; dim: dim_value 1, dim_param 2
    private static byte[] valueInfo(String name, Shape shape) {
        return message(out -> {
            out.writeString(1, name);
            out.writeByteArray(2, message(type -> type.writeByteArray(1, message(tensor -> {
                tensor.writeInt32(1, OnnxProto.DataType.FLOAT.code);
                if (shape != null) {
                    tensor.writeByteArray(2, message(s -> {
                        for (int i = 0; i < shape.rank(); i++) {
                            int d = shape.dim(i);
                            int axis = i;
                            s.writeByteArray(1, message(dim -> {
                                if (d >= 0) {
                                    dim.writeInt64(1, d);
                                } else {
                                    dim.writeString(2, axis == 0 ? "N" : "d" + axis);
                                }
                            }));
                        }
                    }));
                }
            }))));
        });
    }
}
