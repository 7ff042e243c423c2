package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** ops and devices list what ServiceLoader finds on the test classpath. */
class ListingsTest {
    @Test
    void opsNamesEachOperatorsProviderAndOrigin() throws IOException {
        Run run = Run.of(Ops::run, "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode conv = null;
        for (JsonNode op : new ObjectMapper().readTree(run.out())) {
            if (op.get("id").asText().equals("conv2d")) {
                conv = op;
            }
        }
        assertTrue(conv != null, run.toString());
        assertEquals("squall.ops.BuiltinOperators", conv.get("provider").asText());
        assertTrue(conv.get("location").asText().contains("ops-tornado"), conv.toString());
    }

    @Test
    void devicesShowsTheJvmBackendAvailable() {
        Run run = Run.of(Devices::run);
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains("jvm (priority 0): available"), run.toString());
        assertTrue(run.out().contains("cpu: " + Runtime.getRuntime().availableProcessors() + " cores"), run.toString());
    }
}
