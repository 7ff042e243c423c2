package squall.ops;

import squall.api.Parallel;

/** The classifier head's kernels: fully connected layers (torch Linear, ONNX Gemm) and softmax. */
public final class DenseKernels {
    private DenseKernels() {
    }

    /** torch.nn.Linear with a fused activation: y[n, m] = act(x[n, :] · weight[m, :] + bias[m]). */
    public static void linear(float[] x, float[] weight, float[] bias, float[] y, int batch, int inFeatures,
                              int outFeatures, int activation) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int m = 0; m < outFeatures; m++) {
                y[n * outFeatures + m] = linearUnit(x, weight, bias, n, m, inFeatures, activation);
            }
        }
    }

    public static float linearUnit(float[] x, float[] weight, float[] bias, int n, int m, int inFeatures,
                                   int activation) {
        float sum = bias[m];
        for (int k = 0; k < inFeatures; k++) {
            sum += x[n * inFeatures + k] * weight[m * inFeatures + k];
        }
        return Activation.fused(activation, sum);
    }

    /**
     * ONNX Gemm: y = alpha·A'·B' + beta·C, A' [rows, inner], B' [inner, cols]; transA, transB say
     * whether A and B are stored transposed; C is read at row·cRowStride + col·cColStride (a stride
     * is 0 along a broadcast axis).
     */
    public static void gemm(float[] a, float[] b, float[] c, float[] y, int rows, int cols, int inner, int transA,
                            int transB, float alpha, float beta, int cRowStride, int cColStride) {
        for (@Parallel int row = 0; row < rows; row++) {
            for (@Parallel int col = 0; col < cols; col++) {
                float sum = 0f;
                for (int k = 0; k < inner; k++) {
                    float left = transA != 0 ? a[k * rows + row] : a[row * inner + k];
                    float right = transB != 0 ? b[col * inner + k] : b[k * cols + col];
                    sum += left * right;
                }
                y[row * cols + col] = alpha * sum + beta * c[row * cRowStride + col * cColStride];
            }
        }
    }

    /** Softmax along the middle axis of x viewed as [outer, axisLength, inner]. */
    public static void softmax(float[] x, float[] y, int outer, int axisLength, int inner) {
        for (@Parallel int o = 0; o < outer; o++) {
            for (@Parallel int i = 0; i < inner; i++) {
                softmaxLine(x, y, o, i, axisLength, inner);
            }
        }
    }

    /** Subtracts the maximum first so exp never overflows. */
    public static void softmaxLine(float[] x, float[] y, int o, int i, int axisLength, int inner) {
        int start = o * axisLength * inner + i;
        float max = Float.NEGATIVE_INFINITY;
        for (int k = 0; k < axisLength; k++) {
            max = Math.max(max, x[start + k * inner]);
        }
        float sum = 0f;
        for (int k = 0; k < axisLength; k++) {
            float e = (float) Math.exp(x[start + k * inner] - max);
            y[start + k * inner] = e;
            sum += e;
        }
        for (int k = 0; k < axisLength; k++) {
            y[start + k * inner] = y[start + k * inner] / sum;
        }
    }
}
