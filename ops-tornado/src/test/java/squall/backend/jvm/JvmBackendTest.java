package squall.backend.jvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.KernelCall;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/** The JVM backend against the portable kernels run node by node, and its planning and threading. */
class JvmBackendTest {
    private static final Operators OPERATORS = Operators.discover();

    /** conv-bn-relu-pool, a depthwise conv with a fused residual, then pool-flatten-dropout-linear-softmax. */
    static Model smallNetwork() {
        return smallNetwork(Shape.of(-1, 3, -1, -1));
    }

    /** {@link #smallNetwork()} with its input declared as {@code input} (-1: any size). */
    static Model smallNetwork(Shape input) {
        var b = Graph.builder("small");
        String x = b.input("input", input);
        x = b.op("conv2d", "stem", Attributes.of("stride", 2, "padding", 1), x, b.parameter("stem.weight", 10, 3, 3, 3));
        x = b.op("batch_norm", "bn", Attributes.of("epsilon", 1e-3f), x, b.parameter("bn.weight", 10),
                b.parameter("bn.bias", 10), b.parameter("bn.running_mean", 10), b.parameter("bn.running_var", 10));
        x = b.op("relu", "relu", Attributes.EMPTY, x);
        x = b.op("max_pool2d", "pool", Attributes.of("kernel_size", 3, "stride", 2, "padding", 1), x);
        x = b.op("conv2d", "dw", Attributes.of("padding", 1, "groups", 10, "activation", "hardswish"), x,
                b.parameter("dw.weight", 10, 1, 3, 3), b.parameter("dw.bias", 10), x);
        x = b.op("global_avg_pool", "avgpool", Attributes.EMPTY, x);
        x = b.op("flatten", "flatten", Attributes.EMPTY, x);
        x = b.op("dropout", "dropout", Attributes.of("p", 0.2f), x);
        x = b.op("linear", "fc", Attributes.EMPTY, x, b.parameter("fc.weight", 7, 10), b.parameter("fc.bias", 7));
        x = b.op("softmax", "softmax", Attributes.EMPTY, x);
        Graph graph = b.output(x).build();
        Random random = new Random(42);
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> {
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = name.endsWith("running_var") ? 0.5f + random.nextFloat() : random.nextFloat() * 2 - 1;
            }
            weights.put(name, new Tensor(shape, data));
        });
        return Model.bind(graph, weights, "random weights");
    }

    /** The reference: every node's portable kernels, one after another, each output in a fresh array. */
    static Tensor runPortable(Model model, Tensor input) {
        Graph graph = model.graph();
        return runPortable(model, Map.of(graph.inputs().keySet().iterator().next(), input))
                .get(graph.outputs().getFirst());
    }

    /** Every output of the graph, computed node by node with the portable kernels. */
    static Map<String, Tensor> runPortable(Model model, Map<String, Tensor> inputs) {
        Graph graph = model.graph();
        Map<String, Shape> inputShapes = new HashMap<>();
        inputs.forEach((name, t) -> inputShapes.put(name, t.shape()));
        Map<String, Shape> shapes = graph.inferShapes(inputShapes, OPERATORS);
        Map<String, float[]> values = new HashMap<>();
        inputs.forEach((name, t) -> values.put(name, t.data()));
        model.weights().forEach((name, t) -> values.put(name, t.data()));
        for (Node node : graph.nodes()) {
            List<Shape> inShapes = new ArrayList<>();
            float[][] in = new float[node.inputs().size()][];
            for (int i = 0; i < in.length; i++) {
                inShapes.add(shapes.get(node.inputs().get(i)));
                in[i] = values.get(node.inputs().get(i));
            }
            var context = JvmKernelContext.withNewOutputs(node, inShapes,
                    node.outputs().stream().map(shapes::get).toList(), in);
            OPERATORS.get(node.op()).kernels(context).forEach(KernelCall::invoke);
            for (int i = 0; i < node.outputs().size(); i++) {
                values.put(node.outputs().get(i), context.output(i));
            }
        }
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (String out : graph.outputs()) {
            outputs.put(out, new Tensor(shapes.get(out), values.get(out)));
        }
        return outputs;
    }

    static Tensor image(Random random, int batch, int height, int width) {
        float[] data = new float[batch * 3 * height * width];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 2 - 1;
        }
        return new Tensor(Shape.of(batch, 3, height, width), data);
    }

    private static CompiledModel compile(Model model, int threads) {
        return compile(model, threads, "all");
    }

    /** No warm-up: these models are tiny and the tests time nothing. */
    private static CompiledModel compile(Model model, int threads, String passes) {
        return Backends.select("jvm").compile(model, OPERATORS, Map.of("threads", String.valueOf(threads),
                "passes", passes, "warmup", "0"));
    }

    /**
     * The backend (CPU kernels, with and without the compiler passes) against the portable kernels
     * node by node: |backend - portable| <= 1e-5 · (|portable| + mean |portable|), since folding
     * batch norm and the Vector API kernels change the float rounding.
     */
    @ParameterizedTest
    @ValueSource(strings = {"1 all", "2 all", "1 none", "2 none"})
    void matchesThePortableKernelsAtAnyBatchAndSize(String threadsAndPasses) {
        int threads = Integer.parseInt(threadsAndPasses.split(" ")[0]);
        Model model = smallNetwork();
        Random random = new Random(threads);
        try (CompiledModel compiled = compile(model, threads, threadsAndPasses.split(" ")[1])) {
            // {3, 72, 64} runs its steps down to 18x16 image by image (Plan.DEPTH_FIRST_PIXELS).
            for (int[] size : new int[][] {{1, 32, 32}, {3, 17, 23}, {2, 9, 9}, {3, 72, 64}, {1, 32, 32}}) {
                Tensor input = image(random, size[0], size[1], size[2]);
                Tensor expected = runPortable(model, input);
                Tensor actual = compiled.run(input);
                assertEquals(Shape.of(size[0], 7), actual.shape());
                assertClose(expected.data(), actual.data(), "batch " + size[0] + " " + size[1] + "x" + size[2]);
            }
        }
    }

    private static float[] randomValues(Random random, int size) {
        float[] values = new float[size];
        for (int i = 0; i < size; i++) {
            values[i] = random.nextFloat() * 2 - 1;
        }
        return values;
    }

    static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double meanAbs = 0;
        for (float v : expected) {
            meanAbs += Math.abs(v) / expected.length;
        }
        for (int i = 0; i < expected.length; i++) {
            double tolerance = 1e-5 * (Math.abs(expected[i]) + meanAbs);
            assertTrue(Math.abs(expected[i] - actual[i]) <= tolerance, what + ": element " + i + " is " + actual[i]
                    + ", expected " + expected[i] + " within " + tolerance);
        }
    }

    /**
     * A conv whose weight is a graph input (as in ONNX's Conv test cases) may change between runs:
     * the CPU kernel must not keep the weights it packed at compile. Checked against the portable
     * kernel with new weights on every run.
     */
    @Test
    void weightsFedAsInputsAreReadOnEveryRun() {
        var b = Graph.builder("conv with weight input");
        String x = b.input("x", Shape.of(1, 3, 9, 9));
        String w = b.input("w", Shape.of(13, 3, 3, 3));
        Graph graph = b.output(b.op("conv2d", "conv", Attributes.of("padding", 1), x, w)).build();
        Model model = new Model(graph, Map.of());
        Random random = new Random(5);
        try (CompiledModel compiled = compile(model, 2)) {
            for (int run = 0; run < 3; run++) {
                Map<String, Tensor> inputs = Map.of("x", random(random, Shape.of(1, 3, 9, 9)),
                        "w", random(random, Shape.of(13, 3, 3, 3)));
                Tensor expected = runPortable(model, inputs).get(graph.outputs().getFirst());
                Tensor actual = compiled.run(inputs).get(graph.outputs().getFirst());
                assertClose(expected.data(), actual.data(), "run " + run);
            }
        }
    }

    private static Tensor random(Random random, Shape shape) {
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) random.nextGaussian();
        }
        return new Tensor(shape, data);
    }

    @Test
    void warmUpAtCompileLeavesNoPlanBehind() {
        try (var compiled = (JvmCompiledModel) Backends.select("jvm").compile(smallNetwork(), OPERATORS,
                Map.of("threads", "1", "warmup", "50"))) {
            assertEquals(0, compiled.planCount());
        }
        var badWarmup = assertThrows(SquallException.class, () -> Backends.select("jvm")
                .compile(smallNetwork(), OPERATORS, Map.of("warmup", "-1")));
        assertTrue(badWarmup.getMessage().contains("warmup"), badWarmup.getMessage());
        var badPasses = assertThrows(SquallException.class, () -> Backends.select("jvm")
                .compile(smallNetwork(), OPERATORS, Map.of("passes", "some")));
        assertTrue(badPasses.getMessage().contains("passes"), badPasses.getMessage());
    }

    @Test
    void concurrentRunsMatchSequentialRuns() throws Exception {
        Model model = smallNetwork();
        Random random = new Random(7);
        List<Tensor> inputs = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            inputs.add(image(random, 1 + i % 2, 24, 24));
        }
        try (CompiledModel compiled = compile(model, 2)) {
            List<Tensor> sequential = inputs.stream().map(compiled::run).toList();
            ExecutorService callers = Executors.newFixedThreadPool(4);
            try {
                List<Future<Tensor>> futures = new ArrayList<>();
                for (int round = 0; round < 3; round++) {
                    for (Tensor input : inputs) {
                        futures.add(callers.submit(() -> compiled.run(input)));
                    }
                }
                for (int i = 0; i < futures.size(); i++) {
                    assertArrayEquals(sequential.get(i % inputs.size()).data(), futures.get(i).get().data(),
                            "concurrent run " + i);
                }
            } finally {
                callers.shutdown();
            }
        }
    }

    @Test
    void buffersAreSharedByLivenessAndIdentityOpsAreAliased() {
        Model model = smallNetwork();
        // As written: the passes would fold batch norm and fuse relu, leaving fewer values.
        var compiled = (JvmCompiledModel) compile(model, 1, "none");
        // Small maps (7x7 at most, Plan.DEPTH_FIRST_PIXELS): a batch runs whole (no steps image by
        // image), as this counts.
        Shape input = Shape.of(2, 3, 14, 14);
        var buffers = compiled.plan(Map.of("input", input)).buffers();
        Map<String, Shape> shapes = model.graph().inferShapes(input, OPERATORS);
        long sumOfOutputs = 0;
        for (Node node : model.graph().nodes()) {
            sumOfOutputs += shapes.get(node.output()).size();
        }
        long widestNodeCut = 0;
        for (Node node : model.graph().nodes()) {
            long cut = shapes.get(node.output()).size();
            for (String in : node.inputs()) {
                cut += model.graph().parameters().containsKey(in) || in.equals("input") ? 0 : shapes.get(in).size();
            }
            widestNodeCut = Math.max(widestNodeCut, cut);
        }
        assertTrue(buffers.totalFloats() < sumOfOutputs, buffers.totalFloats() + " floats vs " + sumOfOutputs);
        assertEquals(widestNodeCut, buffers.totalFloats(), "a chain's peak is its widest cut");
        // flatten and dropout are aliases: they take no buffer, so 8 nodes write values, not 10.
        long written = java.util.Arrays.stream(buffers.bufferOfValue()).filter(b -> b >= 0).count();
        assertEquals(8, written);
        compiled.close();
    }

    /**
     * A depthwise conv at stride 1 writes over its input where no later step reads the input
     * (Operator.writesInPlace), and the outputs still match the portable kernels run node by node.
     */
    @Test
    void depthwiseConvsRunInPlaceOnlyWhereTheirInputIsDeadAfterThem() {
        var b = Graph.builder("in place");
        String x = b.input("input", Shape.of(-1, 3, -1, -1));
        String stem = b.op("conv2d", "stem", Attributes.of("stride", 2, "padding", 1), x,
                b.parameter("stem.weight", 8, 3, 3, 3));
        String dw1 = b.op("conv2d", "dw1", Attributes.of("padding", 1, "groups", 8, "activation", "relu6"), stem,
                b.parameter("dw1.weight", 8, 1, 3, 3));
        String pw = b.op("conv2d", "pw", Attributes.EMPTY, dw1, b.parameter("pw.weight", 8, 8, 1, 1));
        // Reads pw twice (input and residual), then dw3's input is read again by the add.
        String dw2 = b.op("conv2d", "dw2", Attributes.of("padding", 2, "groups", 8), pw,
                b.parameter("dw2.weight", 8, 1, 5, 5), b.parameter("dw2.bias", 8), pw);
        String dw3 = b.op("conv2d", "dw3", Attributes.of("padding", 1, "groups", 8, "activation", "silu"), dw2,
                b.parameter("dw3.weight", 8, 1, 3, 3));
        String sum = b.op("add", "add", Attributes.EMPTY, dw3, dw2);
        Graph graph = b.output(b.op("conv2d", "dw4", Attributes.of("stride", 2, "padding", 1, "groups", 8), sum,
                b.parameter("dw4.weight", 8, 1, 3, 3))).build();
        Random random = new Random(5);
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> {
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = random.nextFloat() - 0.5f;
            }
            weights.put(name, new Tensor(shape, data));
        });
        Model model = Model.bind(graph, weights, "random weights");
        var compiled = (JvmCompiledModel) compile(model, 2, "none");
        // Maps of 7x7 at most: the batch runs whole, not image by image through a head plan.
        Tensor input = image(random, 2, 14, 13);
        Plan plan = compiled.plan(Map.of("input", input.shape()));
        assertEquals(plan.bufferOf(stem), plan.bufferOf(dw1), "dw1 over the stem's output");
        assertNotEquals(plan.bufferOf(pw), plan.bufferOf(dw2), "pw is dw2's residual too");
        assertNotEquals(plan.bufferOf(dw2), plan.bufferOf(dw3), "the add reads dw2 after dw3");
        assertNotEquals(plan.bufferOf(sum), plan.bufferOf("dw4"), "stride 2");
        assertClose(runPortable(model, input).data(), compiled.run(input).data(), "in place");
        compiled.close();
    }

    /**
     * A batch runs its steps on maps over 7x7 image by image, the rest as one batch: the same
     * outputs as the whole batch planned as one (the cut moves no sum across images) and as each
     * image run alone, and only the tail's buffers are sized for the batch. With two threads each
     * runs whole images of the head on its own buffers, and an image left over runs on all threads
     * (three images: two side by side, then the third).
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void aBatchRunsItsLargeMapsImageByImage(int threads) {
        Model model = smallNetwork();
        Random random = new Random(7);
        Tensor batch = image(random, 3, 72, 64);
        try (var compiled = (JvmCompiledModel) compile(model, threads)) {
            Plan plan = compiled.plan(Map.of("input", batch.shape()));
            // stem 36x32, pool and dw 18x16 (288 pixels) run image by image; avgpool, fc, softmax as a batch.
            assertEquals(List.of("stem", "pool", "dw"), plan.steps().subList(0, plan.headSteps()).stream()
                    .map(Node::name).toList());
            assertEquals(0, compiled.plan(Map.of("input", Shape.of(1, 3, 72, 64))).headSteps());
            Tensor depthFirst = compiled.run(batch);
            Plan whole = new Plan(squall.ops.passes.Passes.optimize(model), OPERATORS, Map.of("input", batch.shape()),
                    true, true, false, -1);
            assertEquals(0, whole.headSteps());
            Tensor asOneBatch = whole.run(Map.of("input", batch), squall.api.Workers.of(threads))
                    .get(model.graph().outputs().getFirst());
            assertArrayEquals(asOneBatch.data(), depthFirst.data());
            int imageSize = batch.shape().size() / 3;
            for (int n = 0; n < 3; n++) {
                float[] one = java.util.Arrays.copyOfRange(batch.data(), n * imageSize, (n + 1) * imageSize);
                Tensor alone = compiled.run(new Tensor(Shape.of(1, 3, 72, 64), one));
                assertArrayEquals(alone.data(), java.util.Arrays.copyOfRange(depthFirst.data(), n * 7, n * 7 + 7),
                        "image " + n);
            }
            assertTrue(plan.buffers().totalFloats() < whole.buffers().totalFloats(),
                    plan.buffers().totalFloats() + " floats vs " + whole.buffers().totalFloats());
        }
    }

    /**
     * An expansion of 2x on a 6-channel 160x160 input (600 KB: over {@code
     * Passes.FUSED_INPUT_IN_L2}) stays apart from its depthwise conv at batch 1 and in a batch's
     * head alike: the batch keeps its head (its steps must match the batch plan's), and each image
     * gives the outputs it gives alone.
     */
    @Test
    void aBatchKeepsItsHeadWhereAnExpansionStaysApart() {
        var b = Graph.builder("expansion");
        String x = b.input("input", Shape.of(-1, 6, -1, -1));
        x = b.op("conv2d", "expand", Attributes.of("activation", "relu"), x, b.parameter("expand.weight", 12, 6, 1, 1),
                b.parameter("expand.bias", 12));
        x = b.op("conv2d", "dw", Attributes.of("padding", 1, "groups", 12, "stride", 2, "activation", "relu"), x,
                b.parameter("dw.weight", 12, 1, 3, 3), b.parameter("dw.bias", 12));
        // A 1x1 conv before the pool, which would otherwise become the depthwise conv's second output.
        x = b.op("conv2d", "project", Attributes.EMPTY, x, b.parameter("project.weight", 12, 12, 1, 1));
        x = b.op("global_avg_pool", "avgpool", Attributes.EMPTY, x);
        Model model = withRandomWeights(b.output(x).build(), 5);
        Random random = new Random(5);
        float[] data = new float[2 * 6 * 160 * 160];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 2 - 1;
        }
        Tensor batch = new Tensor(Shape.of(2, 6, 160, 160), data);
        try (var compiled = (JvmCompiledModel) compile(model, 2)) {
            Shape one = Shape.of(1, 6, 160, 160);
            assertEquals(List.of("conv2d", "conv2d", "conv2d", "global_avg_pool"),
                    compiled.plan(Map.of("input", one)).steps().stream().map(Node::op).toList());
            Plan plan = compiled.plan(Map.of("input", batch.shape()));
            assertEquals(List.of("conv2d", "conv2d", "conv2d"), plan.steps().subList(0, plan.headSteps()).stream()
                    .map(Node::op).toList());
            Tensor both = compiled.run(batch);
            for (int n = 0; n < 2; n++) {
                float[] image = java.util.Arrays.copyOfRange(data, n * one.size(), (n + 1) * one.size());
                float[] alone = compiled.run(new Tensor(one, image)).data();
                for (int c = 0; c < 12; c++) {
                    assertEquals(alone[c], both.data()[n * 12 + c], "image " + n + " channel " + c);
                }
            }
        }
    }

    /**
     * A graph whose input batch is free but that reshapes to a fixed batch inside (as some ONNX
     * exports do) cannot run one image at a time: it runs whole, with the same outputs.
     */
    @Test
    void aReshapeToAFixedBatchRunsItWhole() {
        var b = Graph.builder("fixed_reshape");
        String x = b.input("input", Shape.of(-1, 3, 40, 40));
        x = b.op("conv2d", "conv", Attributes.of("padding", 1), x, b.parameter("conv.weight", 4, 3, 3, 3));
        x = b.op("reshape", "reshape", Attributes.of("shape", new int[] {3, -1}), x);
        x = b.op("linear", "fc", Attributes.EMPTY, x, b.parameter("fc.weight", 5, 6400), b.parameter("fc.bias", 5));
        Graph graph = b.output(x).build();
        Random random = new Random(9);
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> weights.put(name,
                new Tensor(shape, randomValues(random, shape.size()))));
        Model model = Model.bind(graph, weights, "random weights");
        Tensor batch = image(random, 3, 40, 40);
        try (var compiled = (JvmCompiledModel) compile(model, 2)) {
            assertEquals(0, compiled.plan(Map.of("input", batch.shape())).headSteps());
            assertClose(runPortable(model, batch).data(), compiled.run(batch).data(), "reshape to a batch of 3");
        }
    }

    /** A graph declared for a fixed batch (as ONNX exports often are) has no one-image plan: it runs whole. */
    @Test
    void aGraphWithAFixedBatchRunsItWhole() {
        Model model = smallNetwork(Shape.of(3, 3, 72, 64));
        Tensor batch = image(new Random(8), 3, 72, 64);
        try (var compiled = (JvmCompiledModel) compile(model, 2)) {
            assertEquals(0, compiled.plan(Map.of("input", batch.shape())).headSteps());
            assertClose(runPortable(model, batch).data(), compiled.run(batch).data(), "fixed batch of 3");
        }
    }

    @Test
    void aliasedIdentityOfTheInputIsStillCopiedOut() {
        var b = Graph.builder("identity");
        String x = b.input("x", Shape.of(-1, 4));
        x = b.op("flatten", "flatten", Attributes.EMPTY, b.op("dropout", "dropout", Attributes.EMPTY, x));
        Graph graph = b.output(x).build();
        try (CompiledModel compiled = compile(new Model(graph, Map.of()), 2)) {
            Tensor input = Tensor.of(Shape.of(2, 4), 1, 2, 3, 4, 5, 6, 7, 8);
            Tensor out = compiled.run(input);
            assertArrayEquals(input.data(), out.data());
            assertTrue(out.data() != input.data(), "the caller gets its own array");
        }
    }

    @Test
    void closedModelRefusesToRun() {
        CompiledModel compiled = compile(smallNetwork(), 1);
        Tensor input = image(new Random(1), 1, 16, 16);
        compiled.run(input);
        compiled.close();
        var error = assertThrows(SquallException.class, () -> compiled.run(input));
        assertTrue(error.getMessage().contains("closed"), error.getMessage());
    }

    @Test
    void badInputsAndOptionsAreReported() {
        try (CompiledModel compiled = compile(smallNetwork(), 1)) {
            var wrongChannels = assertThrows(SquallException.class,
                    () -> compiled.run(new Tensor(Shape.of(1, 4, 8, 8), new float[256])));
            assertTrue(wrongChannels.getMessage().contains("[1, 4, 8, 8]"), wrongChannels.getMessage());
            var wrongName = assertThrows(SquallException.class,
                    () -> compiled.run(Map.of("image", new Tensor(Shape.of(1, 3, 8, 8), new float[192]))));
            assertTrue(wrongName.getMessage().contains("image") && wrongName.getMessage().contains("input"),
                    wrongName.getMessage());
        }
        var badThreads = assertThrows(SquallException.class, () -> Backends.select("jvm")
                .compile(smallNetwork(), OPERATORS, Map.of("threads", "zero")));
        assertTrue(badThreads.getMessage().contains("threads"), badThreads.getMessage());
        var b = Graph.builder("unknown");
        Graph graph = b.output(b.op("gelu", "act", Attributes.EMPTY, b.input("x", Shape.of(-1, 4)))).build();
        var unknown = assertThrows(SquallException.UnknownOperator.class,
                () -> compile(new Model(graph, Map.of()), 1));
        assertTrue(unknown.getMessage().contains("'gelu'"), unknown.getMessage());
    }

    @Test
    void jvmIsAlwaysAvailableAndDescribesItsCpu() {
        var backend = Backends.select("jvm");
        assertInstanceOf(JvmBackend.class, backend);
        assertTrue(backend.isAvailable());
        assertTrue(backend.devices().getFirst().contains(Runtime.getRuntime().availableProcessors() + " cores"),
                backend.devices().toString());
        try (var compiled = backend.compile(smallNetwork(), OPERATORS, Map.of("warmup", "0"))) {
            assertEquals("jvm", compiled.backend());
        }
        assertTrue(JvmBackend.workers(2) == JvmBackend.workers(2), "one pool per thread count");
        Map<String, Tensor> named = new LinkedHashMap<>();
        named.put("input", image(new Random(3), 1, 8, 8));
        try (var compiled = backend.compile(smallNetwork(), OPERATORS, Map.of("threads", "2", "warmup", "0"))) {
            assertEquals(List.of("softmax"), List.copyOf(compiled.run(named).keySet()));
        }
    }

    /** An SE-style block: silu conv, pool, linear (Dense) with sigmoid, so every lane reduction and exp runs. */
    static Model squeezeExciteNetwork() {
        var b = Graph.builder("se");
        String x = b.input("input", Shape.of(-1, 3, -1, -1));
        x = b.op("conv2d", "stem", Attributes.of("stride", 2, "padding", 1, "activation", "silu"), x,
                b.parameter("stem.weight", 40, 3, 3, 3));
        x = b.op("global_avg_pool", "pool", Attributes.EMPTY, x);
        x = b.op("flatten", "flatten", Attributes.EMPTY, x);
        x = b.op("linear", "fc", Attributes.of("activation", "sigmoid"), x, b.parameter("fc.weight", 37, 40),
                b.parameter("fc.bias", 37));
        Graph graph = b.output(x).build();
        return withRandomWeights(graph, 3);
    }

    /** The graph bound to weights uniform in [-1, 1) from {@code seed}. */
    static Model withRandomWeights(Graph graph, long seed) {
        Random random = new Random(seed);
        Map<String, Tensor> weights = new HashMap<>();
        graph.parameters().forEach((name, shape) -> {
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = random.nextFloat() * 2 - 1;
            }
            weights.put(name, new Tensor(shape, data));
        });
        return Model.bind(graph, weights, "random weights");
    }

    /**
     * A fresh model's first (cold, partly interpreted) run gives the same bits as its 200th, after
     * C2 has compiled the kernels: no lane reduction or exp whose rounding depends on the JIT.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void firstRunEqualsTheTwoHundredthBitForBit(int threads) {
        for (Model model : List.of(squeezeExciteNetwork(), smallNetwork())) {
            Tensor input = image(new Random(9), 2, 45, 37);
            try (CompiledModel compiled = compile(model, threads)) {
                float[] first = compiled.run(input).data();
                float[] later = first;
                for (int run = 1; run < 200; run++) {
                    later = compiled.run(input).data();
                }
                assertArrayEquals(first, later, model.graph().name() + " threads=" + threads);
                assertClose(runPortable(model, input).data(), later, model.graph().name());
            }
        }
    }

    /** A plan the heap cannot hold is refused before anything is allocated, with the -Xmx to use. */
    @Test
    void aPlanBiggerThanTheHeapSaysHowMuchItNeeds() {
        var b = Graph.builder("wide");
        String x = b.input("input", Shape.of(-1, 7, -1, -1));
        x = b.op("conv2d", "conv", Attributes.of("padding", 1), x, b.parameter("conv.weight", 7, 7, 3, 3));
        Graph graph = b.output(x).build();
        Model model = Model.bind(graph, Map.of("conv.weight", new Tensor(Shape.of(7, 7, 3, 3), new float[441])), "zeros");
        // 7 x 16384 x 16384 floats in and out, and as much again of im2col: about 30 GiB.
        Shape huge = Shape.of(1, 7, 16384, 16384);
        org.junit.jupiter.api.Assumptions.assumeTrue(Runtime.getRuntime().maxMemory() < 20L << 30,
                "this test needs a heap below 20 GiB");
        try (var compiled = (JvmCompiledModel) compile(model, 1)) {
            var e = assertThrows(SquallException.class, () -> compiled.plan(Map.of("input", huge)));
            assertTrue(e.getMessage().contains("not enough Java heap") && e.getMessage().contains("-Xmx")
                    && e.getMessage().contains("[1, 7, 16384, 16384]"), e.getMessage());
            // still usable at a sane size
            assertEquals(Shape.of(1, 7, 8, 8), compiled.run(new Tensor(Shape.of(1, 7, 8, 8), new float[448])).shape());
        }
    }
}
