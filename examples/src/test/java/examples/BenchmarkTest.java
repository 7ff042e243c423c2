package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import squall.api.Operators;
import squall.networks.Networks;

class BenchmarkTest {
    @Test
    void reportsConsistentLatencyThroughputAndProfile() throws IOException {
        Run run = Run.of(Benchmark::run, "--model", "mobilenet_v3_small", "--resolution", "64", "--batch", "2",
                "--runs", "3", "--warmup", "0", "--threads", "1", "--profile", "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode r = new ObjectMapper().readTree(run.out());
        double median = r.get("medianMs").asDouble();
        assertTrue(r.get("p10Ms").asDouble() <= median && median <= r.get("p90Ms").asDouble(), run.toString());
        assertEquals(2 / (median / 1e3), r.get("imagesPerSecond").asDouble(), 1e-9);
        long multiplyAdds = Summary.summarize(Networks.build("mobilenet_v3_small"), 64, Operators.discover())
                .totalMultiplyAdds();
        assertEquals(multiplyAdds, r.get("multiplyAddsPerImage").asLong());
        assertEquals(2.0 * multiplyAdds * 2 / (median / 1e3) / 1e9, r.get("gflopsPerSecond").asDouble(), 1e-9);
        JsonNode profile = r.get("profile");
        assertTrue(profile.size() > 50, "one row per node of the optimised graph: " + profile.size());
        double shares = 0;
        long convMultiplyAdds = 0;
        for (JsonNode node : profile) {
            shares += node.get("share").asDouble();
            long stepMultiplyAdds = node.get("multiplyAdds").asLong();
            if (List.of("conv2d", "linear", "expand_depthwise").contains(node.get("op").asText())) {
                assertTrue(stepMultiplyAdds > 0, node.toString());
                convMultiplyAdds += stepMultiplyAdds;
            }
            assertEquals(2.0 * stepMultiplyAdds / node.get("milliseconds").asDouble() / 1e6,
                    node.get("gflopsPerSecond").asDouble(), 1e-6 * Math.max(1, node.get("gflopsPerSecond").asDouble()),
                    node.toString());
        }
        assertEquals(1.0, shares, 1e-6);
        // The plan's convs and linears (fused, some in blocks) do the multiply-adds of the graph's as written.
        long written = Summary.summarize(Networks.build("mobilenet_v3_small"), 64, Operators.discover()).nodes()
                .stream().filter(row -> row.op().equals("conv2d") || row.op().equals("linear"))
                .mapToLong(Summary.Row::multiplyAdds).sum();
        assertEquals(2 * written, convMultiplyAdds);
        // Each run returns a new [2, 1000] output: at least its 8000 bytes were allocated.
        assertTrue(r.get("allocatedBytesPerRun").asLong() >= 2 * 1000 * Float.BYTES, run.toString());
    }

    /** Structure and consistency of --compare ort, and that the outputs were compared (not how fast anything is). */
    @Test
    void compareWithOnnxRuntimeReportsBothAndTheirRatios() throws IOException {
        Run run = Run.of(Benchmark::run, "--model", "mobilenet_v3_small", "--resolution", "64", "--batch", "2",
                "--runs", "3", "--warmup", "0", "--threads", "1", "--compare", "ort", "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode r = new ObjectMapper().readTree(run.out());
        JsonNode c = r.get("comparison");
        assertEquals("onnxruntime", c.get("engine").asText());
        assertTrue(c.get("version").asText().matches("\\d+\\.\\d+\\.\\d+.*"), c.toString());
        assertEquals(1, c.get("threads").asInt());
        assertTrue(c.get("onnxFile").asText().contains("OnnxExporter"), c.toString());
        double ortMedian = c.get("medianMs").asDouble();
        assertTrue(0 < c.get("p10Ms").asDouble() && c.get("p10Ms").asDouble() <= ortMedian
                && ortMedian <= c.get("p90Ms").asDouble(), c.toString());
        assertEquals(2 / (ortMedian / 1e3), c.get("imagesPerSecond").asDouble(), 1e-9);
        double squallMedian = r.get("medianMs").asDouble();
        assertEquals(squallMedian / ortMedian, c.get("latencyRatio").asDouble(), 1e-9);
        assertEquals(r.get("imagesPerSecond").asDouble() / c.get("imagesPerSecond").asDouble(),
                c.get("throughputRatio").asDouble(), 1e-9);
        // The outputs were compared: a measured difference, within the tolerance, of float32 rounding size.
        double difference = c.get("maxRelativeDifference").asDouble();
        assertTrue(c.get("outputsAgree").asBoolean() && difference < c.get("tolerance").asDouble(), c.toString());
        assertTrue(difference > 0 && difference < 1e-4, "reordered float32 sums differ a little: " + difference);

        Run text = Run.of(Benchmark::run, "--model", "mobilenet_v3_small", "--resolution", "64", "--runs", "2",
                "--warmup", "0", "--threads", "1", "--compare", "ort");
        assertEquals(0, text.exitCode(), text.toString());
        List<String> lines = text.outLines();
        assertEquals(2, lines.stream().filter(line -> line.startsWith("latency: median")).count(), text.toString());
        assertEquals(2, lines.stream().filter(line -> line.startsWith("throughput: ")).count(), text.toString());
        assertTrue(lines.stream().anyMatch(line -> line.matches("squall/onnxruntime: latency \\d+\\.\\d+x, "
                + "throughput \\d+\\.\\d+x.*")), text.toString());
        assertTrue(lines.stream().anyMatch(line -> line.startsWith("outputs agree: max |squall - onnxruntime|")),
                text.toString());
    }

    /** A user's .onnx file is what ONNX Runtime runs: PyTorch's export of networks' tiny test model. */
    @Test
    void compareRunsTheUsersOnnxFile() throws IOException {
        String file = OnnxModelTest.TINY_FREE_BATCH.toString();
        Run run = Run.of(Benchmark::run, "--model", file, "--batch", "3", "--runs", "2", "--warmup", "0",
                "--compare", "ort", "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode r = new ObjectMapper().readTree(run.out());
        assertEquals(20, r.get("resolution").asInt(), "the file's input size");
        assertEquals(file, r.get("comparison").get("onnxFile").asText());
        assertTrue(r.get("comparison").get("outputsAgree").asBoolean(), run.toString());
    }
}
