package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * Depthwise convolution (groups = channels = output channels) in NCHW, any square-or-not kernel
 * and stride, no dilation. Each input plane is first copied into zero-bordered "phase" planes, one
 * per (row, column) remainder modulo the stride, so that every tap of every output row is one
 * unmasked, contiguous vector load: output (oy, ox) reads phase (ky % s, kx % s) at row oy + ky / s,
 * column ox + kx / s. Vector lanes run along the output row; the row's end is one masked store.
 * The common 3x3 and 5x5 convs at stride 1 and 2 with "same" padding skip the copy
 * ({@link #directColumn3x3}, {@link #directColumn5x5}, {@link #directColumn3x3Stride2},
 * {@link #directColumn5x5Stride2}).
 */
public final class DepthwiseConv implements CpuKernel {
    private final float[] input;
    private final float[] weight;
    private final float[] bias;
    private final float[] residual;
    private final float[] output;
    /** [planes] means of the output planes (a fused squeeze-excite pool), or null. */
    private final float[] pooled;
    private final int planes;
    private final int channels;
    private final int inHeight;
    private final int inWidth;
    private final int outHeight;
    private final int outWidth;
    private final int kernelH;
    private final int kernelW;
    private final int stride;
    private final int padTop;
    private final int padLeft;
    private final int activation;
    private final boolean clampOnly;
    private final float lower;
    private final float upper;
    /** Rows and columns of one phase plane, and its size with the slack an unmasked load may read. */
    private final int phaseHeight;
    private final int phaseWidth;
    private final int phaseSize;
    /**
     * Floats the direct kernels read before a plane (5x5: two columns left of column 0) and after
     * it (stride 2: two vectors from one column past the last row's last pair).
     */
    static final int MARGIN_BEFORE = 2;
    static final int MARGIN_AFTER = 2 * LANES + 2;
    /** Offset in the phase planes of each tap, relative to output (0, 0). */
    private final int[] tapOffsets;
    /** 3x3 or 5x5, stride 1, "same" padding, or 3x3 stride 2 padding 1: straight from the input, no phase planes. */
    private final boolean direct;

    /**
     * {@code window} is {@code Window.asArray()} with equal strides and dilation 1; residual may be
     * null. Shapes: input [batch, channels, inHeight, inWidth], weight [channels, 1, kH, kW].
     * With {@code pooled} [batch, channels] (else null), each output plane's mean goes there as the
     * plane is finished, while it is in L1: the squeeze of a squeeze-and-excitation block
     * ({@code Passes.fuseSqueezePools}), which otherwise read the whole output back from L3.
     */
    public DepthwiseConv(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                         float[] pooled, int[] window, int batch, int channels, int inHeight, int inWidth,
                         int outHeight, int outWidth, int activation) {
        this.input = input;
        this.weight = weight;
        this.bias = bias;
        this.residual = residual;
        this.output = output;
        this.pooled = pooled;
        this.planes = batch * channels;
        this.channels = channels;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
        this.kernelH = window[0];
        this.kernelW = window[1];
        this.stride = window[2];
        this.padTop = window[4];
        this.padLeft = window[5];
        this.activation = activation;
        this.clampOnly = Vectors.isClamp(activation);
        this.lower = clampOnly ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clampOnly ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
        this.phaseHeight = outHeight + (kernelH - 1) / stride;
        this.phaseWidth = outWidth + (kernelW - 1) / stride;
        this.phaseSize = phaseHeight * phaseWidth + LANES;
        this.direct = runsDirect(window, inHeight, inWidth, outHeight, outWidth);
        this.tapOffsets = new int[kernelH * kernelW];
        for (int ky = 0; ky < kernelH; ky++) {
            for (int kx = 0; kx < kernelW; kx++) {
                int phase = ky % stride * stride + kx % stride;
                tapOffsets[ky * kernelW + kx] = phase * phaseSize + ky / stride * phaseWidth + kx / stride;
            }
        }
    }

    /**
     * 3x3 with padding 1 or 5x5 with padding 2, at stride 1 (output as large as the input) or 2:
     * {@link #directColumn3x3}, {@link #directColumn5x5}, {@link #directColumn3x3Stride2} or
     * {@link #directColumn5x5Stride2}, straight from the input.
     */
    public static boolean runsDirect(int[] window, int inHeight, int inWidth, int outHeight, int outWidth) {
        int k = window[0];
        if ((k == 3 || k == 5) && window[1] == k && window[2] == 2 && window[3] == 2 && window[4] == k / 2
                && window[5] == k / 2) {
            return outHeight == (inHeight - 1) / 2 + 1 && outWidth == (inWidth - 1) / 2 + 1;
        }
        return (k == 3 || k == 5) && window[1] == k && window[2] == 1 && window[3] == 1 && window[4] == k / 2
                && window[5] == k / 2 && outHeight == inHeight && outWidth == inWidth;
    }

    /** Whether this kernel computes a conv of these parameters (else the caller uses another). */
    public static boolean supports(int[] window, int groups, int inChannels, int outChannels) {
        return groups == inChannels && outChannels == inChannels && window[2] == window[3] && window[8] == 1
                && window[9] == 1;
    }

    @Override
    public void run(Workers workers) {
        if (direct) {
            Split.ranges(workers, planes, (from, to) -> {
                int planeSize = inHeight * inWidth;
                int unfinished = from;
                for (int plane = from; plane < to; plane++) {
                    // The kernels read the plane in place, with vectors reaching a few columns
                    // before it and past it (lanes that blends zero or that are never stored):
                    // only the tensor's first and last planes lack that margin and go through a copy.
                    float[] src = input;
                    int start = plane * planeSize;
                    // In place (the output over the input, see Conv2d.writesInPlace), the plane is
                    // copied first: the next column's taps, and a partial column's spare lanes,
                    // meet input that outputs already overwrote.
                    if (input == output || start < MARGIN_BEFORE
                            || start + planeSize + MARGIN_AFTER > input.length) {
                        src = Scratch.floats(MARGIN_BEFORE + planeSize + MARGIN_AFTER);
                        System.arraycopy(input, start, src, MARGIN_BEFORE, planeSize);
                        start = MARGIN_BEFORE;
                    }
                    convolveDirect(plane, src, start);
                    // The activation over a run of planes at once: on 7x7 maps a plane's 49 outputs
                    // ended in a padded partial step each (Zen 4, 2 threads: 3x3 1536@7 silu
                    // 0.079-0.113 -> 0.054-0.073 ms, batch 8 0.66-0.79 -> 0.43-0.64).
                    if (plane + 1 == to || (plane + 1 - unfinished) * outHeight * outWidth >= FINISH_RUN) {
                        finishPlanes(unfinished, plane + 1);
                        unfinished = plane + 1;
                    }
                }
            });
            return;
        }
        Split.ranges(workers, planes, (from, to) -> {
            // Zeroed once per task: the borders are never written by fillPhases.
            float[] phases = Scratch.zeroed(stride * stride * phaseSize);
            for (int plane = from; plane < to; plane++) {
                fillPhases(phases, plane);
                convolvePlane(phases, plane);
            }
        });
    }

    /**
     * Output plane {@code plane} (image · channels + channel) of a direct conv ({@link #runsDirect})
     * from the input plane at src[start], read in place: src must hold {@link #MARGIN_BEFORE}
     * floats before it and {@link #MARGIN_AFTER} after it (any values: those lanes are blended to
     * zero or never stored).
     */
    void directPlane(int plane, float[] src, int start) {
        convolveDirect(plane, src, start);
        finishPlanes(plane, plane + 1);
    }

    /** Outputs a run of planes finishes at once in {@link #run}: 4 KB, in L1 still. */
    private static final int FINISH_RUN = 1024;

    /** {@link #directPlane} before {@link #finishPlanes}: the convolution, with a clamp if that is the activation. */
    private void convolveDirect(int plane, float[] src, int start) {
        // Right to left: see directColumn3x3 on the whole-vector stores.
        for (int ox = (outWidth - 1) / LANES * LANES; ox >= 0; ox -= LANES) {
            if (stride == 2 && kernelH == 3) {
                directColumn3x3Stride2(plane, ox, src, start + 2 * ox - 1);
            } else if (stride == 2) {
                directColumn5x5Stride2(plane, ox, src, start + 2 * ox - 2);
            } else if (kernelH == 3) {
                directColumn3x3(plane, ox, src, start + ox - 1);
            } else {
                directColumn5x5(plane, ox, src, start + ox - 2);
            }
        }
    }

    /**
     * An activation other than a clamp, and then the residual, over the outputs of planes [from,
     * to); then their means into {@link #pooled}, if any.
     */
    private void finishPlanes(int from, int to) {
        int size = outHeight * outWidth;
        if (!clampOnly) {
            Vectors.finish(activation, output, from * size, to * size, residual);
        }
        if (pooled != null) {
            float[] lanes = Scratch.tile(LANES);
            for (int plane = from; plane < to; plane++) {
                pooled[plane] = Elementwise.planeMean(output, plane * size, size, lanes);
            }
        }
    }

    /**
     * Output columns [ox, ox + LANES) of a 3x3, stride 1, padding 1 plane, rolling down the rows:
     * input row r (the vectors at src[at], at + 1, at + 2 for its columns ox − 1, ox, ox + 1;
     * rows {@code inWidth} apart) is loaded once and feeds output rows r + 1 (finished), r (a)
     * and r − 1 (b, started). The lanes left and right of the image are zeroed by blends (a
     * zero-bordered copy of each plane cost 40% of 3x3 384@14). The row below the image is a zero
     * vector through the same FMAs, so
     * the taps add from the bias in the order 0..8 exactly as in the padded kernels. The clamp is
     * two compares and blends, which give Java's max/min results (NaN stays NaN, −0 becomes +0 at
     * a bound of 0) at a third of their cost. Rows are stored as whole vectors while they end
     * inside the plane ({@link #wholeStores}): a partial column's spare lanes land at the start of
     * the next row, which the plane's first column writes later (columns go right to left).
     */
    private void directColumn3x3(int plane, int ox, float[] src, int at) {
        float[] out = output;
        int stride = inWidth;
        float[] res = clampOnly ? residual : null;
        int rows = outHeight;
        int width = outWidth;
        int w = plane % channels * 9;
        FloatVector w0 = FloatVector.broadcast(SPECIES, weight[w]);
        FloatVector w1 = FloatVector.broadcast(SPECIES, weight[w + 1]);
        FloatVector w2 = FloatVector.broadcast(SPECIES, weight[w + 2]);
        FloatVector w3 = FloatVector.broadcast(SPECIES, weight[w + 3]);
        FloatVector w4 = FloatVector.broadcast(SPECIES, weight[w + 4]);
        FloatVector w5 = FloatVector.broadcast(SPECIES, weight[w + 5]);
        FloatVector w6 = FloatVector.broadcast(SPECIES, weight[w + 6]);
        FloatVector w7 = FloatVector.broadcast(SPECIES, weight[w + 7]);
        FloatVector w8 = FloatVector.broadcast(SPECIES, weight[w + 8]);
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        float low = lower;
        float high = upper;
        // Lane 0 of column ox − 1 at the left edge, and the lanes of columns ox + 1 past the right.
        VectorMask<Float> left = Vectors.firstLanes(ox == 0 ? 1 : 0);
        VectorMask<Float> right = Vectors.firstLanes(width - 1 - ox).not();
        FloatVector a = zero.fma(w0, planeBias);
        a = zero.fma(w1, a);
        a = zero.fma(w2, a);
        FloatVector x0 = FloatVector.fromArray(SPECIES, src, at).blend(zero, left);
        FloatVector x1 = FloatVector.fromArray(SPECIES, src, at + 1);
        FloatVector x2 = FloatVector.fromArray(SPECIES, src, at + 2).blend(zero, right);
        a = x0.fma(w3, a);
        a = x1.fma(w4, a);
        a = x2.fma(w5, a);
        FloatVector b = x0.fma(w0, planeBias);
        b = x1.fma(w1, b);
        b = x2.fma(w2, b);
        int o = plane * rows * width + ox;
        int last = o + (rows - 1) * width;
        int whole = wholeStores(plane, last);
        VectorMask<Float> valid = Vectors.firstLanes(width - ox);
        for (; o < last; o += width) {
            at += stride;
            x0 = FloatVector.fromArray(SPECIES, src, at).blend(zero, left);
            x1 = FloatVector.fromArray(SPECIES, src, at + 1);
            x2 = FloatVector.fromArray(SPECIES, src, at + 2).blend(zero, right);
            FloatVector done = x0.fma(w6, a);
            done = x1.fma(w7, done);
            done = x2.fma(w8, done);
            a = x0.fma(w3, b);
            a = x1.fma(w4, a);
            a = x2.fma(w5, a);
            b = x0.fma(w0, planeBias);
            b = x1.fma(w1, b);
            b = x2.fma(w2, b);
            done = done.blend(low, done.compare(VectorOperators.LE, low));
            done = done.blend(high, done.compare(VectorOperators.GE, high));
            // Written out here, not in a helper: a vector passed to a call C2 does not inline is boxed.
            if (o < whole) {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o));
                }
                done.intoArray(out, o);
            } else {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
                }
                done.intoArray(out, o, valid);
            }
        }
        // The last row: its third tap row is below the image.
        FloatVector done = zero.fma(w6, a);
        done = zero.fma(w7, done);
        done = zero.fma(w8, done);
        done = done.blend(low, done.compare(VectorOperators.LE, low));
        done = done.blend(high, done.compare(VectorOperators.GE, high));
        if (res != null) {
            done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
        }
        done.intoArray(out, o, valid);
    }

    /**
     * Output columns [ox, ox + LANES) of a 5x5, stride 1, padding 2 plane: each input row (the
     * vectors at src[at] .. at + 4 for columns ox − 2 .. ox + 2, rows {@code inWidth} apart, the
     * lanes outside the image zeroed by blends) is loaded once and feeds the five output rows it
     * touches, whose partial sums roll down in a0..a3. Rows outside the image are zero vectors
     * through the same FMAs, so the taps add from the bias in the order 0..24, as in the other
     * kernels. Rows are stored as whole vectors while they end inside the plane, as in
     * {@link #directColumn3x3}. One method per
     * column, not per plane: per plane, C1 could not compile it (out of registers) and C2 came only
     * after seconds.
     */
    private void directColumn5x5(int plane, int ox, float[] src, int at) {
        float[] out = output;
        float[] res = clampOnly ? residual : null;
        int stride = inWidth;
        int width = outWidth;
        int w = plane % channels * 25;
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        float low = lower;
        float high = upper;
        VectorMask<Float> left2 = Vectors.firstLanes(ox == 0 ? 2 : 0);
        VectorMask<Float> left1 = Vectors.firstLanes(ox == 0 ? 1 : 0);
        VectorMask<Float> right1 = Vectors.firstLanes(width - 1 - ox).not();
        VectorMask<Float> right2 = Vectors.firstLanes(Math.max(0, width - 2 - ox)).not();
        int rows = inHeight;
        int o = plane * outHeight * width + ox - 2 * width;
        int last = plane * outHeight * width + ox + (outHeight - 1) * width;
        int whole = wholeStores(plane, last);
        // The two zero rows above the image, without their loop steps (2 of 18 on a 14x14 map):
        // they leave tap rows 0-1 of output 0 (a2) and tap row 0 of output 1 (a3) summed from the
        // bias over zeros, the same FMAs on zero vectors as before.
        FloatVector a0 = zero, a1 = zero;
        FloatVector a3 = zero.fma(FloatVector.broadcast(SPECIES, weight[w]), planeBias);
        a3 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 1]), a3);
        a3 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 2]), a3);
        a3 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 3]), a3);
        a3 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 4]), a3);
        FloatVector a2 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 5]), a3);
        a2 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 6]), a2);
        a2 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 7]), a2);
        a2 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 8]), a2);
        a2 = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 9]), a2);
        for (int r = 0; r < rows + 2; r++, o += width) {
            FloatVector x0 = zero, x1 = zero, x2 = zero, x3 = zero, x4 = zero;
            if (r < rows) {
                x0 = FloatVector.fromArray(SPECIES, src, at).blend(zero, left2);
                x1 = FloatVector.fromArray(SPECIES, src, at + 1).blend(zero, left1);
                x2 = FloatVector.fromArray(SPECIES, src, at + 2);
                x3 = FloatVector.fromArray(SPECIES, src, at + 3).blend(zero, right1);
                x4 = FloatVector.fromArray(SPECIES, src, at + 4).blend(zero, right2);
                at += stride;
            }
            // Row r is tap row 4 of output r - 2 (done), 3 of r - 1, 2 of r, 1 of r + 1, 0 of r + 2 (new).
            FloatVector done = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 20]), a0);
            done = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 21]), done);
            done = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 22]), done);
            done = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 23]), done);
            done = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 24]), done);
            a0 = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 15]), a1);
            a0 = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 16]), a0);
            a0 = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 17]), a0);
            a0 = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 18]), a0);
            a0 = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 19]), a0);
            a1 = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 10]), a2);
            a1 = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 11]), a1);
            a1 = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 12]), a1);
            a1 = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 13]), a1);
            a1 = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 14]), a1);
            a2 = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 5]), a3);
            a2 = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 6]), a2);
            a2 = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 7]), a2);
            a2 = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 8]), a2);
            a2 = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 9]), a2);
            a3 = x0.fma(FloatVector.broadcast(SPECIES, weight[w]), planeBias);
            a3 = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 1]), a3);
            a3 = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 2]), a3);
            a3 = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 3]), a3);
            a3 = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 4]), a3);
            if (r < 2) {
                continue;
            }
            done = done.blend(low, done.compare(VectorOperators.LE, low));
            done = done.blend(high, done.compare(VectorOperators.GE, high));
            if (o < whole) {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o));
                }
                done.intoArray(out, o);
            } else {
                VectorMask<Float> valid = Vectors.firstLanes(width - ox);
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
                }
                done.intoArray(out, o, valid);
            }
        }
    }

    /**
     * Output columns [ox, ox + LANES) of a 3x3, stride 2, padding 1 plane, rolling down the rows
     * as {@link #directColumn3x3} does. Tap kx of output lane j is input column 2(ox + j) − 1 + kx:
     * two vectors from column 2ox − 1 (src[at]) give taps 0 (their even lanes) and 1 (odd lanes),
     * two from one column on give tap 2 (even lanes); the lanes outside the image are zeroed by
     * blends. Input row 2oy (taps 3-5) finishes nothing, row 2oy + 1 (taps 6-8) finishes output
     * row oy and starts oy + 1 (taps 0-2), so each input row is loaded once, in order; every row
     * is stored whole while it ends inside the plane ({@link #wholeStores}). Splitting
     * each input row into column phases first, then convolving output rows, spent most of its
     * time per row (nine weight broadcasts, the split's stores): 256@28 0.11 ms in mobilenet_v1.
     */
    private void directColumn3x3Stride2(int plane, int ox, float[] src, int at) {
        float[] out = output;
        float[] res = clampOnly ? residual : null;
        int stride = inWidth;
        int width = outWidth;
        int w = plane % channels * 9;
        FloatVector w0 = FloatVector.broadcast(SPECIES, weight[w]);
        FloatVector w1 = FloatVector.broadcast(SPECIES, weight[w + 1]);
        FloatVector w2 = FloatVector.broadcast(SPECIES, weight[w + 2]);
        FloatVector w3 = FloatVector.broadcast(SPECIES, weight[w + 3]);
        FloatVector w4 = FloatVector.broadcast(SPECIES, weight[w + 4]);
        FloatVector w5 = FloatVector.broadcast(SPECIES, weight[w + 5]);
        FloatVector w6 = FloatVector.broadcast(SPECIES, weight[w + 6]);
        FloatVector w7 = FloatVector.broadcast(SPECIES, weight[w + 7]);
        FloatVector w8 = FloatVector.broadcast(SPECIES, weight[w + 8]);
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        float low = lower;
        float high = upper;
        // Column −1 (tap 0, lane 0 of the first vector), and columns past the image: tap 1 reads
        // column 2(ox + j), tap 2 column 2(ox + j) + 1.
        VectorMask<Float> left = Vectors.firstLanes(ox == 0 ? 1 : 0);
        VectorMask<Float> right1 = Vectors.firstLanes((inWidth - 2 * ox + 1) / 2).not();
        VectorMask<Float> right2 = Vectors.firstLanes((inWidth - 2 * ox) / 2).not();
        FloatVector partial = zero.fma(w0, planeBias);
        partial = zero.fma(w1, partial);
        partial = zero.fma(w2, partial);
        FloatVector a = zero;
        int o = plane * outHeight * width + ox;
        int whole = wholeStores(plane, o + (outHeight - 1) * width);
        VectorMask<Float> valid = Vectors.firstLanes(width - ox);
        // Input rows 0 .. 2·outHeight − 1, the last below the image when the height is odd. One
        // loop over input rows, not two rows per output row: that method was too large for C1
        // (out of virtual registers), so it ran boxed, 70x slower, until C2 came after 10 s.
        for (int r = 0; r < 2 * outHeight; r++, at += stride) {
            FloatVector x0 = zero, x1 = zero, x2 = zero;
            if (r < inHeight) {
                FloatVector low0 = FloatVector.fromArray(SPECIES, src, at);
                FloatVector high0 = FloatVector.fromArray(SPECIES, src, at + LANES);
                FloatVector low2 = FloatVector.fromArray(SPECIES, src, at + 2);
                FloatVector high2 = FloatVector.fromArray(SPECIES, src, at + 2 + LANES);
                x0 = Vectors.evenLanes(low0, high0).blend(zero, left);
                x1 = Vectors.oddLanes(low0, high0).blend(zero, right1);
                x2 = Vectors.evenLanes(low2, high2).blend(zero, right2);
            }
            if ((r & 1) == 0) {
                // Taps 3-5 of output row r / 2.
                a = x0.fma(w3, partial);
                a = x1.fma(w4, a);
                a = x2.fma(w5, a);
                continue;
            }
            // Taps 6-8 finish output row (r − 1) / 2; taps 0-2 start the next.
            FloatVector done = x0.fma(w6, a);
            done = x1.fma(w7, done);
            done = x2.fma(w8, done);
            partial = x0.fma(w0, planeBias);
            partial = x1.fma(w1, partial);
            partial = x2.fma(w2, partial);
            done = done.blend(low, done.compare(VectorOperators.LE, low));
            done = done.blend(high, done.compare(VectorOperators.GE, high));
            // Written out here, not in a helper: a vector passed to a call C2 does not inline is boxed.
            if (o < whole) {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o));
                }
                done.intoArray(out, o);
            } else {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
                }
                done.intoArray(out, o, valid);
            }
            o += width;
        }
    }

    /**
     * Output columns [ox, ox + LANES) of a 5x5, stride 2, padding 2 plane, as
     * {@link #directColumn3x3Stride2} does 3x3: tap kx of output lane j is input column
     * 2(ox + j) − 2 + kx, the even and odd lanes of vector pairs from columns 2ox − 2 (src[at]),
     * 2ox and 2ox + 2. Input row 2m is tap row 4 of output m − 1 (finished), 2 of m and 0 of
     * m + 1; row 2m + 1 is tap row 3 of m and 1 of m + 1. Rows outside the image are zero vectors
     * through the same FMAs, so the taps add from the bias in the order 0..24. Through phase
     * planes, b0's 144 s2 @56 took 0.48 ms (2 threads).
     */
    private void directColumn5x5Stride2(int plane, int ox, float[] src, int at) {
        float[] out = output;
        float[] res = clampOnly ? residual : null;
        int stride = inWidth;
        int width = outWidth;
        int w = plane % channels * 25;
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        float low = lower;
        float high = upper;
        // Tap kx of lane j reads column 2(ox + j) − 2 + kx: lanes left of the image at ox = 0, and
        // lanes past its right edge.
        VectorMask<Float> left0 = Vectors.firstLanes(ox == 0 ? 1 : 0);
        VectorMask<Float> right2 = Vectors.firstLanes((inWidth - 2 * ox + 1) / 2).not();
        VectorMask<Float> right3 = Vectors.firstLanes((inWidth - 2 * ox) / 2).not();
        VectorMask<Float> right4 = Vectors.firstLanes(Math.max(0, (inWidth - 2 * ox - 1) / 2)).not();
        // Sums in flight after input row 2m − 1: before = output m − 1 (tap rows 0-3), middle =
        // output m (rows 0-1; rows 0-2 after row 2m), started = output m + 1 (row 0, from row 2m).
        // The two zero rows above the image, without their loop steps (2 of 17 on a 14x14 input):
        // they leave tap row 0 of output 0 (started) and its rows 0-1 (middle) summed from the bias
        // over zeros, the same FMAs on zero vectors as before.
        FloatVector started = zero.fma(FloatVector.broadcast(SPECIES, weight[w]), planeBias);
        started = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 1]), started);
        started = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 2]), started);
        started = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 3]), started);
        started = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 4]), started);
        FloatVector middle = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 5]), started);
        middle = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 6]), middle);
        middle = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 7]), middle);
        middle = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 8]), middle);
        middle = zero.fma(FloatVector.broadcast(SPECIES, weight[w + 9]), middle);
        FloatVector before = zero;
        int o = plane * outHeight * width + ox - width;
        int whole = wholeStores(plane, plane * outHeight * width + ox + (outHeight - 1) * width);
        VectorMask<Float> valid = Vectors.firstLanes(width - ox);
        for (int r = 0; r <= 2 * outHeight; r++, at += stride) {
            FloatVector x0 = zero, x1 = zero, x2 = zero, x3 = zero, x4 = zero;
            if (r < inHeight) {
                FloatVector low0 = FloatVector.fromArray(SPECIES, src, at);
                FloatVector high0 = FloatVector.fromArray(SPECIES, src, at + LANES);
                FloatVector low2 = FloatVector.fromArray(SPECIES, src, at + 2);
                FloatVector high2 = FloatVector.fromArray(SPECIES, src, at + 2 + LANES);
                FloatVector low4 = FloatVector.fromArray(SPECIES, src, at + 4);
                FloatVector high4 = FloatVector.fromArray(SPECIES, src, at + 4 + LANES);
                x0 = Vectors.evenLanes(low0, high0).blend(zero, left0);
                x1 = Vectors.oddLanes(low0, high0).blend(zero, left0);
                x2 = Vectors.evenLanes(low2, high2).blend(zero, right2);
                x3 = Vectors.oddLanes(low2, high2).blend(zero, right3);
                x4 = Vectors.evenLanes(low4, high4).blend(zero, right4);
            }
            if ((r & 1) != 0) {
                // Tap row 3 of output (r − 1) / 2, row 1 of the next.
                FloatVector a = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 15]), middle);
                a = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 16]), a);
                a = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 17]), a);
                a = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 18]), a);
                before = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 19]), a);
                FloatVector b = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 5]), started);
                b = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 6]), b);
                b = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 7]), b);
                b = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 8]), b);
                middle = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 9]), b);
                continue;
            }
            // Tap row 4 finishes output r / 2 − 1; row 2 of output r / 2; row 0 starts r / 2 + 1.
            FloatVector done = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 20]), before);
            done = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 21]), done);
            done = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 22]), done);
            done = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 23]), done);
            done = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 24]), done);
            FloatVector m = x0.fma(FloatVector.broadcast(SPECIES, weight[w + 10]), middle);
            m = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 11]), m);
            m = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 12]), m);
            m = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 13]), m);
            middle = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 14]), m);
            FloatVector n = x0.fma(FloatVector.broadcast(SPECIES, weight[w]), planeBias);
            n = x1.fma(FloatVector.broadcast(SPECIES, weight[w + 1]), n);
            n = x2.fma(FloatVector.broadcast(SPECIES, weight[w + 2]), n);
            n = x3.fma(FloatVector.broadcast(SPECIES, weight[w + 3]), n);
            started = x4.fma(FloatVector.broadcast(SPECIES, weight[w + 4]), n);
            if (r >= 2) {
                done = done.blend(low, done.compare(VectorOperators.LE, low));
                done = done.blend(high, done.compare(VectorOperators.GE, high));
                if (o < whole) {
                    if (res != null) {
                        done = done.add(FloatVector.fromArray(SPECIES, res, o));
                    }
                    done.intoArray(out, o);
                } else {
                    if (res != null) {
                        done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
                    }
                    done.intoArray(out, o, valid);
                }
            }
            o += width;
        }
    }

    /**
     * Output offsets below which a column's rows may be stored as whole vectors, up to the plane's
     * last row at {@code last}: a whole vector must end inside the plane (the next plane may be
     * another thread's); below 8 columns a row's spare lanes reach two rows on.
     */
    private int wholeStores(int plane, int last) {
        return Math.min(last, (plane + 1) * outHeight * outWidth - LANES + 1);
    }

    /** Copies the plane's input pixels into the phase planes (the zero border stays). */
    private void fillPhases(float[] phases, int plane) {
        int in = plane * inHeight * inWidth;
        for (int iy = 0; iy < inHeight; iy++) {
            int y = iy + padTop;
            if (y / stride >= phaseHeight) {
                break;
            }
            int rowBase = (y % stride * stride) * phaseSize + y / stride * phaseWidth;
            int source = in + iy * inWidth - padLeft;
            for (int rx = 0; rx < stride; rx++) {
                // Phase column j holds padded column j·stride + rx, input column j·stride + rx − padLeft.
                int first = Math.max(0, (padLeft - rx + stride - 1) / stride);
                int last = Math.min(phaseWidth, (inWidth + padLeft - rx + stride - 1) / stride);
                if (first < last) {
                    Vectors.copyStrided(input, source + first * stride + rx, stride, phases,
                            rowBase + rx * phaseSize + first, last - first);
                }
            }
        }
    }

    private void convolvePlane(float[] phases, int plane) {
        convolvePlaneAnySize(phases, plane);
        finishPlanes(plane, plane + 1);
    }

    private void convolvePlaneAnySize(float[] phases, int plane) {
        int taps = kernelH * kernelW;
        int firstWeight = plane % channels * taps;
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        int planeEnd = (plane + 1) * outHeight * outWidth;
        for (int oy = 0; oy < outHeight; oy++) {
            int rowOut = (plane * outHeight + oy) * outWidth;
            for (int ox = 0; ox < outWidth; ox += LANES) {
                int at = oy * phaseWidth + ox;
                FloatVector sum = planeBias;
                for (int t = 0; t < taps; t++) {
                    sum = FloatVector.fromArray(SPECIES, phases, at + tapOffsets[t])
                            .fma(FloatVector.broadcast(SPECIES, weight[firstWeight + t]), sum);
                }
                FloatVector value = sum.max(lower).min(upper);
                // Past the row's end, a full store only writes the start of the next rows, computed
                // after this one; where it would reach past the plane (another thread's), it is masked.
                if (rowOut + ox + LANES <= planeEnd) {
                    if (residual != null && clampOnly) {
                        value = value.add(FloatVector.fromArray(SPECIES, residual, rowOut + ox));
                    }
                    value.intoArray(output, rowOut + ox);
                } else {
                    VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
                    if (residual != null && clampOnly) {
                        value = value.add(FloatVector.fromArray(SPECIES, residual, rowOut + ox, valid));
                    }
                    value.intoArray(output, rowOut + ox, valid);
                }
            }
        }
    }
}
