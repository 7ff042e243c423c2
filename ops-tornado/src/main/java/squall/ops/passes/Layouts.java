package squall.ops.passes;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import squall.api.Attributes;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Node;
import squall.api.Shape;
import squall.ops.Window;
import squall.ops.cpu.Nchwc;
import squall.ops.cpu.NchwcConv;
import squall.ops.cpu.NchwcDepthwise;
import squall.ops.cpu.NchwcPointwise;
import squall.ops.cpu.NchwcStem;

/**
 * The JVM backend's choice of layout: islands of convs that run in the blocked layout NCHWc
 * ({@link Nchwc}), with a {@code reorder} node at each edge. The graph's values keep their NCHW
 * shapes; a conv in an island has the attribute {@code layout} = "nchwc", and so has every value
 * it reads as x or residual and writes.
 */
public final class Layouts {
    /**
     * The fewest convs an island has, with or without reorders (one with none still pays its
     * own setup only over a few layers). MobileNetV1's 26 convs between the stem and the head form
     * one island with no reorder (CPU-KERNELS.md round 20).
     */
    static final int MIN_ISLAND = 4;
    /**
     * Convs an island needs for each reorder at its edges. efficientnet_b0's and
     * mobilenet_v3_large's 14x14 islands of 8 convs and 2 reorders tied or lost in the network
     * (in-process A/B: b0 8.33 -> 8.62 ms, v3_large 5.81 -> 5.84); mobilenet_v2's 41 convs with
     * one reorder, efficientnet_v2_s's 91 with one and mobilenet_v1's 26 with none gained
     * (CPU-KERNELS.md round 20).
     */
    static final int CONVS_PER_REORDER = 8;

    private Layouts() {
    }

    /**
     * Marks the convs that the blocked kernels run (1x1 convs; dense convs and 3x3 and 5x5
     * depthwise convs at stride 1 or 2; channels a multiple of {@link Nchwc#BLOCK}; constant
     * weights; an input scale only on a 1x1 conv; no pooled output; not a graph output) and that
     * form islands of at least {@link #MIN_ISLAND} convs, each linked to the one whose output it
     * reads as x. Each value an island reads from outside goes through one {@code reorder} to
     * "nchwc", unless a conv that reads planes and writes blocks ({@link #writesBlocks}) reads it
     * as x, or writes it and only the island reads it: then that conv reads planes and writes
     * blocks (layout "nchwc_output"). Each value the island writes that a node outside reads goes
     * through one {@code reorder} to "nchw", but a global average pool reads blocks as they are
     * (layout "nchwc"). Needs concrete shapes.
     */
    public static Model blockChannels(Model model, Map<String, Shape> shapes) {
        List<Node> nodes = model.graph().nodes();
        Passes.Uses uses = new Passes.Uses(model.graph());
        Map<Node, Integer> index = new IdentityHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            index.put(nodes.get(i), i);
        }
        boolean[] candidate = new boolean[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) {
            candidate[i] = runsBlocked(nodes.get(i), model, shapes);
        }
        dropLargeReorders(candidate, model, shapes, uses, index);
        Set<String> blocked = islands(candidate, model, shapes, uses, index);
        if (blocked.isEmpty()) {
            return model;
        }
        // A stem whose output only the island reads writes blocks itself: no reorder.
        Set<String> stems = new HashSet<>();
        for (Node stem : nodes) {
            if (!blocked.contains(stem.output()) && writesBlocks(stem, model, shapes)
                    && uses.readers(stem.output()).stream().allMatch(
                            r -> blocked.contains(r.output()) && readsAsXOrResidual(r, stem.output()))) {
                stems.add(stem.output());
            }
        }
        blocked.addAll(stems);
        // The stems, and the island's other convs that can read planes and whose x comes from
        // outside (efficientnet_b0's 40->240 @28 expansion), read planes: no reorder.
        Set<String> readPlanes = new HashSet<>();
        for (Node node : nodes) {
            if (blocked.contains(node.output()) && !blocked.contains(node.input(0))
                    && writesBlocks(node, model, shapes)) {
                readPlanes.add(node.output());
            }
        }
        return rewrite(model, blocked, readPlanes);
    }

    /**
     * The outputs of the candidates that form islands worth their reorders: linked by x (union-find),
     * with at least {@link #MIN_ISLAND} convs and {@link #CONVS_PER_REORDER} per reorder.
     */
    private static Set<String> islands(boolean[] candidate, Model model, Map<String, Shape> shapes,
                                       Passes.Uses uses, Map<Node, Integer> index) {
        List<Node> nodes = model.graph().nodes();
        int[] island = new int[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) {
            island[i] = candidate[i] ? i : -1;
        }
        // Residuals do not link: EfficientNetV2's 1x1 projections, chained only by their
        // residuals, each read x from a dense 3x3 conv and would each take two reorders.
        for (int i = 0; i < nodes.size(); i++) {
            int p = uses.producerIndex(nodes.get(i).input(0));
            if (island[i] >= 0 && p >= 0 && island[p] >= 0) {
                island[root(island, p)] = root(island, i);
            }
        }
        // Per island its convs, and the values it would reorder: in (but not from a stem that can
        // write blocks) and out (but not to a pool, which reads blocks).
        Map<Integer, Integer> sizes = new HashMap<>();
        Map<Integer, Set<String>> reorders = new HashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            if (island[i] < 0) {
                continue;
            }
            int root = root(island, i);
            sizes.merge(root, 1, Integer::sum);
            Set<String> values = reorders.computeIfAbsent(root, k -> new HashSet<>());
            Node node = nodes.get(i);
            for (String v : outsideInputs(node, model, shapes)) {
                int p = uses.producerIndex(v);
                if (p < 0 || island[p] < 0 && !writesBlocks(nodes.get(p), model, shapes)) {
                    values.add(v);
                }
            }
            if (readOutside(node, candidate, model, uses, index)) {
                values.add(node.output());
            }
        }
        Set<String> blocked = new HashSet<>();
        for (int i = 0; i < nodes.size(); i++) {
            int root = island[i] < 0 ? -1 : root(island, i);
            if (root >= 0 && sizes.get(root) >= MIN_ISLAND
                    && sizes.get(root) >= CONVS_PER_REORDER * reorders.get(root).size()) {
                blocked.add(nodes.get(i).output());
            }
        }
        return blocked;
    }

    /**
     * The values a conv in an island reads in blocks, which need a reorder when they come from
     * outside: x, unless the conv reads planes itself ({@link #writesBlocks}), and the residual.
     */
    private static List<String> outsideInputs(Node node, Model model, Map<String, Shape> shapes) {
        List<String> values = new ArrayList<>();
        if (!writesBlocks(node, model, shapes)) {
            values.add(node.input(0));
        }
        if (!node.input(3).isEmpty()) {
            values.add(node.input(3));
        }
        return values;
    }

    private static boolean readsAsXOrResidual(Node reader, String v) {
        return !reader.input(1).equals(v) && !reader.input(2).equals(v) && !reader.input(4).equals(v);
    }

    /** Whether a node outside the candidates, other than a pool of blocks, reads a candidate's output. */
    private static boolean readOutside(Node node, boolean[] candidate, Model model, Passes.Uses uses,
                                       Map<Node, Integer> index) {
        return model.graph().outputs().contains(node.output()) || uses.readers(node.output()).stream()
                .anyMatch(r -> !candidate[index.get(r)] && !poolsBlocks(r, node.output()));
    }

    /** The graph with the island's nodes marked and the reorders at its edges. */
    private static Model rewrite(Model model, Set<String> blocked, Set<String> readPlanes) {
        Names names = new Names(model.graph());
        Map<String, String> toBlocks = new HashMap<>();
        Map<String, String> toPlanes = new HashMap<>();
        List<Node> rewritten = new ArrayList<>();
        for (Node node : model.graph().nodes()) {
            boolean inIsland = !node.outputs().isEmpty() && blocked.contains(node.output());
            List<String> inputs = new ArrayList<>(node.inputs());
            for (int k = 0; k < inputs.size(); k++) {
                String v = inputs.get(k);
                boolean planes = k == 0 && readPlanes.contains(node.output());
                if (inIsland && (k == 0 || k == 3) && !v.isEmpty() && !blocked.contains(v) && !planes) {
                    inputs.set(k, reorder(v, "nchwc", toBlocks, names, rewritten));
                } else if (!inIsland && blocked.contains(v) && !poolsBlocks(node, v)) {
                    inputs.set(k, reorder(v, "nchw", toPlanes, names, rewritten));
                }
            }
            Attributes attributes = node.attributes();
            if (inIsland) {
                attributes = attributes.with("layout", readPlanes.contains(node.output()) ? "nchwc_output" : "nchwc");
            } else if (poolsBlocks(node, node.input(0)) && blocked.contains(node.input(0))) {
                attributes = attributes.with("layout", "nchwc");
            }
            rewritten.add(new Node(node.name(), node.op(), inputs, node.outputs(), attributes));
        }
        return Passes.rebuild(model, rewritten, Map.of());
    }

    /**
     * Until none is left, drops each candidate that would need a reorder (for its x or residual,
     * or for a reader outside) of a tensor larger than {@link #REORDER_FLOATS}; a stem that writes
     * blocks needs none. A reorder reads and writes the whole tensor with one gather a pixel:
     * MobileNetV2's 96@56 and 144@56 took 0.10-0.26 ms in the network, where the expansion fused
     * into the depthwise conv ({@code expand_depthwise}) runs the pair in NCHW faster.
     */
    private static void dropLargeReorders(boolean[] candidate, Model model, Map<String, Shape> shapes,
                                          Passes.Uses uses, Map<Node, Integer> index) {
        List<Node> nodes = model.graph().nodes();
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int i = 0; i < nodes.size(); i++) {
                Node node = nodes.get(i);
                if (!candidate[i]) {
                    continue;
                }
                boolean large = false;
                for (String v : outsideInputs(node, model, shapes)) {
                    int p = uses.producerIndex(v);
                    boolean outside = p < 0 || !candidate[p] && !writesBlocks(nodes.get(p), model, shapes);
                    large |= outside && floatsPerImage(shapes.get(v)) > REORDER_FLOATS;
                }
                large |= readOutside(node, candidate, model, uses, index)
                        && floatsPerImage(shapes.get(node.output())) > REORDER_FLOATS;
                if (large) {
                    candidate[i] = false;
                    changed = true;
                }
            }
        }
    }

    /** A global average pool of {@code v}, which reads blocks as they are (its output, one pixel, is the same in both layouts). */
    private static boolean poolsBlocks(Node node, String v) {
        return node.op().equals("global_avg_pool") && node.inputs().size() == 1 && node.input(0).equals(v)
                && !node.attributes().has("layout");
    }

    /**
     * Floats per image up to which a reorder is cheap enough to start or end an island: 512 KB,
     * half of L2. MobileNetV2's 144@28 (113K floats) paid for itself; efficientnet_b0's 240@28
     * (188K) took 0.15 ms and cost the expansion before it its fusion into the depthwise conv.
     */
    static final long REORDER_FLOATS = 128 * 1024;

    private static long floatsPerImage(Shape shape) {
        return (long) shape.dim(1) * shape.dim(2) * shape.dim(3);
    }

    /** The value {@code v} reordered to {@code layout}: the first reader adds the reorder node. */
    private static String reorder(String v, String layout, Map<String, String> made, Names names, List<Node> nodes) {
        return made.computeIfAbsent(v, k -> {
            String out = names.fresh(v + "." + layout);
            nodes.add(new Node(out, "reorder", List.of(v), List.of(out), Attributes.of("to", layout)));
            return out;
        });
    }

    private static int root(int[] parent, int i) {
        while (parent[i] != i) {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        return i;
    }

    /** A conv2d's shapes and window, when it may change layout at all. */
    private record Conv(Shape x, Shape weight, Shape out, int[] window, int groups) {
    }

    /**
     * The conv's shapes, or null: not a conv2d with one output, already laid out or pooled,
     * weights not constant, its output a graph output, or shapes unknown.
     */
    private static Conv conv(Node node, Model model, Map<String, Shape> shapes) {
        if (!node.op().equals("conv2d") || node.outputs().size() != 1 || node.attributes().has("layout")
                || node.attributes().getInt("pool_output", 0) != 0 || !model.weights().containsKey(node.input(1))
                || model.graph().outputs().contains(node.output())) {
            return null;
        }
        Shape x = shapes.get(node.input(0));
        Shape weight = shapes.get(node.input(1));
        Shape out = shapes.get(node.output());
        if (x == null || weight == null || out == null || x.rank() != 4 || weight.rank() != 4) {
            return null;
        }
        int[] window = Window.of(node, weight.dim(2), weight.dim(3), new int[] {1, 1}).asArray();
        return new Conv(x, weight, out, window, node.attributes().getInt("groups", 1));
    }

    /** A conv that {@link NchwcPointwise}, {@link NchwcDepthwise} or {@link NchwcConv} runs on blocks. */
    private static boolean runsBlocked(Node node, Model model, Map<String, Shape> shapes) {
        Conv c = conv(node, model, shapes);
        if (c == null) {
            return false;
        }
        int channels = c.x().dim(1);
        int[] w = c.window();
        if (c.groups() > 1) {
            return c.groups() == channels && c.weight().dim(0) == channels && node.input(3).isEmpty()
                    && node.input(4).isEmpty() && NchwcDepthwise.supports(w, channels);
        }
        if (c.weight().dim(2) == 1 && c.weight().dim(3) == 1 && w[2] == 1 && w[3] == 1 && w[4] == 0 && w[5] == 0
                && w[6] == 0 && w[7] == 0) {
            return NchwcPointwise.supports(channels, c.weight().dim(0), c.out().dim(2) * c.out().dim(3));
        }
        return node.input(4).isEmpty()
                && NchwcConv.supports(w, channels, c.weight().dim(0), c.out().dim(2) * c.out().dim(3), true);
    }

    /**
     * A conv that reads planes and writes blocks: a stem that {@link NchwcStem} runs, or a dense or
     * 1x1 conv that {@link NchwcConv} runs (EfficientNetV2's first Fused-MBConv of 48 channels reads
     * the 24 before it); no residual or input scale. The input is only ever broadcast, so planes
     * cost these kernels no more than blocks.
     */
    private static boolean writesBlocks(Node node, Model model, Map<String, Shape> shapes) {
        Conv c = conv(node, model, shapes);
        if (c == null || c.groups() != 1 || !node.input(3).isEmpty() || !node.input(4).isEmpty()) {
            return false;
        }
        int in = c.x().dim(1);
        int out = c.weight().dim(0);
        return NchwcStem.supports(c.window(), c.groups(), in, out, c.out().dim(3))
                || NchwcConv.supports(c.window(), in, out, c.out().dim(2) * c.out().dim(3), false);
    }

    /** Value names not yet taken in a graph. */
    private static final class Names {
        private final Set<String> taken = new HashSet<>();

        Names(Graph graph) {
            taken.addAll(graph.inputs().keySet());
            taken.addAll(graph.parameters().keySet());
            graph.nodes().forEach(n -> taken.addAll(n.outputs()));
        }

        String fresh(String wanted) {
            String name = wanted;
            for (int k = 2; taken.contains(name); k++) {
                name = wanted + "_" + k;
            }
            taken.add(name);
            return name;
        }
    }
}
