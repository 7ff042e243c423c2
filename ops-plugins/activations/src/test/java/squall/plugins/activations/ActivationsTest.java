package squall.plugins.activations;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
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
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.backend.jvm.JvmKernelContext;
import squall.networks.onnx.OnnxTensors;

/**
 * mish, gelu and hardtanh against PyTorch's torch.nn.functional evaluated in float64 (so the
 * reference is the function's value rounded once): through a graph on the JVM backend (the CPU
 * kernel, two threads) and through the portable kernel called directly, which must agree bit for bit.
 */
class ActivationsTest {
    private static final Operators OPERATORS = Operators.discover();
    /** Two float ulps of relative error, and subnormal results to their absolute spacing. */
    private static final double RELATIVE = 2.5e-7;
    private static final double ABSOLUTE = 1e-40;
    /**
     * PyTorch evaluates gelu as x (1 + erf(x / sqrt 2)) / 2 even in float64, so in the negative tail
     * its reference is 0 where the true value is below double epsilon times |x|.
     */
    private static final double REFERENCE_CANCELLATION = 2.3e-16;

    @ParameterizedTest
    @CsvSource({
            "mish, , mish.npy",
            "gelu, , gelu.npy",
            "gelu, approximate=none, gelu.npy",
            "gelu, approximate=tanh, gelu_tanh.npy",
            "hardtanh, , hardtanh.npy",
            "hardtanh, min_val=-0.5;max_val=2, hardtanh_0.5_2.npy"})
    void matchesPyTorch(String op, String attributeList, String reference) {
        Tensor x = TorchReference.read("x.npy");
        Tensor expected = TorchReference.read(reference);
        Attributes attributes = parse(attributeList);
        float[] graph = runGraph(op, attributes, x);
        float[] portable = runPortable(op, attributes, x);
        assertArrayEquals(portable, graph, op + ": the CPU kernel differs from the portable kernel");
        assertClose(x.data(), expected.data(), graph, op + " " + attributes);
    }

    /** The error function itself against ONNX's Erf conformance data (Python's math.erf in double). */
    @Test
    void erfMatchesOnnxConformanceData() {
        Path data = Path.of("/usr/share/libonnx-testdata/data/node/test_erf/test_data_set_0");
        org.junit.jupiter.api.Assumptions.assumeTrue(data.toFile().isDirectory(),
                "ONNX conformance data missing: apt-get install libonnx-testdata");
        Tensor x = OnnxTensors.readTensorFile(data.resolve("input_0.pb"));
        Tensor expected = OnnxTensors.readTensorFile(data.resolve("output_0.pb"));
        float[] erf = new float[x.data().length];
        for (int i = 0; i < erf.length; i++) {
            erf[i] = ActivationKernels.erf(x.data()[i]);
        }
        assertClose(x.data(), expected.data(), erf, "erf");
    }

    @Test
    void badAttributesAreRefusedByName() {
        var approximate = assertThrows(SquallException.class,
                () -> runGraph("gelu", Attributes.of("approximate", "erf"), Tensor.zeros(Shape.of(1, 2))));
        assertTrue(approximate.getMessage().contains("\"erf\"") && approximate.getMessage().contains("\"tanh\""),
                approximate.getMessage());
        var bounds = assertThrows(SquallException.class, () -> runGraph("hardtanh",
                Attributes.of("min_val", 2f, "max_val", 1f), Tensor.zeros(Shape.of(1, 2))));
        assertTrue(bounds.getMessage().contains("min_val = 2.0"), bounds.getMessage());
        var typo = assertThrows(SquallException.class,
                () -> runGraph("hardtanh", Attributes.of("minval", 0f), Tensor.zeros(Shape.of(1, 2))));
        assertTrue(typo.getMessage().contains("'minval'") && typo.getMessage().contains("min_val"),
                typo.getMessage());
    }

    static float[] runGraph(String op, Attributes attributes, Tensor x) {
        var b = Graph.builder(op);
        int[] anySize = new int[x.shape().rank()];
        java.util.Arrays.fill(anySize, -1);
        String y = b.op(op, op, attributes, b.input("x", Shape.of(anySize)));
        Graph graph = b.output(y).build();
        try (CompiledModel model = Backends.select("jvm").compile(new Model(graph, Map.of()), OPERATORS,
                Map.of("threads", "2"))) {
            Tensor out = model.run(x);
            assertEquals(x.shape(), out.shape());
            return out.data();
        }
    }

    private static float[] runPortable(String op, Attributes attributes, Tensor x) {
        Operator operator = OPERATORS.get(op);
        Node node = new Node(op, op, List.of("x"), List.of("y"), attributes);
        List<Shape> in = List.of(x.shape());
        var context = JvmKernelContext.withNewOutputs(node, in, operator.outputShapes(node, in), x.data());
        operator.kernels(context).forEach(KernelCall::invoke);
        return context.output(0);
    }

    /** "a=1;b=tanh" as attributes: numbers as floats, anything else as a string. */
    private static Attributes parse(String list) {
        Attributes attributes = Attributes.EMPTY;
        if (list == null) {
            return attributes;
        }
        for (String pair : list.split(";")) {
            String[] nameValue = pair.split("=");
            Object value;
            try {
                value = Float.parseFloat(nameValue[1]);
            } catch (NumberFormatException e) {
                value = nameValue[1];
            }
            attributes = attributes.with(nameValue[0], value);
        }
        return attributes;
    }

    static void assertClose(float[] x, float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": element count");
        for (int i = 0; i < expected.length; i++) {
            double tolerance = RELATIVE * Math.abs(expected[i]) + REFERENCE_CANCELLATION * Math.abs(x[i]) + ABSOLUTE;
            if (!(Math.abs(actual[i] - expected[i]) <= tolerance)) {
                fail(what + ": at x = " + x[i] + " got " + actual[i] + ", the reference gives " + expected[i]
                        + " (element " + i + ")");
            }
        }
    }
}
