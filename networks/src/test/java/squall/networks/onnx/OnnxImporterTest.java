package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static squall.networks.onnx.OnnxReaderTest.resource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.SquallException;
import squall.api.Tensor;

/** PyTorch-exported models (make_onnx_fixtures.py) imported and run against PyTorch's own output. */
class OnnxImporterTest {
    private static final Operators OPERATORS = Operators.discover();

    private static Tensor runJvm(Model model, Tensor input) {
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of())) {
            return compiled.run(input);
        }
    }

    private static List<String> ops(Model model) {
        return model.graph().nodes().stream().map(Node::op).toList();
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_opset11.onnx", "tiny_opset13.onnx", "tiny_opset14.onnx", "tiny_opset17.onnx",
            "tiny_external.onnx"})
    void torchExportMatchesTorch(String file) {
        Model model = OnnxImporter.load(resource(file), OPERATORS);
        Tensor input = OnnxTensors.readTensorFile(resource("tiny_input.pb"));
        Tensor expected = OnnxTensors.readTensorFile(resource("tiny_output.pb"));
        OnnxConformanceTest.assertClose(expected, runJvm(model, input), file + " (jvm backend)");
        OnnxConformanceTest.assertClose(expected, PortableRunner.run(model, OPERATORS,
                Map.of("input", input)).get("logits"), file + " (portable kernels)");
    }

    @Test
    void torchPatternsBecomeSquallOps() {
        List<String> opset11 = ops(OnnxImporter.load(resource("tiny_opset11.onnx"), OPERATORS));
        // x * HardSigmoid(x) is hardswish before opset 14; x * Sigmoid(x) is silu; Clip(0, 6) is relu6
        assertTrue(opset11.containsAll(List.of("relu6", "hardswish", "silu", "hardsigmoid", "linear")), opset11.toString());
        assertFalse(opset11.contains("clip") || opset11.contains("sigmoid"), opset11.toString());
        List<String> opset13 = ops(OnnxImporter.load(resource("tiny_opset13.onnx"), OPERATORS));
        assertEquals(3, opset13.stream().filter("batch_norm"::equals).count(), opset13.toString());
        Model model = OnnxImporter.load(resource("tiny_opset13.onnx"), OPERATORS);
        assertTrue(model.weights().containsKey("stem.1.running_var"), "initializer names are kept");
    }

    @Test
    void freeBatchSizeRuns() {
        Model model = OnnxImporter.load(resource("tiny_opset17.onnx"), OPERATORS);
        assertEquals(-1, model.graph().inputs().get("input").dim(0));
        Tensor input = OnnxTensors.readTensorFile(resource("tiny_input.pb"));
        Tensor expected = OnnxTensors.readTensorFile(resource("tiny_output.pb"));
        int per = input.data().length / 2;
        Tensor first = new Tensor(input.shape().withBatch(1), java.util.Arrays.copyOf(input.data(), per));
        Tensor out = runJvm(model, first);
        Tensor expectedFirst = new Tensor(expected.shape().withBatch(1),
                java.util.Arrays.copyOf(expected.data(), expected.data().length / 2));
        OnnxConformanceTest.assertClose(expectedFirst, out, "batch of one");
    }

    @Test
    void everyUnsupportedNodeIsListedInOneError() {
        OnnxImporter.Unsupported e = assertThrows(OnnxImporter.Unsupported.class,
                () -> OnnxImporter.load(resource("unsupported.onnx"), OPERATORS));
        // the fixture's five bad nodes, plus 'relu' with its unknown attribute 'odd'
        for (String node : List.of("leaky", "odd_attribute", "conv1d", "pool_with_indices", "clip_runtime_bounds",
                "relu")) {
            assertTrue(e.problems().stream().anyMatch(p -> p.startsWith("node '" + node + "'")),
                    node + " missing from " + e.getMessage());
        }
        assertEquals(6, e.problems().size(), e.getMessage());
        assertTrue(e.getMessage().contains("LeakyRelu") && e.getMessage().contains("unknown_flag"), e.getMessage());
    }

    @Test
    void externalDataMayNotLeaveTheModelFolder(@TempDir Path dir) throws IOException {
        Path model = dir.resolve("m.onnx");
        byte[] bytes = Files.readAllBytes(resource("tiny_external.onnx"));
        String text = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
        // same length, so the protobuf stays valid: the location now points one folder up
        Files.write(model, text.replace("tiny_external.bin", "../y_external.bin").getBytes(
                java.nio.charset.StandardCharsets.ISO_8859_1));
        SquallException e = assertThrows(SquallException.BadFile.class, () -> OnnxImporter.load(model, OPERATORS));
        assertTrue(e.getMessage().contains("outside the model's folder"), e.getMessage());
        Path missing = dir.resolve("n.onnx");
        Files.write(missing, bytes);
        e = assertThrows(SquallException.BadFile.class, () -> OnnxImporter.load(missing, OPERATORS));
        assertTrue(e.getMessage().contains("tiny_external.bin"), e.getMessage());
    }
}
