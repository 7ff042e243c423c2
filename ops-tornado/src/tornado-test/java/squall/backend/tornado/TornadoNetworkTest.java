package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static squall.backend.tornado.TornadoOperatorsTest.BUILTIN;
import static squall.backend.tornado.TornadoOperatorsTest.assertClose;
import static squall.backend.tornado.TornadoOperatorsTest.randomModel;

import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Whole networks as one task graph, against the JVM backend: a small MobileNet-like stack of every
 * block kind, and torchvision's MobileNet V2 when squall-networks is installed. Prints compile time
 * and steady-state latency.
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

    /** With passes both backends run the same rewritten graph (batch norm folded, activations and residual fused). */
    @ParameterizedTest(name = "passes {0}")
    @ValueSource(strings = {"all", "none"})
    void miniNetworkMatchesTheJvmBackendRunAfterRunAndAcrossBatchSizes(String passes) {
        Model model = randomModel(miniNetwork(), 7);
        Map<String, String> options = Map.of("passes", passes);
        try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, options);
             CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN, options)) {
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

    @Test
    void mobilenetV2MatchesTheJvmBackend() throws Exception {
        String jar = System.getProperty("squall.networks.jar", "");
        assumeTrue(!jar.isEmpty() && Files.isRegularFile(Path.of(jar)),
                "squall-networks is not installed (" + jar + "): mvn -pl networks install -DskipTests");
        try (URLClassLoader networks = new URLClassLoader(new URL[] {Path.of(jar).toUri().toURL()},
                getClass().getClassLoader())) {
            Class<?> registry = networks.loadClass("squall.networks.Networks");
            Graph graph = (Graph) registry.getMethod("build", String.class).invoke(null, "mobilenet_v2");
            @SuppressWarnings("unchecked")
            Map<String, Tensor> weights = (Map<String, Tensor>) networks.loadClass("squall.networks.RandomWeights")
                    .getMethod("generate", Graph.class, long.class).invoke(null, graph, 1L);
            Model model = Model.bind(graph, weights, "RandomWeights seed 1");
            Tensor image = TornadoOperatorsTest.random(Shape.of(1, 3, 224, 224), new Random(2));
            Map<String, Tensor> inputs = Map.of(graph.inputs().keySet().iterator().next(), image);

            Map<String, Tensor> expected;
            long jvmNanos;
            Map<String, String> options = Map.of("passes", System.getProperty("squall.test.passes", "all"));
            try (CompiledModel jvm = Backends.select("jvm").compile(model, BUILTIN, options)) {
                expected = jvm.run(inputs);
                jvmNanos = steadyState(jvm, inputs);
            }
            try (CompiledModel tornado = new TornadoBackend().compile(model, BUILTIN, options)) {
                long start = System.nanoTime();
                Map<String, Tensor> first = tornado.run(inputs);
                long firstRun = System.nanoTime() - start;
                assertClose(expected, first, "mobilenet_v2");
                TaskGraphPlan plan = ((TornadoCompiledModel) tornado).plan(Map.of(inputs.keySet().iterator().next(),
                        image.shape()));
                long steady = steadyState(tornado, inputs);
                System.out.printf("mobilenet_v2 [1,3,224,224] on tornado, passes " + options.get("passes") + ": %d tasks in %d task graphs, compiled in "
                                + "%.1f s, first run %.1f s in all, steady state %.1f ms/run (jvm backend: %.1f ms/run)%n",
                        plan.tasks().size(), plan.taskGraphs(), plan.compileNanos() / 1e9, firstRun / 1e9, steady / 1e6, jvmNanos / 1e6);
            }
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
