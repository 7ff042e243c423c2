package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.OperatorProvider;
import squall.api.Operators;
import squall.api.Parallel;
import squall.api.Shape;
import squall.api.Tensor;
import squall.ops.BuiltinOperators;

/**
 * An ONNX op the importer has no conversion for becomes the registered Squall op named by its
 * op_type lowercased, attributes passed through: ONNX's Softsign and LeakyRelu conformance cases
 * run with two operators this test registers (as a plugin would) and match ONNX's expected outputs.
 * (The activation plugin's tests import a Mish model the same way.) Public: the backends call its kernels.
 */
public class PluginOpImportTest {
    private static final Path NODE_TESTS = Path.of("/usr/share/libonnx-testdata/data/node");

    /** softsign and leakyrelu as a third party would write them, registered only in this test. */
    public static final class TestPlugin implements OperatorProvider {
        @Override
        public int spiVersion() {
            return OperatorProvider.SPI_VERSION;
        }

        @Override
        public List<Operator> operators() {
            return List.of(new Pointwise("softsign"), new Pointwise("leakyrelu"));
        }
    }

    private record Pointwise(String id) implements Operator {
        @Override
        public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
            return List.of(inputShapes.getFirst());
        }

        @Override
        public List<KernelCall> kernels(KernelContext context) {
            int size = context.inputShape(0).size();
            return List.of(id.equals("softsign")
                    ? KernelCall.of(PluginOpImportTest.class, "softsign", context.input(0), context.output(0), size)
                    : KernelCall.of(PluginOpImportTest.class, "leakyRelu", context.input(0), context.output(0), size,
                            context.attributes().getFloat("alpha", 0.01f)));
        }
    }

    public static void softsign(float[] x, float[] y, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = x[i] / (1 + Math.abs(x[i]));
        }
    }

    public static void leakyRelu(float[] x, float[] y, int size, float alpha) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = x[i] >= 0 ? x[i] : alpha * x[i];
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"test_softsign", "test_softsign_example", "test_leakyrelu", "test_leakyrelu_default",
            "test_leakyrelu_example"})
    void onnxOpRunsAsTheSquallOpOfItsLowercasedName(String name) {
        Path dir = NODE_TESTS.resolve(name);
        Assumptions.assumeTrue(dir.toFile().isDirectory(), "ONNX conformance data missing: apt-get install "
                + "libonnx-testdata");
        Operators operators = Operators.of(List.of(new BuiltinOperators(), new TestPlugin()));
        Model model = OnnxImporter.load(dir.resolve("model.onnx"), operators);
        Node node = model.graph().nodes().getFirst();
        assertEquals(name.contains("softsign") ? "softsign" : "leakyrelu", node.op());
        if (name.equals("test_leakyrelu")) {
            assertEquals(0.1f, node.attributes().getFloat("alpha"), "ONNX's alpha is passed through");
        }
        Path data = dir.resolve("test_data_set_0");
        Tensor input = OnnxTensors.readTensorFile(data.resolve("input_0.pb"));
        Tensor expected = OnnxTensors.readTensorFile(data.resolve("output_0.pb"));
        try (CompiledModel compiled = Backends.select("jvm").compile(model, operators, Map.of())) {
            OnnxConformanceTest.assertClose(expected, compiled.run(input), name);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"test_softsign"})
    void withoutTheOpTheNodeIsRefusedSayingWhatWouldHelp(String name) {
        Path dir = NODE_TESTS.resolve(name);
        Assumptions.assumeTrue(dir.toFile().isDirectory(), "ONNX conformance data missing");
        var error = assertThrows(OnnxImporter.Unsupported.class,
                () -> OnnxImporter.load(dir.resolve("model.onnx"), Operators.of(List.of(new BuiltinOperators()))));
        assertTrue(error.getMessage().contains("op 'Softsign' is not supported")
                && error.getMessage().contains("Squall op 'softsign'") && error.getMessage().contains("plugin"),
                error.getMessage());
    }
}
