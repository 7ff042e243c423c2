package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import squall.api.Tensor;

/**
 * How far one run's logits are from a reference run's: the largest absolute difference against a
 * tolerance of {@code relative * max |reference| + absolute}, as PyTorchParityTest measures it
 * (scaled by the largest logit, because a near-zero logit has no meaningful relative error).
 */
record LogitError(double maxError, double tolerance, double largest, int worst, float got, float want) {

    static LogitError of(Tensor reference, Tensor actual, double relative, double absolute, String where) {
        assertEquals(reference.shape(), actual.shape(), where + ": shape of the logits");
        float[] want = reference.data();
        float[] got = actual.data();
        double largest = 0;
        double error = 0;
        int worst = 0;
        for (int i = 0; i < want.length; i++) {
            largest = Math.max(largest, Math.abs(want[i]));
            double e = Math.abs((double) got[i] - want[i]);
            if (!(e <= error)) { // NaN counts as the worst error
                error = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                worst = i;
            }
        }
        return new LogitError(error, relative * largest + absolute, largest, worst, got[worst], want[worst]);
    }

    void assertWithin(String where, String referenceName) {
        assertTrue(maxError <= tolerance, where + ": logit " + worst + " is " + got + ", " + referenceName + " says "
                + want + "; max error " + maxError + " > tolerance " + tolerance + " (max |logit| " + largest + ")");
    }

    /**
     * A reference whose batch items all give nearly the same logits cannot catch a network that
     * ignores its input: the items must differ by {@code tolerances} tolerances somewhere.
     */
    static void assertHasSignal(Tensor reference, double tolerance, double tolerances, String where) {
        int classes = reference.shape().dim(1);
        float[] logits = reference.data();
        double difference = 0;
        for (int k = 0; k < classes; k++) {
            difference = Math.max(difference, Math.abs(logits[k] - logits[classes + k]));
        }
        assertTrue(difference >= tolerances * tolerance, where + ": the two inputs' reference logits differ by at most "
                + difference + ", under " + tolerances + " tolerances (" + tolerance + "): the comparison has no signal");
    }
}
