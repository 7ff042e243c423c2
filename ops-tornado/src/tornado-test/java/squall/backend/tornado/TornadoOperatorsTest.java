package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Attributes;
import squall.api.Backend;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.ops.BuiltinOperators;

/**
 * Every built-in operator on the TornadoVM backend against the JVM backend running the same
 * portable kernels as plain Java (the reference semantics), on small graphs with awkward shapes:
 * odd sizes, 1x1 maps, channel counts that fit no vector width or channel block, maps smaller
 * than the kernel, batch above 1. Convolutions and per-plane broadcasts run as DeviceKernels.
 */
class TornadoOperatorsTest {
    static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));

    @BeforeAll
    static void tornadoIsThere() {
        assertTrue(new TornadoBackend().isAvailable(), "the tornado backend is not available: run the tests with "
                + "TORNADOVM_HOME set (the tornado Maven profile starts them with TornadoVM's argfile) and check that "
                + "`tornado --devices` lists a device");
    }

    record Case(String name, Graph graph) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** A graph of one node: inputs named x0, x1, ... and parameters p0, p1, ... */
    static Case op(String name, String op, Attributes attributes, List<Shape> inputs, Shape... parameters) {
        GraphBuilder b = Graph.builder(name);
        String[] args = new String[inputs.size() + parameters.length];
        for (int i = 0; i < inputs.size(); i++) {
            args[i] = b.input("x" + i, inputs.get(i));
        }
        for (int i = 0; i < parameters.length; i++) {
            args[inputs.size() + i] = parameters[i] == null ? "" : b.parameter("p" + i, parameters[i]);
        }
        return new Case(name, b.output(b.op(op, "node", attributes, args)).build());
    }

    static Case op(String name, String op, Attributes attributes, Shape input, Shape... parameters) {
        return op(name, op, attributes, List.of(input), parameters);
    }

    static Case graph(String name, Consumer<GraphBuilder> body) {
        GraphBuilder b = Graph.builder(name);
        body.accept(b);
        return new Case(name, b.build());
    }

    static Attributes conv(int stride, int padding, int groups, String activation) {
        return Attributes.of("stride", stride, "padding", padding, "groups", groups, "activation", activation);
    }

    static Stream<Case> cases() {
        Shape odd = Shape.of(2, 3, 7, 5);
        return Stream.of(
                op("conv2d 3x3 stride 2 on odd input, bias, relu6", "conv2d", conv(2, 1, 1, "relu6"),
                        Shape.of(1, 3, 9, 11), Shape.of(6, 3, 3, 3), Shape.of(6)),
                op("conv2d 3x3 same, batch 2, no bias", "conv2d", conv(1, 1, 1, "none"),
                        odd, Shape.of(5, 3, 3, 3)),
                op("conv2d asymmetric padding, 3x2 kernel, stride (2,1), dilation (2,1)", "conv2d",
                        Attributes.of("stride", new int[] {2, 1}, "padding", new int[] {0, 1, 2, 1},
                                "dilation", new int[] {2, 1}, "activation", "relu"),
                        Shape.of(2, 3, 9, 7), Shape.of(4, 3, 3, 2), Shape.of(4)),
                op("conv2d depthwise 3x3 stride 2, silu", "conv2d", conv(2, 1, 7, "silu"),
                        Shape.of(2, 7, 9, 9), Shape.of(7, 1, 3, 3), Shape.of(7)),
                op("conv2d depthwise 5x5 channel multiplier 2, hardswish", "conv2d", conv(1, 2, 5, "hardswish"),
                        Shape.of(1, 5, 8, 7), Shape.of(10, 1, 5, 5), Shape.of(10)),
                op("conv2d 3 groups, hardsigmoid", "conv2d", conv(1, 1, 3, "hardsigmoid"),
                        Shape.of(2, 6, 5, 6), Shape.of(9, 2, 3, 3), Shape.of(9)),
                op("conv2d pointwise 13 -> 10 channels on 9x11 (over one pixel tile), batch 2, hardswish",
                        "conv2d", conv(1, 0, 1, "hardswish"), Shape.of(2, 13, 9, 11), Shape.of(10, 13, 1, 1),
                        Shape.of(10)),
                op("conv2d 5x5 stride 2 pad 2 on a 3x2 input, 5 -> 3 channels", "conv2d", conv(2, 2, 1, "relu"),
                        Shape.of(1, 5, 3, 2), Shape.of(3, 5, 5, 5), Shape.of(3)),
                op("conv2d depthwise 3x3 stride 2 pad 1 on 4x3, batch 2, no bias", "conv2d", conv(2, 1, 6, "none"),
                        Shape.of(2, 6, 4, 3), Shape.of(6, 1, 3, 3)),
                op("conv2d depthwise 3x3 dilation 2 (the portable kernel)", "conv2d",
                        Attributes.of("padding", 2, "groups", 4, "dilation", 2), Shape.of(1, 4, 6, 5),
                        Shape.of(4, 1, 3, 3), Shape.of(4)),
                op("add [2,3,4,5] + [2,3,1,1] (one value per plane)", "add", Attributes.EMPTY,
                        List.of(Shape.of(2, 3, 4, 5), Shape.of(2, 3, 1, 1))),
                op("mul [2,5,1,1] x [2,5,3,3] (the scale first)", "mul", Attributes.EMPTY,
                        List.of(Shape.of(2, 5, 1, 1), Shape.of(2, 5, 3, 3))),
                graph("conv2d pointwise on 1x1 maps with residual, sigmoid", b -> {
                    String x = b.input("x", Shape.of(3, 13, 1, 1));
                    String residual = b.input("residual", Shape.of(3, 17, 1, 1));
                    b.output(b.op("conv2d", "conv", conv(1, 0, 1, "sigmoid"), x,
                            b.parameter("conv.weight", 17, 13, 1, 1), b.parameter("conv.bias", 17), residual));
                }),
                graph("batch_norm on [2, 5, 3, 7], epsilon 1e-3", b -> {
                    String x = b.input("x", Shape.of(2, 5, 3, 7));
                    b.output(b.op("batch_norm", "bn", Attributes.of("epsilon", 1e-3f), x, b.parameter("bn.weight", 5),
                            b.parameter("bn.bias", 5), b.parameter("bn.running_mean", 5),
                            b.parameter("bn.running_var", 5)));
                }),
                op("relu", "relu", Attributes.EMPTY, odd),
                op("relu6", "relu6", Attributes.EMPTY, odd),
                op("sigmoid", "sigmoid", Attributes.EMPTY, odd),
                op("silu", "silu", Attributes.EMPTY, odd),
                op("hardswish", "hardswish", Attributes.EMPTY, odd),
                op("hardsigmoid, ONNX's alpha 0.2", "hardsigmoid", Attributes.of("alpha", 0.2f, "beta", 0.5f), odd),
                op("clip to [-0.5, 1.5]", "clip", Attributes.of("min", -0.5f, "max", 1.5f), odd),
                op("add, same shape, both inputs", "add", Attributes.EMPTY, List.of(odd, odd)),
                op("add [2,3,7,5] + [3,1,5] broadcast", "add", Attributes.EMPTY, odd, Shape.of(3, 1, 5)),
                op("mul [2,11,5,3] x [2,11,1,1] (squeeze-excitation)", "mul", Attributes.EMPTY,
                        List.of(Shape.of(2, 11, 5, 3), Shape.of(2, 11, 1, 1))),
                op("global_avg_pool [2, 7, 5, 3]", "global_avg_pool", Attributes.EMPTY, Shape.of(2, 7, 5, 3)),
                op("global_avg_pool on a 1x1 map", "global_avg_pool", Attributes.EMPTY, Shape.of(3, 9, 1, 1)),
                op("avg_pool2d 3x3 stride 2 pad 1, ceil_mode, count_include_pad 0", "avg_pool2d",
                        Attributes.of("kernel_size", 3, "stride", 2, "padding", 1, "ceil_mode", 1,
                                "count_include_pad", 0), Shape.of(2, 3, 8, 7)),
                op("avg_pool2d 2x3 count_include_pad 1", "avg_pool2d",
                        Attributes.of("kernel_size", new int[] {2, 3}, "stride", 1, "padding", 1,
                                "count_include_pad", 1), Shape.of(1, 4, 5, 6)),
                op("max_pool2d 3x3 stride 2 pad 1 dilation 2, ceil_mode", "max_pool2d",
                        Attributes.of("kernel_size", 3, "stride", 2, "padding", 1, "dilation", 2, "ceil_mode", 1),
                        Shape.of(2, 3, 11, 9)),
                op("max_pool2d 2x2", "max_pool2d", Attributes.of("kernel_size", 2), Shape.of(1, 5, 7, 6)),
                op("linear [3, 37] x [19, 37]^T + bias, hardswish", "linear", Attributes.of("activation", "hardswish"),
                        Shape.of(3, 37), Shape.of(19, 37), Shape.of(19)),
                op("linear without bias", "linear", Attributes.EMPTY, Shape.of(1, 13), Shape.of(7, 13)),
                op("gemm trans_b, alpha 0.5, beta 2, c [1, 9]", "gemm",
                        Attributes.of("trans_b", 1, "alpha", 0.5f, "beta", 2f), Shape.of(4, 11), Shape.of(9, 11),
                        Shape.of(1, 9)),
                op("gemm trans_a, no c", "gemm", Attributes.of("trans_a", 1), Shape.of(11, 3), Shape.of(11, 5)),
                op("softmax over the last axis", "softmax", Attributes.EMPTY, Shape.of(3, 1000)),
                op("softmax over axis 1 of [2, 5, 3, 2]", "softmax", Attributes.of("axis", 1), Shape.of(2, 5, 3, 2)),
                op("flatten", "flatten", Attributes.EMPTY, Shape.of(2, 7, 1, 1)),
                op("reshape to [-1, 21]", "reshape", Attributes.of("shape", new int[] {-1, 21}), Shape.of(2, 3, 7, 1)),
                op("dropout", "dropout", Attributes.of("p", 0.2f), odd),
                graph("identity then relu (an alias before a kernel)", b -> {
                    String x = b.input("x", odd);
                    b.output(b.op("relu", "relu", Attributes.EMPTY,
                            b.op("stochastic_depth", "sd", Attributes.EMPTY, b.op("identity", "id", Attributes.EMPTY, x))));
                }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesTheJvmBackend(Case c) {
        Model model = randomModel(c.graph(), c.name().hashCode());
        Map<String, Tensor> inputs = randomInputs(c.graph(), c.name().hashCode() + 1);
        Map<String, Tensor> expected = run(Backends.select("jvm"), model, inputs);
        Map<String, Tensor> actual = run(new TornadoBackend(), model, inputs);
        assertClose(expected, actual, c.name());
    }

    /** The graph as written (no compiler passes): this test is about the kernels. */
    static Map<String, Tensor> run(Backend backend, Model model, Map<String, Tensor> inputs) {
        try (CompiledModel compiled = backend.compile(model, BUILTIN, Map.of("passes", "none"))) {
            assertEquals(backend.id(), compiled.backend());
            return compiled.run(inputs);
        }
    }

    static Model randomModel(Graph graph, long seed) {
        Random random = new Random(seed);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        graph.parameters().forEach((name, shape) -> {
            Tensor t = random(shape, random);
            if (name.endsWith("running_var")) {
                for (int i = 0; i < t.data().length; i++) {
                    t.data()[i] = Math.abs(t.data()[i]) + 0.1f;
                }
            }
            weights.put(name, t);
        });
        return Model.bind(graph, weights, "random");
    }

    static Map<String, Tensor> randomInputs(Graph graph, long seed) {
        Random random = new Random(seed);
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        graph.inputs().forEach((name, shape) -> inputs.put(name, random(shape, random)));
        return inputs;
    }

    static Tensor random(Shape shape, Random random) {
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 4 - 2;
        }
        return new Tensor(shape, data);
    }

    /**
     * OpenCL may contract a*b+c into fma and evaluate exp differently from Java, so results agree to
     * rounding, not bit for bit.
     */
    static void assertClose(Map<String, Tensor> expected, Map<String, Tensor> actual, String what) {
        assertEquals(expected.keySet(), actual.keySet(), what + ": outputs");
        expected.forEach((name, e) -> {
            Tensor a = actual.get(name);
            assertEquals(e.shape(), a.shape(), what + ": shape of " + name);
            for (int i = 0; i < e.data().length; i++) {
                float ref = e.data()[i];
                if (!(Math.abs(a.data()[i] - ref) <= 1e-4f * Math.max(1f, Math.abs(ref)))) {
                    fail(what + ": " + name + "[" + i + "] is " + a.data()[i] + " on tornado, " + ref + " on jvm");
                }
            }
        });
    }
}
