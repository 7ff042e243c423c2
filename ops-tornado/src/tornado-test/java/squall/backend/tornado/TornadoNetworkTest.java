package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static squall.backend.tornado.TornadoOperatorsTest.BUILTIN;
import static squall.backend.tornado.TornadoOperatorsTest.assertClose;
import static squall.backend.tornado.TornadoOperatorsTest.randomModel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Whole networks as chains of task graphs, against the JVM backend: a small MobileNet-like stack of
 * every block kind, and the 15 networks of squall-networks when it is installed. Prints compile
 * time and steady-state latency per network.
 */
class TornadoNetworkTest {
    @BeforeAll
    static void tornadoIsThere() {
        TornadoOperatorsTest.tornadoIsThere();
    }

    /**
     * A stem conv, an inverted residual block with squeeze-excitation (expand, depthwise, SE, project
     * with the residual add fused), batch norm, a pooled head and a classifier, on odd sizes.
     */
    static Graph miniNetwork() {
        GraphBuilder b = Graph.builder("mini");
        Attributes relu6 = Attributes.of("activation", "relu6");
        String x = b.input("image", Shape.of(-1, 3, 17, 15));
        x = b.op("conv2d", "stem", relu6.with("stride", 2).with("padding", 1), x, b.parameter("stem.weight", 8, 3, 3, 3),
                b.parameter("stem.bias", 8));
        String expanded = b.op("conv2d", "expand", relu6, x, b.parameter("expand.weight", 24, 8, 1, 1),
                b.parameter("expand.bias", 24));
        String depthwise = b.op("conv2d", "depthwise", Attributes.of("padding", 1, "groups", 24), expanded,
                b.parameter("depthwise.weight", 24, 1, 3, 3), "");
        depthwise = b.op("batch_norm", "bn", Attributes.EMPTY, depthwise, b.parameter("bn.weight", 24),
                b.parameter("bn.bias", 24), b.parameter("bn.running_mean", 24), b.parameter("bn.running_var", 24));
        depthwise = b.op("hardswish", "act", Attributes.EMPTY, depthwise);
        String squeezed = b.op("global_avg_pool", "se.pool", Attributes.EMPTY, depthwise);
        squeezed = b.op("conv2d", "se.fc1", Attributes.of("activation", "relu"), squeezed,
                b.parameter("se.fc1.weight", 6, 24, 1, 1), b.parameter("se.fc1.bias", 6));
        squeezed = b.op("conv2d", "se.fc2", Attributes.of("activation", "hardsigmoid"), squeezed,
                b.parameter("se.fc2.weight", 24, 6, 1, 1), b.parameter("se.fc2.bias", 24));
        String excited = b.op("mul", "se.scale", Attributes.EMPTY, depthwise, squeezed);
        x = b.op("conv2d", "project", Attributes.EMPTY, excited, b.parameter("project.weight", 8, 24, 1, 1),
                b.parameter("project.bias", 8), x);
        x = b.op("max_pool2d", "pool", Attributes.of("kernel_size", 3, "stride", 2, "padding", 1), x);
        x = b.op("global_avg_pool", "head.pool", Attributes.EMPTY, x);
        x = b.op("flatten", "flatten", Attributes.EMPTY, x);
        x = b.op("dropout", "dropout", Attributes.of("p", 0.2f), x);
        x = b.op("linear", "classifier", Attributes.EMPTY, x, b.parameter("classifier.weight", 10, 8),
                b.parameter("classifier.bias", 10));
        return b.output(b.op("softmax", "probabilities", Attributes.EMPTY, x)).build();
    }

    /**
     * With passes both backends run the same rewritten graph (batch norm folded, activations and
     * residual fused); the tornado backend with its device conv kernels and with the portable ones.
     */
    @ParameterizedTest(name = "passes {0}, kernels {1}")
    @CsvSource({"all, device", "none, device", "all, portable"})
    void miniNetworkMatchesTheJvmBackendRunAfterRunAndAcrossBatchSizes(String passes, String kernels) {
        Model model = randomModel(miniNetwork(), 7);
        try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, Map.of("passes", passes));
             CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN,
                     Map.of("passes", passes, "kernels", kernels))) {
            // New inputs each run (sent every run) against weights sent once; then a new batch size,
            // which gets its own task graph.
            for (int[] run : new int[][] {{2, 1}, {2, 2}, {3, 3}, {2, 4}}) {
                Map<String, Tensor> inputs = Map.of("image",
                        TornadoOperatorsTest.random(Shape.of(run[0], 3, 17, 15), new Random(run[1])));
                assertClose(jvm.run(inputs), tornado.run(inputs), "mini network, batch " + run[0] + ", run " + run[1]);
            }
        }
    }

    /**
     * Three tasks per task graph: the block's input crosses several graphs before the residual add
     * reads it, so buffers are handed on through graphs that do not touch them.
     */
    @Test
    void miniNetworkAsAChainOfSmallTaskGraphs() {
        Model model = randomModel(miniNetwork(), 8);
        Map<String, Tensor> inputs = Map.of("image", TornadoOperatorsTest.random(Shape.of(2, 3, 17, 15), new Random(3)));
        try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, Map.of("passes", "none"));
             CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN,
                     Map.of("passes", "none", "max_graph_tasks", "3"))) {
            assertEquals(5, ((TornadoCompiledModel) tornado).plan(Map.of("image", Shape.of(2, 3, 17, 15))).taskGraphs());
            assertClose(jvm.run(inputs), tornado.run(inputs), "mini network in task graphs of 3 tasks, run 1");
            Map<String, Tensor> next = Map.of("image", TornadoOperatorsTest.random(Shape.of(2, 3, 17, 15), new Random(4)));
            assertClose(jvm.run(next), tornado.run(next), "mini network in task graphs of 3 tasks, run 2");
        }
    }

    /**
     * A network and the input size it runs at here: native 224 for the MobileNets and B0, below
     * native for the big ones (OrtOracleTest's sizes, where RandomWeights keep the logits
     * well-conditioned), so that PoCL compiles and runs them in minutes. By default two MobileNets
     * run; all 15 take about half an hour of kernel compiles on PoCL.
     */
    record NetworkCase(String name, int height, int width, boolean byDefault) {
    }

    static final List<NetworkCase> NETWORKS = List.of(
            new NetworkCase("mobilenet_v1", 224, 224, false),
            new NetworkCase("mobilenet_v2", 224, 224, true),
            new NetworkCase("mobilenet_v3_large", 224, 224, false),
            new NetworkCase("mobilenet_v3_small", 224, 224, true),
            new NetworkCase("efficientnet_b0", 224, 224, false),
            new NetworkCase("efficientnet_b1", 160, 144, false),
            new NetworkCase("efficientnet_b2", 144, 144, false),
            new NetworkCase("efficientnet_b3", 131, 117, false),
            new NetworkCase("efficientnet_b4", 128, 128, false),
            new NetworkCase("efficientnet_b5", 112, 112, false),
            new NetworkCase("efficientnet_b6", 128, 128, false),
            new NetworkCase("efficientnet_b7", 160, 160, false),
            new NetworkCase("efficientnet_v2_s", 128, 128, false),
            new NetworkCase("efficientnet_v2_m", 144, 144, false),
            new NetworkCase("efficientnet_v2_l", 96, 96, false));

    /** Logits agree within RELATIVE * max |jvm logit| + ABSOLUTE, as networks' OrtOracleTest compares. */
    static final double RELATIVE = 1e-3;
    static final double ABSOLUTE = 1e-4;
    /** The JVM backend's response to a one-ulp input change must stay under 1/this of the tolerance. */
    static final double CONDITIONING = 10;
    private static final List<String> TABLE = new ArrayList<>();

    /**
     * Each network with networks' PyTorch references (calibrated weights and a batch-2 input) against
     * PyTorch's logits and the JVM backend's; where there are none and no torch to make them, with
     * RandomWeights (seeded by the CRC32 of its name, as networks' OrtOracleTest does) on a smooth
     * image against the JVM backend. Tornado runs with its compiler passes and device kernels, as a
     * user gets it. Bailouts fail it: the tests run with
     * -Dtornado.recover.bailout=False, so a kernel TornadoVM cannot compile is an error, never a
     * quiet run in Java. MobileNet V2 and V3-Small by default, all 15 with -Dsquall.test.large=true.
     */
    @TestFactory
    Stream<DynamicTest> networksMatchTheJvmBackend() throws IOException, InterruptedException {
        assertEquals(NETWORKS.stream().map(NetworkCase::name).sorted().toList(),
                NetworksJar.names().stream().sorted().toList(), "a case per network");
        boolean large = Boolean.getBoolean("squall.test.large");
        List<NetworkCase> cases = NETWORKS.stream().filter(c -> large || c.byDefault()).toList();
        Path references = pytorchReferences(cases.stream().map(NetworkCase::name).toList());
        return cases.stream().map(c -> references != null
                ? DynamicTest.dynamicTest(c.name() + " with PyTorch weights", () -> checkAgainstPyTorch(c.name(),
                        references.resolve(c.name())))
                : DynamicTest.dynamicTest(c.name() + " " + c.height() + "x" + c.width(), () -> check(c)));
    }

    /**
     * Where networks' make_references.py writes, per network, calibrated weights, a batch-2 input and
     * PyTorch's logits: -Dsquall.pytorch.references, by default networks' own (PyTorchParityTest
     * makes them), else made here under target/. Null, and the RandomWeights comparison runs
     * instead, when they are missing and /usr/bin/python3 has no torch.
     */
    static Path pytorchReferences(List<String> names) throws IOException, InterruptedException {
        Path given = Path.of(System.getProperty("squall.pytorch.references", "../networks/target/pytorch-references"));
        if (names.stream().allMatch(n -> Files.isRegularFile(given.resolve(n).resolve("logits.npy")))) {
            return given;
        }
        Path made = Path.of("target/pytorch-references");
        List<String> missing = names.stream()
                .filter(n -> !Files.isRegularFile(made.resolve(n).resolve("logits.npy"))).toList();
        if (missing.isEmpty()) {
            return made;
        }
        Path script = Path.of("../networks/src/test/python/make_references.py");
        String python = System.getProperty("squall.python", "/usr/bin/python3");
        if (!Files.isRegularFile(script) || exitCode(List.of(python, "-c", "import torch, torchvision"), 2) != 0) {
            System.out.println("no PyTorch references in " + given + " and no torch for " + python
                    + ": comparing with the JVM backend on RandomWeights only");
            return null;
        }
        Files.createDirectories(made);
        List<String> command = new ArrayList<>(List.of(python, script.toString(), made.toString()));
        command.addAll(missing);
        System.out.println("making PyTorch references: " + String.join(" ", command));
        int exit = exitCode(command, 30);
        assertEquals(0, exit, "make_references.py failed (its output is above): " + String.join(" ", command));
        return made;
    }

    private static int exitCode(List<String> command, long minutes) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).inheritIO().start();
        if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            return -1;
        }
        return process.exitValue();
    }

    /**
     * A network with make_references.py's calibrated weights on its batch-2 input, on tornado,
     * against PyTorch's logits (PyTorchParityTest's tolerance) and against the JVM backend. These
     * weights keep the logits clearly input-dependent, so unlike RandomWeights no network is too
     * chaotic to compare.
     */
    private static void checkAgainstPyTorch(String name, Path directory) {
        Model model = NetworksJar.loadedModel(name, directory.resolve("weights.safetensors"));
        Tensor image = NetworksJar.readNpy(directory.resolve("input.npy"));
        Tensor reference = NetworksJar.readNpy(directory.resolve("logits.npy"));
        String input = model.graph().inputs().keySet().iterator().next();
        Map<String, Tensor> inputs = Map.of(input, image);
        Tensor jvmLogits;
        long jvmNanos;
        try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, Map.of())) {
            jvmLogits = jvm.run(inputs).values().iterator().next();
            jvmNanos = steadyState(jvm, inputs);
        }
        try (CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN, Map.of())) {
            long start = System.nanoTime();
            Tensor logits = tornado.run(inputs).values().iterator().next();
            long firstRun = System.nanoTime() - start;
            TaskGraphPlan plan = ((TornadoCompiledModel) tornado).plan(Map.of(input, image.shape()));
            long steady = steadyState(tornado, inputs);
            assertEquals(reference.shape(), logits.shape(), name + ": shape of the logits");
            double[] vsPyTorch = maxError(logits, reference);
            double[] vsJvm = maxError(logits, jvmLogits);
            double pytorchTolerance = RELATIVE * vsPyTorch[1] + ABSOLUTE;
            double jvmTolerance = RELATIVE * vsJvm[1] + ABSOLUTE;
            String line = String.format("%-19s %s %4d tasks %2d graphs  compile %6.1f s  first run %6.1f s  "
                            + "steady %8.1f ms  (jvm %6.1f ms)  max error vs PyTorch %.2g (tolerance %.2g), "
                            + "vs jvm %.2g (tolerance %.2g)",
                    name, image.shape(), plan.tasks().size(), plan.taskGraphs(), plan.compileNanos() / 1e9,
                    firstRun / 1e9, steady / 1e6, jvmNanos / 1e6, vsPyTorch[0], pytorchTolerance, vsJvm[0],
                    jvmTolerance);
            System.out.println(line);
            synchronized (TABLE) {
                TABLE.add(line);
            }
            assertTrue(vsPyTorch[0] <= pytorchTolerance, name + ": tornado logits are " + vsPyTorch[0]
                    + " from PyTorch's, over " + RELATIVE + " * max |logit| " + vsPyTorch[1] + " + " + ABSOLUTE);
            assertTrue(vsJvm[0] <= jvmTolerance, name + ": tornado logits are " + vsJvm[0]
                    + " from the jvm backend's, over " + RELATIVE + " * max |logit| " + vsJvm[1] + " + " + ABSOLUTE);
        }
    }

    /** {max |actual - expected| (NaN as infinity), max |expected|}. */
    private static double[] maxError(Tensor actual, Tensor expected) {
        double largest = 0;
        double error = 0;
        for (int i = 0; i < expected.data().length; i++) {
            largest = Math.max(largest, Math.abs(expected.data()[i]));
            double e = Math.abs((double) actual.data()[i] - expected.data()[i]);
            error = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(error, e);
        }
        return new double[] {error, largest};
    }

    private static void check(NetworkCase c) {
        CRC32 crc = new CRC32();
        crc.update(c.name().getBytes(StandardCharsets.UTF_8));
        long seed = crc.getValue();
        Model model = NetworksJar.randomModel(c.name(), seed);
        String input = model.graph().inputs().keySet().iterator().next();
        Tensor image = smoothImage(c.height(), c.width(), new Random(seed));
        Map<String, Tensor> inputs = Map.of(input, image);
        Tensor expected;
        Tensor nudged;
        long jvmNanos;
        try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, Map.of())) {
            expected = jvm.run(inputs).values().iterator().next();
            nudged = jvm.run(Map.of(input, nudge(image))).values().iterator().next();
            jvmNanos = steadyState(jvm, inputs);
        }
        try (CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN, Map.of())) {
            long start = System.nanoTime();
            Tensor first = tornado.run(inputs).values().iterator().next();
            long firstRun = System.nanoTime() - start;
            TaskGraphPlan plan = ((TornadoCompiledModel) tornado).plan(Map.of(input, image.shape()));
            long steady = steadyState(tornado, inputs);
            double largest = 0;
            double error = 0;
            for (int i = 0; i < expected.data().length; i++) {
                largest = Math.max(largest, Math.abs(expected.data()[i]));
                double e = Math.abs((double) first.data()[i] - expected.data()[i]);
                error = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(error, e);
            }
            double tolerance = RELATIVE * largest + ABSOLUTE;
            double sensitivity = 0;
            for (int i = 0; i < expected.data().length; i++) {
                sensitivity = Math.max(sensitivity, Math.abs(nudged.data()[i] - expected.data()[i]));
            }
            String line = String.format("%-19s %3dx%-3d %4d tasks %2d graphs  compile %6.1f s  first run %6.1f s  "
                            + "steady %8.1f ms  (jvm %6.1f ms)  max error %.2g (tolerance %.2g, one-ulp input "
                            + "change on jvm %.2g)",
                    c.name(), c.height(), c.width(), plan.tasks().size(), plan.taskGraphs(), plan.compileNanos() / 1e9,
                    firstRun / 1e9, steady / 1e6, jvmNanos / 1e6, error, tolerance, sensitivity);
            System.out.println(line);
            synchronized (TABLE) {
                TABLE.add(line);
            }
            for (float logit : first.data()) {
                assertTrue(Float.isFinite(logit), c.name() + ": a logit on tornado is " + logit);
            }
            assertTrue(largest > 0, c.name() + ": all logits are 0 on the jvm backend; the comparison means nothing");
            // Deep EfficientNets with random weights can be chaotic: where one ulp of input moves the
            // JVM backend's own logits by more than a tenth of the tolerance, the rounding differences
            // of OpenCL (fma contraction, exp) move them as much, and no comparison means anything.
            assumeTrue(sensitivity <= tolerance / CONDITIONING, c.name() + " at " + c.height() + "x" + c.width()
                    + " ran on tornado, but is too ill-conditioned with RandomWeights to compare: one ulp of input "
                    + "moves the jvm backend's logits by " + sensitivity + " (tolerance " + tolerance + ", tornado is "
                    + error + " away)");
            assertTrue(error <= tolerance, c.name() + ": tornado logits are " + error + " from the jvm backend's, over "
                    + RELATIVE + " * max |logit| " + largest + " + " + ABSOLUTE);
        }
    }

    /**
     * A smooth image (a few sinusoids per channel plus fine noise), normalised to mean 0 and
     * standard deviation 1 as a preprocessed photo is. Uniform noise of this size drives RandomWeights
     * EfficientNets to logits of 1e4 to 1e6 where one ulp of input moves them by percent, and there a
     * comparison between backends means nothing.
     */
    static Tensor smoothImage(int height, int width, Random random) {
        float[] data = new float[3 * height * width];
        double mean = 0;
        double squares = 0;
        for (int channel = 0; channel < 3; channel++) {
            double fx = 0.02 + 0.2 * random.nextDouble();
            double fy = 0.02 + 0.2 * random.nextDouble();
            double diagonal = 0.02 + 0.2 * random.nextDouble();
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    double v = Math.sin(fx * x + fy * y) + Math.cos(diagonal * (x - y)) + 0.3 * random.nextGaussian();
                    data[(channel * height + y) * width + x] = (float) v;
                    mean += v;
                    squares += v * v;
                }
            }
        }
        mean /= data.length;
        double deviation = Math.sqrt(squares / data.length - mean * mean);
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) ((data[i] - mean) / deviation);
        }
        return new Tensor(Shape.of(1, 3, height, width), data);
    }

    /** Every element one ulp up: how far the JVM backend's own logits move tells how chaotic the network is. */
    static Tensor nudge(Tensor t) {
        float[] data = t.data().clone();
        for (int i = 0; i < data.length; i++) {
            data[i] = Math.nextUp(data[i]);
        }
        return new Tensor(t.shape(), data);
    }

    @AfterAll
    static void printTable() {
        if (!TABLE.isEmpty()) {
            System.out.println("tornado backend on " + new TornadoBackend().devices().getFirst() + ":\n"
                    + String.join("\n", TABLE));
        }
    }

    /** Mean wall time of a run after two warm-up runs. */
    static long steadyState(CompiledModel model, Map<String, Tensor> inputs) {
        model.run(inputs);
        model.run(inputs);
        int runs = 5;
        long start = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            model.run(inputs);
        }
        return (System.nanoTime() - start) / runs;
    }
}
