package squall.ops.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.ops.Activation;

/**
 * The vector activations against the same formulas in double precision with {@link Math#exp}:
 * CpuKernelsTest's tolerance (1e-5 relative) would let a poorer exp polynomial through, so here
 * the bound is in ulps of the float result. Inputs: uniform over [-100, 100] (both clamps of exp)
 * and normal with sigma 4 (where networks' pre-activations lie), then the special values.
 */
class VectorsTest {
    /** Cephes' expf is about 1 ulp; a division and the range reduction's roundings add up to ~3. */
    private static final double MAX_ULPS = 4;

    @ParameterizedTest
    @ValueSource(ints = {Activation.SILU, Activation.SIGMOID})
    void sigmoidAndSiluAreWithinFourUlpsOfDoublePrecision(int activation) {
        Random random = new Random(5);
        int n = 1 << 18;
        float[] x = new float[n + 3]; // + 3: a tail shorter than a vector
        for (int i = 0; i < x.length; i++) {
            x[i] = i % 2 == 0 ? random.nextFloat() * 200 - 100 : (float) (random.nextGaussian() * 4);
        }
        float[] y = new float[x.length];
        Vectors.activate(activation, x, 0, y, 0, x.length, null);
        for (int i = 0; i < x.length; i++) {
            double sigmoid = 1 / (1 + Math.exp(-(double) x[i]));
            double expected = activation == Activation.SILU ? x[i] * sigmoid : sigmoid;
            if (Math.abs(expected) < 1e-30) {
                // Clamped or flushed tails: only their smallness matters (checked below).
                assertTrue(Math.abs(y[i]) < 1e-30, "x = " + x[i] + " gives " + y[i]);
                continue;
            }
            double ulps = Math.abs(y[i] - expected) / Math.ulp((float) expected);
            assertTrue(ulps <= MAX_ULPS, "x = " + x[i] + " gives " + y[i] + ", expected " + expected + " (" + ulps
                    + " ulps)");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {Activation.SILU, Activation.SIGMOID})
    void specialValues(int activation) {
        float[] x = {Float.NaN, 0f, -0f, 89f, -89f, Float.POSITIVE_INFINITY};
        float[] y = new float[x.length];
        Vectors.activate(activation, x, 0, y, 0, x.length, null);
        assertTrue(Float.isNaN(y[0]), "NaN stays NaN");
        boolean silu = activation == Activation.SILU;
        assertEquals(silu ? 0f : 0.5f, y[1]);
        assertEquals(silu ? -0f : 0.5f, y[2]);
        assertEquals(silu ? 89f : 1f, y[3]);
        // Never subnormal (x86 would take a microcode assist on every later multiply): 1 / (1 + e^88)
        // is flushed to zero for sigmoid, and silu's clamped e^88 leaves -89 / e^88 normal.
        assertTrue(y[4] == 0f || Math.abs(y[4]) >= Float.MIN_NORMAL, "x = -89 gives " + y[4]);
        assertTrue(Math.abs(y[4]) < 1e-30, "x = -89 gives " + y[4]);
        assertEquals(silu ? Float.POSITIVE_INFINITY : 1f, y[5]);
    }

    /**
     * Every length up to three vectors (so every partial last step), at offsets, with and without
     * a residual, out of place and in place: each written float is the scalar formula's to 4 ulps
     * (plus the residual), and nothing outside [yAt, yAt + count) changes.
     */
    @ParameterizedTest
    @ValueSource(ints = {Activation.SILU, Activation.SIGMOID, Activation.HARDSWISH, Activation.RELU6})
    void everyTailAtOffsetsWithResiduals(int activation) {
        Random random = new Random(7);
        int lanes = Vectors.LANES;
        for (int count = 0; count <= 3 * lanes + 1; count++) {
            for (int variant = 0; variant < 4; variant++) {
                boolean inPlace = variant >= 2;
                boolean withResidual = variant % 2 == 1;
                int xAt = 3;
                int yAt = inPlace ? xAt : 5;
                float[] x = new float[count + 9];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) (random.nextGaussian() * 4);
                }
                float[] y = inPlace ? x : new float[count + 9];
                float[] before = y.clone();
                float[] input = x.clone();
                float[] residual = null;
                if (withResidual) {
                    residual = new float[y.length];
                    for (int i = 0; i < residual.length; i++) {
                        residual[i] = random.nextFloat();
                    }
                }
                Vectors.activate(activation, x, xAt, y, yAt, count, residual);
                for (int i = 0; i < y.length; i++) {
                    String where = Activation.name(activation) + " count " + count + " variant " + variant + " at " + i;
                    if (i < yAt || i >= yAt + count) {
                        assertEquals(before[i], y[i], where + ": outside the span");
                        continue;
                    }
                    double expected = Activation.fused(activation, input[xAt + i - yAt]);
                    if (residual != null) {
                        expected += residual[i];
                    }
                    double tolerance = MAX_ULPS * Math.ulp((float) expected) + (residual != null ? 1e-6 : 0);
                    assertEquals(expected, y[i], tolerance, where);
                }
            }
        }
    }

    /** Both ways: the 16-register one where LANES is 16, and the stage loop of other widths. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void transposeSwapsRowsAndLanesInPlace(boolean byStages) {
        int lanes = Vectors.LANES;
        float[] a = new float[lanes * lanes + 10];
        for (int i = 0; i < a.length; i++) {
            a[i] = i;
        }
        if (byStages) {
            Vectors.transposeByStages(a, 3);
        } else {
            Vectors.transpose(a, 3);
        }
        for (int r = 0; r < lanes; r++) {
            for (int c = 0; c < lanes; c++) {
                assertEquals(3 + c * lanes + r, a[3 + r * lanes + c], "row " + r + " lane " + c);
            }
        }
        for (int i : new int[] {0, 1, 2, 3 + lanes * lanes, a.length - 1}) {
            assertEquals(i, a[i], "outside the block at " + i);
        }
    }
}
