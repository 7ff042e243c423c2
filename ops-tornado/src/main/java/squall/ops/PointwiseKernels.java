package squall.ops;

import squall.api.Parallel;

/** Element-wise kernels: activations, inference batch norm, broadcasting add and mul, copy. */
public final class PointwiseKernels {
    /** Broadcasting kernels see every shape padded on the left to this rank. */
    public static final int MAX_RANK = 6;
    public static final int ADD = 0;
    public static final int MUL = 1;

    private PointwiseKernels() {
    }

    /** {@code y = Activation.apply(activation, x, p, q)}; p, q are hardsigmoid's alpha, beta or clip's min, max. */
    public static void unary(float[] x, float[] y, int size, int activation, float p, float q) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = Activation.apply(activation, x[i], p, q);
        }
    }

    /** Inference batch norm on [batch, channels, spatial]: (x - mean) / sqrt(variance + epsilon) * weight + bias. */
    public static void batchNorm(float[] x, float[] weight, float[] bias, float[] mean, float[] variance, float[] y,
                                 int batch, int channels, int spatial, float epsilon) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int c = 0; c < channels; c++) {
                batchNormPlane(x, weight, bias, mean, variance, y, n, c, channels, spatial, epsilon);
            }
        }
    }

    public static void batchNormPlane(float[] x, float[] weight, float[] bias, float[] mean, float[] variance,
                                      float[] y, int n, int c, int channels, int spatial, float epsilon) {
        float scale = weight[c] / (float) Math.sqrt(variance[c] + epsilon);
        int start = (n * channels + c) * spatial;
        for (int i = start; i < start + spatial; i++) {
            y[i] = (x[i] - mean[c]) * scale + bias[c];
        }
    }

    /**
     * {@code out = a (operation) b} with numpy broadcasting: {@code outDims} is the output shape and
     * {@code aStrides}, {@code bStrides} the inputs' strides (0 along a broadcast axis), all of rank
     * {@link #MAX_RANK}.
     */
    public static void broadcast(float[] a, float[] b, float[] out, int size, int[] outDims, int[] aStrides,
                                 int[] bStrides, int operation) {
        for (@Parallel int i = 0; i < size; i++) {
            out[i] = broadcastElement(a, b, i, outDims, aStrides, bStrides, operation);
        }
    }

    public static float broadcastElement(float[] a, float[] b, int index, int[] outDims, int[] aStrides,
                                         int[] bStrides, int operation) {
        int aOffset = 0;
        int bOffset = 0;
        int rest = index;
        for (int axis = MAX_RANK - 1; axis >= 0; axis--) {
            int coordinate = rest % outDims[axis];
            rest = rest / outDims[axis];
            aOffset += coordinate * aStrides[axis];
            bOffset += coordinate * bStrides[axis];
        }
        return operation == MUL ? a[aOffset] * b[bOffset] : a[aOffset] + b[bOffset];
    }

    public static void copy(float[] x, float[] y, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = x[i];
        }
    }
}
