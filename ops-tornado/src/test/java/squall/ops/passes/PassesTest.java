package squall.ops.passes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Each pass keeps a model's outputs: the JVM backend (with its own passes off) runs the model
 * before and after the pass on random weights and inputs, and the outputs agree within
 * |after - before| <= 1e-5 · (|before| + mean |before|) (folding changes the float rounding).
 */
class PassesTest {
    private static final Operators OPERATORS = Operators.discover();
    private static final Shape INPUT = Shape.of(2, 6, 9, 7);

    /** A graph over input "x" of shape [N, 6, H, W]; the builder function adds the body and returns its output. */
    private static Model model(java.util.function.Function<GraphBuilder, String> body) {
        GraphBuilder b = Graph.builder("test");
        b.input("x", Shape.of(-1, 6, -1, -1));
        Graph graph = b.output(body.apply(b)).build();
        Random random = new Random(graph.nodes().size());
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> {
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = name.endsWith("running_var") ? 0.2f + random.nextFloat() : random.nextFloat() * 2 - 1;
            }
            weights.put(name, new Tensor(shape, data));
        });
        return Model.bind(graph, weights, "random weights");
    }

    private static String conv(GraphBuilder b, String name, String x, int in, int out, int kernel, int groups,
                               boolean bias) {
        String w = b.parameter(name + ".weight", out, in / groups, kernel, kernel);
        Attributes a = Attributes.of("padding", kernel / 2, "groups", groups);
        return bias ? b.op("conv2d", name, a, x, w, b.parameter(name + ".bias", out)) : b.op("conv2d", name, a, x, w);
    }

    private static String batchNorm(GraphBuilder b, String name, String x, int channels) {
        return b.op("batch_norm", name, Attributes.of("epsilon", 1e-3f), x, b.parameter(name + ".weight", channels),
                b.parameter(name + ".bias", channels), b.parameter(name + ".running_mean", channels),
                b.parameter(name + ".running_var", channels));
    }

    private static Tensor run(Model model, Tensor input) {
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS,
                Map.of("passes", "none", "warmup", "0", "threads", "2"))) {
            return compiled.run(input);
        }
    }

    /** Applies the pass, checks the outputs are unchanged, and returns the rewritten model. */
    private static Model assertKeepsOutputs(Model model, UnaryOperator<Model> pass) {
        return assertKeepsOutputs(model, pass, INPUT);
    }

    /** As above, on an input of shape {@code shape}. */
    private static Model assertKeepsOutputs(Model model, UnaryOperator<Model> pass, Shape shape) {
        Model rewritten = pass.apply(model);
        Random random = new Random(3);
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 4 - 2;
        }
        Tensor input = new Tensor(shape, data);
        float[] before = run(model, input).data();
        float[] after = run(rewritten, input).data();
        assertEquals(before.length, after.length);
        double meanAbs = 0;
        for (float v : before) {
            meanAbs += Math.abs(v) / before.length;
        }
        for (int i = 0; i < before.length; i++) {
            double tolerance = 1e-5 * (Math.abs(before[i]) + meanAbs);
            assertTrue(Math.abs(after[i] - before[i]) <= tolerance, "element " + i + ": " + after[i] + " after the pass, "
                    + before[i] + " before (tolerance " + tolerance + ")");
        }
        return rewritten;
    }

    private static List<String> ops(Model model) {
        return model.graph().nodes().stream().map(Node::op).toList();
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 6})
    void batchNormFoldsIntoTheConvBeforeIt(int groups) {
        for (boolean bias : new boolean[] {false, true}) {
            Model model = model(b -> batchNorm(b, "bn", conv(b, "conv", "x", 6, 6, 3, groups, bias), 6));
            Model folded = assertKeepsOutputs(model, Passes::foldBatchNorms);
            assertEquals(List.of("conv2d"), ops(folded));
            assertEquals(2, folded.graph().parameters().size(), "the folded weight and bias replace the old ones: "
                    + folded.graph().parameters().keySet());
            assertEquals(folded.graph().parameters().keySet(), folded.weights().keySet());
        }
    }

    @Test
    void batchNormFoldsIntoALinearOnFlattenedFeatures() {
        Model model = model(b -> {
            String x = b.op("flatten", "flatten", Attributes.EMPTY, b.op("global_avg_pool", "pool", Attributes.EMPTY, "x"));
            x = b.op("linear", "fc", Attributes.EMPTY, x, b.parameter("fc.weight", 5, 6), b.parameter("fc.bias", 5));
            return batchNorm(b, "bn", x, 5);
        });
        assertEquals(List.of("global_avg_pool", "flatten", "linear"), ops(assertKeepsOutputs(model,
                Passes::foldBatchNorms)));
    }

    @Test
    void batchNormStaysWhenTheConvOutputHasAnotherReader() {
        Model model = model(b -> {
            String c = conv(b, "conv", "x", 6, 6, 1, 1, false);
            return b.op("add", "add", Attributes.EMPTY, batchNorm(b, "bn", c, 6), c);
        });
        assertEquals(ops(model), ops(assertKeepsOutputs(model, Passes::foldBatchNorms)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "relu6", "sigmoid", "silu", "hardswish", "hardsigmoid"})
    void activationFusesIntoTheConvBeforeIt(String activation) {
        Model model = model(b -> b.op(activation, "act", Attributes.EMPTY, conv(b, "conv", "x", 6, 4, 3, 1, true)));
        Model fused = assertKeepsOutputs(model, Passes::fuseActivations);
        assertEquals(List.of("conv2d"), ops(fused));
        assertEquals(activation, fused.graph().nodes().getFirst().attributes().getString("activation"));
    }

    @Test
    void activationFusesIntoALinearButNotAnOnnxHardsigmoid() {
        Model model = model(b -> {
            String x = b.op("flatten", "flatten", Attributes.EMPTY, b.op("global_avg_pool", "pool", Attributes.EMPTY, "x"));
            x = b.op("linear", "fc", Attributes.EMPTY, x, b.parameter("fc.weight", 5, 6), b.parameter("fc.bias", 5));
            x = b.op("hardswish", "hs", Attributes.EMPTY, x);
            x = b.op("linear", "fc2", Attributes.EMPTY, x, b.parameter("fc2.weight", 4, 5));
            return b.op("hardsigmoid", "gate", Attributes.of("alpha", 0.2f, "beta", 0.5f), x);
        });
        assertEquals(List.of("global_avg_pool", "flatten", "linear", "linear", "hardsigmoid"),
                ops(assertKeepsOutputs(model, Passes::fuseActivations)));
    }

    @Test
    void residualAddFusesIntoTheConvOnEitherSide() {
        for (boolean convFirst : new boolean[] {true, false}) {
            Model model = model(b -> {
                String c = b.op("relu6", "act", Attributes.EMPTY, conv(b, "conv", "x", 6, 6, 3, 6, false));
                return convFirst ? b.op("add", "add", Attributes.EMPTY, c, "x") : b.op("add", "add", Attributes.EMPTY, "x", c);
            });
            Model fused = assertKeepsOutputs(model, m -> withResiduals(Passes.fuseActivations(m)));
            assertEquals(List.of("conv2d"), ops(fused));
            assertEquals(List.of("x", "conv.weight", "", "x"), fused.graph().nodes().getFirst().inputs());
        }
    }

    /** Chains, where one fusion's result feeds the next candidate: stacked blocks, act(act(conv)), bn(bn(conv)). */
    @Test
    void chainsOfBlocksAndRepeatedOpsFuseOnce() {
        Model model = model(b -> {
            String x = "x";
            for (int block = 0; block < 3; block++) {
                String c = batchNorm(b, "bn" + block, conv(b, "conv" + block, x, 6, 6, 1, 1, false), 6);
                x = b.op("add", "add" + block, Attributes.EMPTY, b.op("relu", "relu" + block, Attributes.EMPTY, c), x);
            }
            x = b.op("relu6", "twice", Attributes.EMPTY, b.op("relu", "once", Attributes.EMPTY,
                    conv(b, "last", x, 6, 6, 3, 6, true)));
            return batchNorm(b, "bn_b", batchNorm(b, "bn_a", x, 6), 6);
        });
        Model optimized = assertKeepsOutputs(model, m -> withResiduals(Passes.optimize(m)));
        assertEquals(List.of("conv2d", "conv2d", "conv2d", "conv2d", "relu6", "batch_norm", "batch_norm"),
                ops(optimized));
    }

    @Test
    void residualAddStaysWhenItBroadcastsOrTheConvIsReadTwice() {
        Model broadcast = model(b -> b.op("add", "add", Attributes.EMPTY,
                conv(b, "conv", b.op("global_avg_pool", "pool", Attributes.EMPTY, "x"), 6, 6, 1, 1, true), "x"));
        assertEquals(ops(broadcast), ops(assertKeepsOutputs(broadcast, PassesTest::withResiduals)));
        Model twice = model(b -> {
            String c = conv(b, "conv", "x", 6, 6, 1, 1, true);
            return b.op("mul", "mul", Attributes.EMPTY, b.op("add", "add", Attributes.EMPTY, c, "x"), c);
        });
        assertEquals(ops(twice), ops(assertKeepsOutputs(twice, PassesTest::withResiduals)));
    }

    private static Model withResiduals(Model model) {
        return Passes.fuseResiduals(model, model.graph().inferShapes(INPUT, OPERATORS));
    }

    @Test
    void identitiesAreDroppedExceptAGraphOutput() {
        Model model = model(b -> {
            String x = b.op("dropout", "drop", Attributes.of("p", 0.2f), "x");
            x = b.op("stochastic_depth", "sd", Attributes.of("p", 0.1f), conv(b, "conv", x, 6, 6, 1, 1, true));
            x = b.op("add", "add", Attributes.EMPTY, x, b.op("identity", "id", Attributes.EMPTY, "x"));
            return b.op("identity", "out", Attributes.EMPTY, x);
        });
        Model dropped = assertKeepsOutputs(model, Passes::dropIdentities);
        assertEquals(List.of("conv2d", "add", "identity"), ops(dropped));
        assertEquals(List.of("out"), dropped.graph().outputs());
    }

    /** An EfficientNet MBConv block (expand, depthwise, squeeze-excite, project, residual) collapses to its convs. */
    @Test
    void allPassesTurnAnMbConvBlockIntoConvsAndTheSqueezeExcite() {
        Model model = model(b -> {
            String x = b.op("silu", "expand.act", Attributes.EMPTY,
                    batchNorm(b, "expand.bn", conv(b, "expand", "x", 6, 24, 1, 1, false), 24));
            x = b.op("silu", "dw.act", Attributes.EMPTY, batchNorm(b, "dw.bn", conv(b, "dw", x, 24, 24, 5, 24, false), 24));
            String s = b.op("global_avg_pool", "se.pool", Attributes.EMPTY, x);
            s = b.op("silu", "se.act", Attributes.EMPTY, conv(b, "se.fc1", s, 24, 2, 1, 1, true));
            s = b.op("sigmoid", "se.gate", Attributes.EMPTY, conv(b, "se.fc2", s, 2, 24, 1, 1, true));
            x = b.op("mul", "se.mul", Attributes.EMPTY, s, x);
            x = batchNorm(b, "project.bn", conv(b, "project", x, 24, 6, 1, 1, false), 6);
            x = b.op("stochastic_depth", "sd", Attributes.of("p", 0.1f), x);
            return b.op("add", "add", Attributes.EMPTY, x, "x");
        });
        Model optimized = assertKeepsOutputs(model, m -> withResiduals(Passes.optimize(m)));
        assertEquals(List.of("conv2d", "conv2d", "global_avg_pool", "conv2d", "conv2d", "mul", "conv2d"),
                ops(optimized));
        // The gate then goes into the project conv: no mul, the gated tensor is never written.
        Model gated = assertKeepsOutputs(optimized, PassesTest::withChannelScales);
        assertEquals(List.of("conv2d", "conv2d", "global_avg_pool", "conv2d", "conv2d", "conv2d"), ops(gated));
        Node project = gated.graph().nodes().getLast();
        assertEquals(List.of("dw.act", "x", "se.gate"), List.of(project.input(0), project.input(3), project.input(4)));
    }

    /**
     * The squeeze-excite pool after a depthwise conv becomes that conv's second output, plain or
     * fused with its expansion; a pool after a dense conv or an add, or on a map under 28x28, stays.
     */
    @Test
    void theSqueezePoolBecomesASecondOutputOfTheDepthwiseConv() {
        Model model = model(b -> {
            String x = activated(b, "expand", "x", 6, 30, 1, 1, 1, "silu");
            x = activated(b, "dw", x, 30, 30, 3, 30, 1, "silu");
            String s = b.op("global_avg_pool", "se.pool", Attributes.EMPTY, x);
            s = b.op("sigmoid", "se.gate", Attributes.EMPTY, conv(b, "se.fc", s, 30, 30, 1, 1, true));
            return activated(b, "project", b.op("mul", "se.mul", Attributes.EMPTY, s, x), 30, 6, 1, 1, 1, "none");
        });
        for (boolean expanded : new boolean[] {false, true}) {
            Model fused = assertKeepsOutputs(model, m -> {
                Map<String, Shape> shapes = m.graph().inferShapes(LARGE, OPERATORS);
                Model before = expanded ? Passes.fuseExpandDepthwise(m, shapes) : m;
                return Passes.fuseSqueezePools(before, shapes);
            }, LARGE);
            List<String> convs = expanded ? List.of("expand_depthwise", "conv2d", "sigmoid", "mul", "conv2d")
                    : List.of("conv2d", "conv2d", "conv2d", "sigmoid", "mul", "conv2d");
            assertEquals(convs, ops(fused));
            Node dw = fused.graph().nodes().get(expanded ? 0 : 1);
            assertEquals(List.of("dw", "se.pool"), dw.outputs());
            assertEquals(1, dw.attributes().getInt("pool_output", 0));
        }
        assertEquals(ops(model), ops(assertKeepsOutputs(model,
                m -> Passes.fuseSqueezePools(m, m.graph().inferShapes(INPUT, OPERATORS)))));
        Model dense = model(b -> b.op("global_avg_pool", "pool", Attributes.EMPTY, conv(b, "conv", "x", 6, 6, 3, 1, true)));
        Model added = model(b -> b.op("global_avg_pool", "pool", Attributes.EMPTY, b.op("add", "add", Attributes.EMPTY,
                "x", "x")));
        for (Model other : List.of(dense, added)) {
            assertEquals(ops(other), ops(assertKeepsOutputs(other,
                    m -> Passes.fuseSqueezePools(m, m.graph().inferShapes(LARGE, OPERATORS)), LARGE)));
        }
    }

    @Test
    void channelScaleStaysUnlessAOneByOneConvIsItsOnlyReader() {
        // 3x3 conv after the gate; a gated tensor read twice; a scale that is not per channel; a padded 1x1.
        Model threeByThree = model(b -> conv(b, "conv", b.op("mul", "mul", Attributes.EMPTY, "x",
                b.op("global_avg_pool", "pool", Attributes.EMPTY, "x")), 6, 6, 3, 1, true));
        assertEquals(ops(threeByThree), ops(assertKeepsOutputs(threeByThree, PassesTest::withChannelScales)));
        Model twice = model(b -> {
            String gated = b.op("mul", "mul", Attributes.EMPTY, "x", b.op("global_avg_pool", "pool", Attributes.EMPTY, "x"));
            return b.op("add", "add", Attributes.EMPTY, conv(b, "conv", gated, 6, 6, 1, 1, true), gated);
        });
        assertEquals(ops(twice), ops(assertKeepsOutputs(twice, PassesTest::withChannelScales)));
        Model elementwise = model(b -> conv(b, "conv", b.op("mul", "mul", Attributes.EMPTY, "x", "x"), 6, 6, 1, 1, true));
        assertEquals(ops(elementwise), ops(assertKeepsOutputs(elementwise, PassesTest::withChannelScales)));
        Model padded = model(b -> b.op("conv2d", "conv", Attributes.of("padding", 1), b.op("mul", "mul",
                Attributes.EMPTY, "x", b.op("global_avg_pool", "pool", Attributes.EMPTY, "x")),
                b.parameter("conv.weight", 6, 6, 1, 1)));
        assertEquals(ops(padded), ops(assertKeepsOutputs(padded, PassesTest::withChannelScales)));
    }

    private static Model withChannelScales(Model model) {
        return Passes.fuseChannelScales(model, model.graph().inferShapes(INPUT, OPERATORS));
    }

    /** A map of 30x29: large enough for {@link Passes#fuseExpandDepthwise} (at least 28x28). */
    private static final Shape LARGE = Shape.of(1, 6, 30, 29);

    private static String activated(GraphBuilder b, String name, String x, int in, int out, int kernel, int groups,
                                    int stride, String activation) {
        String w = b.parameter(name + ".weight", out, in / groups, kernel, kernel);
        Attributes a = Attributes.of("padding", kernel / 2, "groups", groups, "stride", stride, "activation", activation);
        return b.op("conv2d", name, a, x, w, b.parameter(name + ".bias", out));
    }

    /** An inverted residual block's expansion and depthwise convs become one expand_depthwise node, with both activations. */
    @Test
    void expansionFusesIntoTheDepthwiseConvAfterIt() {
        for (int stride : new int[] {1, 2}) {
            Model model = model(b -> {
                String x = activated(b, "expand", "x", 6, 30, 1, 1, 1, "silu");
                x = activated(b, "dw", x, 30, 30, 5, 30, stride, "relu6");
                return activated(b, "project", x, 30, 6, 1, 1, 1, "none");
            });
            Model fused = assertKeepsOutputs(model, m -> withExpandDepthwise(m, LARGE), LARGE);
            assertEquals(List.of("expand_depthwise", "conv2d"), ops(fused));
            Node node = fused.graph().nodes().getFirst();
            assertEquals("silu", node.attributes().getString("expand_activation"));
            assertEquals("relu6", node.attributes().getString("activation"));
        }
    }

    @Test
    void expansionStaysUnlessADirectDepthwiseConvOnALargeMapIsItsOnlyReader() {
        // Read twice (by the depthwise conv and an add); a 3x3 first conv; a 7x7 depthwise kernel.
        Model twice = model(b -> {
            String e = activated(b, "expand", "x", 6, 6, 1, 1, 1, "relu");
            return b.op("add", "add", Attributes.EMPTY, activated(b, "dw", e, 6, 6, 3, 6, 1, "relu"), e);
        });
        Model threeByThree = model(b -> activated(b, "dw", activated(b, "conv", "x", 6, 12, 3, 1, 1, "relu"), 12, 12,
                3, 12, 1, "none"));
        Model sevenBySeven = model(b -> activated(b, "dw", activated(b, "expand", "x", 6, 12, 1, 1, 1, "relu"), 12,
                12, 7, 12, 1, "none"));
        for (Model model : List.of(twice, threeByThree, sevenBySeven)) {
            assertEquals(ops(model), ops(assertKeepsOutputs(model, m -> withExpandDepthwise(m, LARGE), LARGE)));
        }
        // The fusible pair on a 9x7 map: its expanded tensor stays in L2 anyway.
        Model small = model(b -> activated(b, "dw", activated(b, "expand", "x", 6, 12, 1, 1, 1, "relu"), 12, 12, 3,
                12, 1, "none"));
        assertEquals(ops(small), ops(assertKeepsOutputs(small, m -> withExpandDepthwise(m, INPUT))));
    }

    /**
     * An expansion below 4x of an input over 512 KB stays two convs (the fused kernel would read the
     * whole input once per band of 12 channels); 4x fuses, and so does the same pair on a small input.
     */
    @Test
    void onlyLargeExpansionsOrSmallInputsFuse() {
        Shape large = Shape.of(1, 6, 150, 150);
        assertTrue(4L * 6 * 150 * 150 > Passes.FUSED_INPUT_IN_L2);
        Model twice = model(b -> activated(b, "dw", activated(b, "expand", "x", 6, 12, 1, 1, 1, "relu"), 12, 12, 3,
                12, 2, "none"));
        Model fourTimes = model(b -> activated(b, "dw", activated(b, "expand", "x", 6, 24, 1, 1, 1, "relu"), 24, 24,
                3, 24, 2, "none"));
        assertEquals(List.of("conv2d", "conv2d"), ops(withExpandDepthwise(twice, large)));
        assertEquals(List.of("expand_depthwise"), ops(withExpandDepthwise(twice, LARGE)));
        assertEquals(List.of("expand_depthwise"), ops(withExpandDepthwise(fourTimes, large)));
    }

    private static Model withExpandDepthwise(Model model, Shape input) {
        return Passes.fuseExpandDepthwise(model, model.graph().inferShapes(input, OPERATORS));
    }
}
