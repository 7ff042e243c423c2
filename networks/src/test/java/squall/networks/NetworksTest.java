package squall.networks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Graph;
import squall.api.Node;
import squall.api.Shape;
import squall.api.SquallException;

class NetworksTest {
    static List<String> names() {
        return Networks.names();
    }

    @Test
    void registryHasTorchvisionsFifteenNames() {
        assertEquals(List.of("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
                "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
                "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
                "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"), Networks.names());
    }

    /** torchvision's "num_params" metadata (and Howard et al.'s 4.2M for V1 at alpha 1.0). */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "mobilenet_v1, 4231976",
        "mobilenet_v2, 3504872",
        "mobilenet_v3_large, 5483032",
        "mobilenet_v3_small, 2542856",
        "efficientnet_b0, 5288548",
        "efficientnet_b1, 7794184",
        "efficientnet_b2, 9109994",
        "efficientnet_b3, 12233232",
        "efficientnet_b4, 19341616",
        "efficientnet_b5, 30389784",
        "efficientnet_b6, 43040704",
        "efficientnet_b7, 66347960",
        "efficientnet_v2_s, 21458488",
        "efficientnet_v2_m, 54139356",
        "efficientnet_v2_l, 118515272"})
    void parameterCountIsTorchvisions(String name, long expected) {
        assertEquals(expected, Networks.trainableParameterCount(Networks.build(name)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void takesAnyImageAndEndsInTheClassifier(String name) {
        Graph graph = Networks.build(name, 1.0, 37);
        assertEquals(List.of("input"), List.copyOf(graph.inputs().keySet()));
        assertEquals(Shape.of(-1, 3, -1, -1), graph.inputs().get("input"));
        assertEquals(1, graph.outputs().size());
        Node last = graph.nodes().getLast();
        assertEquals(graph.outputs().getFirst(), last.output());
        assertEquals("linear", last.op());
        assertEquals(37, graph.parameters().get(last.input(1)).dim(0), "classes in " + last);
    }

    /** Howard et al. 2017, Table 6: millions of parameters of 1.0, 0.75, 0.5 and 0.25 MobileNet-224. */
    @ParameterizedTest(name = "alpha {0}")
    @CsvSource({"1.0, 4.2", "0.75, 2.6", "0.5, 1.3", "0.25, 0.5"})
    void mobileNetV1WidthMultiplierFollowsThePaper(double alpha, double millions) {
        Graph graph = Networks.build("mobilenet_v1", alpha, 1000);
        assertEquals(millions, Networks.trainableParameterCount(graph) / 1e6, 0.05);
    }

    @Test
    void onlyMobileNetV1AndV2HaveAWidthMultiplier() {
        for (String name : List.of("mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s")) {
            var e = assertThrows(SquallException.class, () -> Networks.build(name, 0.5, 1000));
            assertTrue(e.getMessage().contains(name) && e.getMessage().contains("width"), e.getMessage());
        }
        var e = assertThrows(SquallException.class, () -> Networks.build("mobilenet_v2", -1, 1000));
        assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
    }

    @Test
    void unknownNameListsTheKnownOnes() {
        var e = assertThrows(SquallException.class, () -> Networks.build("resnet50"));
        assertTrue(e.getMessage().contains("resnet50") && e.getMessage().contains("efficientnet_v2_l"), e.getMessage());
        assertThrows(SquallException.class, () -> Networks.info("mobilenet_v4"));
    }

    /** Native resolutions: Howard et al. 2017/2019, Sandler et al. 2018, Tan and Le 2019 Table 2 and 2021. */
    @ParameterizedTest(name = "{0} at {1}")
    @CsvSource({
        "mobilenet_v1, 224", "mobilenet_v2, 224", "mobilenet_v3_large, 224", "mobilenet_v3_small, 224",
        "efficientnet_b0, 224", "efficientnet_b1, 240", "efficientnet_b2, 260", "efficientnet_b3, 300",
        "efficientnet_b4, 380", "efficientnet_b5, 456", "efficientnet_b6, 528", "efficientnet_b7, 600",
        "efficientnet_v2_s, 384", "efficientnet_v2_m, 480", "efficientnet_v2_l, 480"})
    void nativeResolutionIsThePapers(String name, int resolution) {
        NetworkInfo info = Networks.info(name);
        assertEquals(name, info.name());
        assertEquals(resolution, info.resolution());
    }

    @Test
    void trainableCountLeavesOutRunningStatistics() {
        Graph graph = Networks.build("mobilenet_v3_small");
        long runningStatistics = graph.parameters().entrySet().stream()
                .filter(p -> p.getKey().endsWith(".running_mean") || p.getKey().endsWith(".running_var"))
                .mapToLong(p -> p.getValue().elementCount()).sum();
        assertTrue(runningStatistics > 0);
        assertEquals(graph.parameterCount() - runningStatistics, Networks.trainableParameterCount(graph));
    }
}
