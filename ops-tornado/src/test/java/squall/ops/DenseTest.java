package squall.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static squall.ops.OpHarness.activation;
import static squall.ops.OpHarness.assertClose;
import static squall.ops.OpHarness.random;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import squall.api.Attributes;
import squall.api.Shape;

/** linear, gemm and softmax against double-precision references. */
class DenseTest {
    @ParameterizedTest
    @CsvSource({"3, 10, 7, true, none", "1, 17, 1, false, relu", "5, 33, 9, true, hardswish", "4, 1, 3, true, silu"})
    void linearMatchesTorchFormula(int batch, int inFeatures, int outFeatures, boolean hasBias, String act) {
        Random random = new Random(batch * 1000 + inFeatures);
        float[] x = random(random, batch * inFeatures, 2);
        float[] w = random(random, outFeatures * inFeatures, 1);
        float[] b = hasBias ? random(random, outFeatures, 1) : null;
        double[] expected = new double[batch * outFeatures];
        for (int n = 0; n < batch; n++) {
            for (int m = 0; m < outFeatures; m++) {
                double sum = b == null ? 0 : b[m];
                for (int k = 0; k < inFeatures; k++) {
                    sum += (double) x[n * inFeatures + k] * w[m * inFeatures + k];
                }
                expected[n * outFeatures + m] = activation(act, sum);
            }
        }
        var shapes = Arrays.asList(Shape.of(batch, inFeatures), Shape.of(outFeatures, inFeatures),
                hasBias ? Shape.of(outFeatures) : null);
        Attributes attributes = Attributes.of("activation", act);
        assertEquals(Shape.of(batch, outFeatures), OpHarness.outputShape("linear", attributes, shapes));
        assertClose(expected, OpHarness.run("linear", attributes, shapes, x, w, b), inFeatures * 2, "linear");
    }

    @Test
    void linearTreatsLeadingDimsAsBatch() {
        Random random = new Random(9);
        float[] x = random(random, 2 * 3 * 5, 1);
        float[] w = random(random, 4 * 5, 1);
        var flat = OpHarness.run("linear", Attributes.EMPTY, Arrays.asList(Shape.of(6, 5), Shape.of(4, 5)), x, w);
        var shapes = Arrays.asList(Shape.of(2, 3, 5), Shape.of(4, 5));
        assertEquals(Shape.of(2, 3, 4), OpHarness.outputShape("linear", Attributes.EMPTY, shapes));
        org.junit.jupiter.api.Assertions.assertArrayEquals(flat, OpHarness.run("linear", Attributes.EMPTY, shapes, x, w));
    }

    /** c is ":"-separated dims, "" for a scalar, "absent" for no C. */
    @ParameterizedTest
    @CsvSource({
        "3, 4, 5, 0, 0, 1.0, 1.0, 3:4",
        "3, 4, 5, 1, 0, 0.5, 2.0, 4",
        "3, 4, 5, 0, 1, 1.0, -1.0, 3:1",
        "2, 7, 3, 1, 1, 2.0, 0.25, ''",
        "5, 1, 6, 0, 1, 1.0, 1.0, absent",
        "1, 9, 8, 0, 0, 1.5, 1.0, 1:9"})
    void gemmMatchesOnnxFormula(int rows, int cols, int inner, int transA, int transB, float alpha, float beta,
                                String cDims) {
        Random random = new Random(rows * 100 + cols * 10 + inner);
        Shape aShape = transA == 1 ? Shape.of(inner, rows) : Shape.of(rows, inner);
        Shape bShape = transB == 1 ? Shape.of(cols, inner) : Shape.of(inner, cols);
        Shape cShape = cDims.equals("absent") ? null : cDims.isEmpty() ? Shape.of(new int[0])
                : Shape.of(Arrays.stream(cDims.split(":")).mapToInt(Integer::parseInt).toArray());
        float[] a = random(random, aShape.size(), 2);
        float[] b = random(random, bShape.size(), 2);
        float[] c = cShape == null ? null : random(random, cShape.size(), 2);
        double[] expected = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                double sum = 0;
                for (int k = 0; k < inner; k++) {
                    sum += (double) (transA == 1 ? a[k * rows + i] : a[i * inner + k])
                            * (transB == 1 ? b[j * inner + k] : b[k * cols + j]);
                }
                double cValue = 0;
                if (cShape != null) {
                    int ci = cShape.rank() == 2 && cShape.dim(0) > 1 ? i : 0;
                    int cj = cShape.rank() >= 1 && cShape.dim(-1) > 1 ? j : 0;
                    cValue = c[ci * (cShape.rank() >= 1 ? cShape.dim(-1) : 1) + cj];
                }
                expected[i * cols + j] = alpha * sum + beta * cValue;
            }
        }
        Attributes attributes = Attributes.of("alpha", alpha, "beta", beta, "trans_a", transA, "trans_b", transB);
        var shapes = Arrays.asList(aShape, bShape, cShape);
        assertEquals(Shape.of(rows, cols), OpHarness.outputShape("gemm", attributes, shapes));
        assertClose(expected, OpHarness.run("gemm", attributes, shapes, a, b, c), inner * 8, "gemm");
    }

    @ParameterizedTest
    @CsvSource({"-1, 1", "0, 1", "1, 1", "2, 1", "-1, 200"})
    void softmaxAlongAnyAxis(int axis, float range) {
        Shape shape = Shape.of(2, 3, 4);
        float[] x = random(new Random(axis + 7), shape.size(), range);
        int a = axis < 0 ? axis + 3 : axis;
        double[] expected = new double[x.length];
        int[] coordinate = new int[3];
        for (int i = 0; i < x.length; i++) {
            coordinate[0] = i / 12;
            coordinate[1] = i / 4 % 3;
            coordinate[2] = i % 4;
            double max = Double.NEGATIVE_INFINITY;
            double sum = 0;
            int[] other = coordinate.clone();
            for (int k = 0; k < shape.dim(a); k++) {
                other[a] = k;
                max = Math.max(max, x[other[0] * 12 + other[1] * 4 + other[2]]);
            }
            for (int k = 0; k < shape.dim(a); k++) {
                other[a] = k;
                sum += Math.exp(x[other[0] * 12 + other[1] * 4 + other[2]] - max);
            }
            expected[i] = Math.exp(x[i] - max) / sum;
        }
        assertClose(expected, OpHarness.run("softmax", Attributes.of("axis", axis), List.of(shape), x), 1,
                "softmax axis " + axis);
    }
}
