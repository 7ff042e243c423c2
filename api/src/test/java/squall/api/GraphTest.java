package squall.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GraphTest {
    /** An op that keeps its input's shape, so shape inference can run without ops-tornado. */
    private static final Operator SAME = new Operator() {
        @Override
        public String id() {
            return "same";
        }

        @Override
        public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
            return List.of(inputShapes.getFirst());
        }

        @Override
        public List<KernelCall> kernels(KernelContext context) {
            return List.of();
        }
    };

    private static final Operators OPS = Operators.of(List.of(new OperatorProvider() {
        @Override
        public int spiVersion() {
            return SPI_VERSION;
        }

        @Override
        public List<Operator> operators() {
            return List.of(SAME);
        }
    }));

    @Test
    void builderDefinesValuesInOrderAndInfersShapes() {
        var b = Graph.builder("g");
        String x = b.input("input", Shape.of(-1, 3, -1, -1));
        String w = b.parameter("w", 4, 3, 1, 1);
        x = b.op("same", "a", Attributes.EMPTY, x, w);
        Graph g = b.output(x).build();
        Map<String, Shape> shapes = g.inferShapes(Shape.of(2, 3, 5, 7), OPS);
        assertEquals(Shape.of(2, 3, 5, 7), shapes.get("a"));
        assertEquals(12, g.parameterCount());
    }

    @Test
    void readingAnUndefinedValueNamesTheNode() {
        var b = Graph.builder("g");
        b.input("input", Shape.of(1, 3, 4, 4));
        b.op("same", "a", Attributes.EMPTY, "nowhere");
        var e = assertThrows(SquallException.class, b::build);
        assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("nowhere"), e.getMessage());
    }

    @Test
    void inputShapeIsChecked() {
        var b = Graph.builder("g");
        String x = b.input("input", Shape.of(-1, 3, -1, -1));
        Graph g = b.output(b.op("same", "a", Attributes.EMPTY, x)).build();
        var e = assertThrows(SquallException.BadShape.class, () -> g.inferShapes(Shape.of(1, 4, 8, 8), OPS));
        assertTrue(e.getMessage().contains("[1, 4, 8, 8]"), e.getMessage());
    }

    @Test
    void unknownOpNamesItAndTheKnownOnes() {
        var b = Graph.builder("g");
        String x = b.input("input", Shape.of(1, 3, 4, 4));
        Graph g = b.output(b.op("frobnicate", "a", Attributes.EMPTY, x)).build();
        var e = assertThrows(SquallException.UnknownOperator.class, () -> g.inferShapes(Shape.of(1, 3, 4, 4), OPS));
        assertTrue(e.getMessage().contains("'frobnicate'") && e.getMessage().contains("same")
                && e.getMessage().contains("ServiceLoader"), e.getMessage());
    }

    @Test
    void strictBindingReportsEveryProblemAtOnce() {
        var b = Graph.builder("g");
        String x = b.input("input", Shape.of(1, 3, 4, 4));
        b.parameter("conv.weight", 8, 3, 3, 3);
        b.parameter("conv.bias", 8);
        b.parameter("fc.weight", 10, 8);
        Graph g = b.output(x).build();
        Map<String, Tensor> weights = Map.of(
                "conv.weight", Tensor.zeros(Shape.of(8, 3, 1, 1)),
                "fc.weight", Tensor.zeros(Shape.of(10, 8)),
                "extra", Tensor.zeros(Shape.of(2)));
        var e = assertThrows(SquallException.BadFile.class, () -> Model.bind(g, weights, "test.safetensors"));
        String m = e.getMessage();
        assertTrue(m.contains("test.safetensors") && m.contains("3 problems"), m);
        assertTrue(m.contains("missing: conv.bias [8]"), m);
        assertTrue(m.contains("wrong shape: conv.weight is [8, 3, 1, 1]"), m);
        assertTrue(m.contains("unexpected: extra [2]"), m);
    }

    @Test
    void shapeSizeOverflowIsAnError() {
        assertThrows(SquallException.BadShape.class, () -> Shape.of(100000, 100000, 3).size());
        assertEquals(60, Shape.of(3, 4, 5).size());
    }

    @Test
    void attributesExpandScalarsAndNameMissingOnes() {
        Attributes a = Attributes.of("stride", 2, "padding", new long[] {1, 2});
        assertEquals(2, a.getInts("stride", 2, 1)[1]);
        assertEquals(2, a.getInts("padding", 2, 0)[1]);
        var e = assertThrows(SquallException.class, () -> a.getInt("groups"));
        assertTrue(e.getMessage().contains("groups"));
    }

    @Test
    void workersRunEveryTaskOnce() {
        Workers w = Workers.of(2);
        int[] hits = new int[1000];
        w.forEach(hits.length, i -> hits[i]++);
        for (int h : hits) {
            assertEquals(1, h);
        }
    }
}
