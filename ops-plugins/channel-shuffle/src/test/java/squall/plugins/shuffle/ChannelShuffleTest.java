package squall.plugins.shuffle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
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
import squall.backend.jvm.JvmKernelContext;

/** channel_shuffle and a ShuffleNet unit built with it against PyTorch (src/test/python/references.py). */
class ChannelShuffleTest {
    private static final Operators OPERATORS = Operators.discover();

    @ParameterizedTest
    @CsvSource({"shuffle_a, 3", "shuffle_b, 4", "shuffle_c, 2", "shuffle_d, 5"})
    void matchesTorchChannelShuffle(String name, int groups) {
        Tensor x = TorchReference.read(name + "_x.npy");
        Tensor expected = TorchReference.read(name + "_y.npy");
        Attributes attributes = Attributes.of("groups", groups);
        var b = Graph.builder(name);
        Graph graph = b.output(b.op("channel_shuffle", "shuffle", attributes, b.input("x", x.shape()))).build();
        assertArrayEquals(expected.data(), run(graph, Map.of(), x).data(), name + " on the JVM backend");

        Node node = graph.nodes().getFirst();
        var context = JvmKernelContext.withNewOutputs(node, List.of(x.shape()), List.of(x.shape()), x.data());
        OPERATORS.get("channel_shuffle").kernels(context).forEach(KernelCall::invoke);
        assertArrayEquals(expected.data(), context.output(0), name + " with the portable kernel");
    }

    /** ShuffleNet's stride-1 unit: grouped 1x1, ReLU, shuffle, depthwise 3x3, grouped 1x1, add, ReLU. */
    @Test
    void shuffleNetUnitMatchesPyTorch() {
        int channels = 24;
        int groups = 3;
        var b = Graph.builder("shufflenet_unit");
        String x = b.input("x", Shape.of(-1, channels, -1, -1));
        String y = conv(b, "compress", x, channels, 1, groups);
        y = b.op("relu", "compress.relu", Attributes.EMPTY, y);
        y = b.op("channel_shuffle", "shuffle", Attributes.of("groups", groups), y);
        y = conv(b, "depthwise", y, channels, 3, channels);
        y = conv(b, "expand", y, channels, 1, groups);
        y = b.op("add", "residual", Attributes.EMPTY, y, x);
        y = b.op("relu", "relu", Attributes.EMPTY, y);
        Graph graph = b.output(y).build();

        Map<String, Tensor> weights = new LinkedHashMap<>();
        graph.parameters().keySet().forEach(p -> weights.put(p, TorchReference.read("unit_" + p + ".npy")));
        Tensor expected = TorchReference.read("unit_y.npy");
        float[] actual = run(graph, weights, TorchReference.read("unit_x.npy")).data();
        double scale = 0;
        for (float v : expected.data()) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < actual.length; i++) {
            if (!(Math.abs(actual[i] - expected.data()[i]) <= 1e-5 * scale + 1e-5 * Math.abs(expected.data()[i]))) {
                fail("element " + i + " is " + actual[i] + ", PyTorch gives " + expected.data()[i]);
            }
        }
    }

    @Test
    void groupsThatDoNotDivideTheChannelsAreRefused() {
        var b = Graph.builder("bad");
        Graph graph = b.output(b.op("channel_shuffle", "shuffle", Attributes.of("groups", 5),
                b.input("x", Shape.of(1, 12, 2, 2)))).build();
        var error = assertThrows(SquallException.class, () -> run(graph, Map.of(), Tensor.zeros(Shape.of(1, 12, 2, 2))));
        assertTrue(error.getMessage().contains("'groups' = 5") && error.getMessage().contains("12 channels"),
                error.getMessage());
    }

    private static String conv(squall.api.GraphBuilder b, String module, String x, int channels, int kernelSize,
                               int groups) {
        String weight = b.parameter(module + ".weight", channels, channels / groups, kernelSize, kernelSize);
        String bias = b.parameter(module + ".bias", channels);
        return b.op("conv2d", module, Attributes.of("padding", (kernelSize - 1) / 2, "groups", groups), x, weight,
                bias);
    }

    private static Tensor run(Graph graph, Map<String, Tensor> weights, Tensor x) {
        try (CompiledModel model = Backends.select("jvm").compile(Model.bind(graph, weights, "references.py"),
                OPERATORS, Map.of("threads", "2"))) {
            Tensor y = model.run(x);
            assertEquals(x.shape(), y.shape(), Arrays.toString(y.shape().dims()));
            return y;
        }
    }
}
