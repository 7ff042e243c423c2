package squall.networks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Graph;
import squall.api.Tensor;

class RandomWeightsTest {
    @ParameterizedTest
    @ValueSource(strings = {"mobilenet_v1", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s"})
    void everyParameterGetsFiniteValuesOfItsShape(String name) {
        Graph graph = Networks.build(name);
        Map<String, Tensor> weights = RandomWeights.generate(graph, 1);
        assertEquals(List.copyOf(graph.parameters().keySet()), List.copyOf(weights.keySet()));
        graph.parameters().forEach((key, shape) -> {
            Tensor tensor = weights.get(key);
            assertEquals(shape, tensor.shape(), key);
            for (float value : tensor.data()) {
                assertTrue(Float.isFinite(value), key);
            }
            if (key.endsWith(".running_var")) {
                for (float value : tensor.data()) {
                    assertTrue(value > 0, key + " has a non-positive variance " + value);
                }
            }
        });
    }

    @Test
    void sameSeedSameWeightsOtherSeedOtherWeights() {
        Graph graph = Networks.build("mobilenet_v3_small");
        Map<String, Tensor> first = RandomWeights.generate(graph, 42);
        Map<String, Tensor> again = RandomWeights.generate(graph, 42);
        Map<String, Tensor> other = RandomWeights.generate(graph, 43);
        first.forEach((key, tensor) -> assertArrayEquals(tensor.data(), again.get(key).data(), key));
        String conv = "features.0.0.weight";
        assertFalse(Arrays.equals(first.get(conv).data(), other.get(conv).data()));
    }

    /** He et al. 2015: weights ~ N(0, 2 / fanIn), fanIn = C/groups * kH * kW. */
    @Test
    void convolutionsAreHeInitialisedByFanIn() {
        Graph graph = Networks.build("efficientnet_b0");
        Map<String, Tensor> weights = RandomWeights.generate(graph, 5);
        // A 1x1 conv 320 -> 1280 (fanIn 320) and a 5x5 depthwise conv over 672 channels (fanIn 25).
        assertStd(weights.get("features.8.0.weight"), Math.sqrt(2.0 / 320));
        assertStd(weights.get("features.5.1.block.1.0.weight"), Math.sqrt(2.0 / 25));
    }

    private static void assertStd(Tensor tensor, double expected) {
        double sum = 0;
        double sumSquares = 0;
        for (float v : tensor.data()) {
            sum += v;
            sumSquares += (double) v * v;
        }
        int n = tensor.data().length;
        double mean = sum / n;
        assertEquals(0, mean, 0.05 * expected);
        assertEquals(expected, Math.sqrt(sumSquares / n - mean * mean), 0.03 * expected);
    }

    /**
     * torchvision's own models, run by PyTorch with these weights on two images: every BatchNorm
     * and block output stays near unit scale, and the two images get clearly different logits.
     * Deep residual networks (b4: 32 blocks, v2_s: 40) are where a poor init blows up.
     */
    @Test
    void pyTorchActivationsStayAtUnitScale() throws IOException {
        List<String> names = List.of("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
                "efficientnet_b0", "efficientnet_b4", "efficientnet_v2_s");
        Path directory = Python.moduleDir().resolve("target/random-weights");
        Files.createDirectories(directory);
        for (String name : names) {
            write(RandomWeights.generate(Networks.build(name), 2024), directory, name);
        }
        Path report = directory.resolve("scale.jsonl");
        List<String> command = new ArrayList<>(List.of(directory.toString(), report.toString()));
        command.addAll(names);
        try {
            Python.run("random_weights_scale.py", command.toArray(String[]::new));
        } finally {
            for (String name : names) { // a few hundred MB, written again by the next run
                Files.deleteIfExists(directory.resolve(name + ".bin"));
            }
        }
        List<String> problems = new ArrayList<>();
        for (String line : Files.readAllLines(report)) {
            String model = field(line, "model");
            double bnMin = Double.parseDouble(field(line, "bn_rms_min"));
            double bnMax = Double.parseDouble(field(line, "bn_rms_max"));
            double blockMax = Double.parseDouble(field(line, "block_rms_max"));
            double logits = Double.parseDouble(field(line, "logits_rms"));
            double correlation = Double.parseDouble(field(line, "correlation"));
            // Unit scale within a factor of 10: the estimates drift by a few percent per block, most
            // in the deepest residual networks (efficientnet_v2_s reaches about 8).
            boolean sane = field(line, "logits_finite").equals("true") && bnMin > 0.1 && bnMax < 10 && blockMax < 10
                    && logits > 0.05 && logits < 10 && correlation < 0.99;
            if (!sane) {
                problems.add(line);
            }
            assertTrue(names.contains(model), line);
        }
        assertEquals(names.size(), Files.readAllLines(report).size(), "one report line per network");
        assertTrue(problems.isEmpty(), "activations out of scale:\n" + String.join("\n", problems));
    }

    /** The raw layout random_weights_scale.py reads: an index of keys and shapes, then float32 LE. */
    private static void write(Map<String, Tensor> weights, Path directory, String name) throws IOException {
        try (PrintWriter index = new PrintWriter(Files.newBufferedWriter(directory.resolve(name + ".idx"),
                StandardCharsets.UTF_8)); OutputStream data = Files.newOutputStream(directory.resolve(name + ".bin"))) {
            for (var entry : weights.entrySet()) {
                Tensor tensor = entry.getValue();
                index.println(entry.getKey() + "\t" + Arrays.stream(tensor.shape().dims()).mapToObj(Integer::toString)
                        .collect(Collectors.joining(",")));
                ByteBuffer bytes = ByteBuffer.allocate(4 * tensor.data().length).order(ByteOrder.LITTLE_ENDIAN);
                bytes.asFloatBuffer().put(tensor.data());
                data.write(bytes.array());
            }
        }
    }

    private static String field(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\": \"?([^\",}]*)").matcher(json);
        assertTrue(m.find(), "no " + key + " in " + json);
        return m.group(1);
    }
}
