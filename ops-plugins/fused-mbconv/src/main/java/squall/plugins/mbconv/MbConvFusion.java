package squall.plugins.mbconv;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
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

/**
 * Replaces each MBConv block of a model, as squall.networks builds EfficientNet (torchvision's
 * module order), with one {@code mbconv} node: [1x1 conv, batch_norm, silu,] kxk depthwise conv,
 * batch_norm, silu, squeeze-excitation (global_avg_pool, 1x1 conv, silu, 1x1 conv, sigmoid, mul),
 * 1x1 conv, batch_norm[, identities (stochastic depth), add of the block input]. Each BatchNorm is
 * folded into the conv before it. A block matches only when every value inside it is read by the
 * block alone and is no graph output, so the rewritten model computes what the original did.
 * Fused-MBConv blocks (no depthwise conv) are left as they are.
 */
public final class MbConvFusion {
    private static final Set<String> IDENTITIES = Set.of("dropout", "stochastic_depth", "identity");

    /** One matched block: the nodes it replaces and the parts the fused node is made of. */
    private record Block(String input, String output, List<Node> nodes, Node expand, Node expandNorm, Node depthwise,
                         Node depthwiseNorm, Node reduce, Node excite, Node project, Node projectNorm,
                         boolean residual) {
    }

    private final Model model;
    private final Map<String, List<Node>> readers = new HashMap<>();
    private final Map<String, Node> writers = new HashMap<>();

    private MbConvFusion(Model model) {
        this.model = model;
        for (Node node : model.graph().nodes()) {
            node.inputs().forEach(v -> readers.computeIfAbsent(v, k -> new ArrayList<>()).add(node));
            node.outputs().forEach(v -> writers.put(v, node));
        }
        model.graph().outputs().forEach(v -> readers.computeIfAbsent(v, k -> new ArrayList<>()).add(null));
    }

    /** The model with its MBConv blocks fused; the same model when it has none. */
    public static Model fuse(Model model) {
        return new MbConvFusion(model).rewrite();
    }

    private Model rewrite() {
        Graph graph = model.graph();
        Map<Node, Block> lastNodeOf = new HashMap<>();
        Set<Node> replaced = new HashSet<>();
        for (Node node : graph.nodes()) {
            Block block = match(node);
            if (block != null) {
                lastNodeOf.put(block.nodes().getLast(), block);
                replaced.addAll(block.nodes());
            }
        }
        if (lastNodeOf.isEmpty()) {
            return model;
        }
        Map<String, Tensor> weights = new LinkedHashMap<>(model.weights());
        List<Node> nodes = new ArrayList<>();
        for (Node node : graph.nodes()) {
            Block block = lastNodeOf.get(node);
            if (block != null) {
                nodes.add(fusedNode(block, weights));
            } else if (!replaced.contains(node)) {
                nodes.add(node);
            }
        }
        Set<String> read = new HashSet<>();
        nodes.forEach(n -> read.addAll(n.inputs()));
        weights.keySet().retainAll(read);
        Map<String, Shape> parameters = new LinkedHashMap<>();
        weights.forEach((name, tensor) -> parameters.put(name, tensor.shape()));
        return Model.bind(graph.rewrite(parameters, nodes, graph.outputs()), weights,
                "the MBConv fusion of '" + graph.name() + "'");
    }

    /** The block whose depthwise conv is {@code node}, or null. */
    private Block match(Node depthwise) {
        Shape weight = parameterShape(depthwise.input(1));
        if (!depthwise.op().equals("conv2d") || depthwise.inputs().size() != 2 || weight == null
                || weight.rank() != 4 || weight.dim(1) != 1 || depthwise.attributes().getInt("groups", 1) != weight.dim(0)
                || !plainConv(depthwise, weight.dim(2))) {
            return null;
        }
        List<Node> nodes = new ArrayList<>();
        Node expandActivation = writers.get(depthwise.input(0));
        Node expandNorm = null;
        Node expand = null;
        boolean hasExpansion = false;
        if (expandActivation != null && expandActivation.op().equals("silu")
                && soleReaderOf(expandActivation.output(), "conv2d") == depthwise) {
            expandNorm = writers.get(expandActivation.input(0));
            if (expandNorm != null && expandNorm.op().equals("batch_norm")
                    && soleReaderOf(expandNorm.output(), "silu") == expandActivation) {
                expand = writers.get(expandNorm.input(0));
                hasExpansion = expand != null && soleReaderOf(expand.output(), "batch_norm") == expandNorm
                        && pointwise(expand);
            }
        }
        if (hasExpansion) {
            nodes.addAll(List.of(expand, expandNorm, expandActivation));
        }
        nodes.add(depthwise);
        Node depthwiseNorm = soleReaderOf(depthwise.output(), "batch_norm");
        Node activation = depthwiseNorm == null ? null : soleReaderOf(depthwiseNorm.output(), "silu");
        List<Node> activationReaders = activation == null ? List.of() : readers.getOrDefault(activation.output(), List.of());
        if (activationReaders.size() != 2) {
            return null;
        }
        Node pool = activationReaders.stream().filter(n -> n != null && n.op().equals("global_avg_pool")).findFirst()
                .orElse(null);
        Node reduce = pool == null ? null : soleReaderOf(pool.output(), "conv2d");
        Node squeezeActivation = reduce == null ? null : soleReaderOf(reduce.output(), "silu");
        Node excite = squeezeActivation == null ? null : soleReaderOf(squeezeActivation.output(), "conv2d");
        Node gate = excite == null ? null : soleReaderOf(excite.output(), "sigmoid");
        Node scale = gate == null ? null : soleReaderOf(gate.output(), "mul");
        if (scale == null || !activationReaders.contains(scale) || !scale.inputs().contains(activation.output())
                || !squeezeConv(reduce) || !squeezeConv(excite)) {
            return null;
        }
        Node project = soleReaderOf(scale.output(), "conv2d");
        Node projectNorm = project == null ? null : soleReaderOf(project.output(), "batch_norm");
        if (projectNorm == null || !pointwise(project)) {
            return null;
        }
        nodes.addAll(List.of(depthwiseNorm, activation, pool, reduce, squeezeActivation, excite, gate, scale, project,
                projectNorm));
        String input = hasExpansion ? expand.input(0) : depthwise.input(0);
        String output = projectNorm.output();
        List<Node> shortcut = new ArrayList<>();
        Node next = soleReaderOf(output, null);
        while (next != null && IDENTITIES.contains(next.op())) {
            shortcut.add(next);
            next = soleReaderOf(next.output(), null);
        }
        boolean residual = next != null && next.op().equals("add") && next.inputs().size() == 2
                && next.inputs().contains(input) && next.inputs().contains(shortcut.isEmpty() ? output
                : shortcut.getLast().output());
        if (residual) {
            shortcut.add(next);
            nodes.addAll(shortcut);
            output = next.output();
        }
        return new Block(input, output, nodes, hasExpansion ? expand : null, hasExpansion ? expandNorm : null,
                depthwise, depthwiseNorm, reduce, excite, project, projectNorm, residual);
    }

    /** The one node reading {@code value} if it has op {@code op} (any op when null); null otherwise. */
    private Node soleReaderOf(String value, String op) {
        List<Node> r = readers.getOrDefault(value, List.of());
        Node reader = r.size() == 1 ? r.getFirst() : null;
        return reader != null && (op == null || reader.op().equals(op)) ? reader : null;
    }

    private Shape parameterShape(String value) {
        return model.graph().parameters().get(value);
    }

    /** conv2d with no fused activation or residual, dilation 1 and torchvision's padding (k - 1) / 2. */
    private static boolean plainConv(Node conv, int kernelSize) {
        Attributes a = conv.attributes();
        return a.getString("activation", "none").equals("none") && conv.inputs().size() <= 3
                && allEqual(a.has("padding") ? a.getInts("padding") : new int[] {0}, (kernelSize - 1) / 2)
                && allEqual(a.has("dilation") ? a.getInts("dilation") : new int[] {1}, 1)
                && allEqual(a.has("stride") ? a.getInts("stride") : new int[] {1}, a.has("stride")
                ? a.getInts("stride")[0] : 1);
    }

    /** A 1x1, stride 1, ungrouped conv without bias (BatchNorm follows). */
    private boolean pointwise(Node conv) {
        Shape weight = parameterShape(conv.input(1));
        return conv.op().equals("conv2d") && conv.inputs().size() == 2 && weight != null && weight.rank() == 4
                && weight.dim(2) == 1 && weight.dim(3) == 1 && conv.attributes().getInt("groups", 1) == 1
                && plainConv(conv, 1) && stride(conv) == 1;
    }

    /** Squeeze-excitation's 1x1 convs have a bias and no BatchNorm. */
    private boolean squeezeConv(Node conv) {
        Shape weight = parameterShape(conv.input(1));
        return conv.inputs().size() == 3 && parameterShape(conv.input(2)) != null && weight != null
                && weight.rank() == 4 && weight.dim(2) == 1 && weight.dim(3) == 1
                && conv.attributes().getInt("groups", 1) == 1 && plainConv(conv, 1);
    }

    private static int stride(Node conv) {
        return conv.attributes().has("stride") ? conv.attributes().getInts("stride")[0] : 1;
    }

    private static boolean allEqual(int[] values, int expected) {
        for (int v : values) {
            if (v != expected) {
                return false;
            }
        }
        return true;
    }

    /** The mbconv node of a block; its folded weights are added to {@code weights}. */
    private Node fusedNode(Block b, Map<String, Tensor> weights) {
        String name = b.depthwise().name();
        int at = name.indexOf(".block.");
        String module = (at >= 0 ? name.substring(0, at) : name) + ".mbconv";
        List<String> inputs = new ArrayList<>(List.of(b.input()));
        if (b.expand() != null) {
            inputs.addAll(fold(b.expand(), b.expandNorm(), module + ".expand", weights));
        } else {
            inputs.addAll(List.of("", ""));
        }
        inputs.addAll(fold(b.depthwise(), b.depthwiseNorm(), module + ".depthwise", weights));
        inputs.addAll(b.reduce().inputs().subList(1, 3));
        inputs.addAll(b.excite().inputs().subList(1, 3));
        inputs.addAll(fold(b.project(), b.projectNorm(), module + ".project", weights));
        return new Node(module, "mbconv", inputs, List.of(b.output()),
                Attributes.of("stride", stride(b.depthwise()), "residual", b.residual() ? 1 : 0));
    }

    /**
     * A conv without bias followed by inference BatchNorm is one conv: weight times
     * gamma / sqrt(var + eps) per output channel, bias beta - mean times that scale.
     */
    private List<String> fold(Node conv, Node norm, String prefix, Map<String, Tensor> weights) {
        Tensor weight = model.weights().get(conv.input(1));
        float[] gamma = model.weights().get(norm.input(1)).data();
        float[] beta = model.weights().get(norm.input(2)).data();
        float[] mean = model.weights().get(norm.input(3)).data();
        float[] variance = model.weights().get(norm.input(4)).data();
        float epsilon = norm.attributes().getFloat("epsilon", 1e-5f);
        int outChannels = gamma.length;
        int perChannel = weight.data().length / outChannels;
        float[] folded = new float[weight.data().length];
        float[] bias = new float[outChannels];
        for (int o = 0; o < outChannels; o++) {
            double scale = gamma[o] / Math.sqrt((double) variance[o] + epsilon);
            for (int i = o * perChannel; i < (o + 1) * perChannel; i++) {
                folded[i] = (float) (weight.data()[i] * scale);
            }
            bias[o] = (float) (beta[o] - mean[o] * scale);
        }
        weights.put(prefix + ".weight", new Tensor(weight.shape(), folded));
        weights.put(prefix + ".bias", new Tensor(Shape.of(outChannels), bias));
        return List.of(prefix + ".weight", prefix + ".bias");
    }
}
