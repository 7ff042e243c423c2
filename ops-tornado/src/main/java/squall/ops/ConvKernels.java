package squall.ops;

import squall.api.Parallel;

/**
 * 2-D convolution, grouped (groups = channels is depthwise, 1x1 is pointwise), with bias, a fused
 * activation and a residual added last: {@code out = act(conv(input, weight) + bias) + residual}.
 * Tensors are NCHW; weight is [outChannels, inChannels / groups, kernelH, kernelW]. {@code window}
 * is {@link Window#asArray()}.
 */
public final class ConvKernels {
    private ConvKernels() {
    }

    public static void conv2d(float[] input, float[] weight, float[] bias, float[] output, int[] window, int batch,
                              int inChannels, int inHeight, int inWidth, int outChannels, int outHeight, int outWidth,
                              int groups, int activation) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int o = 0; o < outChannels; o++) {
                for (@Parallel int oy = 0; oy < outHeight; oy++) {
                    convRow(input, weight, bias, output, output, window, n, o, oy, inChannels, inHeight, inWidth,
                            outChannels, outHeight, outWidth, groups, activation, 0);
                }
            }
        }
    }

    /** conv2d with a residual added after the activation (a separate kernel: TornadoVM tasks take at most 15 arguments). */
    public static void conv2dResidual(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                      int[] window, int batch, int inChannels, int inHeight, int inWidth,
                                      int outChannels, int outHeight, int outWidth, int groups, int activation) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int o = 0; o < outChannels; o++) {
                for (@Parallel int oy = 0; oy < outHeight; oy++) {
                    convRow(input, weight, bias, residual, output, window, n, o, oy, inChannels, inHeight, inWidth,
                            outChannels, outHeight, outWidth, groups, activation, 1);
                }
            }
        }
    }

    /** Output row {@code oy} of channel {@code o} of image {@code n}: the unit of work of both backends. */
    public static void convRow(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                               int[] window, int n, int o, int oy, int inChannels, int inHeight, int inWidth,
                               int outChannels, int outHeight, int outWidth, int groups, int activation,
                               int hasResidual) {
        int kernelH = window[0];
        int kernelW = window[1];
        int strideH = window[2];
        int strideW = window[3];
        int padTop = window[4];
        int padLeft = window[5];
        int dilationH = window[8];
        int dilationW = window[9];
        int groupInChannels = inChannels / groups;
        int firstInChannel = o / (outChannels / groups) * groupInChannels;
        int rowStart = ((n * outChannels + o) * outHeight + oy) * outWidth;
        for (int ox = 0; ox < outWidth; ox++) {
            float sum = bias[o];
            for (int c = 0; c < groupInChannels; c++) {
                int inPlane = (n * inChannels + firstInChannel + c) * inHeight;
                int weightPlane = (o * groupInChannels + c) * kernelH;
                for (int ky = 0; ky < kernelH; ky++) {
                    int iy = oy * strideH - padTop + ky * dilationH;
                    for (int kx = 0; iy >= 0 && iy < inHeight && kx < kernelW; kx++) {
                        int ix = ox * strideW - padLeft + kx * dilationW;
                        if (ix >= 0 && ix < inWidth) {
                            sum += input[(inPlane + iy) * inWidth + ix] * weight[(weightPlane + ky) * kernelW + kx];
                        }
                    }
                }
            }
            float value = Activation.fused(activation, sum);
            if (hasResidual != 0) {
                value += residual[rowStart + ox];
            }
            output[rowStart + ox] = value;
        }
    }
}
