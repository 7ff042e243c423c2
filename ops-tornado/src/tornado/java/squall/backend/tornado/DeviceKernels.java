package squall.backend.tornado;

import squall.api.Parallel;
import squall.ops.Activation;
import squall.ops.PointwiseKernels;

/**
 * Convolution kernels shaped for how TornadoVM and an OpenCL CPU driver (PoCL) compile them; the
 * tornado backend runs them in place of {@code squall.ops.ConvKernels} where one fits (see
 * {@link DeviceVariants}). Same semantics: {@code out = act(conv(input, weight) + bias) + residual}.
 *
 * <p>Why this shape: TornadoVM turns each {@code @Parallel} loop into one grid dimension (the
 * outermost loop is dimension 0) and bakes scalar arguments into the kernel as constants, and PoCL's
 * LLVM vectorizes only innermost loops. So a work item owns a row (or a tile of pixels) of up to
 * {@link #CHANNEL_BLOCK} output channels and its innermost loops run along that contiguous row:
 * constant trip counts, no branches (out-of-image taps read a clamped address and multiply by 0),
 * and each input value loaded once for all the block's channels. The partial sums live in the output
 * row itself, which stays in the L1 cache while the work item runs.
 *
 * <p>Every method is also plain sequential Java, which is how the tests check it against the
 * portable kernel.
 */
public final class DeviceKernels {
    /** Output channels per work item: each loaded input value feeds this many multiply-adds. */
    public static final int CHANNEL_BLOCK = 4;
    /** Pixels per work item of a pointwise conv: four rows of it fit in L1 beside the inputs. */
    public static final int PIXEL_TILE = 64;

    private DeviceKernels() {
    }

    /** 1x1 conv, stride 1, no padding, groups 1, as a GEMM [outChannels x inChannels] x [inChannels x spatial]. */
    public static void pointwiseConv(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                     int batch, int inChannels, int spatial, int outChannels, int activation,
                                     int hasResidual) {
        for (@Parallel int tile = 0; tile < (spatial + PIXEL_TILE - 1) / PIXEL_TILE; tile++) {
            for (@Parallel int block = 0; block < (outChannels + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK; block++) {
                for (@Parallel int n = 0; n < batch; n++) {
                    pointwiseTile(input, weight, bias, residual, output, n, block * CHANNEL_BLOCK,
                            tile * PIXEL_TILE, Math.min(tile * PIXEL_TILE + PIXEL_TILE, spatial), inChannels,
                            spatial, outChannels, activation, hasResidual);
                }
            }
        }
    }

    /**
     * Pixels [first, last) of channels o..o+3 of image n. Channels past the last repeat it with zero
     * weights, so the loops have no branch; only the finishing pass skips them.
     */
    public static void pointwiseTile(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                     int n, int o, int first, int last, int inChannels, int spatial,
                                     int outChannels, int activation, int hasResidual) {
        int o1 = Math.min(o + 1, outChannels - 1);
        int o2 = Math.min(o + 2, outChannels - 1);
        int o3 = Math.min(o + 3, outChannels - 1);
        int row0 = (n * outChannels + o) * spatial;
        int row1 = (n * outChannels + o1) * spatial;
        int row2 = (n * outChannels + o2) * spatial;
        int row3 = (n * outChannels + o3) * spatial;
        for (int p = first; p < last; p++) {
            output[row0 + p] = bias[o];
            output[row1 + p] = bias[o1];
            output[row2 + p] = bias[o2];
            output[row3 + p] = bias[o3];
        }
        for (int c = 0; c < inChannels; c++) {
            float w0 = weight[o * inChannels + c];
            float w1 = o + 1 < outChannels ? weight[o1 * inChannels + c] : 0f;
            float w2 = o + 2 < outChannels ? weight[o2 * inChannels + c] : 0f;
            float w3 = o + 3 < outChannels ? weight[o3 * inChannels + c] : 0f;
            int plane = (n * inChannels + c) * spatial;
            for (int p = first; p < last; p++) {
                float x = input[plane + p];
                output[row0 + p] += w0 * x;
                output[row1 + p] += w1 * x;
                output[row2 + p] += w2 * x;
                output[row3 + p] += w3 * x;
            }
        }
        finishBlock(residual, output, o, outChannels, row0, row1 - row0, first, last, activation, hasResidual);
    }

    /**
     * Any conv with groups 1 and dilation 1 (the stem, EfficientNetV2's fused blocks): output row oy
     * of channels o..o+3 of image n per work item.
     */
    public static void denseConv(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                 int batch, int inChannels, int inHeight, int inWidth, int outChannels, int outHeight,
                                 int outWidth, int kernelH, int kernelW, int strideH, int strideW, int padTop,
                                 int padLeft, int activation, int hasResidual) {
        for (@Parallel int oy = 0; oy < outHeight; oy++) {
            for (@Parallel int block = 0; block < (outChannels + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK; block++) {
                for (@Parallel int n = 0; n < batch; n++) {
                    denseRow(input, weight, bias, residual, output, n, block * CHANNEL_BLOCK, oy, inChannels,
                            inHeight, inWidth, outChannels, outHeight, outWidth, kernelH, kernelW, strideH, strideW,
                            padTop, padLeft, activation, hasResidual);
                }
            }
        }
    }

    public static void denseRow(float[] input, float[] weight, float[] bias, float[] residual, float[] output, int n,
                                int o, int oy, int inChannels, int inHeight, int inWidth, int outChannels,
                                int outHeight, int outWidth, int kernelH, int kernelW, int strideH, int strideW,
                                int padTop, int padLeft, int activation, int hasResidual) {
        int o1 = Math.min(o + 1, outChannels - 1);
        int o2 = Math.min(o + 2, outChannels - 1);
        int o3 = Math.min(o + 3, outChannels - 1);
        int row0 = ((n * outChannels + o) * outHeight + oy) * outWidth;
        int rowStride = outHeight * outWidth;
        int row1 = row0 + (o1 - o) * rowStride;
        int row2 = row0 + (o2 - o) * rowStride;
        int row3 = row0 + (o3 - o) * rowStride;
        for (int ox = 0; ox < outWidth; ox++) {
            output[row0 + ox] = bias[o];
            output[row1 + ox] = bias[o1];
            output[row2 + ox] = bias[o2];
            output[row3 + ox] = bias[o3];
        }
        int taps = inChannels * kernelH * kernelW;
        for (int c = 0; c < inChannels; c++) {
            for (int ky = 0; ky < kernelH; ky++) {
                int iy = oy * strideH - padTop + ky;
                for (int kx = 0; iy >= 0 && iy < inHeight && kx < kernelW; kx++) {
                    int tap = (c * kernelH + ky) * kernelW + kx;
                    float w0 = weight[o * taps + tap];
                    float w1 = o + 1 < outChannels ? weight[o1 * taps + tap] : 0f;
                    float w2 = o + 2 < outChannels ? weight[o2 * taps + tap] : 0f;
                    float w3 = o + 3 < outChannels ? weight[o3 * taps + tap] : 0f;
                    int inRow = ((n * inChannels + c) * inHeight + iy) * inWidth - padLeft + kx;
                    int end = insideEnd(kx, inWidth, outWidth, strideW, padLeft);
                    for (int ox = insideStart(kx, strideW, padLeft); ox < end; ox++) {
                        float x = input[inRow + ox * strideW];
                        output[row0 + ox] += w0 * x;
                        output[row1 + ox] += w1 * x;
                        output[row2 + ox] += w2 * x;
                        output[row3 + ox] += w3 * x;
                    }
                }
            }
        }
        finishBlock(residual, output, o, outChannels, row0, rowStride, 0, outWidth, activation, hasResidual);
    }

    /**
     * Depthwise conv (groups = channels, one filter per channel), dilation 1: output row oy of one
     * image plane per work item.
     */
    public static void depthwiseConv(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                     int planes, int channels, int inHeight, int inWidth, int outHeight, int outWidth,
                                     int kernelH, int kernelW, int strideH, int strideW, int padTop, int padLeft,
                                     int activation, int hasResidual) {
        for (@Parallel int oy = 0; oy < outHeight; oy++) {
            for (@Parallel int plane = 0; plane < planes; plane++) {
                depthwiseRow(input, weight, bias, residual, output, plane, oy, channels, inHeight, inWidth,
                        outHeight, outWidth, kernelH, kernelW, strideH, strideW, padTop, padLeft, activation,
                        hasResidual);
            }
        }
    }

    public static void depthwiseRow(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                    int plane, int oy, int channels, int inHeight, int inWidth, int outHeight,
                                    int outWidth, int kernelH, int kernelW, int strideH, int strideW, int padTop,
                                    int padLeft, int activation, int hasResidual) {
        int c = plane % channels;
        int row = (plane * outHeight + oy) * outWidth;
        for (int ox = 0; ox < outWidth; ox++) {
            output[row + ox] = bias[c];
        }
        for (int ky = 0; ky < kernelH; ky++) {
            int iy = oy * strideH - padTop + ky;
            for (int kx = 0; iy >= 0 && iy < inHeight && kx < kernelW; kx++) {
                float w = weight[(c * kernelH + ky) * kernelW + kx];
                int inRow = (plane * inHeight + iy) * inWidth - padLeft + kx;
                int end = insideEnd(kx, inWidth, outWidth, strideW, padLeft);
                for (int ox = insideStart(kx, strideW, padLeft); ox < end; ox++) {
                    output[row + ox] += w * input[inRow + ox * strideW];
                }
            }
        }
        finishRow(residual, output, row, 0, outWidth, activation, hasResidual);
    }

    /**
     * The first output column whose tap kx lands inside the input (ix = ox * strideW - padLeft + kx
     * >= 0). Taps in the padding add 0, so the loops skip them: the loads stay affine, which the
     * vectorizer turns into contiguous (stride 1) or strided loads instead of gathers.
     */
    public static int insideStart(int kx, int strideW, int padLeft) {
        int lead = padLeft - kx;
        return lead > 0 ? (lead + strideW - 1) / strideW : 0;
    }

    /** One past the last output column whose tap kx lands inside the input (ix < inWidth). */
    public static int insideEnd(int kx, int inWidth, int outWidth, int strideW, int padLeft) {
        int span = inWidth - 1 + padLeft - kx;
        return span < 0 ? 0 : Math.min(outWidth, span / strideW + 1);
    }

    /** The activation and residual on the block's real channels (not the repeats past the last). */
    public static void finishBlock(float[] residual, float[] output, int o, int outChannels, int row0, int rowStride,
                                   int first, int last, int activation, int hasResidual) {
        for (int k = 0; k < Math.min(CHANNEL_BLOCK, outChannels - o); k++) {
            finishRow(residual, output, row0 + k * rowStride, first, last, activation, hasResidual);
        }
    }

    public static void finishRow(float[] residual, float[] output, int row, int first, int last, int activation,
                                 int hasResidual) {
        for (int i = row + first; i < row + last; i++) {
            float value = Activation.fused(activation, output[i]);
            if (hasResidual != 0) {
                value += residual[i];
            }
            output[i] = value;
        }
    }

    /**
     * {@code out[i] = big[i] (operation) small[i / spatial]}: squeeze-excitation's channel scale, and
     * any add or mul whose smaller input is one value per plane of the larger.
     */
    public static void planeBroadcast(float[] big, float[] small, float[] out, int size, int spatial, int operation) {
        for (@Parallel int i = 0; i < size; i++) {
            float s = small[i / spatial];
            out[i] = operation == PointwiseKernels.MUL ? big[i] * s : big[i] + s;
        }
    }
}
