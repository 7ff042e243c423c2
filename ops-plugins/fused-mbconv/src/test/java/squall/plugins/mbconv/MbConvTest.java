package squall.plugins.mbconv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.KernelCall;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;

/**
 * torchvision's MBConv block (src/test/python/references.py) built as the composite graph
 * squall.networks makes, fused by {@link MbConvFusion} into one mbconv node, and run: both match
 * PyTorch. The CPU kernel gives the portable kernels' bits on awkward shapes.
 */
class MbConvTest {
    private static final Operators OPERATORS = Operators.discover();

    @ParameterizedTest
    @CsvSource({
            // case, t, k, s, in, out
            "expand4_k3_s1, 4, 3, 1, 24, 24",
            "expand6_k5_s2, 6, 5, 2, 16, 40",
            "expand1_k3_s1, 1, 3, 1, 16, 16"})
    void fusedBlockMatchesTorchvision(String name, int expandRatio, int kernelSize, int stride, int inChannels,
                                      int outChannels) {
        Graph composite = torchvisionBlock(expandRatio, kernelSize, stride, inChannels, outChannels);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        composite.parameters().keySet().forEach(p -> weights.put(p, TorchReference.read(name + "_" + p + ".npy")));
        Model model = Model.bind(composite, weights, "references.py");
        Model fused = MbConvFusion.fuse(model);
        assertEquals(List.of("mbconv"), fused.graph().nodes().stream().map(Node::op).toList());
        assertEquals(stride == 1 && inChannels == outChannels ? 1 : 0,
                fused.graph().nodes().getFirst().attributes().getInt("residual"));

        Tensor x = TorchReference.read(name + "_x.npy");
        Tensor expected = TorchReference.read(name + "_y.npy");
        assertClose(expected.data(), run(model, x).data(), name + " composite");
        assertClose(expected.data(), run(fused, x).data(), name + " fused");
    }

    @ParameterizedTest
    @CsvSource({
            // batch, in, height, width, expanded (0: none), kernel, stride, squeeze, out, residual
            "2, 5, 7, 9, 12, 5, 2, 3, 6, 0",
            "1, 6, 1, 1, 0, 3, 1, 1, 6, 1",
            "3, 3, 6, 5, 7, 3, 1, 2, 3, 1",
            "2, 4, 10, 3, 9, 3, 2, 1, 5, 0"})
    void cpuKernelGivesThePortableKernelsBits(int batch, int inChannels, int height, int width, int expanded,
                                              int kernelSize, int stride, int squeeze, int outChannels, int residual) {
        int e = expanded == 0 ? inChannels : expanded;
        List<Shape> shapes = new ArrayList<>(List.of(Shape.of(batch, inChannels, height, width)));
        if (expanded == 0) {
            shapes.add(null);
            shapes.add(null);
        } else {
            shapes.addAll(List.of(Shape.of(e, inChannels, 1, 1), Shape.of(e)));
        }
        shapes.addAll(List.of(Shape.of(e, 1, kernelSize, kernelSize), Shape.of(e), Shape.of(squeeze, e, 1, 1),
                Shape.of(squeeze), Shape.of(e, squeeze, 1, 1), Shape.of(e), Shape.of(outChannels, e, 1, 1),
                Shape.of(outChannels)));
        Random random = new Random(batch * 1000 + e);
        float[][] inputs = new float[shapes.size()][];
        List<String> names = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            names.add(shapes.get(i) == null ? "" : "in" + i);
            if (shapes.get(i) != null) {
                inputs[i] = new float[shapes.get(i).size()];
                for (int k = 0; k < inputs[i].length; k++) {
                    inputs[i][k] = (float) random.nextGaussian();
                }
            }
        }
        Node node = new Node("block", "mbconv", names, List.of("y"),
                Attributes.of("stride", stride, "residual", residual));
        Operator mbconv = OPERATORS.get("mbconv");
        List<Shape> out = mbconv.outputShapes(node, shapes);
        var portable = JvmKernelContext.withNewOutputs(node, shapes, out, inputs);
        List<KernelCall> calls = mbconv.kernels(portable);
        for (KernelCall call : calls) {
            assertTrue(call.kernel().getParameterCount() <= 15, call.name() + ": a TornadoVM task takes at most 15");
        }
        calls.forEach(KernelCall::invoke);
        var cpu = JvmKernelContext.withNewOutputs(node, shapes, out, inputs);
        mbconv.cpuKernel(cpu).run(Workers.of(2));
        assertArrayEquals(portable.output(0), cpu.output(0));
    }

    @Test
    void aResidualThatDoesNotFitIsRefused() {
        List<Shape> shapes = new ArrayList<>(List.of(Shape.of(1, 4, 8, 8), Shape.of(8, 4, 1, 1), Shape.of(8),
                Shape.of(8, 1, 3, 3), Shape.of(8), Shape.of(1, 8, 1, 1), Shape.of(1), Shape.of(8, 1, 1, 1),
                Shape.of(8), Shape.of(4, 8, 1, 1), Shape.of(4)));
        Node node = new Node("block", "mbconv", List.of("x", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"),
                List.of("y"), Attributes.of("stride", 2, "residual", 1));
        var error = assertThrows(SquallException.class, () -> OPERATORS.get("mbconv").outputShapes(node, shapes));
        assertTrue(error.getMessage().contains("stride 2"), error.getMessage());
    }

    /** torchvision's MBConv as squall.networks.EfficientNet builds it, named by the block's state_dict keys. */
    static Graph torchvisionBlock(int expandRatio, int kernelSize, int stride, int inChannels, int outChannels) {
        GraphBuilder b = Graph.builder("mbconv_block");
        String input = b.input("x", Shape.of(-1, inChannels, -1, -1));
        int expanded = inChannels * expandRatio;
        int layer = 0;
        String x = input;
        if (expanded != inChannels) {
            x = convNormSilu(b, "block." + layer++, x, inChannels, expanded, 1, 1, 1, true);
        }
        x = convNormSilu(b, "block." + layer++, x, expanded, expanded, kernelSize, stride, expanded, true);
        String se = "block." + layer++;
        String scale = b.op("global_avg_pool", se + ".avgpool", Attributes.EMPTY, x);
        int squeeze = Math.max(1, inChannels / 4);
        scale = b.op("conv2d", se + ".fc1", Attributes.EMPTY, scale, b.parameter(se + ".fc1.weight", squeeze,
                expanded, 1, 1), b.parameter(se + ".fc1.bias", squeeze));
        scale = b.op("silu", se + ".activation", Attributes.EMPTY, scale);
        scale = b.op("conv2d", se + ".fc2", Attributes.EMPTY, scale, b.parameter(se + ".fc2.weight", expanded,
                squeeze, 1, 1), b.parameter(se + ".fc2.bias", expanded));
        scale = b.op("sigmoid", se + ".scale_activation", Attributes.EMPTY, scale);
        x = b.op("mul", se + ".mul", Attributes.EMPTY, scale, x);
        x = convNormSilu(b, "block." + layer, x, expanded, outChannels, 1, 1, 1, false);
        if (stride == 1 && inChannels == outChannels) {
            x = b.op("stochastic_depth", "stochastic_depth", Attributes.of("p", 0.0f), x);
            x = b.op("add", "add", Attributes.EMPTY, x, input);
        }
        return b.output(x).build();
    }

    private static String convNormSilu(GraphBuilder b, String module, String x, int in, int out, int kernelSize,
                                       int stride, int groups, boolean silu) {
        x = b.op("conv2d", module + ".0", Attributes.of("stride", stride, "padding", (kernelSize - 1) / 2, "groups",
                groups), x, b.parameter(module + ".0.weight", out, in / groups, kernelSize, kernelSize));
        x = b.op("batch_norm", module + ".1", Attributes.of("epsilon", 1e-3f), x,
                b.parameter(module + ".1.weight", out), b.parameter(module + ".1.bias", out),
                b.parameter(module + ".1.running_mean", out), b.parameter(module + ".1.running_var", out));
        return silu ? b.op("silu", module + ".2", Attributes.EMPTY, x) : x;
    }

    static Tensor run(Model model, Tensor x) {
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of("threads", "2"))) {
            return compiled.run(x);
        }
    }

    /** |actual - expected| <= 1e-5 (max |expected| + |expected|): float rounding of a few hundred sums. */
    static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": element count");
        double scale = 0;
        for (float v : expected) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < expected.length; i++) {
            if (!(Math.abs(actual[i] - expected[i]) <= 1e-5 * (scale + Math.abs(expected[i])))) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i] + " (scale " + scale
                        + ")");
            }
        }
    }
}
