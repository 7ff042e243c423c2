package squall.networks.onnx;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import squall.api.Attributes;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.onnx.OnnxProto.AttributeProto;
import squall.networks.onnx.OnnxProto.AttributeType;
import squall.networks.onnx.OnnxProto.DataType;
import squall.networks.onnx.OnnxProto.Dimension;
import squall.networks.onnx.OnnxProto.GraphProto;
import squall.networks.onnx.OnnxProto.ModelProto;
import squall.networks.onnx.OnnxProto.NodeProto;
import squall.networks.onnx.OnnxProto.TensorProto;
import squall.networks.onnx.OnnxProto.ValueInfoProto;

/**
 * Imports an ONNX model ({@code .onnx}) as a Squall {@link Model}: ONNX nodes become the built-in
 * operators of {@code docs/operators.md}, float initializers become parameters under their ONNX
 * names, and integer constants (a Reshape's shape, a Clip's bounds) become attributes.
 *
 * <p>Opsets up to {@value #MAX_OPSET} are read; the differences between versions that matter for
 * the supported ops are handled (Clip's bounds as attributes before opset 11 and as inputs after,
 * Softmax's flatten-to-2-D before opset 13). Ops of older opsets that carry attributes Squall does
 * not know are refused rather than guessed at. The patterns PyTorch exports for SiLU
 * ({@code x * Sigmoid(x)}) and, before opset 14, hardswish ({@code x * HardSigmoid(x)}) become one
 * node each.
 *
 * <p>Shape arithmetic ({@code x.view(x.size(0), -1)} exported as Shape, Gather, Unsqueeze, Concat
 * and Reshape) is folded into constants at import, with a free batch size carried through to
 * Reshape's 0; ReduceMean over H and W becomes global average pooling.
 *
 * <p>An op the importer has no conversion for is taken as the registered Squall op whose id is its
 * op_type lowercased ({@code Mish} as {@code mish}), with its attributes passed through, so that
 * operator plugins work in imported models.
 *
 * <p>Everything the importer cannot take (an op, an attribute, an element type) is collected, and
 * one {@link Unsupported} error lists it all, so a user sees the whole gap at once.
 */
public final class OnnxImporter {
    public static final int MAX_OPSET = 17;

    /** A model that uses ops, attributes or types Squall cannot run; the message lists every one. */
    public static final class Unsupported extends SquallException {
        private final List<String> problems;

        Unsupported(String message, List<String> problems) {
            super(message);
            this.problems = List.copyOf(problems);
        }

        /** One line per unsupported node, attribute or input. */
        public List<String> problems() {
            return problems;
        }
    }

    private record GatedMul(String op, String x) {
    }

    /** Why one node cannot be imported; caught per node and collected. */
    private static final class Refused extends RuntimeException {
        Refused(String reason) {
            super(reason, null, false, false);
        }
    }

    /** The attributes each supported op understands; any other attribute is refused. */
    private static final Map<String, Set<String>> KNOWN_ATTRIBUTES = Map.ofEntries(
            Map.entry("Conv", Set.of("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")),
            Map.entry("BatchNormalization", Set.of("epsilon", "momentum", "training_mode", "spatial", "is_test")),
            Map.entry("Relu", Set.of()),
            Map.entry("Clip", Set.of("min", "max")),
            Map.entry("Sigmoid", Set.of()),
            Map.entry("HardSigmoid", Set.of("alpha", "beta")),
            Map.entry("HardSwish", Set.of()),
            Map.entry("Add", Set.of("broadcast", "axis")),
            Map.entry("Mul", Set.of("broadcast", "axis")),
            Map.entry("GlobalAveragePool", Set.of()),
            Map.entry("AveragePool", Set.of("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
                    "strides")),
            Map.entry("MaxPool", Set.of("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                    "storage_order", "strides")),
            Map.entry("Gemm", Set.of("alpha", "beta", "transA", "transB", "broadcast")),
            Map.entry("MatMul", Set.of()),
            Map.entry("Flatten", Set.of("axis")),
            Map.entry("Reshape", Set.of("allowzero", "shape")),
            Map.entry("Softmax", Set.of("axis")),
            Map.entry("Identity", Set.of()),
            Map.entry("Dropout", Set.of("ratio", "seed", "is_test")),
            Map.entry("Constant", Set.of("value", "value_float", "value_floats", "value_int", "value_ints")),
            Map.entry("Transpose", Set.of("perm")),
            Map.entry("Pad", Set.of("mode", "pads", "value")),
            Map.entry("ReduceMean", Set.of("axes", "keepdims")),
            // shape arithmetic, folded into constants (see foldShape)
            Map.entry("Shape", Set.of("start", "end")),
            Map.entry("Gather", Set.of("axis")),
            Map.entry("Unsqueeze", Set.of("axes")),
            Map.entry("Squeeze", Set.of("axes")),
            Map.entry("Concat", Set.of("axis")),
            Map.entry("Slice", Set.of()),
            Map.entry("Cast", Set.of("to", "saturate")));

    /**
     * The batch size inside a folded shape value when the graph's batch size is free. PyTorch
     * writes {@code x.view(x.size(0), -1)} as Shape, Gather, Unsqueeze, Concat and Reshape; folded,
     * this becomes Reshape's 0 (copy the input's dimension) on the batch axis.
     */
    private static final long BATCH = Long.MIN_VALUE;

    private final String source;
    private final Path dir;
    private final long opset;
    private final GraphProto onnx;
    private final Operators operators;
    private final GraphBuilder builder;
    private final Map<String, TensorProto> constants = new HashMap<>();
    private final Map<String, Tensor> weights = new LinkedHashMap<>();
    /** Shapes for a batch of one, where known: some conversions (SAME padding) depend on them. */
    private final Map<String, Shape> shapes = new HashMap<>();
    private final Map<String, Integer> uses = new HashMap<>();
    private final Set<String> graphOutputs = new HashSet<>();
    private final Set<String> nodeNames = new HashSet<>();
    /** Mul nodes that become one op (silu, hardswish) of x; their gate nodes are dropped. */
    private final Map<NodeProto, GatedMul> fusedMuls = new IdentityHashMap<>();
    private final Set<NodeProto> fusedGates = Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<String> problems = new ArrayList<>();
    /** Whether a graph input has a free batch size (axis 0), which Shape then reports as {@link #BATCH}. */
    private boolean freeBatch;

    private OnnxImporter(ModelProto model, Path dir, String source, Operators operators) {
        this.source = source;
        this.dir = dir;
        this.opset = model.defaultOpset();
        this.onnx = model.graph();
        this.operators = operators;
        String name = onnx.name().isBlank() ? source : onnx.name();
        this.builder = Graph.builder(name);
    }

    /** Imports a {@code .onnx} file with the operators on the classpath. */
    public static Model load(Path file) {
        return load(file, Operators.discover());
    }

    /**
     * Imports a {@code .onnx} file. {@code operators} infer shapes during import (needed, for
     * example, to turn auto_pad SAME with a stride into explicit padding).
     */
    public static Model load(Path file, Operators operators) {
        ModelProto model = OnnxReader.readModel(file);
        return convert(model, file.toAbsolutePath().getParent(), file.toString(), operators);
    }

    /** Imports a parsed model; {@code dir} is where external data lives (may be null). */
    public static Model convert(ModelProto model, Path dir, String source, Operators operators) {
        return new OnnxImporter(model, dir, source, operators).convert();
    }

    private Model convert() {
        if (opset == 0) {
            problems.add("the model imports no version of the default ONNX operator set");
        } else if (opset > MAX_OPSET) {
            problems.add("the model uses ONNX opset " + opset + "; Squall imports opsets up to " + MAX_OPSET
                    + " (export with opset_version=" + MAX_OPSET + ")");
        }
        for (TensorProto t : onnx.initializers()) {
            constants.put(t.name(), t);
        }
        for (ValueInfoProto input : onnx.inputs()) {
            if (!constants.containsKey(input.name())) {
                declareInput(input);
            }
        }
        for (NodeProto n : onnx.nodes()) {
            for (String in : n.inputs()) {
                uses.merge(in, 1, Integer::sum);
            }
        }
        for (ValueInfoProto out : onnx.outputs()) {
            graphOutputs.add(out.name());
            uses.merge(out.name(), 1, Integer::sum);
        }
        findGatedMuls();
        for (int k = 0; k < onnx.nodes().size(); k++) {
            NodeProto n = onnx.nodes().get(k);
            if (fusedGates.contains(n)) {
                continue;
            }
            String name = nodeName(n, k);
            try {
                checkAttributes(n);
                convertNode(n, name);
            } catch (Refused e) {
                problems.add("node '" + name + "' (" + n.opType() + "): " + e.getMessage());
            }
        }
        for (ValueInfoProto out : onnx.outputs()) {
            if (constants.containsKey(out.name())) {
                problems.add("graph output '" + out.name() + "' is a constant; Squall graphs compute their outputs");
            } else {
                builder.output(out.name());
            }
        }
        if (!problems.isEmpty()) {
            throw new Unsupported("ONNX model " + source + " uses " + problems.size() + " thing"
                    + (problems.size() == 1 ? "" : "s") + " Squall cannot import:\n  " + String.join("\n  ", problems)
                    + "\nSquall imports " + String.join(", ", new java.util.TreeSet<>(KNOWN_ATTRIBUTES.keySet()))
                    + " (default domain, opsets up to " + MAX_OPSET + "), float32 inputs, 2-D convolution and pooling, "
                    + "and any op whose op_type lowercased is the id of a registered Squall op (an operator plugin).",
                    problems);
        }
        Graph graph;
        try {
            graph = builder.build();
        } catch (SquallException e) {
            throw new SquallException.BadFile("ONNX model " + source + " is not a valid graph: " + e.getMessage());
        }
        return Model.bind(graph, weights, source);
    }

    private void declareInput(ValueInfoProto input) {
        if (input.elemType() != DataType.FLOAT.code) {
            problems.add("graph input '" + input.name() + "' is " + DataType.describe(input.elemType())
                    + "; Squall runs float32 models only");
            return;
        }
        if (input.shape() == null) {
            problems.add("graph input '" + input.name() + "' declares no shape; Squall needs at least its rank");
            return;
        }
        int rank = input.shape().size();
        int[] declared = new int[rank];
        int[] probe = new int[rank];
        boolean probeKnown = true;
        for (int i = 0; i < rank; i++) {
            Dimension d = input.shape().get(i);
            if (d.value() > Integer.MAX_VALUE) {
                problems.add("graph input '" + input.name() + "' has dimension " + d.value() + " on axis " + i
                        + "; a Squall tensor holds at most 2^31-9 elements");
                return;
            }
            declared[i] = d.isFixed() ? (int) d.value() : -1;
            probe[i] = declared[i] >= 0 ? declared[i] : 1;
            // a free batch size does not change padding or axes; any other free size leaves shapes unknown
            probeKnown &= d.isFixed() || i == 0;
            freeBatch |= i == 0 && !d.isFixed();
        }
        builder.input(input.name(), Shape.of(declared));
        if (probeKnown) {
            shapes.put(input.name(), Shape.of(probe));
        }
    }

    /** {@code x * Sigmoid(x)} is SiLU and {@code x * HardSigmoid(x; 1/6, 1/2)} is hardswish. */
    private void findGatedMuls() {
        Map<String, NodeProto> producers = new HashMap<>();
        for (NodeProto n : onnx.nodes()) {
            for (String out : n.outputs()) {
                producers.put(out, n);
            }
        }
        for (NodeProto mul : onnx.nodes()) {
            if (!mul.opType().equals("Mul") || mul.inputs().size() != 2 || !isDefaultDomain(mul)) {
                continue;
            }
            for (int k = 0; k < 2; k++) {
                String gate = mul.input(k);
                String x = mul.input(1 - k);
                NodeProto g = producers.get(gate);
                if (g == null || !isDefaultDomain(g) || !g.input(0).equals(x) || uses.getOrDefault(gate, 0) != 1
                        || fusedGates.contains(g)) {
                    continue;
                }
                String op = switch (g.opType()) {
                    case "Sigmoid" -> "silu";
                    case "HardSigmoid" -> isTorchHardSigmoid(g) ? "hardswish" : null;
                    default -> null;
                };
                if (op != null) {
                    fusedMuls.put(mul, new GatedMul(op, x));
                    fusedGates.add(g);
                    break;
                }
            }
        }
    }

    private static boolean isTorchHardSigmoid(NodeProto g) {
        AttributeProto alpha = g.attribute("alpha");
        AttributeProto beta = g.attribute("beta");
        return g.attributes().size() <= 2 && alpha != null && Math.abs(alpha.f() - 1f / 6) < 1e-6
                && (beta == null || beta.f() == 0.5f);
    }

    private static boolean isDefaultDomain(NodeProto n) {
        return n.domain().isEmpty() || n.domain().equals("ai.onnx");
    }

    private String nodeName(NodeProto n, int index) {
        String name = n.name().isBlank() ? n.opType() + "_" + index : n.name();
        if (!nodeNames.add(name)) {
            name = name + "_" + index;
            nodeNames.add(name);
        }
        return name;
    }

    private void checkAttributes(NodeProto n) {
        if (!isDefaultDomain(n)) {
            throw new Refused("op of domain '" + n.domain() + "'; Squall imports the default ONNX domain only");
        }
        Set<String> known = KNOWN_ATTRIBUTES.get(n.opType());
        if (known == null) {
            if (pluginOp(n) != null) {
                return;
            }
            throw new Refused("op '" + n.opType() + "' is not supported (there is no Squall op '"
                    + n.opType().toLowerCase(Locale.ROOT) + "' either; a plugin that provides one would be used)");
        }
        List<String> unknown = new ArrayList<>();
        for (AttributeProto a : n.attributes()) {
            if (!known.contains(a.name())) {
                unknown.add(a.name());
            } else if (!a.refAttrName().isEmpty()) {
                unknown.add(a.name() + " (a function's attribute reference)");
            }
        }
        if (!unknown.isEmpty()) {
            throw new Refused("unsupported attribute" + (unknown.size() == 1 ? " '" : "s '")
                    + String.join("', '", unknown) + "'");
        }
    }

    private void convertNode(NodeProto n, String name) {
        GatedMul gated = fusedMuls.get(n);
        if (gated != null) {
            emit(gated.op(), name, n.output(0), Attributes.EMPTY, value(gated.x()));
            return;
        }
        switch (n.opType()) {
            case "Conv" -> conv(n, name);
            case "BatchNormalization" -> batchNorm(n, name);
            case "Relu" -> emit("relu", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
            case "Sigmoid" -> emit("sigmoid", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
            case "HardSwish" -> emit("hardswish", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
            case "HardSigmoid" -> emit("hardsigmoid", name, n.output(0), Attributes.of(
                    "alpha", floatAttr(n, "alpha", 0.2f), "beta", floatAttr(n, "beta", 0.5f)), value(n.input(0)));
            case "Clip" -> clip(n, name);
            case "Add", "Mul" -> binary(n, name);
            case "GlobalAveragePool" -> globalAveragePool(n, name);
            case "AveragePool", "MaxPool" -> pool(n, name);
            case "Gemm" -> gemm(n, name);
            case "MatMul" -> matMul(n, name);
            case "Flatten" -> flatten(n, name);
            case "Reshape" -> reshape(n, name);
            case "Softmax" -> softmax(n, name);
            case "Identity" -> emit("identity", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
            case "Dropout" -> dropout(n, name);
            case "Constant" -> constant(n);
            case "Transpose" -> transposeConstant(n);
            case "Pad" -> zeroPad(n, name);
            case "ReduceMean" -> reduceMean(n, name);
            case "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast" -> {
                // on activations these are a plugin's to run (a Concat of feature maps), if one provides them
                String plugin = n.opType().toLowerCase(Locale.ROOT);
                if (!isShapeArithmetic(n) && operators.has(plugin)) {
                    pluginNode(n, name, plugin);
                } else {
                    foldShape(n);
                }
            }
            default -> pluginNode(n, name, pluginOp(n));
        }
    }

    /** The registered Squall op an ONNX op with no conversion of its own stands for, or null. */
    private String pluginOp(NodeProto n) {
        String id = n.opType().toLowerCase(Locale.ROOT);
        return KNOWN_ATTRIBUTES.containsKey(n.opType()) || !operators.has(id) ? null : id;
    }

    /** A node of a plugin's op: the same inputs, ONNX attributes as Squall attributes; the op checks them. */
    private void pluginNode(NodeProto n, String name, String op) {
        if (op == null) {
            throw new Refused("op '" + n.opType() + "' is not supported");
        }
        Attributes attributes = Attributes.EMPTY;
        for (AttributeProto a : n.attributes()) {
            Object value = switch (a.kind()) {
                case FLOAT -> a.f();
                case INT -> a.i();
                case STRING -> a.string();
                case FLOATS -> a.floats();
                case INTS -> a.ints();
                default -> throw new Refused("attribute '" + a.name() + "' is " + a.kind() + "; Squall op '" + op
                        + "' can take int, float, string, ints and floats attributes");
            };
            if (!a.refAttrName().isEmpty()) {
                throw new Refused("attribute '" + a.name() + "' is a function's attribute reference");
            }
            try {
                attributes = attributes.with(a.name(), value);
            } catch (ArithmeticException e) {
                throw new Refused("attribute '" + a.name() + "' holds an integer beyond 32 bits");
            }
        }
        long outputs = n.outputs().stream().filter(o -> !o.isEmpty()).count();
        if (outputs != 1 || n.output(0).isEmpty()) {
            throw new Refused("Squall op '" + op + "' is imported with one output; this node has " + n.outputs());
        }
        emit(op, name, n.output(0), attributes, n.inputs().stream().map(this::optionalValue).toArray(String[]::new));
    }

    // ---- the ops ---------------------------------------------------------------------------

    private void conv(NodeProto n, String name) {
        int[] kernel = kernelShape(n);
        if (kernel.length != 2) {
            throw new Refused(kernel.length + "-D convolution; Squall's conv2d is 2-D only");
        }
        int[] strides = spatialInts(n, "strides", 2);
        int[] dilations = spatialInts(n, "dilations", 2);
        int[] pads = pads(n, kernel, strides, dilations);
        Attributes a = Attributes.of("stride", strides, "padding", pads, "dilation", dilations,
                "groups", (int) intAttr(n, "group", 1));
        emit("conv2d", name, n.output(0), a, value(n.input(0)), value(n.input(1)), optionalValue(n.input(2)));
    }

    private int[] kernelShape(NodeProto n) {
        long[] k = intsAttr(n, "kernel_shape");
        if (k != null) {
            return toInts(k, "kernel_shape");
        }
        Shape w = shapeOfValue(n.input(1));
        if (w == null) {
            throw new Refused("no kernel_shape and the weight '" + n.input(1) + "' has no known shape");
        }
        if (w.rank() < 3) {
            throw new Refused("weight '" + n.input(1) + "' has shape " + w + "; a Conv weight is [out channels, "
                    + "in channels / group, kernel dimensions...]");
        }
        return Arrays.copyOfRange(w.dims(), 2, w.rank());
    }

    /**
     * Explicit padding (top, left, bottom, right) from {@code pads} or {@code auto_pad}. SAME pads
     * so that out = ceil(in / stride); SAME_UPPER puts an odd extra pixel at the end, SAME_LOWER at
     * the start.
     */
    private int[] pads(NodeProto n, int[] kernel, int[] strides, int[] dilations) {
        String autoPad = stringAttr(n, "auto_pad", "NOTSET");
        switch (autoPad) {
            case "NOTSET" -> {
                long[] p = intsAttr(n, "pads");
                if (p == null) {
                    return new int[4];
                }
                if (p.length != 4) {
                    throw new Refused("pads " + Arrays.toString(p) + " should have 4 values for 2-D");
                }
                return toInts(p, "pads");
            }
            case "VALID" -> {
                return new int[4];
            }
            case "SAME_UPPER", "SAME_LOWER" -> {
                int[] pads = new int[4];
                for (int axis = 0; axis < 2; axis++) {
                    int extent = dilations[axis] * (kernel[axis] - 1) + 1;
                    int total;
                    if (strides[axis] == 1) {
                        total = extent - 1;
                    } else {
                        Shape x = shapes.get(n.input(0));
                        if (x == null) {
                            throw new Refused("auto_pad " + autoPad + " with stride " + strides[axis]
                                    + " needs a fixed input size, and the size of '" + n.input(0) + "' is not known");
                        }
                        int in = x.dim(2 + axis);
                        int out = (in + strides[axis] - 1) / strides[axis];
                        total = Math.max(0, (out - 1) * strides[axis] + extent - in);
                    }
                    int begin = autoPad.equals("SAME_UPPER") ? total / 2 : total - total / 2;
                    pads[axis] = begin;
                    pads[axis + 2] = total - begin;
                }
                return pads;
            }
            default -> throw new Refused("auto_pad '" + autoPad + "' is not one of NOTSET, VALID, SAME_UPPER, "
                    + "SAME_LOWER");
        }
    }

    private void batchNorm(NodeProto n, String name) {
        for (int k = 1; k < n.outputs().size(); k++) {
            if (!n.output(k).isEmpty() && uses.getOrDefault(n.output(k), 0) > 0) {
                throw new Refused("training-mode outputs (running mean and variance) are used; export the model "
                        + "in eval mode");
            }
        }
        if (intAttr(n, "training_mode", 0) != 0 || n.attribute("is_test") != null && intAttr(n, "is_test", 1) == 0) {
            throw new Refused("training mode (batch statistics); export the model in eval mode");
        }
        if (intAttr(n, "spatial", 1) != 1) {
            throw new Refused("spatial=0 (per-element statistics) is not supported");
        }
        emit("batch_norm", name, n.output(0), Attributes.of("epsilon", floatAttr(n, "epsilon", 1e-5f)),
                value(n.input(0)), value(n.input(1)), value(n.input(2)), value(n.input(3)), value(n.input(4)));
    }

    /** Clip's bounds: attributes before opset 11, constant inputs from 11 on. 0..6 is ReLU6. */
    private void clip(NodeProto n, String name) {
        float min;
        float max;
        if (opset < 11) {
            min = floatAttr(n, "min", Float.NEGATIVE_INFINITY);
            max = floatAttr(n, "max", Float.POSITIVE_INFINITY);
        } else {
            if (n.attribute("min") != null || n.attribute("max") != null) {
                throw new Refused("min/max attributes belong to opset < 11; this model is opset " + opset);
            }
            min = boundInput(n, 1, Float.NEGATIVE_INFINITY);
            max = boundInput(n, 2, Float.POSITIVE_INFINITY);
        }
        String x = value(n.input(0));
        if (min == 0 && max == 6) {
            emit("relu6", name, n.output(0), Attributes.EMPTY, x);
        } else if (min == 0 && max == Float.POSITIVE_INFINITY) {
            emit("relu", name, n.output(0), Attributes.EMPTY, x);
        } else {
            emit("clip", name, n.output(0), Attributes.of("min", min, "max", max), x);
        }
    }

    private float boundInput(NodeProto n, int index, float fallback) {
        String bound = n.input(index);
        if (bound.isEmpty()) {
            return fallback;
        }
        TensorProto t = constants.get(bound);
        if (t == null) {
            throw new Refused((index == 1 ? "min" : "max") + " comes from '" + bound + "', which is computed at run "
                    + "time; Squall's clip needs constant bounds (initializers or Constant nodes)");
        }
        float[] v = floats(t);
        if (v.length != 1) {
            throw new Refused("bound '" + bound + "' has " + v.length + " values, expected one");
        }
        return v[0];
    }

    private void binary(NodeProto n, String name) {
        if (n.attribute("axis") != null && intAttr(n, "broadcast", 0) == 1) {
            // opset < 7 broadcast: b's dims line up with a's from axis on; numpy lines them up at the end
            Shape a = shapeOfValue(n.input(0));
            Shape b = shapeOfValue(n.input(1));
            long axis = intAttr(n, "axis", 0);
            if (a == null || b == null || (axis < 0 ? axis + a.rank() : axis) != a.rank() - b.rank()) {
                throw new Refused("legacy broadcast with axis=" + axis + " does not line up as numpy broadcasting");
            }
        }
        emit(n.opType().equals("Add") ? "add" : "mul", name, n.output(0), Attributes.EMPTY, value(n.input(0)),
                value(n.input(1)));
    }

    private void globalAveragePool(NodeProto n, String name) {
        Shape x = shapes.get(n.input(0));
        if (x != null && x.rank() != 4) {
            throw new Refused("global pooling over a rank-" + x.rank() + " input; Squall's is 2-D (NCHW)");
        }
        emit("global_avg_pool", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
    }

    private void pool(NodeProto n, String name) {
        boolean max = n.opType().equals("MaxPool");
        long[] k = intsAttr(n, "kernel_shape");
        if (k == null) {
            throw new Refused("kernel_shape is required");
        }
        int[] kernel = toInts(k, "kernel_shape");
        if (kernel.length != 2) {
            throw new Refused(kernel.length + "-D pooling; Squall pools 2-D (NCHW) only");
        }
        if (max && !n.output(1).isEmpty() && uses.getOrDefault(n.output(1), 0) > 0) {
            throw new Refused("the Indices output is used; Squall's max_pool2d returns values only");
        }
        int[] strides = spatialInts(n, "strides", 2);
        int[] dilations = max ? spatialInts(n, "dilations", 2) : new int[] {1, 1};
        int[] pads = pads(n, kernel, strides, dilations);
        Attributes a = Attributes.of("kernel_size", kernel, "stride", strides, "padding", pads,
                "ceil_mode", (int) intAttr(n, "ceil_mode", 0));
        a = max ? a.with("dilation", dilations) : a.with("count_include_pad", (int) intAttr(n, "count_include_pad", 0));
        emit(max ? "max_pool2d" : "avg_pool2d", name, n.output(0), a, value(n.input(0)));
    }

    /** Gemm as PyTorch exports nn.Linear (constant B, transB=1, vector bias) is linear; any other is gemm. */
    private void gemm(NodeProto n, String name) {
        float alpha = floatAttr(n, "alpha", 1);
        float beta = floatAttr(n, "beta", 1);
        long transA = intAttr(n, "transA", 0);
        long transB = intAttr(n, "transB", 0);
        TensorProto b = constants.get(n.input(1));
        String c = n.input(2);
        TensorProto bias = c.isEmpty() ? null : constants.get(c);
        boolean isLinear = b != null && b.dims().length == 2 && transA == 0 && transB == 1 && alpha == 1
                && (c.isEmpty() || beta == 1 && bias != null && bias.dims().length == 1 && bias.dims()[0] == b.dims()[0]);
        if (isLinear) {
            emit("linear", name, n.output(0), Attributes.EMPTY, value(n.input(0)), value(n.input(1)),
                    optionalValue(c));
        } else {
            emit("gemm", name, n.output(0), Attributes.of("alpha", alpha, "beta", beta, "trans_a", (int) transA,
                    "trans_b", (int) transB), value(n.input(0)), value(n.input(1)), optionalValue(c));
        }
    }

    /**
     * 2-D MatMul. With a constant weight used nowhere else it is linear, whose weight is stored
     * transposed ([out, in], as torch.nn.Linear) under the initializer's name; otherwise gemm.
     */
    private void matMul(NodeProto n, String name) {
        String a = n.input(0);
        String b = n.input(1);
        Shape aShape = shapeOfValue(a);
        Shape bShape = shapeOfValue(b);
        for (Shape s : new Shape[] {aShape, bShape}) {
            if (s != null && s.rank() != 2) {
                throw new Refused("MatMul of a rank-" + s.rank() + " input (batched MatMul); Squall's is 2-D only");
            }
        }
        TensorProto weight = constants.get(b);
        if (weight != null && weight.dims().length == 2 && uses.getOrDefault(b, 0) == 1 && !weights.containsKey(b)) {
            Tensor w = tensor(weight);
            int in = w.shape().dim(0);
            int out = w.shape().dim(1);
            float[] transposed = new float[in * out];
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    transposed[o * in + i] = w.data()[i * out + o];
                }
            }
            declareParameter(b, new Tensor(Shape.of(out, in), transposed));
            emit("linear", name, n.output(0), Attributes.EMPTY, value(a), b);
        } else {
            emit("gemm", name, n.output(0), Attributes.EMPTY, value(a), value(b));
        }
    }

    private void flatten(NodeProto n, String name) {
        long axis = intAttr(n, "axis", 1);
        if (axis < 0) {
            axis += rankOf(n.input(0), "a negative axis");
        }
        emit("flatten", name, n.output(0), Attributes.of("axis", (int) axis), value(n.input(0)));
    }

    private void reshape(NodeProto n, String name) {
        long[] shape;
        if (n.inputs().size() >= 2) {
            TensorProto t = constants.get(n.input(1));
            if (t == null) {
                throw new Refused("the shape '" + n.input(1) + "' is computed at run time; Squall needs a constant "
                        + "shape (export with do_constant_folding=True and a fixed input size)");
            }
            shape = integerValues(t);
        } else {
            shape = intsAttr(n, "shape");
            if (shape == null) {
                throw new Refused("no shape input");
            }
        }
        boolean allowZero = intAttr(n, "allowzero", 0) != 0;
        if (allowZero && Arrays.stream(shape).anyMatch(d -> d == 0 || d == BATCH)) {
            throw new Refused("allowzero=1 with a 0 or the free batch size in shape " + describe(shape));
        }
        for (int axis = 1; axis < shape.length; axis++) {
            if (shape[axis] == BATCH) {
                throw new Refused("the free batch size goes to axis " + axis + " of shape " + describe(shape)
                        + "; Squall keeps the batch on axis 0 (export with a fixed batch size)");
            }
        }
        if (shape.length > 0 && shape[0] == BATCH) {
            shape = shape.clone();
            shape[0] = 0; // copy the batch from the input
        }
        emit("reshape", name, n.output(0), Attributes.of("shape", toInts(shape, "shape")), value(n.input(0)));
    }

    /**
     * From opset 13 Softmax normalises along one axis. Before, it flattens to 2-D at {@code axis}
     * (default 1) and normalises each row, which is one axis only when axis is the last one.
     */
    private void softmax(NodeProto n, String name) {
        String x = value(n.input(0));
        if (opset >= 13) {
            emit("softmax", name, n.output(0), Attributes.of("axis", (int) intAttr(n, "axis", -1)), x);
            return;
        }
        long axis = intAttr(n, "axis", 1);
        if (axis == -1) {
            emit("softmax", name, n.output(0), Attributes.of("axis", -1), x);
            return;
        }
        int rank = rankOf(n.input(0), "opset " + opset + " softmax semantics");
        if (axis < 0) {
            axis += rank;
        }
        if (axis == rank - 1) {
            emit("softmax", name, n.output(0), Attributes.of("axis", -1), x);
            return;
        }
        Shape s = shapes.get(n.input(0));
        if (s == null) {
            throw new Refused("opset " + opset + " softmax over axes " + axis + ".. needs the input's shape, "
                    + "which is not known");
        }
        int[] back = s.dims();
        back[0] = -1;
        String rows = emit("flatten", name + "/flatten", n.output(0) + "/rows", Attributes.of("axis", (int) axis), x);
        String normalized = emit("softmax", name, n.output(0) + "/normalized", Attributes.of("axis", -1), rows);
        emit("reshape", name + "/reshape", n.output(0), Attributes.of("shape", back), normalized);
    }

    private void dropout(NodeProto n, String name) {
        if (!n.output(1).isEmpty() && uses.getOrDefault(n.output(1), 0) > 0) {
            throw new Refused("the mask output is used; Squall runs dropout at inference only");
        }
        if (n.attribute("is_test") != null && intAttr(n, "is_test", 1) == 0) {
            throw new Refused("is_test=0 (training)");
        }
        float ratio = floatAttr(n, "ratio", 0.5f);
        if (!n.input(1).isEmpty()) {
            TensorProto r = constants.get(n.input(1));
            if (r == null) {
                throw new Refused("the ratio is computed at run time");
            }
            ratio = floats(r)[0];
        }
        if (!n.input(2).isEmpty()) {
            TensorProto training = constants.get(n.input(2));
            if (training == null || longs(training)[0] != 0) {
                throw new Refused("training_mode is not a constant false");
            }
        }
        emit("dropout", name, n.output(0), Attributes.of("p", ratio), value(n.input(0)));
    }

    /** PyTorch puts a Pad of zeros before an AveragePool it exports; it is an identity. */
    private void zeroPad(NodeProto n, String name) {
        long[] pads = opset < 11 ? intsAttr(n, "pads") : n.input(1).isEmpty() ? new long[0]
                : constants.containsKey(n.input(1)) ? longs(constants.get(n.input(1))) : null;
        if (pads == null) {
            throw new Refused("the pads '" + n.input(1) + "' are computed at run time");
        }
        if (Arrays.stream(pads).anyMatch(p -> p != 0)) {
            throw new Refused("Pad with pads " + Arrays.toString(pads) + "; Squall imports Pad only when it pads "
                    + "nothing (padding belongs in the Conv or pooling node)");
        }
        emit("identity", name, n.output(0), Attributes.EMPTY, value(n.input(0)));
    }

    /** Constants are values, not nodes: a float one becomes a parameter where a node reads it. */
    private void constant(NodeProto n) {
        String out = n.output(0);
        if (n.attributes().size() != 1) {
            throw new Refused("a Constant needs exactly one value attribute, has " + n.attributes().size());
        }
        AttributeProto a = n.attributes().getFirst();
        TensorProto t = switch (a.name()) {
            case "value" -> a.t();
            case "value_float" -> TensorProto.ofFloats(out, new long[0], new float[] {a.f()});
            case "value_floats" -> TensorProto.ofFloats(out, new long[] {a.floats().length}, a.floats());
            case "value_int" -> TensorProto.ofLongs(out, new long[0], new long[] {a.i()});
            case "value_ints" -> TensorProto.ofLongs(out, new long[] {a.ints().length}, a.ints());
            default -> throw new Refused("constant of kind '" + a.name() + "'");
        };
        if (t == null) {
            throw new Refused("Constant without a tensor value");
        }
        constants.put(out, t);
        shapes.put(out, OnnxTensors.shapeOf(t, source));
    }

    /** A Transpose of a 2-D constant (old PyTorch exports of Linear) folds into a new constant. */
    private void transposeConstant(NodeProto n) {
        TensorProto t = constants.get(n.input(0));
        if (t == null) {
            throw new Refused("Transpose of a computed value; Squall folds Transpose of 2-D constants only");
        }
        long[] perm = intsAttr(n, "perm");
        if (t.dims().length != 2 || perm != null && !Arrays.equals(perm, new long[] {1, 0})) {
            throw new Refused("Transpose of a rank-" + t.dims().length + " constant with perm "
                    + Arrays.toString(perm) + "; only 2-D transposes are folded");
        }
        Tensor w = tensor(t);
        int rows = w.shape().dim(0);
        int cols = w.shape().dim(1);
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[c * rows + r] = w.data()[r * cols + c];
            }
        }
        TensorProto folded = TensorProto.ofFloats(n.output(0), new long[] {cols, rows}, out);
        constants.put(n.output(0), folded);
        shapes.put(n.output(0), Shape.of(cols, rows));
    }

    /**
     * ReduceMean over H and W of an NCHW value is global average pooling (torchvision 0.3's
     * MobileNetV2 head, {@code x.mean([2, 3])}); without keepdims the 1x1 axes are flattened away.
     */
    private void reduceMean(NodeProto n, String name) {
        int rank = rankOf(n.input(0), "ReduceMean");
        long[] axes = intsAttr(n, "axes");
        long[] normalized = axes == null ? new long[0] : Arrays.stream(axes).map(a -> a < 0 ? a + rank : a)
                .sorted().toArray();
        if (rank != 4 || !Arrays.equals(normalized, new long[] {2, 3})) {
            throw new Refused("ReduceMean over axes " + (axes == null ? "all" : Arrays.toString(axes)) + " of a rank-"
                    + rank + " value; Squall imports ReduceMean only over H and W of NCHW (global average pooling)");
        }
        String x = value(n.input(0));
        if (intAttr(n, "keepdims", 1) != 0) {
            emit("global_avg_pool", name, n.output(0), Attributes.EMPTY, x);
        } else {
            String pooled = emit("global_avg_pool", name, n.output(0) + "/pooled", Attributes.EMPTY, x);
            emit("flatten", name + "/flatten", n.output(0), Attributes.of("axis", 1), pooled);
        }
    }

    /**
     * Shape arithmetic on integer vectors (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast),
     * as PyTorch exports {@code x.view(x.size(0), -1)}, folds into constants: Squall's shapes are
     * known at import for a fixed input size, and a free batch size is carried as {@link #BATCH}.
     * Anything else of these ops (a Gather of activations, a Concat of feature maps) is refused.
     */
    private void foldShape(NodeProto n) {
        String out = n.output(0);
        long[] values;
        long[] dims;
        switch (n.opType()) {
            case "Shape" -> {
                Shape s = shapeOfValue(n.input(0));
                if (s == null || !shapes.containsKey(n.input(0)) && !constants.containsKey(n.input(0))) {
                    throw new Refused("Shape of '" + n.input(0) + "', whose size is not known at import; Squall folds "
                            + "shape computations for a fixed input size (only the batch size may be free)");
                }
                long[] all = Arrays.stream(s.dims()).asLongStream().toArray();
                if (freeBatch && !constants.containsKey(n.input(0)) && all.length > 0) {
                    all[0] = BATCH;
                }
                int start = clampAxis(intAttr(n, "start", 0), all.length);
                int end = clampAxis(intAttr(n, "end", all.length), all.length);
                values = Arrays.copyOfRange(all, start, Math.max(start, end));
                dims = new long[] {values.length};
            }
            case "Gather" -> {
                TensorProto data = shapeConstant(n, 0);
                TensorProto indices = shapeConstant(n, 1);
                if (data.dims().length != 1 || intAttr(n, "axis", 0) != 0) {
                    throw new Refused("Gather on axis " + intAttr(n, "axis", 0) + " of " + data.describe() + "; "
                            + "Squall folds Gather of a 1-D integer constant (a shape) only");
                }
                long[] from = integerValues(data);
                long[] at = longs(indices);
                values = new long[at.length];
                for (int k = 0; k < at.length; k++) {
                    if (at[k] < -from.length || at[k] >= from.length) {
                        throw new Refused("index " + at[k] + " out of range for " + data.describe());
                    }
                    values[k] = from[(int) (at[k] < 0 ? at[k] + from.length : at[k])];
                }
                dims = indices.dims();
            }
            case "Unsqueeze", "Squeeze" -> {
                TensorProto data = shapeConstant(n, 0);
                values = integerValues(data);
                long[] axes = opset < 13 ? intsAttr(n, "axes") : n.input(1).isEmpty() ? null
                        : longs(shapeConstant(n, 1));
                dims = n.opType().equals("Unsqueeze") ? unsqueezed(data.dims(), axes) : squeezed(data.dims(), axes);
            }
            case "Concat" -> {
                List<long[]> parts = new ArrayList<>();
                for (int k = 0; k < n.inputs().size(); k++) {
                    TensorProto part = shapeConstant(n, k);
                    if (part.dims().length != 1) {
                        throw new Refused("Concat of " + part.describe() + "; Squall folds Concat of 1-D integer "
                                + "constants (shapes) only");
                    }
                    parts.add(integerValues(part));
                }
                values = parts.stream().flatMapToLong(Arrays::stream).toArray();
                dims = new long[] {values.length};
            }
            case "Slice" -> {
                TensorProto data = shapeConstant(n, 0);
                if (data.dims().length != 1 || opset < 10) {
                    throw new Refused("Slice of " + data.describe() + " at opset " + opset + "; Squall folds Slice "
                            + "of a 1-D integer constant (a shape), opset 10 on, only");
                }
                long[] from = integerValues(data);
                long step = n.input(4).isEmpty() ? 1 : longs(shapeConstant(n, 4))[0];
                if (step != 1 || !n.input(3).isEmpty() && longs(shapeConstant(n, 3))[0] != 0) {
                    throw new Refused("Slice with steps or axes other than 1 and 0");
                }
                int start = clampAxis(longs(shapeConstant(n, 1))[0], from.length);
                int end = clampAxis(longs(shapeConstant(n, 2))[0], from.length);
                values = Arrays.copyOfRange(from, start, Math.max(start, end));
                dims = new long[] {values.length};
            }
            case "Cast" -> {
                TensorProto data = shapeConstant(n, 0);
                long to = intAttr(n, "to", 0);
                if (to != DataType.INT64.code && to != DataType.INT32.code) {
                    throw new Refused("Cast of " + data.describe() + " to " + DataType.describe((int) to) + "; Squall "
                            + "folds Cast between integer types of shape values only");
                }
                values = integerValues(data);
                dims = data.dims();
            }
            default -> throw new IllegalStateException(n.opType());
        }
        constants.put(out, TensorProto.ofLongs(out, dims, values));
        shapes.put(out, Shape.of(dims));
    }

    /** Whether a node of the shape ops reads only shapes and integer constants, so that it folds. */
    private boolean isShapeArithmetic(NodeProto n) {
        if (n.opType().equals("Shape")) {
            return shapes.containsKey(n.input(0)) || constants.containsKey(n.input(0));
        }
        return n.inputs().stream().allMatch(in -> in.isEmpty()
                || constants.containsKey(in) && OnnxTensors.isInteger(constants.get(in).dataType()));
    }

    /** Input {@code k} of a shape-arithmetic node, which must be an integer constant (or folded shape). */
    private TensorProto shapeConstant(NodeProto n, int k) {
        TensorProto t = constants.get(n.input(k));
        if (t == null || !OnnxTensors.isInteger(t.dataType())) {
            throw new Refused(n.opType() + " of '" + n.input(k) + "', which is " + (t == null ? "computed at run time"
                    : t.describe()) + "; Squall folds " + n.opType() + " only on integer constants and shapes");
        }
        return t;
    }

    /** ONNX's clamping of a start or end index into [0, length]. */
    private static int clampAxis(long index, int length) {
        long i = index < 0 ? index + length : index;
        return (int) Math.max(0, Math.min(length, i));
    }

    private static long[] unsqueezed(long[] dims, long[] axes) {
        if (axes == null) {
            throw new Refused("Unsqueeze without axes");
        }
        int rank = dims.length + axes.length;
        boolean[] inserted = new boolean[rank];
        for (long a : axes) {
            int axis = (int) (a < 0 ? a + rank : a);
            if (axis < 0 || axis >= rank || inserted[axis]) {
                throw new Refused("Unsqueeze axes " + Arrays.toString(axes) + " for a rank-" + dims.length + " value");
            }
            inserted[axis] = true;
        }
        long[] out = new long[rank];
        for (int i = 0, from = 0; i < rank; i++) {
            out[i] = inserted[i] ? 1 : dims[from++];
        }
        return out;
    }

    private static long[] squeezed(long[] dims, long[] axes) {
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < dims.length; i++) {
            final int axis = i;
            boolean named = axes == null ? dims[i] == 1
                    : Arrays.stream(axes).anyMatch(a -> (a < 0 ? a + dims.length : a) == axis);
            if (named && dims[i] != 1) {
                throw new Refused("Squeeze of axis " + i + ", which has size " + dims[i]);
            }
            if (!named) {
                out.add(dims[i]);
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    // ---- building the Squall graph -------------------------------------------------------------

    /**
     * Adds a node with one output and records its shape for a batch of one when its inputs' shapes
     * are known. A shape the operator rejects refuses the ONNX node.
     */
    private String emit(String op, String name, String output, Attributes attributes, String... inputs) {
        int count = inputs.length;
        while (count > 0 && inputs[count - 1].isEmpty()) {
            count--;
        }
        Node node = new Node(name, op, List.of(Arrays.copyOf(inputs, count)), List.of(output), attributes);
        List<Shape> inShapes = new ArrayList<>();
        boolean known = operators.has(op);
        for (String in : node.inputs()) {
            Shape s = in.isEmpty() ? null : shapes.get(in);
            known &= in.isEmpty() || s != null;
            inShapes.add(s);
        }
        if (known) {
            try {
                shapes.put(output, operators.get(op).outputShapes(node, inShapes).getFirst());
            } catch (SquallException e) {
                throw new Refused("as Squall op '" + op + "' with inputs " + inShapes + ": " + e.getMessage());
            }
        }
        builder.node(node);
        return output;
    }

    /** The name of a value a node reads; a float constant becomes a parameter the first time. */
    private String value(String name) {
        if (name.isEmpty()) {
            throw new Refused("a required input is missing");
        }
        TensorProto t = constants.get(name);
        if (t != null && !weights.containsKey(name)) {
            declareParameter(name, tensor(t));
        }
        return name;
    }

    private String optionalValue(String name) {
        return name.isEmpty() ? "" : value(name);
    }

    private void declareParameter(String name, Tensor t) {
        builder.parameter(name, t.shape());
        weights.put(name, t);
        shapes.put(name, t.shape());
    }

    private Tensor tensor(TensorProto t) {
        if (!OnnxTensors.isFloat(t.dataType())) {
            throw new Refused("constant " + t.describe() + " is read as values, but Squall computes in float32");
        }
        return OnnxTensors.toTensor(t, dir, source);
    }

    private float[] floats(TensorProto t) {
        return OnnxTensors.isFloat(t.dataType()) ? OnnxTensors.toTensor(t, dir, source).data()
                : toFloats(longs(t));
    }

    private long[] longs(TensorProto t) {
        long[] values = integerValues(t);
        if (Arrays.stream(values).anyMatch(v -> v == BATCH)) {
            throw new Refused("'" + t.name() + "' = " + describe(values) + " depends on the free batch size; Squall "
                    + "folds that only into a Reshape's shape (export with a fixed batch size)");
        }
        return values;
    }

    /** An integer constant's values, {@link #BATCH} included. */
    private long[] integerValues(TensorProto t) {
        if (!OnnxTensors.isInteger(t.dataType())) {
            throw new Refused("constant " + t.describe() + " should hold integers");
        }
        return OnnxTensors.toLongs(t, dir, source);
    }

    private static String describe(long[] values) {
        return Arrays.stream(values).mapToObj(v -> v == BATCH ? "batch" : String.valueOf(v))
                .collect(java.util.stream.Collectors.joining(", ", "[", "]"));
    }

    private static float[] toFloats(long[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = v[i];
        }
        return f;
    }

    /** A value's shape: a constant's dims, a graph input's or an earlier node's output for batch one. */
    private Shape shapeOfValue(String name) {
        TensorProto t = constants.get(name);
        if (t != null) {
            return OnnxTensors.shapeOf(t, source);
        }
        Shape s = shapes.get(name);
        if (s != null) {
            return s;
        }
        for (ValueInfoProto v : onnx.inputs()) {
            if (v.name().equals(name) && v.shape() != null) {
                return Shape.of(v.shape().stream().mapToLong(d -> Math.max(d.value(), 1)).toArray());
            }
        }
        return null;
    }

    private int rankOf(String value, String why) {
        Shape s = shapeOfValue(value);
        if (s == null) {
            throw new Refused(why + " needs the rank of '" + value + "', which is not known");
        }
        return s.rank();
    }

    // ---- attributes ------------------------------------------------------------------------

    private static AttributeProto attribute(NodeProto n, String name, AttributeType... kinds) {
        AttributeProto a = n.attribute(name);
        if (a != null && !Arrays.asList(kinds).contains(a.kind())) {
            throw new Refused("attribute '" + name + "' is " + a.kind() + ", expected " + Arrays.toString(kinds));
        }
        return a;
    }

    private static long intAttr(NodeProto n, String name, long fallback) {
        AttributeProto a = attribute(n, name, AttributeType.INT);
        return a == null ? fallback : a.i();
    }

    private static float floatAttr(NodeProto n, String name, float fallback) {
        AttributeProto a = attribute(n, name, AttributeType.FLOAT);
        return a == null ? fallback : a.f();
    }

    private static String stringAttr(NodeProto n, String name, String fallback) {
        AttributeProto a = attribute(n, name, AttributeType.STRING);
        return a == null ? fallback : a.string();
    }

    private static long[] intsAttr(NodeProto n, String name) {
        AttributeProto a = attribute(n, name, AttributeType.INTS, AttributeType.INT);
        return a == null ? null : a.kind() == AttributeType.INT ? new long[] {a.i()} : a.ints();
    }

    /** strides or dilations: one value per spatial axis, 1 when absent. */
    private static int[] spatialInts(NodeProto n, String name, int axes) {
        long[] v = intsAttr(n, name);
        if (v == null) {
            int[] ones = new int[axes];
            Arrays.fill(ones, 1);
            return ones;
        }
        if (v.length != axes) {
            throw new Refused(name + " " + Arrays.toString(v) + " should have " + axes + " values");
        }
        return toInts(v, name);
    }

    private static int[] toInts(long[] v, String what) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] < Integer.MIN_VALUE || v[i] > Integer.MAX_VALUE) {
                throw new Refused(what + " value " + v[i] + " is out of range");
            }
            out[i] = (int) v[i];
        }
        return out;
    }
}
