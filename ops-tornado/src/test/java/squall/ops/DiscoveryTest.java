package squall.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operator;
import squall.api.OperatorProvider;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/** Operators are found through ServiceLoader; conflicts and stale plugins are refused by name. */
class DiscoveryTest {
    @Test
    void builtinsAndATestPluginAreDiscovered() {
        Operators operators = Operators.discover();
        for (String id : List.of("conv2d", "batch_norm", "relu", "relu6", "sigmoid", "silu", "hardsigmoid",
                "hardswish", "clip", "add", "mul", "global_avg_pool", "avg_pool2d", "max_pool2d", "linear", "gemm",
                "flatten", "reshape", "softmax", "dropout", "stochastic_depth", "identity", "negate")) {
            assertTrue(operators.has(id), id + " is discovered");
        }
        assertEquals(BuiltinOperators.class.getName(), operators.entries().get("conv2d").providerClass());
        assertEquals(NegateOperatorProvider.class.getName(), operators.entries().get("negate").providerClass());
    }

    @Test
    void pluginOperatorRunsInAGraphOnTheJvmBackend() {
        var b = Graph.builder("plugin");
        String x = b.input("x", Shape.of(-1, 3));
        x = b.op("negate", "negate", Attributes.EMPTY, x);
        x = b.op("relu", "relu", Attributes.EMPTY, x);
        Graph graph = b.output(x).build();
        try (var model = Backends.select("jvm").compile(new Model(graph, Map.of()), Operators.discover(), Map.of())) {
            Tensor out = model.run(Tensor.of(Shape.of(2, 3), 1f, -2f, 3f, -4f, 0f, 6f));
            assertEquals(Shape.of(2, 3), out.shape());
            org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {0f, 2f, 0f, 4f, 0f, 0f}, out.data());
        }
    }

    @Test
    void unknownOpNamesItselfAndTheKnownOps() {
        var error = assertThrows(SquallException.UnknownOperator.class, () -> Operators.discover().get("swish2"));
        assertTrue(error.getMessage().contains("'swish2'"), error.getMessage());
        assertTrue(error.getMessage().contains("conv2d") && error.getMessage().contains("negate"), error.getMessage());
    }

    /** Another provider class claiming a built-in id. */
    public static final class RivalRelu implements OperatorProvider {
        @Override
        public int spiVersion() {
            return OperatorProvider.SPI_VERSION;
        }

        @Override
        public List<Operator> operators() {
            return List.of(new BuiltinOperators().operators().stream().filter(o -> o.id().equals("relu")).findFirst()
                    .orElseThrow());
        }
    }

    @Test
    void twoProvidersOfOneIdFailNamingBoth() {
        var error = assertThrows(SquallException.class,
                () -> Operators.of(List.of(new BuiltinOperators(), new RivalRelu())));
        assertTrue(error.getMessage().contains("'relu'"), error.getMessage());
        assertTrue(error.getMessage().contains(BuiltinOperators.class.getName()), error.getMessage());
        assertTrue(error.getMessage().contains(RivalRelu.class.getName()), error.getMessage());
    }

    /** A provider built against a different SPI version. */
    public static final class StalePlugin implements OperatorProvider {
        @Override
        public int spiVersion() {
            return OperatorProvider.SPI_VERSION + 1;
        }

        @Override
        public List<Operator> operators() {
            return List.of();
        }
    }

    @Test
    void providerWithAnotherSpiVersionIsRefused() {
        var error = assertThrows(SquallException.class, () -> Operators.of(List.of(new StalePlugin())));
        assertTrue(error.getMessage().contains(StalePlugin.class.getName()), error.getMessage());
        assertTrue(error.getMessage().contains("version " + (OperatorProvider.SPI_VERSION + 1)), error.getMessage());
    }
}
