package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * Depthwise convolution with channels in the vector lanes, for small maps and stride 2, where a
 * 7- or 14-pixel NCHW row wastes most lanes and the per-plane setup dominates. The tensors stay
 * NCHW: each block of {@code LANES} channels of one image is transposed into a per-thread,
 * zero-bordered tile [paddedHeight][paddedWidth][LANES], convolved with one vector load and one
 * FMA per tap into [outHeight·outWidth][LANES], and transposed back into its planes. Taps are
 * summed in the same order, from the bias, as in {@link DepthwiseConv}, so both kernels give the
 * same bits.
 *
 * <p>The transposes are {@link Vectors#transpose} of LANES x LANES blocks, not the Vector API's
 * gather and scatter through an index map: C2 compiles those only when it inlines {@code
 * IntVector.species} (a call it may find too cold), and otherwise boxed every pixel's vector.
 * mobilenet_v3_small ran 1.5 or 2.4 ms a run depending on the JVM (3 of 5 JVMs allocated 200-300
 * MB/s in this kernel after warm-up; -XX:+PrintIntrinsics: "missing constant: viclass").
 */
public final class DepthwiseChannelsInLanes implements CpuKernel {
    private final float[] input;
    private final float[] residual;
    private final float[] output;
    /** [batch, channels] means of the output planes, or null (see {@link DepthwiseConv}). */
    private final float[] pooled;
    private final int batch;
    private final int channels;
    private final int blocks;
    private final int inHeight;
    private final int inWidth;
    private final int outHeight;
    private final int outWidth;
    private final int kernelH;
    private final int kernelW;
    private final int stride;
    private final int padTop;
    private final int padLeft;
    private final int paddedHeight;
    private final int paddedWidth;
    private final int activation;
    private final boolean clampOnly;
    private final float lower;
    private final float upper;
    /**
     * A plane's last pixels up to this many go to and from the tile one by one, without a LANES x
     * LANES transpose: a 7x7 plane's 49th pixel was a fourth of the transposes. Zen 4, 2 threads,
     * batch 8: 5x5 1152@7 silu 0.48-0.51 -> 0.45-0.46 ms, 576@7 hardswish 0.20-0.23 -> 0.18-0.19
     * (batch 1 0.058-0.069 -> 0.051-0.059). The last 4 of a 14x14 plane's 196 kept the transpose
     * (one by one was no faster).
     */
    private static final int FEW_PIXELS = 2;
    /** Weights as [block][tap][lane] and bias as [block][lane], zero in lanes past the last channel. */
    private final float[] packedWeight;
    private final float[] packedBias;

    /** Same arguments as {@link DepthwiseConv}. */
    public DepthwiseChannelsInLanes(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                    float[] pooled, int[] window, int batch, int channels, int inHeight, int inWidth,
                                    int outHeight, int outWidth, int activation) {
        this.input = input;
        this.residual = residual;
        this.output = output;
        this.pooled = pooled;
        this.batch = batch;
        this.channels = channels;
        this.blocks = (channels + LANES - 1) / LANES;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
        this.kernelH = window[0];
        this.kernelW = window[1];
        this.stride = window[2];
        this.padTop = window[4];
        this.padLeft = window[5];
        this.paddedHeight = (outHeight - 1) * stride + kernelH;
        this.paddedWidth = (outWidth - 1) * stride + kernelW;
        this.activation = activation;
        this.clampOnly = Vectors.isClamp(activation);
        this.lower = clampOnly ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clampOnly ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
        int taps = kernelH * kernelW;
        this.packedWeight = new float[blocks * taps * LANES];
        this.packedBias = new float[blocks * LANES];
        for (int c = 0; c < channels; c++) {
            packedBias[c / LANES * LANES + c % LANES] = bias[c];
            for (int t = 0; t < taps; t++) {
                packedWeight[(c / LANES * taps + t) * LANES + c % LANES] = weight[c * taps + t];
            }
        }
    }

    /**
     * Where this kernel beats {@link DepthwiseConv} (measured). Against its phase planes: 0.25-0.7x
     * the time on 7x7-28x28 outputs, a tie at 28x28 for 5x5 stride 1, a loss on 56x56. Against its
     * direct kernels ({@code direct}: 3x3 and 5x5 stride 1, 3x3 stride 2, reading the planes in
     * place since round 7) below 7 wide, and at 7 or 8 wide for 5x5 stride 1 only (2 threads): 5x5
     * 1152@7 0.145 vs 0.195 ms, but 3x3 960@7 0.053 vs 0.040. Stride 2 to 7 wide looked better here
     * in isolation (3x3 576@14 0.071 vs 0.088 ms) but is not in a network, where the input was just
     * written by both cores and each 16-channel gather touches 16 planes: mobilenet_v1's 512@14 s2
     * 0.10-0.12 -> 0.05 ms direct, mobilenet_v2's 576@14 s2 0.104 -> 0.046, v3_small's 5x5 288@14 s2
     * 0.065 -> 0.058. b0's 5x5 1152@7 (stride 1) stays faster here in the network too (0.155 vs 0.23).
     */
    public static boolean beatsPlanes(int outWidth, int kernelH, int kernelW, int stride, boolean direct) {
        if (direct) {
            return outWidth <= 8 && !(outWidth >= 7 && (kernelH == 3 || stride > 1));
        }
        return outWidth <= 14 || outWidth <= 28 && (stride > 1 || kernelH == 3 && kernelW == 3);
    }

    @Override
    public void run(Workers workers) {
        Split.ranges(workers, batch * blocks, (from, to) -> {
            // Zeroed once per task: the border is never written by gather. Past the tile, the sums of
            // a 4-pixel step ({@link #convolve5Wide}), the block's output pixels and a transpose block.
            float[] tile = Scratch.zeroed(blockAt() + LANES * LANES);
            for (int item = from; item < to; item++) {
                int image = item / blocks;
                int firstChannel = item % blocks * LANES;
                int rows = Math.min(LANES, channels - firstChannel);
                gather(tile, (image * channels + firstChannel) * inHeight * inWidth, rows);
                convolve(tile, item % blocks);
                int start = (image * channels + firstChannel) * outHeight * outWidth;
                scatter(tile, start, rows);
                if (!clampOnly || residual != null) {
                    int end = start + rows * outHeight * outWidth;
                    Vectors.finish(clampOnly ? Activation.NONE : activation, output, start, end, residual);
                }
                if (pooled != null) {
                    int plane = outHeight * outWidth;
                    float[] lanes = Scratch.tile(LANES);
                    for (int r = 0; r < rows; r++) {
                        pooled[image * channels + firstChannel + r] = Elementwise.planeMean(output, start + r * plane,
                                plane, lanes);
                    }
                }
            }
        });
    }

    /** Where the block's output pixels start in the tile: [outHeight·outWidth rounded up to LANES][LANES]. */
    private int pixelsAt() {
        return sumsAt() + 4 * LANES;
    }

    /**
     * Where the tile's LANES x LANES transpose block starts: after the output pixels, with room for
     * the up to 3 pixels a 4-pixel step stores past the last one ({@link #fourPixelsSliding}).
     */
    private int blockAt() {
        int pixels = outHeight * outWidth + 3;
        return pixelsAt() + (pixels + LANES - 1) / LANES * LANES * LANES;
    }

    /**
     * Copies the block's {@code rows} input planes, pixel by pixel with channels in the lanes, into
     * the tile's interior; lanes past the last channel get zeros.
     */
    private void gather(float[] tile, int base, int rows) {
        int plane = inHeight * inWidth;
        int lastRow = Math.min(inHeight, paddedHeight - padTop);
        int lastColumn = Math.min(inWidth, paddedWidth - padLeft);
        int block = blockAt();
        int iy = 0;
        int ix = 0;
        for (int first = 0; first < plane; first += LANES) {
            int count = Math.min(LANES, plane - first);
            if (count <= FEW_PIXELS) {
                for (int p = 0; p < count; p++) {
                    if (iy < lastRow && ix < lastColumn) {
                        int to = ((iy + padTop) * paddedWidth + padLeft + ix) * LANES;
                        for (int r = 0; r < LANES; r++) {
                            tile[to + r] = r < rows ? input[base + r * plane + first + p] : 0f;
                        }
                    }
                    if (++ix == inWidth) {
                        ix = 0;
                        iy++;
                    }
                }
                break;
            }
            for (int r = 0; r < LANES; r++) {
                int to = block + r * LANES;
                if (r >= rows) {
                    java.util.Arrays.fill(tile, to, to + LANES, 0f);
                } else if (count == LANES) {
                    FloatVector.fromArray(SPECIES, input, base + r * plane + first).intoArray(tile, to);
                } else {
                    System.arraycopy(input, base + r * plane + first, tile, to, count);
                }
            }
            Vectors.transpose(tile, block);
            for (int p = 0; p < count; p++) {
                if (iy < lastRow && ix < lastColumn) {
                    FloatVector.fromArray(SPECIES, tile, block + p * LANES)
                            .intoArray(tile, ((iy + padTop) * paddedWidth + padLeft + ix) * LANES);
                }
                if (++ix == inWidth) {
                    ix = 0;
                    iy++;
                }
            }
        }
    }

    /** Writes the block's output pixels (channels in the lanes) to its {@code rows} planes from output[base]. */
    private void scatter(float[] tile, int base, int rows) {
        int plane = outHeight * outWidth;
        for (int first = 0; first < plane; first += LANES) {
            int count = Math.min(LANES, plane - first);
            int block = pixelsAt() + first * LANES;
            if (count <= FEW_PIXELS) {
                for (int r = 0; r < rows; r++) {
                    for (int p = 0; p < count; p++) {
                        output[base + r * plane + first + p] = tile[block + p * LANES + r];
                    }
                }
                break;
            }
            Vectors.transpose(tile, block);
            for (int r = 0; r < rows; r++) {
                if (count == LANES) {
                    FloatVector.fromArray(SPECIES, tile, block + r * LANES).intoArray(output, base + r * plane + first);
                } else {
                    System.arraycopy(tile, block + r * LANES, output, base + r * plane + first, count);
                }
            }
        }
    }

    private void convolve(float[] tile, int block) {
        if (kernelH == 3 && kernelW == 3) {
            convolve3x3(tile, block);
        } else if (kernelW == 5) {
            convolve5Wide(tile, block);
        } else {
            convolveAnySize(tile, block);
        }
    }

    /** The 3x3 case with the nine weight vectors in registers. */
    private void convolve3x3(float[] tile, int block) {
        int w = block * 9 * LANES;
        FloatVector w0 = FloatVector.fromArray(SPECIES, packedWeight, w);
        FloatVector w1 = FloatVector.fromArray(SPECIES, packedWeight, w + LANES);
        FloatVector w2 = FloatVector.fromArray(SPECIES, packedWeight, w + 2 * LANES);
        FloatVector w3 = FloatVector.fromArray(SPECIES, packedWeight, w + 3 * LANES);
        FloatVector w4 = FloatVector.fromArray(SPECIES, packedWeight, w + 4 * LANES);
        FloatVector w5 = FloatVector.fromArray(SPECIES, packedWeight, w + 5 * LANES);
        FloatVector w6 = FloatVector.fromArray(SPECIES, packedWeight, w + 6 * LANES);
        FloatVector w7 = FloatVector.fromArray(SPECIES, packedWeight, w + 7 * LANES);
        FloatVector w8 = FloatVector.fromArray(SPECIES, packedWeight, w + 8 * LANES);
        FloatVector bias = FloatVector.fromArray(SPECIES, packedBias, block * LANES);
        int row = paddedWidth * LANES;
        int pixels = pixelsAt();
        for (int oy = 0; oy < outHeight; oy++) {
            for (int ox = 0; ox < outWidth; ox++) {
                int at = (oy * stride * paddedWidth + ox * stride) * LANES;
                FloatVector sum = FloatVector.fromArray(SPECIES, tile, at).fma(w0, bias);
                sum = FloatVector.fromArray(SPECIES, tile, at + LANES).fma(w1, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + 2 * LANES).fma(w2, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + row).fma(w3, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + row + LANES).fma(w4, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + row + 2 * LANES).fma(w5, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + 2 * row).fma(w6, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + 2 * row + LANES).fma(w7, sum);
                sum = FloatVector.fromArray(SPECIES, tile, at + 2 * row + 2 * LANES).fma(w8, sum);
                sum.max(lower).min(upper).intoArray(tile, pixels + (oy * outWidth + ox) * LANES);
            }
        }
    }

    /**
     * Kernels 5 wide (5x5 on 7x7 maps: MobileNetV3's and EfficientNet's last stages), four output
     * pixels at a time ({@link #fourPixels}: four chains of FMAs where {@link #convolveAnySize} has
     * two, each pixel's taps in {@link DepthwiseConv}'s order), stored from the tile's sums. No
     * vector crosses a call: written as one method, C2 declined to inline some of the stores
     * (NodeCountInliningCutoff) and boxed their vectors, slower than two pixels at a time. This
     * way, 2 threads: 5x5 576@7 0.059 -> 0.053 ms (batch 8: 0.47 -> 0.43), 1152@7 silu 0.146 -> 0.114.
     * Past a row's last pixel a sum reads the next row (or the tile's slack) and is not stored. At
     * stride 1 {@link #fourPixelsSliding} stores its four pixels itself, clamped: one past a row's
     * end lands on the next row's first, which that row writes later (or past the last pixel, in
     * the room {@link #blockAt} leaves).
     */
    private void convolve5Wide(float[] tile, int block) {
        int weights = block * kernelH * 5 * LANES;
        int sums = sumsAt();
        int pixels = pixelsAt();
        for (int oy = 0; oy < outHeight; oy++) {
            for (int ox = 0; ox < outWidth; ox += 4) {
                if (stride == 1) {
                    fourPixelsSliding(tile, (oy * paddedWidth + ox) * LANES, weights, block * LANES,
                            pixels + (oy * outWidth + ox) * LANES);
                    continue;
                }
                fourPixels(tile, (oy * stride * paddedWidth + ox * stride) * LANES, weights, block * LANES, sums);
                int at = pixels + (oy * outWidth + ox) * LANES;
                for (int q = 0; q < Math.min(4, outWidth - ox); q++) {
                    FloatVector.fromArray(SPECIES, tile, sums + q * LANES).max(lower).min(upper)
                            .intoArray(tile, at + q * LANES);
                }
            }
        }
    }

    /**
     * Floats of the tile: the padded input block, plus slack for the pixels a 4-pixel step computes
     * past the last row's end; the step's sums go after it.
     */
    private int sumsAt() {
        return (paddedHeight * paddedWidth + 3 * stride) * LANES;
    }

    /** tile[sums + q·LANES ..] = bias + the 5-wide kernel's taps at output pixels q = 0..3 from the tile's {@code row}. */
    private void fourPixels(float[] tile, int row, int weights, int biasAt, int sums) {
        FloatVector s0 = FloatVector.fromArray(SPECIES, packedBias, biasAt);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int step = stride * LANES;
        for (int ky = 0, w = weights; ky < kernelH; ky++, w += 5 * LANES, row += paddedWidth * LANES) {
            for (int kx = 0; kx < 5; kx++) {
                FloatVector weight = FloatVector.fromArray(SPECIES, packedWeight, w + kx * LANES);
                int at = row + kx * LANES;
                s0 = FloatVector.fromArray(SPECIES, tile, at).fma(weight, s0);
                s1 = FloatVector.fromArray(SPECIES, tile, at + step).fma(weight, s1);
                s2 = FloatVector.fromArray(SPECIES, tile, at + 2 * step).fma(weight, s2);
                s3 = FloatVector.fromArray(SPECIES, tile, at + 3 * step).fma(weight, s3);
            }
        }
        s0.intoArray(tile, sums);
        s1.intoArray(tile, sums + LANES);
        s2.intoArray(tile, sums + 2 * LANES);
        s3.intoArray(tile, sums + 3 * LANES);
    }

    /**
     * {@link #fourPixels} at stride 1: the eight input pixels a kernel row covers for four
     * neighbouring outputs are loaded once and slide past the five weights (13 loads for 20 FMAs,
     * where {@link #fourPixels} has 25) and the sums go straight to pixels [at, at + 4) with the
     * clamp. Zen 4, 2 threads, batch 8: 5x5 1152@7 silu 0.74-0.79 -> 0.57 ms, 576@7 hardswish
     * 0.28-0.36 -> 0.23-0.26.
     */
    private void fourPixelsSliding(float[] tile, int row, int weights, int biasAt, int at) {
        FloatVector s0 = FloatVector.fromArray(SPECIES, packedBias, biasAt);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (int ky = 0, w = weights; ky < kernelH; ky++, w += 5 * LANES, row += paddedWidth * LANES) {
            FloatVector x0 = FloatVector.fromArray(SPECIES, tile, row);
            FloatVector x1 = FloatVector.fromArray(SPECIES, tile, row + LANES);
            FloatVector x2 = FloatVector.fromArray(SPECIES, tile, row + 2 * LANES);
            FloatVector x3 = FloatVector.fromArray(SPECIES, tile, row + 3 * LANES);
            FloatVector x4 = FloatVector.fromArray(SPECIES, tile, row + 4 * LANES);
            FloatVector x5 = FloatVector.fromArray(SPECIES, tile, row + 5 * LANES);
            FloatVector x6 = FloatVector.fromArray(SPECIES, tile, row + 6 * LANES);
            FloatVector x7 = FloatVector.fromArray(SPECIES, tile, row + 7 * LANES);
            FloatVector k = FloatVector.fromArray(SPECIES, packedWeight, w);
            s0 = x0.fma(k, s0);
            s1 = x1.fma(k, s1);
            s2 = x2.fma(k, s2);
            s3 = x3.fma(k, s3);
            k = FloatVector.fromArray(SPECIES, packedWeight, w + LANES);
            s0 = x1.fma(k, s0);
            s1 = x2.fma(k, s1);
            s2 = x3.fma(k, s2);
            s3 = x4.fma(k, s3);
            k = FloatVector.fromArray(SPECIES, packedWeight, w + 2 * LANES);
            s0 = x2.fma(k, s0);
            s1 = x3.fma(k, s1);
            s2 = x4.fma(k, s2);
            s3 = x5.fma(k, s3);
            k = FloatVector.fromArray(SPECIES, packedWeight, w + 3 * LANES);
            s0 = x3.fma(k, s0);
            s1 = x4.fma(k, s1);
            s2 = x5.fma(k, s2);
            s3 = x6.fma(k, s3);
            k = FloatVector.fromArray(SPECIES, packedWeight, w + 4 * LANES);
            s0 = x4.fma(k, s0);
            s1 = x5.fma(k, s1);
            s2 = x6.fma(k, s2);
            s3 = x7.fma(k, s3);
        }
        float low = lower;
        float high = upper;
        s0.max(low).min(high).intoArray(tile, at);
        s1.max(low).min(high).intoArray(tile, at + LANES);
        s2.max(low).min(high).intoArray(tile, at + 2 * LANES);
        s3.max(low).min(high).intoArray(tile, at + 3 * LANES);
    }

    /**
     * Two output pixels at a time, so each weight load feeds two FMAs; after an odd row's last pixel
     * the second sum reads the next row (or the tile's slack) and is not stored.
     */
    private void convolveAnySize(float[] tile, int block) {
        int taps = kernelH * kernelW;
        int pixels = pixelsAt();
        FloatVector bias = FloatVector.fromArray(SPECIES, packedBias, block * LANES);
        int weights = block * taps * LANES;
        for (int oy = 0; oy < outHeight; oy++) {
            for (int ox = 0; ox < outWidth; ox += 2) {
                int corner = (oy * stride * paddedWidth + ox * stride) * LANES;
                FloatVector first = bias;
                FloatVector second = bias;
                for (int ky = 0; ky < kernelH; ky++) {
                    int row = corner + ky * paddedWidth * LANES;
                    for (int kx = 0; kx < kernelW; kx++) {
                        FloatVector w = FloatVector.fromArray(SPECIES, packedWeight, weights + (ky * kernelW + kx) * LANES);
                        first = FloatVector.fromArray(SPECIES, tile, row + kx * LANES).fma(w, first);
                        second = FloatVector.fromArray(SPECIES, tile, row + (kx + stride) * LANES).fma(w, second);
                    }
                }
                int at = pixels + (oy * outWidth + ox) * LANES;
                first.max(lower).min(upper).intoArray(tile, at);
                if (ox + 1 < outWidth) {
                    second.max(lower).min(upper).intoArray(tile, at + LANES);
                }
            }
        }
    }
}
