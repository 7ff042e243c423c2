package squall.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static squall.ops.OpHarness.activation;
import static squall.ops.OpHarness.assertClose;
import static squall.ops.OpHarness.random;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Attributes;
import squall.api.Shape;

/** Activations, batch norm, broadcasting add/mul and the identity ops against double references. */
class PointwiseTest {
    private static final Shape SHAPE = Shape.of(2, 3, 5, 7);

    @ParameterizedTest
    @ValueSource(strings = {"relu", "relu6", "sigmoid", "silu", "hardsigmoid", "hardswish"})
    void activationMatchesFormula(String op) {
        float[] x = random(new Random(op.hashCode()), SHAPE.size(), 9);
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            expected[i] = activation(op, x[i]);
        }
        assertClose(expected, OpHarness.run(op, Attributes.EMPTY, List.of(SHAPE), x), 1, op);
    }

    @Test
    void hardsigmoidTakesOnnxAlphaAndBeta() {
        float[] x = random(new Random(3), SHAPE.size(), 5);
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            expected[i] = Math.max(0, Math.min(1, 0.2 * x[i] + 0.4));
        }
        assertClose(expected, OpHarness.run("hardsigmoid", Attributes.of("alpha", 0.2f, "beta", 0.4f),
                List.of(SHAPE), x), 1, "hardsigmoid alpha 0.2 beta 0.4");
    }

    @Test
    void clipBoundsAndDefaults() {
        float[] x = random(new Random(4), SHAPE.size(), 5);
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            expected[i] = Math.max(-1, Math.min(2.5, x[i]));
        }
        assertClose(expected, OpHarness.run("clip", Attributes.of("min", -1f, "max", 2.5f), List.of(SHAPE), x), 1,
                "clip [-1, 2.5]");
        assertArrayEquals(x, OpHarness.run("clip", Attributes.EMPTY, List.of(SHAPE), x), "clip with no bounds");
    }

    @ParameterizedTest
    @CsvSource({"2:5:3:4, 0.001", "3:4, 0.00001", "1:7:1:1, 0.1", "2:3:2:3:2, 0.00001"})
    void batchNormMatchesFormula(String dims, float epsilon) {
        Shape x = Shape.of(java.util.Arrays.stream(dims.split(":")).mapToInt(Integer::parseInt).toArray());
        Random random = new Random(dims.hashCode());
        int channels = x.dim(1);
        float[] input = random(random, x.size(), 3);
        float[] weight = random(random, channels, 2);
        float[] bias = random(random, channels, 1);
        float[] mean = random(random, channels, 1);
        float[] variance = random(random, channels, 1);
        for (int c = 0; c < channels; c++) {
            variance[c] = Math.abs(variance[c]) + 0.01f;
        }
        Shape param = Shape.of(channels);
        int spatial = x.size() / x.dim(0) / channels;
        double[] expected = new double[x.size()];
        for (int i = 0; i < expected.length; i++) {
            int c = i / spatial % channels;
            expected[i] = (input[i] - mean[c]) / Math.sqrt(variance[c] + (double) epsilon) * weight[c] + bias[c];
        }
        float[] actual = OpHarness.run("batch_norm", Attributes.of("epsilon", epsilon),
                List.of(x, param, param, param, param), input, weight, bias, mean, variance);
        assertClose(expected, actual, 10, "batch_norm " + x);
    }

    /** Each pair: a's dims, b's dims (":"-separated, "" for a scalar), the broadcast result. */
    @ParameterizedTest
    @CsvSource({
        "2:3:4:5, 2:3:4:5, 2:3:4:5",
        "2:3:4:5, 2:3:1:1, 2:3:4:5",
        "2:3:1:1, 2:3:4:5, 2:3:4:5",
        "4:5, 3:1:5, 3:4:5",
        "'', 2:3, 2:3",
        "1, 7, 7",
        "2:1:3:1:2:1, 1:4:1:5:1:3, 2:4:3:5:2:3",
        "5:1, 1:6, 5:6"})
    void addAndMulBroadcastLikeNumpy(String aDims, String bDims, String outDims) {
        Shape a = dims(aDims);
        Shape b = dims(bDims);
        Shape out = dims(outDims);
        Random random = new Random(aDims.hashCode() * 31 + bDims.hashCode());
        float[] x = random(random, a.size(), 2);
        float[] y = random(random, b.size(), 2);
        for (String op : List.of("add", "mul")) {
            assertEquals(out, OpHarness.outputShape(op, Attributes.EMPTY, List.of(a, b)));
            double[] expected = new double[out.size()];
            int[] coordinate = new int[out.rank()];
            for (int i = 0; i < expected.length; i++) {
                double left = x[offset(a, coordinate)];
                double right = y[offset(b, coordinate)];
                expected[i] = op.equals("add") ? left + right : left * right;
                for (int axis = out.rank() - 1; axis >= 0 && ++coordinate[axis] == out.dim(axis); axis--) {
                    coordinate[axis] = 0;
                }
            }
            assertClose(expected, OpHarness.run(op, Attributes.EMPTY, List.of(a, b), x, y), 1, op + " " + a + " " + b);
        }
    }

    /** Row-major offset in {@code s} of an output coordinate, right-aligned, size-1 axes repeating. */
    private static int offset(Shape s, int[] outCoordinate) {
        int offset = 0;
        for (int axis = 0; axis < s.rank(); axis++) {
            int c = outCoordinate[outCoordinate.length - s.rank() + axis];
            offset = offset * s.dim(axis) + (s.dim(axis) == 1 ? 0 : c);
        }
        return offset;
    }

    private static Shape dims(String text) {
        return text.isEmpty() ? Shape.of(new int[0])
                : Shape.of(java.util.Arrays.stream(text.split(":")).mapToInt(Integer::parseInt).toArray());
    }

    @ParameterizedTest
    @ValueSource(strings = {"identity", "dropout", "stochastic_depth"})
    void identityOpsCopyTheirInput(String op) {
        float[] x = random(new Random(5), SHAPE.size(), 1);
        assertEquals(SHAPE, OpHarness.outputShape(op, Attributes.of("p", 0.2f), List.of(SHAPE)));
        assertArrayEquals(x, OpHarness.run(op, Attributes.of("p", 0.2f), List.of(SHAPE), x));
        assertEquals(true, OpHarness.BUILTIN.get(op).isIdentity(OpHarness.node(op, Attributes.EMPTY, List.of(SHAPE))));
    }

    @Test
    void flattenAndReshapeKeepTheData() {
        float[] x = random(new Random(6), SHAPE.size(), 1);
        assertEquals(Shape.of(2, 105), OpHarness.outputShape("flatten", Attributes.EMPTY, List.of(SHAPE)));
        assertEquals(Shape.of(1, 210), OpHarness.outputShape("flatten", Attributes.of("axis", 0), List.of(SHAPE)));
        assertEquals(Shape.of(30, 7), OpHarness.outputShape("flatten", Attributes.of("axis", -1), List.of(SHAPE)));
        assertEquals(Shape.of(210, 1), OpHarness.outputShape("flatten", Attributes.of("axis", 4), List.of(SHAPE)));
        assertArrayEquals(x, OpHarness.run("flatten", Attributes.EMPTY, List.of(SHAPE), x));
        Attributes reshape = Attributes.of("shape", new int[] {0, -1, 7});
        assertEquals(Shape.of(2, 15, 7), OpHarness.outputShape("reshape", reshape, List.of(SHAPE)));
        assertArrayEquals(x, OpHarness.run("reshape", reshape, List.of(SHAPE), x));
    }
}
