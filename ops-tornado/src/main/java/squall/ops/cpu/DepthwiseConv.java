package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
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
 * ({@link #convolveDirect3x3}, {@link #convolveDirect5x5}, {@link #convolveDirect3x3Stride2}).
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
     * with padding 1 at stride 2: {@link #convolveDirect3x3}, {@link #convolveDirect5x5} or
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
        if (direct) {
            Split.ranges(workers, planes, (from, to) -> {
                float[] taps = new float[5 * LANES + 2];
                for (int plane = from; plane < to; plane++) {
                    if (stride == 2) {
                        convolveDirect3x3Stride2(plane, taps);
                    } else if (kernelH == 3) {
                        convolveDirect3x3(plane);
                    } else {
                        convolveDirect5x5(plane);
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

    private static final VectorMask<Float> NOT_FIRST = Vectors.firstLanes(LANES).andNot(Vectors.firstLanes(1));

    /**
     * 3x3, stride 1, padding 1, straight from the NCHW input (no phase copy): one vector column at
     * a time, rolling down the rows. Each input row is loaded once as three shifted vectors (masked
     * at the image's left and right edges, where padding reads as zero) and feeds the three output
     * rows it touches. Rows above and below the image are zero vectors through the same FMAs, so
     * the taps add from the bias in the order 0..8 exactly as in the padded kernels.
     */
    private void convolveDirect3x3(int plane) {
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
        int planeIn = plane * inHeight * inWidth;
        int planeOut = plane * outHeight * outWidth;
        for (int ox = 0; ox < outWidth; ox += LANES) {
            VectorMask<Float> m0 = Vectors.firstLanes(inWidth - ox + 1);
            if (ox == 0) {
                m0 = m0.and(NOT_FIRST);
            }
            VectorMask<Float> m1 = Vectors.firstLanes(inWidth - ox);
            VectorMask<Float> m2 = Vectors.firstLanes(inWidth - ox - 1);
            boolean full = ox + LANES <= outWidth;
            VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
            FloatVector a = zero.fma(w0, planeBias);
            a = zero.fma(w1, a);
            a = zero.fma(w2, a);
            int at = planeIn + ox;
            FloatVector x0 = FloatVector.fromArray(SPECIES, input, at - 1, m0);
            FloatVector x1 = FloatVector.fromArray(SPECIES, input, at, m1);
            FloatVector x2 = FloatVector.fromArray(SPECIES, input, at + 1, m2);
            a = x0.fma(w3, a);
            a = x1.fma(w4, a);
            a = x2.fma(w5, a);
            FloatVector b = x0.fma(w0, planeBias);
            b = x1.fma(w1, b);
            b = x2.fma(w2, b);
            for (int oy = 0; oy < outHeight; oy++) {
                at += inWidth;
                if (oy + 1 < inHeight) {
                    x0 = FloatVector.fromArray(SPECIES, input, at - 1, m0);
                    x1 = FloatVector.fromArray(SPECIES, input, at, m1);
                    x2 = FloatVector.fromArray(SPECIES, input, at + 1, m2);
                } else {
                    x0 = zero;
                    x1 = zero;
                    x2 = zero;
                }
                FloatVector done = x0.fma(w6, a);
                done = x1.fma(w7, done);
                done = x2.fma(w8, done);
                a = x0.fma(w3, b);
                a = x1.fma(w4, a);
                a = x2.fma(w5, a);
                b = x0.fma(w0, planeBias);
                b = x1.fma(w1, b);
                b = x2.fma(w2, b);
                done = done.max(lower).min(upper);
                int o = planeOut + oy * outWidth + ox;
                // Written out here, not in a helper: a vector passed to a call C2 does not inline is boxed.
                if (full) {
                    if (residual != null && clampOnly) {
                        done = done.add(FloatVector.fromArray(SPECIES, residual, o));
                    }
                    done.intoArray(output, o);
                } else {
                    if (residual != null && clampOnly) {
                        done = done.add(FloatVector.fromArray(SPECIES, residual, o, valid));
                    }
                    done.intoArray(output, o, valid);
                }
            }
        }
    }

    private static final VectorMask<Float> NOT_FIRST_TWO = Vectors.firstLanes(LANES).andNot(Vectors.firstLanes(2));

    /** 5x5, stride 1, padding 2: {@link #directColumn5x5} over each vector column of the plane. */
    private void convolveDirect5x5(int plane) {
        for (int ox = 0; ox < outWidth; ox += LANES) {
            directColumn5x5(plane, ox);
        }
    }

    /**
     * Output columns [ox, ox + LANES) of a 5x5, stride 1, padding 2 plane, straight from the input:
     * each input row is loaded once as five shifted vectors (masked at the image's edges, where
     * padding reads as zero) and feeds the five output rows it touches, whose partial sums roll
     * down in a0..a3. Rows outside the image are zero vectors through the same FMAs, so the taps add
     * from the bias in the order 0..24, as in the other kernels. One method per column, not per
     * plane: per plane, C1 could not compile it (out of registers) and C2 came only after seconds.
     */
    private void directColumn5x5(int plane, int ox) {
        int w = plane % channels * 25;
        FloatVector planeBias = FloatVector.broadcast(SPECIES, bias[plane % channels]);
        FloatVector zero = FloatVector.zero(SPECIES);
        VectorMask<Float> m0 = Vectors.firstLanes(inWidth - ox + 2);
        VectorMask<Float> m1 = Vectors.firstLanes(inWidth - ox + 1);
        if (ox == 0) {
            m0 = m0.and(NOT_FIRST_TWO);
            m1 = m1.and(NOT_FIRST);
        }
        VectorMask<Float> m2 = Vectors.firstLanes(inWidth - ox);
        VectorMask<Float> m3 = Vectors.firstLanes(Math.max(0, inWidth - ox - 1));
        VectorMask<Float> m4 = Vectors.firstLanes(Math.max(0, inWidth - ox - 2));
        boolean full = ox + LANES <= outWidth;
        VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
        int planeIn = plane * inHeight * inWidth;
        int planeOut = plane * outHeight * outWidth;
        FloatVector a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        for (int r = -2; r < inHeight + 2; r++) {
            FloatVector x0 = zero, x1 = zero, x2 = zero, x3 = zero, x4 = zero;
            if (r >= 0 && r < inHeight) {
                int at = planeIn + r * inWidth + ox;
                x0 = FloatVector.fromArray(SPECIES, input, at - 2, m0);
                x1 = FloatVector.fromArray(SPECIES, input, at - 1, m1);
                x2 = FloatVector.fromArray(SPECIES, input, at, m2);
                x3 = FloatVector.fromArray(SPECIES, input, at + 1, m3);
                x4 = FloatVector.fromArray(SPECIES, input, at + 2, m4);
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
            done = done.max(lower).min(upper);
            int o = planeOut + (r - 2) * outWidth + ox;
            if (full) {
                if (residual != null && clampOnly) {
                    done = done.add(FloatVector.fromArray(SPECIES, residual, o));
                }
                done.intoArray(output, o);
            } else {
                if (residual != null && clampOnly) {
                    done = done.add(FloatVector.fromArray(SPECIES, residual, o, valid));
                }
                done.intoArray(output, o, valid);
            }
        }
    }

    /**
     * 3x3, stride 2, padding 1 straight from the input, one vector column at a time down the rows.
     * Output column ox reads input columns 2·ox − 1 + kx; {@link #deinterleave} turns an input row
     * into those three vectors (kx = 0, 1, 2) in {@code taps}. Input row 2·oy + 1 ends output row oy
     * and starts oy + 1, so an output vector costs two input rows and no phase-plane copy. Taps add
     * from the bias in the order 0..8, as in the other kernels.
     */
    private void convolveDirect3x3Stride2(int plane, float[] taps) {
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
        int planeIn = plane * inHeight * inWidth;
        int planeOut = plane * outHeight * outWidth;
        for (int ox = 0; ox < outWidth; ox += LANES) {
            boolean interior = ox > 0 && 2 * ox + 2 * LANES + 1 <= inWidth;
            if (!interior) {
                // The edge row's columns outside the image stay zero for the whole column of outputs.
                java.util.Arrays.fill(taps, 3 * LANES, 5 * LANES + 2, 0f);
            }
            boolean full = ox + LANES <= outWidth;
            VectorMask<Float> valid = Vectors.firstLanes(outWidth - ox);
            // Output row 0 starts with the zero row above the image.
            FloatVector a = zero.fma(w0, planeBias);
            a = zero.fma(w1, a);
            a = zero.fma(w2, a);
            for (int oy = 0; oy < outHeight; oy++) {
                int rowAt = planeIn + 2 * oy * inWidth + 2 * ox - 1;
                if (interior) {
                    deinterleave(input, rowAt, taps);
                } else {
                    deinterleaveEdge(rowAt, 2 * ox, taps);
                }
                a = FloatVector.fromArray(SPECIES, taps, 0).fma(w3, a);
                a = FloatVector.fromArray(SPECIES, taps, LANES).fma(w4, a);
                a = FloatVector.fromArray(SPECIES, taps, 2 * LANES).fma(w5, a);
                if (2 * oy + 1 >= inHeight) {
                    java.util.Arrays.fill(taps, 0f);
                } else if (interior) {
                    deinterleave(input, rowAt + inWidth, taps);
                } else {
                    deinterleaveEdge(rowAt + inWidth, 2 * ox, taps);
                }
                FloatVector x0 = FloatVector.fromArray(SPECIES, taps, 0);
                FloatVector x1 = FloatVector.fromArray(SPECIES, taps, LANES);
                FloatVector x2 = FloatVector.fromArray(SPECIES, taps, 2 * LANES);
                FloatVector done = x0.fma(w6, a);
                done = x1.fma(w7, done);
                done = x2.fma(w8, done);
                a = x0.fma(w0, planeBias);
                a = x1.fma(w1, a);
                a = x2.fma(w2, a);
                done = done.max(lower).min(upper);
                int o = planeOut + oy * outWidth + ox;
                if (full) {
                    if (residual != null && clampOnly) {
                        done = done.add(FloatVector.fromArray(SPECIES, residual, o));
                    }
                    done.intoArray(output, o);
                } else {
                    if (residual != null && clampOnly) {
                        done = done.add(FloatVector.fromArray(SPECIES, residual, o, valid));
                    }
                    done.intoArray(output, o, valid);
                }
            }
        }
    }

    /**
     * taps[0, 3·LANES) = the row's columns at at + kx + 2·j for kx = 0, 1, 2 and lanes j: the even
     * lanes of two vectors from at (kx = 0), their odd lanes (kx = 1), the even lanes of two from
     * at + 2 (kx = 2). A separate small method so that C1 can compile the kernel that calls it (in
     * one method it ran out of registers and left the kernel in slow tier-2 code for good).
     */
    private static void deinterleave(float[] row, int at, float[] taps) {
        FloatVector a1 = FloatVector.fromArray(SPECIES, row, at);
        FloatVector a2 = FloatVector.fromArray(SPECIES, row, at + LANES);
        FloatVector c1 = FloatVector.fromArray(SPECIES, row, at + 2);
        FloatVector c2 = FloatVector.fromArray(SPECIES, row, at + 2 + LANES);
        Vectors.evenLanes(a1, a2).intoArray(taps, 0);
        Vectors.oddLanes(a1, a2).intoArray(taps, LANES);
        Vectors.evenLanes(c1, c2).intoArray(taps, 2 * LANES);
    }

    /**
     * {@link #deinterleave} at the image's left or right edge, where some of the columns [s − 1,
     * s + 2·LANES + 1) lie outside the row: the columns that exist are copied into the row after
     * the taps, whose other columns the caller zeroed once for this vector column (masked loads
     * and blends, or zeroing per row, cost 2-3x an interior column here).
     */
    private void deinterleaveEdge(int at, int s, float[] taps) {
        int edge = 3 * LANES;
        int first = Math.max(0, s - 1);
        int last = Math.min(inWidth, s + 2 * LANES + 1);
        System.arraycopy(input, at - (s - 1) + first, taps, edge + first - (s - 1), last - first);
        deinterleave(taps, edge, taps);
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
