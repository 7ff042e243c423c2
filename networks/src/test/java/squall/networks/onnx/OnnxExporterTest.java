package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Export, then import: the same outputs on the JVM backend, for a graph with conv/BN/ReLU,
 * fused activations, squeeze-excite, a fused residual, pooling and a linear head. The exported file
 * is also checked by onnx's own checker (Debian's python3-onnx) where it is installed.
 */
class OnnxExporterTest {
    private static final Operators OPERATORS = Operators.discover();

    static Model smallNet() {
        GraphBuilder b = Graph.builder("small");
        Random random = new Random(42);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        String x = b.input("input", Shape.of(-1, 3, 16, 16));
        x = b.op("conv2d", "stem", Attributes.of("stride", 2, "padding", 1), x,
                param(b, weights, random, "stem.weight", 8, 3, 3, 3), param(b, weights, random, "stem.bias", 8));
        x = b.op("batch_norm", "bn", Attributes.of("epsilon", 1e-3f), x, param(b, weights, random, "bn.weight", 8),
                param(b, weights, random, "bn.bias", 8), param(b, weights, random, "bn.running_mean", 8),
                positive(b, weights, random, "bn.running_var", 8));
        x = b.op("relu", "relu", Attributes.EMPTY, x);
        String dw = b.op("conv2d", "dw", Attributes.of("padding", new int[] {1, 1}, "groups", 8,
                "activation", "hardswish"), x, param(b, weights, random, "dw.weight", 8, 1, 3, 3));
        String se = b.op("global_avg_pool", "se.pool", Attributes.EMPTY, dw);
        se = b.op("conv2d", "se.fc1", Attributes.of("activation", "silu"), se,
                param(b, weights, random, "se.fc1.weight", 4, 8, 1, 1), param(b, weights, random, "se.fc1.bias", 4));
        se = b.op("conv2d", "se.fc2", Attributes.of("activation", "hardsigmoid"), se,
                param(b, weights, random, "se.fc2.weight", 8, 4, 1, 1), param(b, weights, random, "se.fc2.bias", 8));
        String scaled = b.op("mul", "se.scale", Attributes.EMPTY, dw, se);
        x = b.op("conv2d", "pw", Attributes.of("activation", "relu6"), scaled,
                param(b, weights, random, "pw.weight", 8, 8, 1, 1), "", scaled);
        x = b.op("max_pool2d", "maxpool", Attributes.of("kernel_size", 3, "stride", 2, "padding", 1), x);
        x = b.op("avg_pool2d", "avgpool", Attributes.of("kernel_size", 2), x);
        x = b.op("flatten", "flatten", Attributes.of("axis", 1), x);
        x = b.op("dropout", "dropout", Attributes.of("p", 0.2f), x);
        x = b.op("linear", "fc", Attributes.EMPTY, x, param(b, weights, random, "fc.weight", 10, 32),
                param(b, weights, random, "fc.bias", 10));
        x = b.op("softmax", "softmax", Attributes.of("axis", -1), x);
        return Model.bind(b.output(x).build(), weights, "random weights");
    }

    private static String param(GraphBuilder b, Map<String, Tensor> weights, Random random, String name,
                                int... dims) {
        Tensor t = Tensor.zeros(Shape.of(dims));
        for (int i = 0; i < t.data().length; i++) {
            t.data()[i] = (float) random.nextGaussian() * 0.5f;
        }
        weights.put(name, t);
        return b.parameter(name, dims);
    }

    private static String positive(GraphBuilder b, Map<String, Tensor> weights, Random random, String name,
                                   int... dims) {
        String p = param(b, weights, random, name, dims);
        float[] v = weights.get(name).data();
        for (int i = 0; i < v.length; i++) {
            v[i] = 0.5f + Math.abs(v[i]);
        }
        return p;
    }

    private static Tensor run(Model model, Tensor input) {
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of())) {
            return compiled.run(input);
        }
    }

    @Test
    void exportThenImportGivesTheSameOutputs(@TempDir Path dir) {
        Model original = smallNet();
        Path file = dir.resolve("small.onnx");
        OnnxExporter.write(original, file);
        Model imported = OnnxImporter.load(file, OPERATORS);

        Tensor input = Tensor.zeros(Shape.of(2, 3, 16, 16));
        Random random = new Random(7);
        for (int i = 0; i < input.data().length; i++) {
            input.data()[i] = (float) random.nextGaussian();
        }
        OnnxConformanceTest.assertClose(run(original, input), run(imported, input), "round trip");
        assertEquals(original.weights().keySet(), imported.weights().keySet().stream()
                .filter(original.weights()::containsKey).collect(java.util.stream.Collectors.toSet()),
                "every parameter keeps its name");
        List<String> ops = imported.graph().nodes().stream().map(Node::op).toList();
        assertTrue(ops.containsAll(List.of("silu", "hardswish", "relu6", "hardsigmoid", "linear")),
                "decompositions fold back: " + ops);
    }

    @Test
    void onnxCheckerAcceptsTheExport(@TempDir Path dir) throws IOException, InterruptedException {
        Path python = Path.of("/usr/bin/python3");
        Assumptions.assumeTrue(Files.isExecutable(python), "no /usr/bin/python3 (Debian's, with python3-onnx)");
        Path file = dir.resolve("small.onnx");
        OnnxExporter.write(smallNet(), file);
        Process p = new ProcessBuilder(python.toString(), "-c", "import sys\n"
                + "try:\n    import onnx\nexcept ImportError:\n    sys.exit(3)\n"
                + "m = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\n"
                + "print('ok', m.opset_import[0].version)", file.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "python timed out");
        Assumptions.assumeTrue(p.exitValue() != 3, "python3-onnx is not installed (apt-get install python3-onnx)");
        assertEquals(0, p.exitValue(), "onnx.checker rejected the export:\n" + output);
        assertTrue(output.contains("ok 13"), output);
    }
}
