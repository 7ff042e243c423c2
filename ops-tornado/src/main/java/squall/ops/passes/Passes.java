package squall.ops.passes;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import squall.api.Attributes;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Node;
import squall.api.Shape;
import squall.api.Tensor;
import squall.ops.Window;
import squall.ops.cpu.DepthwiseConv;

/**
 * Inference-time rewrites of a model, each a function Model to Model that keeps the outputs (up to
 * float rounding): drop identities, fold batch norm into the conv or linear before it, fuse an
 * activation into the conv or linear that produces its input, and fuse a residual add into a conv;
 * with concrete shapes, for the JVM backend, a squeeze-and-excitation gate into a 1x1 conv and a
 * 1x1 expansion into the depthwise conv after it.
 * They match built-in op ids only and leave anything they do not recognise as it is.
 */
public final class Passes {
    private static final Set<String> IDENTITIES = Set.of("dropout", "stochastic_depth", "identity");
    private static final Set<String> FUSABLE_ACTIVATIONS = Set.of("relu", "relu6", "sigmoid", "silu", "hardswish",
            "hardsigmoid");
    private static final float TORCH_HARDSIGMOID_ALPHA = 1f / 6f;
    private static final float TORCH_HARDSIGMOID_BETA = 0.5f;

    private Passes() {
    }

    /**
     * The passes that hold for any input shape, in the order that lets each see the previous one's
     * result. {@link #fuseResiduals} needs concrete shapes and runs when they are known.
     */
    public static Model optimize(Model model) {
        return fuseActivations(foldBatchNorms(dropIdentities(model)));
    }

    /** Dropout, stochastic depth and identity nodes go; their readers read the input instead. */
    public static Model dropIdentities(Model model) {
        Graph graph = model.graph();
        Map<String, String> renamed = new HashMap<>();
        List<Node> nodes = new ArrayList<>();
        for (Node node : graph.nodes()) {
            Node n = renameInputs(node, renamed);
            // A graph output keeps its name, so an identity that produces one stays (the backend aliases it).
            if (IDENTITIES.contains(n.op()) && n.outputs().size() == 1 && !n.input(0).isEmpty()
                    && !graph.outputs().contains(n.output())) {
                renamed.put(n.output(), n.input(0));
            } else {
                nodes.add(n);
            }
        }
        return rebuild(model, nodes, Map.of());
    }

    /**
     * batch_norm(conv(x)) becomes one conv with weight·scale and (bias − mean)·scale + beta, where
     * scale = gamma / sqrt(var + eps) per output channel, when the batch norm is the conv's only
     * reader and the conv has no activation or residual yet. A linear folds too when its output is
     * provably [N, M] (its input comes from flatten or gemm), since batch_norm's channel axis is 1.
     */
    public static Model foldBatchNorms(Model model) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        Map<String, Tensor> added = new LinkedHashMap<>();
        for (int i = 0; i < nodes.length; i++) {
            Node norm = nodes[i];
            int p = uses.producerIndex(norm.input(0));
            if (norm == null || !norm.op().equals("batch_norm") || p < 0 || nodes[p] == null
                    || !foldable(nodes[p], norm, uses, model)) {
                continue;
            }
            Node layer = nodes[p];
            float epsilon = norm.attributes().getFloat("epsilon", 1e-5f);
            float[] gamma = model.weights().get(norm.input(1)).data();
            float[] beta = model.weights().get(norm.input(2)).data();
            float[] mean = model.weights().get(norm.input(3)).data();
            float[] variance = model.weights().get(norm.input(4)).data();
            Tensor weight = model.weights().get(layer.input(1));
            float[] bias = layer.input(2).isEmpty() ? new float[gamma.length] : model.weights().get(layer.input(2)).data();
            int perChannel = weight.shape().size() / gamma.length;
            float[] foldedWeight = new float[weight.shape().size()];
            float[] foldedBias = new float[gamma.length];
            for (int c = 0; c < gamma.length; c++) {
                double scale = gamma[c] / Math.sqrt((double) variance[c] + epsilon);
                for (int k = c * perChannel; k < (c + 1) * perChannel; k++) {
                    foldedWeight[k] = (float) (weight.data()[k] * scale);
                }
                foldedBias[c] = (float) ((bias[c] - (double) mean[c]) * scale + beta[c]);
            }
            String weightName = freshName(model, added, layer.name() + ".folded_weight");
            added.put(weightName, new Tensor(weight.shape(), foldedWeight));
            String biasName = freshName(model, added, layer.name() + ".folded_bias");
            added.put(biasName, new Tensor(Shape.of(gamma.length), foldedBias));
            List<String> inputs = new ArrayList<>(layer.inputs());
            while (inputs.size() < 3) {
                inputs.add("");
            }
            inputs.set(1, weightName);
            inputs.set(2, biasName);
            nodes[p] = new Node(layer.name(), layer.op(), inputs, norm.outputs(), layer.attributes());
            nodes[i] = null;
            uses.moved(norm.output(), p);
        }
        return rebuild(model, nodes, added);
    }

    private static boolean foldable(Node layer, Node norm, Uses uses, Model model) {
        boolean conv = layer.op().equals("conv2d");
        if (!(conv || layer.op().equals("linear") && producesMatrix(layer.input(0), uses, model))
                || !uses.onlyReaderIs(layer.output(), norm)
                || !layer.attributes().getString("activation", "none").equals("none") || !layer.input(3).isEmpty()) {
            return false;
        }
        Tensor weight = model.weights().get(layer.input(1));
        Tensor gamma = model.weights().get(norm.input(1));
        boolean parametersKnown = weight != null && gamma != null
                && (layer.input(2).isEmpty() || model.weights().containsKey(layer.input(2)))
                && model.weights().containsKey(norm.input(2)) && model.weights().containsKey(norm.input(3))
                && model.weights().containsKey(norm.input(4));
        return parametersKnown && weight.shape().dim(0) == gamma.shape().size();
    }

    private static boolean producesMatrix(String value, Uses uses, Model model) {
        Shape declared = model.graph().inputs().get(value);
        Node producer = uses.producer(value);
        return declared != null ? declared.rank() == 2
                : producer != null && (producer.op().equals("flatten") || producer.op().equals("gemm"));
    }

    /** act(layer(x)) becomes layer(x) with activation = act when act is the layer's only reader. */
    public static Model fuseActivations(Model model) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        for (int i = 0; i < nodes.length; i++) {
            Node act = nodes[i];
            int p = uses.producerIndex(act.input(0));
            if (act == null || !FUSABLE_ACTIVATIONS.contains(act.op()) || !hasTorchConstants(act) || p < 0
                    || nodes[p] == null) {
                continue;
            }
            Node layer = nodes[p];
            if ((layer.op().equals("conv2d") || layer.op().equals("linear")) && uses.onlyReaderIs(layer.output(), act)
                    && layer.attributes().getString("activation", "none").equals("none")
                    && layer.input(3).isEmpty()) {
                nodes[p] = new Node(layer.name(), layer.op(), layer.inputs(), act.outputs(),
                        layer.attributes().with("activation", act.op()));
                nodes[i] = null;
                uses.moved(act.output(), p);
            }
        }
        return rebuild(model, nodes, Map.of());
    }

    /** A fused hardsigmoid is torch's (alpha 1/6, beta 0.5); an ONNX one with other constants stays a node. */
    private static boolean hasTorchConstants(Node act) {
        Attributes a = act.attributes();
        return !act.op().equals("hardsigmoid")
                || a.getFloat("alpha", TORCH_HARDSIGMOID_ALPHA) == TORCH_HARDSIGMOID_ALPHA
                && a.getFloat("beta", TORCH_HARDSIGMOID_BETA) == TORCH_HARDSIGMOID_BETA;
    }

    /**
     * add(conv(x), r) becomes conv(x, residual = r), computing act(conv + bias) + r, when the add is
     * the conv's only reader, r exists before the conv runs, and both operands have one shape in
     * {@code shapes} (the concrete shapes of every value: an add that broadcasts is not a residual).
     */
    public static Model fuseResiduals(Model model, Map<String, Shape> shapes) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        for (int i = 0; i < nodes.length; i++) {
            Node add = nodes[i];
            if (!add.op().equals("add") || add.inputs().size() != 2 || add.input(0).isEmpty() || add.input(1).isEmpty()
                    || shapes.get(add.input(0)) == null || !shapes.get(add.input(0)).equals(shapes.get(add.input(1)))) {
                continue;
            }
            for (int side = 1; side >= 0; side--) {
                int p = uses.producerIndex(add.input(side));
                String residual = add.input(1 - side);
                if (p < 0 || nodes[p] == null || !nodes[p].op().equals("conv2d") || !nodes[p].input(3).isEmpty()
                        || !uses.onlyReaderIs(add.input(side), add) || uses.producerIndex(residual) >= p) {
                    continue;
                }
                Node conv = nodes[p];
                List<String> inputs = new ArrayList<>(conv.inputs());
                while (inputs.size() < 3) {
                    inputs.add("");
                }
                inputs.add(residual);
                nodes[p] = new Node(conv.name(), conv.op(), inputs, add.outputs(), conv.attributes());
                nodes[i] = null;
                uses.moved(add.output(), p);
                break;
            }
        }
        return rebuild(model, nodes, Map.of());
    }

    /**
     * conv2d(mul(x, s)) becomes conv2d(x, input_scale = s) when s [N, C, 1, 1] scales x [N, C, H, W]
     * channel by channel (squeeze-and-excitation's gate), the conv is 1x1, stride 1, unpadded and
     * ungrouped (weight [O, C, 1, 1]), and the mul is its only reader. W·(s ⊙ x) = (W ⊙ s)·x, so the JVM backend's kernels scale B's rows while they pack
     * them (or the weights per image) and the gated tensor, as large as the expanded one, is never
     * written. Needs concrete shapes, like {@link #fuseResiduals}.
     */
    public static Model fuseChannelScales(Model model, Map<String, Shape> shapes) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        for (int i = 0; i < nodes.length; i++) {
            Node conv = nodes[i];
            int p = conv == null ? -1 : uses.producerIndex(conv.input(0));
            if (conv == null || !conv.op().equals("conv2d") || !conv.input(4).isEmpty() || p < 0 || nodes[p] == null
                    || !nodes[p].op().equals("mul") || nodes[p].inputs().size() != 2
                    || !uses.onlyReaderIs(conv.input(0), conv) || !isPointwise(conv, shapes)) {
                continue;
            }
            Node mul = nodes[p];
            for (int side = 0; side < 2; side++) {
                Shape x = shapes.get(mul.input(side));
                Shape scale = shapes.get(mul.input(1 - side));
                if (x == null || scale == null || x.rank() != 4 || x.dim(2) * x.dim(3) == 1
                        || !scale.equals(Shape.of(x.dim(0), x.dim(1), 1, 1))) {
                    continue;
                }
                List<String> inputs = new ArrayList<>(conv.inputs());
                while (inputs.size() < 4) {
                    inputs.add("");
                }
                inputs.set(0, mul.input(side));
                inputs.add(mul.input(1 - side));
                nodes[i] = new Node(conv.name(), conv.op(), inputs, conv.outputs(), conv.attributes());
                nodes[p] = null;
                break;
            }
        }
        return rebuild(model, nodes, Map.of());
    }

    /**
     * dwconv(conv1x1(x)) becomes expand_depthwise(x, ...) (an inverted residual block's expansion
     * and depthwise convs, see {@code ExpandDepthwiseConv}) when the 1x1 conv is pointwise (as in
     * {@link #fuseChannelScales}) with no residual or input scale, the depthwise conv (groups =
     * channels) is its only reader, has neither, and runs on the JVM backend's direct depthwise
     * kernel (3x3 or 5x5, 'same' padding, stride 1 or 2), on maps of at least {@link
     * #EXPAND_DEPTHWISE_PIXELS} (smaller expanded tensors stay in L2 between the two layers), and
     * {@link #fusionPays}.
     */
    public static Model fuseExpandDepthwise(Model model, Map<String, Shape> shapes) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        for (int i = 0; i < nodes.length; i++) {
            Node dw = nodes[i];
            int p = dw == null ? -1 : uses.producerIndex(dw.input(0));
            if (p < 0 || !dw.op().equals("conv2d") || !dw.input(3).isEmpty() || !dw.input(4).isEmpty()
                    || nodes[p] == null || !nodes[p].op().equals("conv2d") || !nodes[p].input(3).isEmpty()
                    || dw.attributes().has("layout") || nodes[p].attributes().has("layout")
                    || !nodes[p].input(4).isEmpty() || !uses.onlyReaderIs(dw.input(0), dw)
                    || !isPointwise(nodes[p], shapes) || !runsDirectDepthwise(dw, shapes)
                    || !fusionPays(shapes.get(nodes[p].input(0)), shapes.get(dw.input(0)))) {
                continue;
            }
            Node expand = nodes[p];
            Attributes attributes = dw.attributes().with("expand_activation",
                    expand.attributes().getString("activation", "none"));
            List<String> inputs = List.of(expand.input(0), expand.input(1), expand.input(2), dw.input(1), dw.input(2));
            nodes[i] = new Node(dw.name(), "expand_depthwise", inputs, dw.outputs(), attributes);
            nodes[p] = null;
        }
        return rebuild(model, nodes, Map.of());
    }

    /**
     * Whether fusing pays: the fused kernel reads the whole packed input B once for each band of 12
     * expanded channels, from L3 when B is over {@link #FUSED_INPUT_IN_L2} bytes, while the 1x1 conv
     * alone reads B once per block from L2; that costs more than the expanded tensor's round trip
     * through L3 unless the expansion is large (4x or more). MobileNetV1's blocks (expansion 1-2x,
     * B 0.8-1.6 MB) ran slower fused. Alone with cold caches on 2 threads: 32->64 @112 + dw s2 0.81
     * against 0.57 ms as two layers, 64->128 @56 0.55 against 0.46, 128->128 @56 + dw s2 1.15
     * against 0.73, 256->256 @28 + dw s2 0.71 against 0.57; in mobilenet_v1 at batch 1 the four
     * steps 2.13 -> 1.95 ms (profile), at batch 8 (one thread per image) its first stages 20.6-21.1
     * -> 19.8-20.4 ms. efficientnet_b0's 16->96 @112 (6x) ran 2% faster fused in the network,
     * mobilenet_v3_large's 16->64 @112 (4x) a tie.
     */
    static boolean fusionPays(Shape x, Shape expanded) {
        long packedInput = 4L * x.dim(1) * x.dim(2) * x.dim(3);
        return packedInput <= FUSED_INPUT_IN_L2 || expanded.dim(1) >= 4 * x.dim(1);
    }

    /** Bytes of a block's input up to which an expansion of any size fuses (see {@link #fusionPays}). */
    static final long FUSED_INPUT_IN_L2 = 512 * 1024;

    /**
     * global_avg_pool(dwconv(x)) becomes a second output of the depthwise conv (a conv2d with
     * groups = channels that DepthwiseConv computes, or an expand_depthwise), attribute {@code
     * pool_output} = 1: the squeeze of a squeeze-and-excitation block (Hu et al. 2018) after the
     * depthwise conv of an MBConv block. The conv's kernels average each output plane as they
     * finish it, while it is in L1, with the pool kernel's sums (the same bits); run apart, the
     * pool read the whole output back from L3. The output's other readers (the gated 1x1 conv)
     * still read it. Only on maps of at least {@link #SQUEEZE_POOL_PIXELS}, whose output has left
     * L2 by the time a separate pool reads it. In-process A/B, medians, both orders:
     * efficientnet_b0 at batch 1 10.15 -> 10.03 and 9.13 -> 8.70 ms (stages 1-3 -0.07 to -0.13
     * ms each), mobilenet_v3_large 5.31 -> 5.29 and 4.68 -> 4.43. Fused on 14x14 and 7x7 maps too,
     * b0 at batch 8 lost 1.3% (its 14x14 stage's other steps 0.4 ms slower, both orders); from
     * 28x28 it gained (61.0 -> 59.4 and 70.5 -> 68.1 ms).
     */
    public static Model fuseSqueezePools(Model model, Map<String, Shape> shapes) {
        Uses uses = new Uses(model.graph());
        Node[] nodes = model.graph().nodes().toArray(Node[]::new);
        for (int i = 0; i < nodes.length; i++) {
            Node pool = nodes[i];
            int p = pool == null ? -1 : uses.producerIndex(pool.input(0));
            if (p < 0 || !pool.op().equals("global_avg_pool") || nodes[p] == null
                    || nodes[p].outputs().size() != 1 || !poolsItsPlanes(nodes[p], shapes)) {
                continue;
            }
            Node conv = nodes[p];
            nodes[p] = new Node(conv.name(), conv.op(), conv.inputs(), List.of(conv.output(), pool.output()),
                    conv.attributes().with("pool_output", 1));
            nodes[i] = null;
        }
        return rebuild(model, nodes, Map.of());
    }

    /**
     * An expand_depthwise, or a depthwise conv2d (no input scale) that DepthwiseConv computes, with
     * an output map of at least {@link #SQUEEZE_POOL_PIXELS}.
     */
    private static boolean poolsItsPlanes(Node conv, Map<String, Shape> shapes) {
        Shape out = shapes.get(conv.output());
        if (out == null || out.rank() != 4 || out.dim(2) * out.dim(3) < SQUEEZE_POOL_PIXELS) {
            return false;
        }
        if (conv.op().equals("expand_depthwise")) {
            return true;
        }
        Shape x = shapes.get(conv.input(0));
        Shape weight = shapes.get(conv.input(1));
        if (!conv.op().equals("conv2d") || !conv.input(4).isEmpty() || conv.attributes().has("layout") || x == null
                || weight == null || x.rank() != 4
                || weight.rank() != 4) {
            return false;
        }
        int[] window = Window.of(conv, weight.dim(2), weight.dim(3), new int[] {1, 1}).asArray();
        return DepthwiseConv.supports(window, conv.attributes().getInt("groups", 1), x.dim(1), weight.dim(0));
    }

    /** Output maps of at least 28x28 (see {@link #fuseSqueezePools}). */
    static final int SQUEEZE_POOL_PIXELS = 28 * 28;

    /** Maps of at least 28x28 (see {@link #fuseExpandDepthwise}). */
    static final int EXPAND_DEPTHWISE_PIXELS = 28 * 28;

    /** A depthwise conv2d of x [N, C, H, W] (H·W >= {@link #EXPAND_DEPTHWISE_PIXELS}) that DepthwiseConv runs directly. */
    private static boolean runsDirectDepthwise(Node conv, Map<String, Shape> shapes) {
        Shape x = shapes.get(conv.input(0));
        Shape weight = shapes.get(conv.input(1));
        Shape out = shapes.get(conv.output());
        if (x == null || weight == null || out == null || x.rank() != 4 || weight.rank() != 4
                || x.dim(2) * x.dim(3) < EXPAND_DEPTHWISE_PIXELS) {
            return false;
        }
        int[] window = Window.of(conv, weight.dim(2), weight.dim(3), new int[] {1, 1}).asArray();
        return DepthwiseConv.supports(window, conv.attributes().getInt("groups", 1), x.dim(1), weight.dim(0))
                && DepthwiseConv.runsDirect(window, x.dim(2), x.dim(3), out.dim(2), out.dim(3));
    }

    /** A conv2d with weight [O, C, 1, 1] for C input channels (groups 1), stride 1 and no padding. */
    private static boolean isPointwise(Node conv, Map<String, Shape> shapes) {
        Shape x = shapes.get(conv.input(0));
        Shape weight = shapes.get(conv.input(1));
        if (x == null || weight == null || x.rank() != 4 || weight.rank() != 4 || weight.dim(1) != x.dim(1)
                || weight.dim(2) != 1 || weight.dim(3) != 1) {
            return false;
        }
        Window window = Window.of(conv, 1, 1, new int[] {1, 1});
        return window.strideH() == 1 && window.strideW() == 1 && window.padTop() == 0 && window.padLeft() == 0
                && window.padBottom() == 0 && window.padRight() == 0;
    }

    private static Node renameInputs(Node node, Map<String, String> renamed) {
        List<String> inputs = node.inputs().stream().map(v -> renamed.getOrDefault(v, v)).toList();
        return inputs.equals(node.inputs()) ? node
                : new Node(node.name(), node.op(), inputs, node.outputs(), node.attributes());
    }

    private static String freshName(Model model, Map<String, Tensor> added, String wanted) {
        String name = wanted;
        for (int k = 2; model.graph().parameters().containsKey(name) || model.graph().inputs().containsKey(name)
                || added.containsKey(name); k++) {
            name = wanted + "_" + k;
        }
        return name;
    }

    /** The model over {@code nodes}, keeping the parameters some node still reads, plus {@code added} ones. */
    private static Model rebuild(Model model, Node[] nodes, Map<String, Tensor> added) {
        return rebuild(model, Arrays.stream(nodes).filter(java.util.Objects::nonNull).toList(), added);
    }

    static Model rebuild(Model model, List<Node> nodes, Map<String, Tensor> added) {
        Set<String> read = new java.util.HashSet<>();
        nodes.forEach(n -> read.addAll(n.inputs()));
        read.addAll(model.graph().outputs());
        Map<String, Shape> parameters = new LinkedHashMap<>();
        Map<String, Tensor> weights = new LinkedHashMap<>();
        model.graph().parameters().forEach((name, shape) -> {
            if (read.contains(name)) {
                parameters.put(name, shape);
                if (model.weights().containsKey(name)) {
                    weights.put(name, model.weights().get(name));
                }
            }
        });
        added.forEach((name, tensor) -> {
            parameters.put(name, tensor.shape());
            weights.put(name, tensor);
        });
        return new Model(model.graph().rewrite(parameters, nodes, model.graph().outputs()), weights);
    }

    /** Who produces and who reads each value of a graph (graph outputs count as readers). */
    static final class Uses {
        private final List<Node> nodes;
        private final Map<String, Integer> producer = new HashMap<>();
        private final Map<String, List<Node>> readers = new HashMap<>();
        private final List<String> outputs;

        Uses(Graph graph) {
            this.nodes = graph.nodes();
            for (int i = 0; i < nodes.size(); i++) {
                Node node = nodes.get(i);
                for (String v : node.outputs()) {
                    producer.put(v, i);
                }
                for (String v : node.inputs()) {
                    readers.computeIfAbsent(v, k -> new ArrayList<>()).add(node);
                }
            }
            this.outputs = graph.outputs();
        }

        /** Index of the node writing {@code value}, -1 for inputs and parameters. */
        int producerIndex(String value) {
            return producer.getOrDefault(value, -1);
        }

        /** A fusion made node {@code index} write {@code value}. */
        void moved(String value, int index) {
            producer.put(value, index);
        }

        /** The nodes reading {@code value} (a node once per input it is). */
        List<Node> readers(String value) {
            return readers.getOrDefault(value, List.of());
        }

        Node producer(String value) {
            int i = producerIndex(value);
            return i < 0 ? null : nodes.get(i);
        }

        /** {@code value} is read once, by {@code reader}, and is not a graph output. */
        boolean onlyReaderIs(String value, Node reader) {
            List<Node> r = readers.getOrDefault(value, List.of());
            return !outputs.contains(value) && r.size() == 1 && r.getFirst() == reader;
        }
    }
}
