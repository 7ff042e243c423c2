package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;

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
        for (JsonNode node : profile) {
            shares += node.get("share").asDouble();
        }
        assertEquals(1.0, shares, 1e-6);
    }
}
