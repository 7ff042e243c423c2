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
 * The common stride-1 3x3 and 5x5 "same" convs and 3x3 stride-2 convs with padding 1 skip the copy
 * ({@link #directColumn3x3}, {@link #directColumn5x5}, {@link #convolveDirect3x3Stride2}).
 */
public final class DepthwiseConv implements CpuKernel {
    private final float[] input;
    private final float[] weight;
    private final float[] bias;
    private final float[] residual;
    private final float[] output;
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
    /** Offset in the phase planes of each tap, relative to output (0, 0). */
    private final int[] tapOffsets;
    /** 3x3 or 5x5, stride 1, "same" padding, or 3x3 stride 2 padding 1: straight from the input, no phase planes. */
    private final boolean direct;

    /**
     * {@code window} is {@code Window.asArray()} with equal strides and dilation 1; residual may be
     * null. Shapes: input [batch, channels, inHeight, inWidth], weight [channels, 1, kH, kW].
     */
    public DepthwiseConv(float[] input, float[] weight, float[] bias, float[] residual, float[] output, int[] window,
                         int batch, int channels, int inHeight, int inWidth, int outHeight, int outWidth,
                         int activation) {
        this.input = input;
        this.weight = weight;
        this.bias = bias;
        this.residual = residual;
        this.output = output;
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
     * 3x3 with padding 1 or 5x5 with padding 2 at stride 1 (output as large as the input), or 3x3
     * with padding 1 at stride 2: {@link #directColumn3x3}, {@link #directColumn5x5} or
     * {@link #convolveDirect3x3Stride2}, no phase planes.
     */
    public static boolean runsDirect(int[] window, int inHeight, int inWidth, int outHeight, int outWidth) {
        int k = window[0];
        if (k == 3 && window[1] == 3 && window[2] == 2 && window[3] == 2 && window[4] == 1 && window[5] == 1) {
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
        if (direct && stride == 2) {
            Split.ranges(workers, planes, (from, to) -> {
                // The split rows, written in full for every row.
                float[] rows = Scratch.floats(stride2RowsSize());
                for (int plane = from; plane < to; plane++) {
                    convolveDirect3x3Stride2(plane, rows);
                    finishPlane(plane);
                }
            });
            return;
        }
        if (direct) {
            Split.ranges(workers, planes, (from, to) -> {
                int pad = kernelW / 2;
                int rowStride = inWidth + 2 * pad;
                // The padded copy's zero borders are never written, so zeroed once per task.
                float[] padded = Scratch.zeroed(inHeight * rowStride + LANES);
                int planeSize = inHeight * inWidth;
                for (int plane = from; plane < to; plane++) {
                    int start = plane * planeSize;
                    // 3x3 reads the plane in place, its vectors one column left and right of the
                    // output's (only the tensor's first and last planes lack that margin).
                    boolean inPlace = kernelH == 3 && start >= 1 && start + planeSize + LANES + 1 <= input.length;
                    if (!inPlace) {
                        copyRows(input, start, inWidth, inHeight, padded, pad, rowStride);
                    }
                    for (int ox = (outWidth - 1) / LANES * LANES; ox >= 0; ox -= LANES) {
                        if (inPlace) {
                            directColumn3x3(plane, ox, input, start - 1 + ox, inWidth);
                        } else if (kernelH == 3) {
                            directColumn3x3(plane, ox, padded, ox, rowStride);
                        } else {
                            directColumn5x5(plane, ox, padded, ox, rowStride);
                        }
                    }
                    finishPlane(plane);
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

    /** An activation other than a clamp, and then the residual, over the plane's outputs. */
    private void finishPlane(int plane) {
        if (!clampOnly) {
            int start = plane * outHeight * outWidth;
            Vectors.finish(activation, output, start, start + outHeight * outWidth, residual);
        }
    }

    /**
     * {@code rows} rows of {@code width} floats, contiguous from from[fromAt], to rows
     * {@code stride} apart from to[toAt]. Vector copies with one masked vector per row: a plane's
     * rows of 14-56 floats through System.arraycopy cost as much as the convolution.
     */
    private static void copyRows(float[] from, int fromAt, int width, int rows, float[] to, int toAt, int stride) {
        int body = width - width % LANES;
        VectorMask<Float> tail = Vectors.firstLanes(width - body);
        for (int r = 0; r < rows; r++, fromAt += width, toAt += stride) {
            for (int j = 0; j < body; j += LANES) {
                FloatVector.fromArray(SPECIES, from, fromAt + j).intoArray(to, toAt + j);
            }
            if (body < width) {
                FloatVector.fromArray(SPECIES, from, fromAt + body, tail).intoArray(to, toAt + body);
            }
        }
    }

    /**
     * Output columns [ox, ox + LANES) of a 3x3, stride 1, padding 1 plane, rolling down the rows:
     * input row r (the vectors at src[at], at + 1, at + 2 for its columns ox − 1, ox, ox + 1;
     * rows {@code stride} apart) is loaded once and feeds output rows r + 1 (finished), r (a)
     * and r − 1 (b, started). {@code src} is the input itself or a copy with zero borders: the
     * lanes left and right of the image are zeroed by a blend either way (a copy of each plane
     * cost 40% of 3x3 384@14). The row below the image is a zero vector through the same FMAs, so
     * the taps add from the bias in the order 0..8 exactly as in the padded kernels. The clamp is
     * two compares and blends, which give Java's max/min results (NaN stays NaN, −0 becomes +0 at
     * a bound of 0) at a third of their cost. Every row but the plane's last is stored whole: a
     * partial column's spare lanes land at the start of the next row, which the plane's first
     * column writes later (columns go right to left), so the loop holds no
     * mask and no branch per row: with them C2 kept the loop's integers on the stack (about 30
     * cycles a row for 9 FMAs).
     */
    private void directColumn3x3(int plane, int ox, float[] src, int at, int stride) {
        float[] out = output;
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
            if (res != null) {
                done = done.add(FloatVector.fromArray(SPECIES, res, o));
            }
            done.intoArray(out, o);
        }
        // The last row: its third tap row is below the image.
        FloatVector done = zero.fma(w6, a);
        done = zero.fma(w7, done);
        done = zero.fma(w8, done);
        done = done.blend(low, done.compare(VectorOperators.LE, low));
        done = done.blend(high, done.compare(VectorOperators.GE, high));
        VectorMask<Float> valid = Vectors.firstLanes(width - ox);
        if (res != null) {
            done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
        }
        done.intoArray(out, o, valid);
    }

    /**
     * Output columns [ox, ox + LANES) of a 5x5, stride 1, padding 2 plane from its padded copy:
     * each input row (the vectors at src[at] .. at + 4, rows {@code stride} apart) is loaded once
     * and feeds the five output rows it touches, whose partial sums roll down in a0..a3. Rows
     * outside the image are zero vectors through the same FMAs, so the taps add from the bias in
     * the order 0..24, as in the other kernels. One method per column, not per plane: per plane,
     * C1 could not compile it (out of registers) and C2 came only after seconds.
     */
    private void directColumn5x5(int plane, int ox, float[] src, int at, int stride) {
        float[] out = output;
        float[] res = clampOnly ? residual : null;
        int w = plane % channels * 25;
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        float low = lower;
        float high = upper;
        boolean full = ox + LANES <= outWidth;
        VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
        int rows = inHeight;
        int o = plane * outHeight * outWidth + ox - 4 * outWidth;
        FloatVector a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        for (int r = -2; r < rows + 2; r++, o += outWidth) {
            FloatVector x0 = zero, x1 = zero, x2 = zero, x3 = zero, x4 = zero;
            if (r >= 0 && r < rows) {
                x0 = FloatVector.fromArray(SPECIES, src, at);
                x1 = FloatVector.fromArray(SPECIES, src, at + 1);
                x2 = FloatVector.fromArray(SPECIES, src, at + 2);
                x3 = FloatVector.fromArray(SPECIES, src, at + 3);
                x4 = FloatVector.fromArray(SPECIES, src, at + 4);
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
            if (full) {
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
    }

    /**
     * 3x3, stride 2, padding 1, row by row. Each input row is first split into its two column
     * phases ({@link #splitColumns}): output column ox then reads taps kx = 0, 1, 2 as even[ox],
     * odd[ox], even[ox + 1], unmasked, contiguous loads. Output row oy takes input rows 2oy − 1
     * (taps 0-2, summed in the step before into {@code partial}), 2oy (taps 3-5) and 2oy + 1
     * (taps 6-8, which also start oy + 1's partial sums), so the input is read once, in order, and
     * the split rows stay in L1 (splitting whole planes first, then rolling down columns, ran
     * 3x slower: the split planes left L1). Taps add from the bias in the order 0..8, as in the
     * other kernels; the row above the image is a zero row through the same FMAs.
     * {@code rows} holds the four split rows and the partial sums, {@link #stride2RowsSize} floats.
     */
    private void convolveDirect3x3Stride2(int plane, float[] rows) {
        int length = stride2RowLength();
        int even0 = 0, odd0 = length, even1 = 2 * length, odd1 = 3 * length, partial = 4 * length;
        int w = plane % channels * 9;
        FloatVector w0 = FloatVector.broadcast(SPECIES, weight[w]);
        FloatVector w1 = FloatVector.broadcast(SPECIES, weight[w + 1]);
        FloatVector w2 = FloatVector.broadcast(SPECIES, weight[w + 2]);
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector first = zero.fma(w0, planeBias);
        first = zero.fma(w1, first);
        first = zero.fma(w2, first);
        for (int ox = 0; ox < outWidth; ox += LANES) {
            first.intoArray(rows, partial + ox);
        }
        int planeIn = plane * inHeight * inWidth;
        for (int oy = 0; oy < outHeight; oy++) {
            int at = planeIn + 2 * oy * inWidth;
            splitColumns(at, rows, even0, odd0);
            if (2 * oy + 1 < inHeight) {
                splitColumns(at + inWidth, rows, even1, odd1);
            } else {
                java.util.Arrays.fill(rows, even1, partial, 0f);
            }
            stride2Row(plane, oy, rows, length);
        }
    }

    /** Floats of one split row: the output row, one more column, a vector of slack. */
    private int stride2RowLength() {
        return outWidth + 1 + LANES;
    }

    /** Floats of {@link #convolveDirect3x3Stride2}'s rows: four split rows and the partial sums. */
    private int stride2RowsSize() {
        return 5 * stride2RowLength();
    }

    /**
     * Input row at input[at] into its column phases: rows[even + j] = padded column 2j (input
     * column 2j − 1; zero for j = 0 and past the image), rows[odd + j] = input column 2j. One
     * pair of vectors (32 columns) per step, split with two permutes; the last pair may read
     * past the row (those lanes land past what the kernel reads, but for the even phase's last
     * column of an odd-width row, zeroed after).
     */
    private void splitColumns(int at, float[] rows, int even, int odd) {
        rows[even] = 0f;
        int j = 0;
        for (; 2 * j < inWidth && at + 2 * j + 2 * LANES <= input.length; j += LANES) {
            FloatVector low = FloatVector.fromArray(SPECIES, input, at + 2 * j);
            FloatVector high = FloatVector.fromArray(SPECIES, input, at + 2 * j + LANES);
            Vectors.evenLanes(low, high).intoArray(rows, odd + j);
            Vectors.oddLanes(low, high).intoArray(rows, even + 1 + j);
        }
        for (; 2 * j < inWidth; j++) {
            rows[odd + j] = input[at + 2 * j];
            rows[even + 1 + j] = 2 * j + 1 < inWidth ? input[at + 2 * j + 1] : 0f;
        }
        if (inWidth % 2 == 1) {
            rows[even + outWidth] = 0f;
        }
    }

    /** One output row of {@link #convolveDirect3x3Stride2} from its split rows and partial sums. */
    private void stride2Row(int plane, int oy, float[] rows, int length) {
        float[] out = output;
        float[] res = clampOnly ? residual : null;
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
        float low = lower;
        float high = upper;
        int odd0 = length, even1 = 2 * length, odd1 = 3 * length, partial = 4 * length;
        int o = (plane * outHeight + oy) * outWidth;
        for (int ox = 0; ox < outWidth; ox += LANES, o += LANES) {
            FloatVector a = FloatVector.fromArray(SPECIES, rows, partial + ox);
            a = FloatVector.fromArray(SPECIES, rows, ox).fma(w3, a);
            a = FloatVector.fromArray(SPECIES, rows, odd0 + ox).fma(w4, a);
            a = FloatVector.fromArray(SPECIES, rows, ox + 1).fma(w5, a);
            FloatVector x0 = FloatVector.fromArray(SPECIES, rows, even1 + ox);
            FloatVector x1 = FloatVector.fromArray(SPECIES, rows, odd1 + ox);
            FloatVector x2 = FloatVector.fromArray(SPECIES, rows, even1 + ox + 1);
            FloatVector done = x0.fma(w6, a);
            done = x1.fma(w7, done);
            done = x2.fma(w8, done);
            FloatVector next = x0.fma(w0, planeBias);
            next = x1.fma(w1, next);
            x2.fma(w2, next).intoArray(rows, partial + ox);
            done = done.blend(low, done.compare(VectorOperators.LE, low));
            done = done.blend(high, done.compare(VectorOperators.GE, high));
            // Written out here, not in a helper: a vector passed to a call C2 does not inline is boxed.
            if (ox + LANES <= outWidth) {
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o));
                }
                done.intoArray(out, o);
            } else {
                VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
                if (res != null) {
                    done = done.add(FloatVector.fromArray(SPECIES, res, o, valid));
                }
                done.intoArray(out, o, valid);
            }
        }
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
        finishPlane(plane);
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
