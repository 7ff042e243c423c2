package squall.ops.passes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static squall.ops.cpu.Nchwc.BLOCK;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * {@link Layouts#blockChannels}: where the islands and reorders go, and that the JVM backend gives
 * the same outputs with them as the graph as written (portable kernels where the graph has no
 * fusion; within 1e-5 · (|expected| + mean |expected|)), at batch 1 and for a batch that runs its
 * large maps image by image.
 */
class LayoutsTest {
    private static final Operators OPERATORS = Operators.discover();
    private static final int C = 2 * BLOCK;

    private static String conv(GraphBuilder b, String name, String x, int in, int out, int kernel, int stride,
                               boolean depthwise, String activation) {
        String w = b.parameter(name + ".weight", out, depthwise ? 1 : in, kernel, kernel);
        Attributes a = Attributes.of("padding", kernel / 2, "stride", stride, "groups", depthwise ? in : 1,
                "activation", activation);
        return b.op("conv2d", name, a, x, w, b.parameter(name + ".bias", out));
    }

    /**
     * A stem (dilated: no blocked kernel runs it), then dw, pw + the stem's output as residual, dw
     * stride 2, pw, and {@code more} dw, pw pairs (the island), the first and last pw's outputs
     * pooled outside it.
     */
    private static Model network(int channels, int more) {
        GraphBuilder b = Graph.builder("island");
        String x = b.input("x", Shape.of(-1, BLOCK, -1, -1));
        String stem = b.op("conv2d", "stem", Attributes.of("padding", 2, "dilation", 2, "activation", "relu"), x,
                b.parameter("stem.weight", channels, BLOCK, 3, 3), b.parameter("stem.bias", channels));
        String dw1 = conv(b, "dw1", stem, channels, channels, 3, 1, true, "relu6");
        String pw1 = b.op("conv2d", "pw1", Attributes.of("activation", "none"), dw1,
                b.parameter("pw1.weight", channels, channels, 1, 1), b.parameter("pw1.bias", channels), stem);
        String dw2 = conv(b, "dw2", pw1, channels, channels, 3, 2, true, "hardswish");
        String y = conv(b, "pw2", dw2, channels, channels, 1, 1, false, "relu");
        for (int i = 3; i < 3 + more; i++) {
            y = conv(b, "dw" + i, y, channels, channels, 3, 1, true, "relu");
            y = conv(b, "pw" + i, y, channels, channels, 1, 1, false, "silu");
        }
        String pooled = b.op("add", "sum", Attributes.of(), b.op("global_avg_pool", "pool1", Attributes.of(), pw1),
                b.op("global_avg_pool", "pool2", Attributes.of(), y));
        return withWeights(b.output(pooled).build());
    }

    private static Model withWeights(Graph graph) {
        Random random = new Random(5);
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> {
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = (random.nextFloat() * 2 - 1) * (name.endsWith("weight") ? 0.3f : 1f);
            }
            weights.put(name, new Tensor(shape, data));
        });
        return Model.bind(graph, weights, "random weights");
    }

    private static Model blocked(Model model, Shape input) {
        return Layouts.blockChannels(model, model.graph().inferShapes(Map.of("x", input), OPERATORS));
    }

    @Test
    void anIslandRunsInBlocksBetweenReorders() {
        Model model = network(C, 2);
        Model rewritten = blocked(model, Shape.of(1, BLOCK, 9, 7));
        List<String> steps = rewritten.graph().nodes().stream()
                .map(n -> n.op() + (n.op().equals("reorder") ? " " + n.input(0) + " to " + n.attributes()
                        .getString("to", "") : " " + n.name() + " " + n.attributes().getString("layout", "nchw")))
                .toList();
        // The stem's output goes to blocks once, for dw1's x and pw1's residual; the pools read
        // pw1's and pw2's outputs as blocks.
        assertEquals(List.of("conv2d stem nchw", "reorder stem to nchwc", "conv2d dw1 nchwc", "conv2d pw1 nchwc",
                "conv2d dw2 nchwc", "conv2d pw2 nchwc", "conv2d dw3 nchwc", "conv2d pw3 nchwc", "conv2d dw4 nchwc",
                "conv2d pw4 nchwc", "global_avg_pool pool1 nchwc", "global_avg_pool pool2 nchwc", "add sum nchw"),
                steps);
        Node pw1 = rewritten.graph().nodes().get(3);
        assertEquals(List.of("dw1", "stem.nchwc"), List.of(pw1.input(0), pw1.input(3)));
        for (Shape input : new Shape[] {Shape.of(1, BLOCK, 9, 7), Shape.of(3, BLOCK, 20, 19)}) {
            Tensor x = image(input);
            assertAgrees(run(model, "passes", "none", x), run(rewritten, "passes", "none", x), "the pass, " + input);
            assertAgrees(run(model, "layout", "nchw", x), run(model, "layout", "auto", x), "layout=auto, " + input);
        }
    }

    /** An RGB stem (3x3, stride 2) before the island writes blocks itself, unless a node outside reads its output. */
    @Test
    void aStemBeforeAnIslandWritesBlocks() {
        for (boolean readOutside : new boolean[] {false, true}) {
            GraphBuilder b = Graph.builder("stem");
            String x = b.input("x", Shape.of(-1, 3, -1, -1));
            String stem = conv(b, "stem", x, 3, C, 3, 2, false, "relu");
            String y = stem;
            for (int i = 0; i < 4; i++) {
                y = conv(b, "dw" + i, y, C, C, 3, 1, true, "relu");
                y = conv(b, "pw" + i, y, C, C, 1, 1, false, "relu");
            }
            y = b.op("global_avg_pool", "pool", Attributes.of(), y);
            if (readOutside) {
                String stemPool = b.op("global_avg_pool", "stem_pool", Attributes.of(), b.op("relu", "stem_relu",
                        Attributes.of(), stem));
                y = b.op("add", "sum", Attributes.of(), y, stemPool);
            }
            Model model = withWeights(b.output(y).build());
            Shape input = Shape.of(2, 3, 17, 23);
            Model rewritten = blocked(model, input);
            Node first = rewritten.graph().nodes().getFirst();
            assertEquals(readOutside ? "nchw" : "nchwc_output", first.attributes().getString("layout", "nchw"));
            // The pool reads the island's last output as blocks.
            assertEquals(readOutside ? 1 : 0, rewritten.graph().nodes().stream()
                    .filter(n -> n.op().equals("reorder")).count(), "reorders");
            Tensor image = image(input);
            assertAgrees(run(model, "passes", "none", image), run(rewritten, "passes", "none", image),
                    "the pass" + (readOutside ? ", stem read outside" : ""));
        }
    }

    /**
     * EfficientNetV2's Fused-MBConv stages: a dense 3x3 stride-2 conv from 24 channels (not a
     * multiple of the block) reads planes and writes blocks; dense 3x3 convs and 1x1 projections
     * with residuals run in blocks; the pool reads blocks: no reorder.
     */
    @Test
    void denseConvsJoinTheIsland() {
        GraphBuilder b = Graph.builder("fused");
        String x = b.input("x", Shape.of(-1, 24, -1, -1));
        String y = conv(b, "expand0", x, 24, 2 * C, 3, 2, false, "silu");
        y = conv(b, "project0", y, 2 * C, C, 1, 1, false, "none");
        for (int i = 1; i <= 2; i++) {
            String e = conv(b, "expand" + i, y, C, 2 * C, 3, 1, false, "silu");
            y = b.op("conv2d", "project" + i, Attributes.of(), e, b.parameter("project" + i + ".weight", C, 2 * C,
                    1, 1), b.parameter("project" + i + ".bias", C), y);
        }
        Model model = withWeights(b.output(b.op("global_avg_pool", "pool", Attributes.of(), y)).build());
        Shape input = Shape.of(2, 24, 17, 26);
        Model rewritten = blocked(model, input);
        List<String> layouts = rewritten.graph().nodes().stream()
                .map(n -> n.name() + " " + n.attributes().getString("layout", "nchw")).toList();
        assertEquals(List.of("expand0 nchwc_output", "project0 nchwc", "expand1 nchwc", "project1 nchwc",
                "expand2 nchwc", "project2 nchwc", "pool nchwc"), layouts);
        Tensor image = image(input);
        assertAgrees(run(model, "passes", "none", image), run(rewritten, "passes", "none", image), "the pass");
        assertAgrees(run(model, "layout", "nchw", image), run(model, "layout", "auto", image), "layout=auto");
    }

    /**
     * An MBConv island entered by its expansion: the 1x1 conv reads the 40 channels before it
     * (efficientnet_b0's 28x28 stage) in planes and writes blocks, with no reorder.
     */
    @Test
    void aPointwiseEntryReadsPlanes() {
        GraphBuilder b = Graph.builder("entry");
        String x = b.input("x", Shape.of(-1, 40, -1, -1));
        String y = conv(b, "expand", x, 40, 2 * C, 1, 1, false, "silu");
        y = conv(b, "dw", y, 2 * C, 2 * C, 3, 2, true, "silu");
        y = conv(b, "project", y, 2 * C, C, 1, 1, false, "none");
        for (int i = 1; i <= 2; i++) {
            y = conv(b, "expand" + i, y, C, 2 * C, 1, 1, false, "relu6");
            y = conv(b, "dw" + i, y, 2 * C, 2 * C, 3, 1, true, "relu6");
            y = conv(b, "project" + i, y, 2 * C, C, 1, 1, false, "none");
        }
        Model model = withWeights(b.output(b.op("global_avg_pool", "pool", Attributes.of(), y)).build());
        Shape input = Shape.of(2, 40, 15, 14);
        Model rewritten = blocked(model, input);
        assertEquals(List.of("expand nchwc_output", "dw nchwc", "project nchwc", "expand1 nchwc", "dw1 nchwc",
                "project1 nchwc", "expand2 nchwc", "dw2 nchwc", "project2 nchwc", "pool nchwc"),
                rewritten.graph().nodes().stream().map(n -> n.name() + " " + n.attributes().getString("layout",
                        "nchw")).toList());
        Tensor image = image(input);
        assertAgrees(run(model, "passes", "none", image), run(rewritten, "passes", "none", image), "the pass");
    }

    @Test
    void smallIslandsAndChannelsOffTheBlockStayInPlanes() {
        // Channels that are not a multiple of the block: no candidate.
        Model offBlock = network(C + 4, 2);
        assertSame(offBlock, blocked(offBlock, Shape.of(1, BLOCK, 9, 7)));
        // On a 2x1 map only the depthwise convs are candidates (the 1x1 convs' maps are smaller
        // than a tile), and they are not linked.
        Model small = network(C, 2);
        assertSame(small, blocked(small, Shape.of(1, BLOCK, 2, 1)));
        // Four convs for one reorder (the stem's output) do not pay for it.
        Model few = network(C, 0);
        assertSame(few, blocked(few, Shape.of(1, BLOCK, 9, 7)));
    }

    @Test
    void anUnknownLayoutOptionIsRefused() {
        var e = assertThrows(SquallException.class, () -> Backends.select("jvm").compile(network(C, 2), OPERATORS,
                Map.of("layout", "nhwc")));
        assertTrue(e.getMessage().contains("layout=\"nhwc\" should be \"auto\" or \"nchw\""), e.getMessage());
    }

    private static Tensor image(Shape shape) {
        Random random = new Random(shape.size());
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 2 - 1;
        }
        return new Tensor(shape, data);
    }

    private static float[] run(Model model, String option, String value, Tensor x) {
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS,
                Map.of(option, value, "warmup", "0", "threads", "2"))) {
            return compiled.run(x).data();
        }
    }

    private static void assertAgrees(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double meanAbs = 0;
        for (float v : expected) {
            meanAbs += Math.abs(v) / expected.length;
        }
        for (int i = 0; i < expected.length; i++) {
            double tolerance = 1e-5 * (Math.abs(expected[i]) + meanAbs);
            if (!(Math.abs(actual[i] - expected[i]) <= tolerance)) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}
