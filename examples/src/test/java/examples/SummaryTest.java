package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

class SummaryTest {
    /** sum(p.numel() for p in torchvision.models.NAME().parameters()), torchvision 0.14. */
    @ParameterizedTest
    @CsvSource({"mobilenet_v2, 3504872", "efficientnet_b0, 5288548"})
    void parameterTotalIsTorchvisions(String network, long torchvisionCount) throws IOException {
        Run text = Run.of(Summary::run, "--model", network);
        assertEquals(0, text.exitCode(), text.toString());
        assertTrue(text.out().contains(String.format("%,d parameters", torchvisionCount)), text.toString());

        Run json = Run.of(Summary::run, "--model", network, "--resolution", "160", "--json");
        assertEquals(0, json.exitCode(), json.toString());
        JsonNode report = new ObjectMapper().readTree(json.out());
        assertEquals(torchvisionCount, report.get("totalParameters").asLong());
        long rows = 0;
        long multiplyAdds = 0;
        for (JsonNode node : report.get("nodes")) {
            rows += node.get("parameters").asLong();
            multiplyAdds += node.get("multiplyAdds").asLong();
        }
        assertEquals(torchvisionCount, rows, "the rows add up to the total");
        assertEquals(report.get("totalMultiplyAdds").asLong(), multiplyAdds);
        assertEquals("[1,1000]", report.get("nodes").get(report.get("nodes").size() - 1).get("outputShape").toString());
    }
}
