package squall.ops;

import squall.api.Parallel;

/**
 * Pooling over NCHW planes ({@code planes} = N·C). {@code window} is {@link Window#asArray()}.
 * Padding never wins a max and, unless {@code countIncludePad}, never counts in an average.
 */
public final class PoolKernels {
    private PoolKernels() {
    }

    public static void globalAvgPool(float[] input, float[] output, int planes, int spatial) {
        for (@Parallel int plane = 0; plane < planes; plane++) {
            output[plane] = planeMean(input, plane, spatial);
        }
    }

    public static float planeMean(float[] input, int plane, int spatial) {
        float sum = 0f;
        for (int i = plane * spatial; i < (plane + 1) * spatial; i++) {
            sum += input[i];
        }
        return sum / spatial;
    }

    public static void maxPool2d(float[] input, float[] output, int[] window, int planes, int inHeight, int inWidth,
                                 int outHeight, int outWidth) {
        for (@Parallel int plane = 0; plane < planes; plane++) {
            for (@Parallel int oy = 0; oy < outHeight; oy++) {
                maxPoolRow(input, output, window, plane, oy, inHeight, inWidth, outHeight, outWidth);
            }
        }
    }

    public static void maxPoolRow(float[] input, float[] output, int[] window, int plane, int oy, int inHeight,
                                  int inWidth, int outHeight, int outWidth) {
        int kernelH = window[0];
        int kernelW = window[1];
        int dilationH = window[8];
        int dilationW = window[9];
        int top = oy * window[2] - window[4];
        for (int ox = 0; ox < outWidth; ox++) {
            int left = ox * window[3] - window[5];
            float max = Float.NEGATIVE_INFINITY;
            for (int ky = 0; ky < kernelH; ky++) {
                int iy = top + ky * dilationH;
                for (int kx = 0; iy >= 0 && iy < inHeight && kx < kernelW; kx++) {
                    int ix = left + kx * dilationW;
                    if (ix >= 0 && ix < inWidth) {
                        max = Math.max(max, input[(plane * inHeight + iy) * inWidth + ix]);
                    }
                }
            }
            output[(plane * outHeight + oy) * outWidth + ox] = max;
        }
    }

    public static void avgPool2d(float[] input, float[] output, int[] window, int planes, int inHeight, int inWidth,
                                 int outHeight, int outWidth, int countIncludePad) {
        for (@Parallel int plane = 0; plane < planes; plane++) {
            for (@Parallel int oy = 0; oy < outHeight; oy++) {
                avgPoolRow(input, output, window, plane, oy, inHeight, inWidth, outHeight, outWidth, countIncludePad);
            }
        }
    }

    /**
     * With countIncludePad the divisor counts padding but not the part of a ceil-mode window that
     * hangs past the padded input (PyTorch's rule).
     */
    public static void avgPoolRow(float[] input, float[] output, int[] window, int plane, int oy, int inHeight,
                                  int inWidth, int outHeight, int outWidth, int countIncludePad) {
        int top = oy * window[2] - window[4];
        int bottom = Math.min(top + window[0], inHeight + window[6]);
        int firstY = Math.max(top, 0);
        int lastY = Math.min(bottom, inHeight);
        for (int ox = 0; ox < outWidth; ox++) {
            int left = ox * window[3] - window[5];
            int right = Math.min(left + window[1], inWidth + window[7]);
            int firstX = Math.max(left, 0);
            int lastX = Math.min(right, inWidth);
            float sum = 0f;
            for (int iy = firstY; iy < lastY; iy++) {
                for (int ix = firstX; ix < lastX; ix++) {
                    sum += input[(plane * inHeight + iy) * inWidth + ix];
                }
            }
            int count = countIncludePad != 0 ? (bottom - top) * (right - left) : (lastY - firstY) * (lastX - firstX);
            output[(plane * outHeight + oy) * outWidth + ox] = sum / count;
        }
    }
}
