package squall.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static squall.ops.OpHarness.assertClose;
import static squall.ops.OpHarness.random;

import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Attributes;
import squall.api.Shape;

/** Pooling against window-by-window references in double precision. */
class PoolTest {
    /** padding is (top, left, bottom, right); expectedH/W are worked out by hand from PyTorch's formula. */
    record Case(String name, int batch, int channels, int height, int width, int kernel, int stride, int[] padding,
                int dilation, boolean ceilMode, boolean countIncludePad, int expectedH, int expectedW) {
        @Override
        public String toString() {
            return name;
        }

        Attributes attributes() {
            return Attributes.of("kernel_size", kernel, "stride", stride, "padding", padding, "dilation", dilation,
                    "ceil_mode", ceilMode ? 1 : 0, "count_include_pad", countIncludePad ? 1 : 0);
        }
    }

    static Stream<Case> maxCases() {
        return Stream.of(
                new Case("3x3 stride 2 pad 1 on 7x7", 2, 3, 7, 7, 3, 2, new int[] {1, 1, 1, 1}, 1, false, false, 4, 4),
                new Case("ceil mode on 8x8", 1, 5, 8, 8, 3, 2, new int[] {0, 0, 0, 0}, 1, true, false, 4, 4),
                new Case("ceil mode, last window would start in padding", 1, 2, 5, 6, 2, 2, new int[] {1, 1, 1, 1}, 1,
                        true, false, 3, 4),
                new Case("dilation 2", 2, 3, 9, 10, 3, 1, new int[] {0, 0, 0, 0}, 2, false, false, 5, 6),
                new Case("asymmetric padding", 1, 3, 6, 5, 3, 2, new int[] {0, 1, 1, 0}, 1, false, false, 3, 2),
                new Case("1x1 map", 3, 4, 1, 1, 1, 1, new int[] {0, 0, 0, 0}, 1, false, false, 1, 1));
    }

    static Stream<Case> avgCases() {
        return Stream.of(
                new Case("2x2 on odd 5x5", 2, 3, 5, 5, 2, 2, new int[] {0, 0, 0, 0}, 1, false, false, 2, 2),
                new Case("padding 1 excluded from count", 1, 4, 6, 7, 3, 2, new int[] {1, 1, 1, 1}, 1, false, false, 3,
                        4),
                new Case("padding 1 included in count", 1, 4, 6, 7, 3, 2, new int[] {1, 1, 1, 1}, 1, false, true, 3, 4),
                new Case("ceil mode, pad excluded", 2, 3, 7, 8, 3, 2, new int[] {1, 1, 1, 1}, 1, true, false, 4, 5),
                new Case("ceil mode, pad included: overhang not counted", 2, 3, 6, 6, 3, 2, new int[] {0, 0, 0, 0}, 1,
                        true, true, 3, 3),
                new Case("asymmetric padding included", 1, 2, 5, 4, 2, 1, new int[] {1, 0, 0, 1}, 1, false, true, 5,
                        4));
    }

    private static Shape run(Case c, boolean max, float[] x, double[] expected) {
        Shape xShape = Shape.of(c.batch(), c.channels(), c.height(), c.width());
        String op = max ? "max_pool2d" : "avg_pool2d";
        Shape out = OpHarness.outputShape(op, c.attributes(), List.of(xShape));
        assertEquals(Shape.of(c.batch(), c.channels(), c.expectedH(), c.expectedW()), out, "output shape");
        float[] actual = OpHarness.run(op, c.attributes(), List.of(xShape), x);
        assertClose(expected, actual, c.kernel() * c.kernel(), c.name());
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("maxCases")
    void maxPoolMatchesReference(Case c) {
        float[] x = random(new Random(c.name().hashCode()), c.batch() * c.channels() * c.height() * c.width(), 3);
        double[] expected = new double[c.batch() * c.channels() * c.expectedH() * c.expectedW()];
        int at = 0;
        for (int plane = 0; plane < c.batch() * c.channels(); plane++) {
            for (int oy = 0; oy < c.expectedH(); oy++) {
                for (int ox = 0; ox < c.expectedW(); ox++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int ky = 0; ky < c.kernel(); ky++) {
                        for (int kx = 0; kx < c.kernel(); kx++) {
                            int y = oy * c.stride() - c.padding()[0] + ky * c.dilation();
                            int xx = ox * c.stride() - c.padding()[1] + kx * c.dilation();
                            if (y >= 0 && y < c.height() && xx >= 0 && xx < c.width()) {
                                max = Math.max(max, x[(plane * c.height() + y) * c.width() + xx]);
                            }
                        }
                    }
                    expected[at++] = max;
                }
            }
        }
        run(c, true, x, expected);
    }

    /** The divisor counts window cells inside the input, plus (count_include_pad) those in the padding. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("avgCases")
    void avgPoolMatchesReference(Case c) {
        float[] x = random(new Random(c.name().hashCode()), c.batch() * c.channels() * c.height() * c.width(), 3);
        double[] expected = new double[c.batch() * c.channels() * c.expectedH() * c.expectedW()];
        int at = 0;
        for (int plane = 0; plane < c.batch() * c.channels(); plane++) {
            for (int oy = 0; oy < c.expectedH(); oy++) {
                for (int ox = 0; ox < c.expectedW(); ox++) {
                    double sum = 0;
                    int count = 0;
                    for (int ky = 0; ky < c.kernel(); ky++) {
                        for (int kx = 0; kx < c.kernel(); kx++) {
                            int y = oy * c.stride() - c.padding()[0] + ky;
                            int xx = ox * c.stride() - c.padding()[1] + kx;
                            boolean inInput = y >= 0 && y < c.height() && xx >= 0 && xx < c.width();
                            boolean inPadded = y >= -c.padding()[0] && y < c.height() + c.padding()[2]
                                    && xx >= -c.padding()[1] && xx < c.width() + c.padding()[3];
                            if (inInput) {
                                sum += x[(plane * c.height() + y) * c.width() + xx];
                            }
                            if (c.countIncludePad() ? inPadded : inInput) {
                                count++;
                            }
                        }
                    }
                    expected[at++] = sum / count;
                }
            }
        }
        run(c, false, x, expected);
    }

    @Test
    void globalAveragePoolMatchesReference() {
        for (Shape xShape : List.of(Shape.of(2, 5, 3, 7), Shape.of(3, 17, 1, 1), Shape.of(1, 9, 13, 11))) {
            float[] x = random(new Random(xShape.hashCode()), xShape.size(), 2);
            int spatial = xShape.dim(2) * xShape.dim(3);
            double[] expected = new double[xShape.dim(0) * xShape.dim(1)];
            for (int i = 0; i < x.length; i++) {
                expected[i / spatial] += x[i] / (double) spatial;
            }
            assertEquals(Shape.of(xShape.dim(0), xShape.dim(1), 1, 1),
                    OpHarness.outputShape("global_avg_pool", Attributes.EMPTY, List.of(xShape)));
            assertClose(expected, OpHarness.run("global_avg_pool", Attributes.EMPTY, List.of(xShape), x), 1,
                    "global_avg_pool " + xShape);
        }
    }
}
