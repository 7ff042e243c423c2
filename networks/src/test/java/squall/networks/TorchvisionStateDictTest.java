package squall.networks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Graph;
import squall.api.Shape;

/** Each network's parameters against torchvision 0.14's own models, name by name and shape by shape. */
class TorchvisionStateDictTest {
    static Stream<Arguments> networks() {
        Stream<Arguments> standard = Networks.names().stream().map(name -> Arguments.of(name, 1.0));
        return Stream.concat(standard, Stream.of(Arguments.of("mobilenet_v1", 0.25), Arguments.of("mobilenet_v2", 0.5)));
    }

    @ParameterizedTest(name = "{0} width {1}")
    @MethodSource("networks")
    void parametersAreTorchvisionsStateDict(String name, double width) {
        TorchvisionReference reference = TorchvisionReference.of(name, width);
        Graph graph = Networks.build(name, width, 1000);
        List<String> differences = new ArrayList<>();
        Map<String, Shape> ours = graph.parameters();
        for (String key : new TreeSet<>(reference.params().keySet())) {
            Shape expected = reference.params().get(key);
            Shape actual = ours.get(key);
            if (actual == null) {
                differences.add("missing " + key + " " + expected);
            } else if (!actual.equals(expected)) {
                differences.add(key + ": torchvision " + expected + ", Squall " + actual);
            }
        }
        for (String key : new TreeSet<>(ours.keySet())) {
            if (!reference.params().containsKey(key)) {
                differences.add("extra " + key + " " + ours.get(key));
            }
        }
        if (!differences.isEmpty()) {
            fail(name + " (width " + width + ") differs from torchvision in " + differences.size() + " parameters:\n  "
                    + String.join("\n  ", differences));
        }
        assertEquals(reference.numParams(), Networks.trainableParameterCount(graph), "parameters() count");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void infoFollowsTorchvisionWeightsMetadata(String name, double width) {
        TorchvisionReference reference = TorchvisionReference.of(name, width);
        NetworkInfo info = Networks.info(name);
        assertEquals(reference.batchNormEpsilon(), info.batchNormEpsilon(), 1e-12, "BatchNorm eps");
        TorchvisionReference.Weights weights = reference.weights();
        if (weights == null) {
            assertTrue(info.checkpointUrl().isEmpty(), "torchvision ships no " + name + " weights");
            return;
        }
        assertEquals(weights.url(), info.checkpointUrl().orElseThrow());
        assertEquals(weights.cropSize(), info.cropSize(), "crop size");
        assertEquals(weights.resizeSize(), info.resizeSize(), "resize size");
        assertEquals(weights.interpolation(), info.interpolation());
        assertArrayEquals(weights.mean(), info.mean(), 1e-6f, "mean");
        assertArrayEquals(weights.std(), info.std(), 1e-6f, "std");
    }
}
