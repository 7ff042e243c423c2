package squall.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import squall.api.Attributes;
import squall.api.Shape;
import squall.api.SquallException;

/** Bad attributes and input shapes fail with a message naming the node and the shapes. */
class ValidationTest {
    private static void fails(String op, Attributes attributes, List<Shape> shapes, String... mustMention) {
        var error = assertThrows(SquallException.BadShape.class, () -> OpHarness.outputShape(op, attributes, shapes));
        String message = error.getMessage();
        assertTrue(message.contains("node 'test_" + op + "' (" + op + ")"), "names the node: " + message);
        for (String text : mustMention) {
            assertTrue(message.contains(text), "mentions '" + text + "': " + message);
        }
    }

    private static final Shape IMAGE = Shape.of(1, 6, 8, 8);

    @Test
    void conv2dChecksWeightGroupsBiasResidualAndAttributes() {
        fails("conv2d", Attributes.EMPTY, List.of(IMAGE, Shape.of(4, 5, 3, 3)), "[1, 6, 8, 8]", "[4, 5, 3, 3]",
                "C/groups = 6");
        fails("conv2d", Attributes.of("groups", 4), List.of(IMAGE, Shape.of(4, 1, 3, 3)), "groups = 4");
        fails("conv2d", Attributes.EMPTY, List.of(IMAGE, Shape.of(4, 6, 3, 3), Shape.of(5)), "bias", "[4]", "[5]");
        fails("conv2d", Attributes.EMPTY, Arrays.asList(IMAGE, Shape.of(4, 6, 3, 3), null, Shape.of(1, 4, 8, 8)),
                "residual", "[1, 4, 6, 6]", "[1, 4, 8, 8]");
        fails("conv2d", Attributes.of("activation", "gelu"), List.of(IMAGE, Shape.of(4, 6, 3, 3)), "gelu",
                "hardswish");
        fails("conv2d", Attributes.of("padding", new int[] {1, 1, 1}), List.of(IMAGE, Shape.of(4, 6, 3, 3)),
                "padding", "[1, 1, 1]");
        fails("conv2d", Attributes.of("stride", 0), List.of(IMAGE, Shape.of(4, 6, 3, 3)), "stride");
        fails("conv2d", Attributes.EMPTY, List.of(Shape.of(1, 6, 2, 2), Shape.of(4, 6, 3, 3)), "[1, 6, 2, 2]",
                "smaller");
        fails("conv2d", Attributes.EMPTY, List.of(Shape.of(6, 8, 8), Shape.of(4, 6, 3, 3)), "[6, 8, 8]",
                "[N, C, H, W]");
        fails("conv2d", Attributes.EMPTY, List.of(IMAGE), "weight", "missing");
    }

    @Test
    void otherOperatorsNameTheirShapes() {
        Shape c6 = Shape.of(6);
        fails("batch_norm", Attributes.EMPTY, List.of(IMAGE, c6, c6, Shape.of(5), c6), "running_mean", "[6]", "[5]");
        fails("add", Attributes.EMPTY, List.of(IMAGE, Shape.of(1, 5, 1, 1)), "[1, 6, 8, 8]", "[1, 5, 1, 1]");
        fails("mul", Attributes.EMPTY, List.of(Shape.of(1, 1, 1, 1, 1, 1, 2), Shape.of(2)), "rank 7");
        fails("linear", Attributes.EMPTY, List.of(Shape.of(2, 10), Shape.of(3, 11)), "[2, 10]", "[3, 11]");
        fails("gemm", Attributes.EMPTY, List.of(Shape.of(2, 3), Shape.of(4, 5)), "[2, 3]", "[4, 5]");
        fails("gemm", Attributes.EMPTY, List.of(Shape.of(2, 3), Shape.of(3, 5), Shape.of(3, 5)), "[3, 5]", "[2, 5]");
        fails("reshape", Attributes.of("shape", new int[] {5, -1}), List.of(IMAGE), "[1, 6, 8, 8]", "[5, -1]");
        fails("reshape", Attributes.of("shape", new int[] {-1, -1}), List.of(IMAGE), "more than one -1");
        fails("softmax", Attributes.of("axis", 4), List.of(IMAGE), "axis", "rank 4");
        fails("flatten", Attributes.of("axis", -5), List.of(IMAGE), "axis");
        fails("global_avg_pool", Attributes.EMPTY, List.of(Shape.of(2, 8)), "[2, 8]", "[N, C, H, W]");
        fails("max_pool2d", Attributes.EMPTY, List.of(IMAGE), "kernel_size");
        fails("avg_pool2d", Attributes.of("kernel_size", 3, "dilation", 2), List.of(IMAGE), "dilation");
        fails("max_pool2d", Attributes.of("kernel_size", 9), List.of(IMAGE), "[1, 6, 8, 8]", "smaller");
        fails("clip", Attributes.of("min", 2f, "max", 1f), List.of(IMAGE), "min", "max");
        fails("relu", Attributes.EMPTY, List.of(IMAGE, IMAGE), "at most 1");
    }
}
