package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import squall.api.Attributes;
import squall.api.Backend;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.OperatorProvider;
import squall.api.Operators;
import squall.api.Parallel;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.ops.BuiltinOperators;

/** Discovery, options and errors of the tornado backend. */
class TornadoBackendTest {
    @BeforeAll
    static void tornadoIsThere() {
        TornadoOperatorsTest.tornadoIsThere();
    }

    @Test
    void serviceLoaderFindsItAndPrefersItToTheJvmBackend() {
        List<String> ids = Backends.all().stream().map(Backend::id).toList();
        assertTrue(ids.contains("tornado") && ids.contains("jvm"), "backends found: " + ids);
        if (System.getProperty("squall.backend", "").isBlank()) {
            assertEquals("tornado", Backends.select(null).id());
        }
        assertEquals("tornado", Backends.select("tornado").id());
    }

    @Test
    void setsSquallsParallelAnnotationAndStrictBailouts() {
        new TornadoBackend().isAvailable();
        assertEquals(Parallel.class.getName(), System.getProperty("tornado.load.annotation.parallel"));
        assertEquals("false", System.getProperty("tornado.recover.bailout").toLowerCase());
    }

    @Test
    void devicesAreListedWithTheirIndices() {
        List<String> devices = new TornadoBackend().devices();
        assertFalse(devices.isEmpty());
        devices.forEach(d -> assertTrue(d.matches("\\d+:\\d+ .+"), d));
    }

    @Test
    void aDeviceThatIsNotThereIsAnErrorListingTheDevices() {
        Model model = TornadoOperatorsTest.randomModel(reluGraph(), 1);
        Backend tornado = new TornadoBackend();
        for (String device : List.of("9:0", "0:9", "gpu")) {
            var e = assertThrows(SquallException.class, () -> tornado.compile(model, TornadoOperatorsTest.BUILTIN,
                    Map.of("device", device)));
            assertTrue(e.getMessage().contains("\"" + device + "\"") && e.getMessage().contains(tornado.devices().getFirst()),
                    e.getMessage());
        }
    }

    @Test
    void theChosenDeviceRunsTheModel() {
        Model model = TornadoOperatorsTest.randomModel(reluGraph(), 1);
        Map<String, Tensor> inputs = TornadoOperatorsTest.randomInputs(model.graph(), 2);
        try (CompiledModel compiled = new TornadoBackend().compile(model, TornadoOperatorsTest.BUILTIN,
                Map.of("device", "0:0"))) {
            Tensor out = compiled.run(inputs.get("x"));
            float[] x = inputs.get("x").data();
            for (int i = 0; i < x.length; i++) {
                assertEquals(Math.max(x[i], 0f), out.data()[i]);
            }
        }
    }

    @Test
    void aClosedModelRefusesToRun() {
        Model model = TornadoOperatorsTest.randomModel(reluGraph(), 1);
        CompiledModel compiled = new TornadoBackend().compile(model, TornadoOperatorsTest.BUILTIN, Map.of());
        compiled.close();
        var e = assertThrows(SquallException.class, () -> compiled.run(Tensor.zeros(Shape.of(2, 3))));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    /**
     * A kernel TornadoVM cannot compile (it makes Strings) fails the compile with the kernel and
     * node named, instead of running as Java behind the caller's back.
     */
    @Test
    void aKernelThatDoesNotCompileIsNamed() {
        GraphBuilder b = Graph.builder("faulty");
        String x = b.input("x", Shape.of(2, 3));
        Graph graph = b.output(b.op("digits", "count_digits", Attributes.EMPTY, b.op("relu", "relu", Attributes.EMPTY, x)))
                .build();
        Operators operators = Operators.of(List.of(new BuiltinOperators(), new FaultyProvider()));
        Model model = Model.bind(graph, Map.of(), "none");
        var e = assertThrows(SquallException.class, () -> new TornadoBackend().compile(model, operators, Map.of()));
        assertTrue(e.getMessage().contains("FaultyKernels.digits") && e.getMessage().contains("count_digits"),
                e.getMessage());
    }

    static Graph reluGraph() {
        GraphBuilder b = Graph.builder("relu");
        return b.output(b.op("relu", "relu", Attributes.EMPTY, b.input("x", Shape.of(2, 3)))).build();
    }

    public static final class FaultyKernels {
        private FaultyKernels() {
        }

        public static void digits(float[] x, float[] y, int size) {
            for (@Parallel int i = 0; i < size; i++) {
                y[i] = String.valueOf(x[i]).length();
            }
        }
    }

    static final class FaultyProvider implements OperatorProvider {
        @Override
        public int spiVersion() {
            return OperatorProvider.SPI_VERSION;
        }

        @Override
        public List<Operator> operators() {
            return List.of(new Operator() {
                @Override
                public String id() {
                    return "digits";
                }

                @Override
                public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
                    return List.of(inputShapes.getFirst());
                }

                @Override
                public List<KernelCall> kernels(KernelContext context) {
                    return List.of(KernelCall.of(FaultyKernels.class, "digits", context.input(0), context.output(0),
                            context.outputShape(0).size()));
                }
            });
        }
    }
}
