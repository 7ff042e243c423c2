package squall.plugins.activations;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Node;
import squall.api.Tensor;
import squall.networks.onnx.OnnxImporter;

/**
 * An ONNX model with Mish and Gelu (approximate = "tanh") nodes, written by references.py with
 * onnx's helper API, imported with the plugin on the classpath: the importer maps each op_type,
 * lowercased, onto the plugin's op and passes the attributes; the result matches PyTorch's
 * gelu(mish(x), approximate="tanh") in float64.
 */
class MishOnnxTest {
    @Test
    void importedMishAndGeluMatchPyTorch() {
        Model model = OnnxImporter.load(TorchReference.directory().resolve("mish_gelu.onnx"));
        assertEquals(List.of("mish", "gelu"), model.graph().nodes().stream().map(Node::op).toList());
        assertEquals("tanh", model.graph().nodes().get(1).attributes().getString("approximate"));
        Tensor x = TorchReference.read("x.npy");
        try (CompiledModel compiled = Backends.select("jvm").compile(model,
                squall.api.Operators.discover(), Map.of())) {
            // two roundings to float, each within an ulp, and gelu's slope (at most 1.13) on the first
            float[] y = compiled.run(x).data();
            float[] expected = TorchReference.read("mish_gelu.npy").data();
            for (int i = 0; i < y.length; i++) {
                double tolerance = 4e-7 * Math.abs(expected[i]) + 1e-38;
                if (!(Math.abs(y[i] - expected[i]) <= tolerance)) {
                    org.junit.jupiter.api.Assertions.fail("at x = " + x.data()[i] + " got " + y[i] + ", PyTorch "
                            + expected[i]);
                }
            }
        }
    }
}
