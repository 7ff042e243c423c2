package squall.plugins.mbconv;

import squall.api.Parallel;

/**
 * The four kernels of one MBConv block (Sandler et al. 2018; with squeeze-excitation as in Tan and
 * Le 2019), BatchNorm folded into the convolutions. The intermediates live in the node's scratch
 * buffer: the expanded map at 0 (when there is an expansion), then from {@code depthwiseOffset} the
 * depthwise output [N, E, OH, OW], its channel means [N, E], the squeeze [N, S] and the gate [N, E].
 * Each kernel's grid is one to two parallel loops over a per-plane function; the CPU kernel runs
 * the same functions over its workers, so both give the same bits.
 */
public final class MbConvKernels {
    private MbConvKernels() {
    }

    /** 1x1 expansion, bias (folded BN) and SiLU: expanded[n, e] = silu(bias[e] + sum_c weight[e, c] x[n, c]). */
    public static void expand(float[] x, float[] weight, float[] bias, float[] scratch, int batch, int inChannels,
                              int expandedChannels, int spatial) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int e = 0; e < expandedChannels; e++) {
                expandPlane(x, weight, bias, scratch, n, e, inChannels, expandedChannels, spatial);
            }
        }
    }

    public static void expandPlane(float[] x, float[] weight, float[] bias, float[] scratch, int n, int e,
                                   int inChannels, int expandedChannels, int spatial) {
        int out = (n * expandedChannels + e) * spatial;
        for (int p = 0; p < spatial; p++) {
            scratch[out + p] = bias[e];
        }
        for (int c = 0; c < inChannels; c++) {
            float w = weight[e * inChannels + c];
            int in = (n * inChannels + c) * spatial;
            for (int p = 0; p < spatial; p++) {
                scratch[out + p] += w * x[in + p];
            }
        }
        for (int p = 0; p < spatial; p++) {
            scratch[out + p] = silu(scratch[out + p]);
        }
    }

    /**
     * Depthwise kxk convolution with torchvision's padding (k - 1) / 2, bias (folded BN) and SiLU,
     * and the mean of each output plane (the squeeze of squeeze-excitation) in the same pass.
     * {@code input} is x, or the scratch buffer holding the expanded map at offset 0.
     */
    public static void depthwise(float[] input, float[] weight, float[] bias, float[] scratch, int batch,
                                 int channels, int height, int width, int kernelSize, int stride, int depthwiseOffset) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int c = 0; c < channels; c++) {
                depthwisePlane(input, weight, bias, scratch, n, c, batch, channels, height, width, kernelSize, stride,
                        depthwiseOffset);
            }
        }
    }

    public static void depthwisePlane(float[] input, float[] weight, float[] bias, float[] scratch, int n, int c,
                                      int batch, int channels, int height, int width, int kernelSize, int stride,
                                      int depthwiseOffset) {
        int padding = (kernelSize - 1) / 2;
        int outHeight = (height + 2 * padding - kernelSize) / stride + 1;
        int outWidth = (width + 2 * padding - kernelSize) / stride + 1;
        int in = (n * channels + c) * height * width;
        int out = depthwiseOffset + (n * channels + c) * outHeight * outWidth;
        float sum = 0f;
        for (int oy = 0; oy < outHeight; oy++) {
            for (int ox = 0; ox < outWidth; ox++) {
                float acc = bias[c];
                for (int ky = 0; ky < kernelSize; ky++) {
                    int iy = oy * stride - padding + ky;
                    for (int kx = 0; kx < kernelSize; kx++) {
                        int ix = ox * stride - padding + kx;
                        if (iy >= 0 && iy < height && ix >= 0 && ix < width) {
                            acc += weight[(c * kernelSize + ky) * kernelSize + kx] * input[in + iy * width + ix];
                        }
                    }
                }
                float y = silu(acc);
                scratch[out + oy * outWidth + ox] = y;
                sum += y;
            }
        }
        int means = depthwiseOffset + batch * channels * outHeight * outWidth;
        scratch[means + n * channels + c] = sum / (outHeight * outWidth);
    }

    /**
     * Squeeze-excitation's two 1x1 convolutions on the channel means: squeeze = silu(reduce(means)),
     * gate = sigmoid(expand(squeeze)). One image per work item: the second depends on all of the first.
     */
    public static void squeezeExcite(float[] scratch, float[] reduceWeight, float[] reduceBias, float[] expandWeight,
                                     float[] expandBias, int batch, int channels, int squeezeChannels, int meansOffset) {
        for (@Parallel int n = 0; n < batch; n++) {
            squeezeExciteImage(scratch, reduceWeight, reduceBias, expandWeight, expandBias, n, batch, channels,
                    squeezeChannels, meansOffset);
        }
    }

    public static void squeezeExciteImage(float[] scratch, float[] reduceWeight, float[] reduceBias,
                                          float[] expandWeight, float[] expandBias, int n, int batch, int channels,
                                          int squeezeChannels, int meansOffset) {
        int means = meansOffset + n * channels;
        int squeeze = meansOffset + batch * channels + n * squeezeChannels;
        int gate = meansOffset + batch * (channels + squeezeChannels) + n * channels;
        for (int s = 0; s < squeezeChannels; s++) {
            float acc = reduceBias[s];
            for (int c = 0; c < channels; c++) {
                acc += reduceWeight[s * channels + c] * scratch[means + c];
            }
            scratch[squeeze + s] = silu(acc);
        }
        for (int c = 0; c < channels; c++) {
            float acc = expandBias[c];
            for (int s = 0; s < squeezeChannels; s++) {
                acc += expandWeight[c * squeezeChannels + s] * scratch[squeeze + s];
            }
            scratch[gate + c] = 1f / (1f + (float) Math.exp(-acc));
        }
    }

    /**
     * The gated 1x1 projection, bias (folded BN) and, when {@code residual} is 1, the block input:
     * y[n, o] = bias[o] + sum_e weight[o, e] gate[n, e] depthwise[n, e] (+ x[n, o]).
     */
    public static void project(float[] scratch, float[] weight, float[] bias, float[] x, float[] y, int batch,
                               int channels, int outChannels, int spatial, int depthwiseOffset, int gateOffset,
                               int residual) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int o = 0; o < outChannels; o++) {
                projectPlane(scratch, weight, bias, x, y, n, o, channels, outChannels, spatial, depthwiseOffset,
                        gateOffset, residual);
            }
        }
    }

    public static void projectPlane(float[] scratch, float[] weight, float[] bias, float[] x, float[] y, int n,
                                    int o, int channels, int outChannels, int spatial, int depthwiseOffset,
                                    int gateOffset, int residual) {
        int out = (n * outChannels + o) * spatial;
        for (int p = 0; p < spatial; p++) {
            y[out + p] = bias[o];
        }
        for (int e = 0; e < channels; e++) {
            float w = weight[o * channels + e] * scratch[gateOffset + n * channels + e];
            int in = depthwiseOffset + (n * channels + e) * spatial;
            for (int p = 0; p < spatial; p++) {
                y[out + p] += w * scratch[in + p];
            }
        }
        if (residual == 1) {
            for (int p = 0; p < spatial; p++) {
                y[out + p] += x[out + p];
            }
        }
    }

    public static float silu(float x) {
        return x / (1f + (float) Math.exp(-x));
    }
}
