package squall.networks;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Graph;
import squall.api.Operators;
import squall.api.Shape;

/**
 * Every network, checked node by node by the built-in operators of squall-ops-tornado, yields
 * [N, classes] logits at its native resolution and at a small non-square one (where padding and
 * the floor in every stride-2 output size matter).
 */
class ShapeInferenceTest {
    static List<String> names() {
        return Networks.names();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void logitsAtAnyResolution(String name) {
        Operators operators = Operators.discover();
        Assumptions.assumeTrue(operators.has("conv2d"),
                "no conv2d operator on the test classpath: install squall-ops-tornado (mvn -pl ops-tornado install)");
        Graph graph = Networks.build(name, 1.0, 10);
        int resolution = Networks.info(name).resolution();
        for (Shape input : new Shape[] {Shape.of(1, 3, resolution, resolution), Shape.of(2, 3, 97, 131)}) {
            Map<String, Shape> shapes = graph.inferShapes(input, operators);
            assertEquals(Shape.of(input.dim(0), 10), shapes.get(graph.outputs().getFirst()), name + " at " + input);
        }
    }
}
