package squall.ops.cpu;

import static squall.ops.cpu.Nchwc.BLOCK;
import static squall.ops.cpu.Nchwc.SPECIES;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A dense conv (groups 1, any kernel, stride 1 or 2, no dilation) writing {@link Nchwc} blocks,
 * reading its input in blocks or in planes: EfficientNetV2's Fused-MBConv 3x3 convs, so that they
 * join an island instead of ending it. MLAS's direct NCHWc conv: each image is first copied with
 * its padding as zeros; a tile of 4 output blocks by 6 output pixels then sums C·kH·kW depth
 * steps as {@link NchwcPointwise} sums input channels, each step one offset into the padded copy
 * (a table made once, as in {@link GemmConv}'s indirect GEMM) from each pixel's window: 4 weight
 * vectors, 6 broadcast inputs, 24 FMAs. The input is only ever broadcast, so planes cost no more to
 * read than blocks, and a conv reading planes (channels not a multiple of the block, or a value
 * from outside the island) starts an island with no reorder. On EfficientNetV2-S's dense layers
 * 1.07-1.19x as fast as the NCHW indirect GEMM (LayoutBench, 2 threads; CPU-KERNELS.md round 21).
 */
public final class NchwcConv implements CpuKernel {
    private static final int PIXELS = NchwcPointwise.PIXELS;
    /** Tiles per work item: 48 pixels, activated together while they are in L1. */
    private static final int BAND = 8;

    private final float[] input;
    /** [O / BLOCK][depth = (c, ky, kx)][BLOCK]. */
    private final float[] weight;
    private final float[] bias;
    private final float[] residual;
    private final float[] output;
    private final int batch;
    private final int inChannels;
    private final int inHeight;
    private final int inWidth;
    private final int outBlocks;
    private final int outHeight;
    private final int outWidth;
    private final int strideH;
    private final int strideW;
    private final int padTop;
    private final int padLeft;
    private final int activation;
    /** The clamp done in registers (none, relu, relu6); other activations run after, per output row. */
    private final float lower;
    private final float upper;
    /** Whether the input is in blocks (else in planes). */
    private final boolean blockedInput;
    /** Floats per padded pixel of one channel unit: BLOCK (blocks) or 1 (planes). */
    private final int unit;
    /** Rows and columns of the padded image: every tap of every output inside it. */
    private final int paddedHeight;
    private final int paddedWidth;
    /** Per depth step (c, ky, kx), its input's offset in the padded copy from an output pixel's window. */
    private final int[] steps;

    /**
     * Shapes: input [batch, inChannels, inHeight, inWidth] (blocked or planes), weight
     * [outChannels, inChannels, kH, kW], residual (or null) and output [batch, outChannels,
     * outHeight, outWidth] blocked; window as {@code Window.asArray()}.
     */
    public NchwcConv(float[] input, boolean blockedInput, float[] weight, float[] bias, float[] residual,
                     float[] output, int[] window, int batch, int inChannels, int inHeight, int inWidth,
                     int outChannels, int outHeight, int outWidth, int activation) {
        int kernelH = window[0];
        int kernelW = window[1];
        this.input = input;
        this.blockedInput = blockedInput;
        this.weight = Nchwc.toBlocks(weight, 1, outChannels, inChannels * kernelH * kernelW);
        this.bias = bias;
        this.residual = residual;
        this.output = output;
        this.batch = batch;
        this.inChannels = inChannels;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.outBlocks = outChannels / BLOCK;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
        this.strideH = window[2];
        this.strideW = window[3];
        this.padTop = window[4];
        this.padLeft = window[5];
        this.activation = activation;
        // Infinite (no clamp) for activations other than relu and relu6.
        this.lower = Vectors.lowerBound(activation);
        this.upper = Vectors.upperBound(activation);
        this.unit = blockedInput ? BLOCK : 1;
        this.paddedHeight = (outHeight - 1) * strideH + kernelH;
        this.paddedWidth = (outWidth - 1) * strideW + kernelW;
        this.steps = new int[inChannels * kernelH * kernelW];
        for (int c = 0, d = 0; c < inChannels; c++) {
            // Blocks: [C / BLOCK][Hp][Wp][BLOCK]; planes: [C][Hp][Wp].
            int channel = blockedInput ? c / BLOCK * paddedHeight * paddedWidth * BLOCK + c % BLOCK
                    : c * paddedHeight * paddedWidth;
            for (int ky = 0; ky < kernelH; ky++) {
                for (int kx = 0; kx < kernelW; kx++) {
                    steps[d++] = channel + (ky * paddedWidth + kx) * unit;
                }
            }
        }
    }

    /**
     * Whether a conv with this window (as {@code Window.asArray()}), these channels and output
     * pixels per image can run here: groups 1 is the caller's to check; input channels a multiple
     * of the block only when the input is blocked.
     */
    public static boolean supports(int[] window, int inChannels, int outChannels, int outPixels, boolean blockedInput) {
        return (window[2] == 1 || window[2] == 2) && (window[3] == 1 || window[3] == 2) && window[8] == 1
                && window[9] == 1 && Nchwc.fits(outChannels) && (!blockedInput || Nchwc.fits(inChannels))
                && outPixels >= PIXELS;
    }

    @Override
    public void run(Workers workers) {
        // A conv with no padding whose windows cover the image exactly (an island's 1x1 entry)
        // reads the image itself; others read a padded copy, the calling thread's scratch, shared
        // with the tasks, which take none of their own.
        boolean direct = padTop == 0 && padLeft == 0 && paddedHeight == inHeight && paddedWidth == inWidth;
        float[] padded = direct ? input : Scratch.floats(inChannels * paddedHeight * paddedWidth);
        int units = blockedInput ? inChannels / BLOCK : inChannels;
        int groups = (outBlocks + 3) / 4;
        int tiles = (outHeight * outWidth + PIXELS - 1) / PIXELS;
        int bands = (tiles + BAND - 1) / BAND;
        for (int image = 0; image < batch; image++) {
            int n = image;
            int start = direct ? n * inChannels * inHeight * inWidth : 0;
            if (!direct) {
                Split.ranges(workers, units, (from, to) -> pad(n, from, to, padded));
            }
            // Items (band of tiles, group of 4 output blocks), groups inner: the band's input is
            // read from memory once, and then from L1 or L2.
            Split.ranges(workers, bands * groups, (from, to) -> {
                for (int item = from; item < to; item++) {
                    band(padded, start, n, item / groups, item % groups, tiles);
                }
            });
        }
    }

    /** Channel units [from, to) of image n (blocks or planes) into the padded copy, zeros around. */
    private void pad(int n, int from, int to, float[] padded) {
        int rowFloats = paddedWidth * unit;
        int columns = Math.max(0, Math.min(inWidth, paddedWidth - padLeft));
        for (int u = from; u < to; u++) {
            int source = (n * (blockedInput ? inChannels / BLOCK : inChannels) + u) * inHeight * inWidth * unit;
            for (int py = 0; py < paddedHeight; py++) {
                int at = (u * paddedHeight + py) * rowFloats;
                int iy = py - padTop;
                if (iy < 0 || iy >= inHeight || columns == 0) {
                    Arrays.fill(padded, at, at + rowFloats, 0f);
                    continue;
                }
                Arrays.fill(padded, at, at + padLeft * unit, 0f);
                System.arraycopy(input, source + iy * inWidth * unit, padded, at + padLeft * unit, columns * unit);
                Arrays.fill(padded, at + (padLeft + columns) * unit, at + rowFloats, 0f);
            }
        }
    }

    /**
     * Tiles [BAND·band, BAND·band + BAND) of image n's output pixels (its padded image from
     * {@code padded[start]}), in row-major order, for output blocks 4·group .. 4·group + 3; then
     * their activation and residual. A tile's 6 pixels may span two rows: each has its own offset
     * into the padded image, so only the map's last tile overlaps another (shifting the last tile
     * of each row back wasted 2 of 56 pixels' work a row at 56x56, 2 of 28 at 28x28).
     */
    private void band(float[] padded, int start, int n, int band, int group, int tiles) {
        int first = 4 * group;
        int blocks = Math.min(4, outBlocks - first);
        int pixels = outHeight * outWidth;
        int out = n * outBlocks * pixels * BLOCK;
        int fromTile = band * BAND;
        int toTile = Math.min(fromTile + BAND, tiles);
        for (int t = fromTile; t < toTile; t++) {
            // The map's last tile ends at its last pixel and stores only the pixels past the one before it.
            int p = Math.min(t * PIXELS, pixels - PIXELS);
            int skip = t * PIXELS - p;
            int x0 = start + at(p);
            int x1 = start + at(p + 1);
            int x2 = start + at(p + 2);
            int x3 = start + at(p + 3);
            int x4 = start + at(p + 4);
            int x5 = start + at(p + 5);
            int o = out + p * BLOCK;
            if (blocks == 4) {
                tile(padded, x0, x1, x2, x3, x4, x5, first, o, skip);
            } else {
                int b = first;
                for (; b + 2 <= first + blocks; b += 2) {
                    pairTile(padded, x0, x1, x2, x3, x4, x5, b, o, skip);
                }
                if (b < first + blocks) {
                    narrowTile(padded, x0, x1, x2, x3, x4, x5, b, o, skip);
                }
            }
        }
        int after = Vectors.isClamp(activation) ? Activation.NONE : activation;
        if (after != Activation.NONE || residual != null) {
            int from = fromTile * PIXELS;
            int to = Math.min(toTile * PIXELS, pixels);
            for (int b = first; b < first + blocks; b++) {
                int at = out + (b * pixels + from) * BLOCK;
                Vectors.finish(after, output, at, at + (to - from) * BLOCK, residual);
            }
        }
    }

    /** Where output pixel p's window starts in the padded image. */
    private int at(int p) {
        return (p / outWidth * strideH * paddedWidth + p % outWidth * strideW) * unit;
    }

    /**
     * One output block at the tile's 6 pixels (stored from pixel skip): output channels past a
     * multiple of 4 blocks.
     */
    private void narrowTile(float[] x, int x0, int x1, int x2, int x3, int x4, int x5, int block, int out, int skip) {
        FloatVector b = FloatVector.fromArray(SPECIES, bias, block * BLOCK);
        FloatVector a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b;
        int depth = steps.length;
        int w = block * depth * BLOCK;
        for (int d = 0; d < depth; d++) {
            int i = steps[d];
            FloatVector f = FloatVector.fromArray(SPECIES, weight, w + d * BLOCK);
            a0 = f.fma(FloatVector.broadcast(SPECIES, x[i + x0]), a0);
            a1 = f.fma(FloatVector.broadcast(SPECIES, x[i + x1]), a1);
            a2 = f.fma(FloatVector.broadcast(SPECIES, x[i + x2]), a2);
            a3 = f.fma(FloatVector.broadcast(SPECIES, x[i + x3]), a3);
            a4 = f.fma(FloatVector.broadcast(SPECIES, x[i + x4]), a4);
            a5 = f.fma(FloatVector.broadcast(SPECIES, x[i + x5]), a5);
        }
        int o = out + block * outHeight * outWidth * BLOCK;
        float lo = lower;
        float hi = upper;
        if (skip == 0) {
            a0.max(lo).min(hi).intoArray(output, o);
        }
        if (skip <= 1) {
            a1.max(lo).min(hi).intoArray(output, o + BLOCK);
        }
        if (skip <= 2) {
            a2.max(lo).min(hi).intoArray(output, o + 2 * BLOCK);
        }
        if (skip <= 3) {
            a3.max(lo).min(hi).intoArray(output, o + 3 * BLOCK);
        }
        if (skip <= 4) {
            a4.max(lo).min(hi).intoArray(output, o + 4 * BLOCK);
        }
        a5.max(lo).min(hi).intoArray(output, o + 5 * BLOCK);
    }

    /** Output blocks first and first + 1 at the tile's 6 pixels (stored from pixel skip): 12 accumulators. */
    private void pairTile(float[] x, int x0, int x1, int x2, int x3, int x4, int x5, int first, int out, int skip) {
        FloatVector b0 = FloatVector.fromArray(SPECIES, bias, first * BLOCK);
        FloatVector b1 = FloatVector.fromArray(SPECIES, bias, (first + 1) * BLOCK);
        FloatVector a00 = b0, a01 = b0, a02 = b0, a03 = b0, a04 = b0, a05 = b0;
        FloatVector a10 = b1, a11 = b1, a12 = b1, a13 = b1, a14 = b1, a15 = b1;
        int depth = steps.length;
        int w = first * depth * BLOCK;
        int stride = depth * BLOCK;
        for (int d = 0; d < depth; d++) {
            int i = steps[d];
            FloatVector f0 = FloatVector.fromArray(SPECIES, weight, w + d * BLOCK);
            FloatVector f1 = FloatVector.fromArray(SPECIES, weight, w + d * BLOCK + stride);
            FloatVector v0 = FloatVector.broadcast(SPECIES, x[i + x0]);
            a00 = f0.fma(v0, a00); a10 = f1.fma(v0, a10);
            FloatVector v1 = FloatVector.broadcast(SPECIES, x[i + x1]);
            a01 = f0.fma(v1, a01); a11 = f1.fma(v1, a11);
            FloatVector v2 = FloatVector.broadcast(SPECIES, x[i + x2]);
            a02 = f0.fma(v2, a02); a12 = f1.fma(v2, a12);
            FloatVector v3 = FloatVector.broadcast(SPECIES, x[i + x3]);
            a03 = f0.fma(v3, a03); a13 = f1.fma(v3, a13);
            FloatVector v4 = FloatVector.broadcast(SPECIES, x[i + x4]);
            a04 = f0.fma(v4, a04); a14 = f1.fma(v4, a14);
            FloatVector v5 = FloatVector.broadcast(SPECIES, x[i + x5]);
            a05 = f0.fma(v5, a05); a15 = f1.fma(v5, a15);
        }
        int o = out + first * outHeight * outWidth * BLOCK;
        int os = outHeight * outWidth * BLOCK;
        float lo = lower;
        float hi = upper;
        if (skip <= 0) {
            a00.max(lo).min(hi).intoArray(output, o);
            a10.max(lo).min(hi).intoArray(output, o + os);
        }
        if (skip <= 1) {
            a01.max(lo).min(hi).intoArray(output, o + BLOCK);
            a11.max(lo).min(hi).intoArray(output, o + os + BLOCK);
        }
        if (skip <= 2) {
            a02.max(lo).min(hi).intoArray(output, o + 2 * BLOCK);
            a12.max(lo).min(hi).intoArray(output, o + os + 2 * BLOCK);
        }
        if (skip <= 3) {
            a03.max(lo).min(hi).intoArray(output, o + 3 * BLOCK);
            a13.max(lo).min(hi).intoArray(output, o + os + 3 * BLOCK);
        }
        if (skip <= 4) {
            a04.max(lo).min(hi).intoArray(output, o + 4 * BLOCK);
            a14.max(lo).min(hi).intoArray(output, o + os + 4 * BLOCK);
        }
        a05.max(lo).min(hi).intoArray(output, o + 5 * BLOCK);
        a15.max(lo).min(hi).intoArray(output, o + os + 5 * BLOCK);
    }

    /**
     * Output blocks first .. first + 3 at the tile's 6 pixels, stored from pixel skip: per depth
     * step 4 weight vectors, 6 broadcasts, 24 FMAs.
     */
    private void tile(float[] x, int x0, int x1, int x2, int x3, int x4, int x5, int first, int out, int skip) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a04 = z, a05 = z, a10 = z, a11 = z, a12 = z, a13 = z, a14 = z;
        FloatVector a15 = z, a20 = z, a21 = z, a22 = z, a23 = z, a24 = z, a25 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        FloatVector a34 = z, a35 = z;
        int depth = steps.length;
        int w0 = first * depth * BLOCK;
        int stride = depth * BLOCK;
        for (int d = 0; d < depth; d++) {
            int i = steps[d];
            int f = w0 + d * BLOCK;
            FloatVector f0 = FloatVector.fromArray(SPECIES, weight, f);
            FloatVector f1 = FloatVector.fromArray(SPECIES, weight, f + stride);
            FloatVector f2 = FloatVector.fromArray(SPECIES, weight, f + 2 * stride);
            FloatVector f3 = FloatVector.fromArray(SPECIES, weight, f + 3 * stride);
            FloatVector v0 = FloatVector.broadcast(SPECIES, x[i + x0]);
            a00 = f0.fma(v0, a00); a10 = f1.fma(v0, a10); a20 = f2.fma(v0, a20); a30 = f3.fma(v0, a30);
            FloatVector v1 = FloatVector.broadcast(SPECIES, x[i + x1]);
            a01 = f0.fma(v1, a01); a11 = f1.fma(v1, a11); a21 = f2.fma(v1, a21); a31 = f3.fma(v1, a31);
            FloatVector v2 = FloatVector.broadcast(SPECIES, x[i + x2]);
            a02 = f0.fma(v2, a02); a12 = f1.fma(v2, a12); a22 = f2.fma(v2, a22); a32 = f3.fma(v2, a32);
            FloatVector v3 = FloatVector.broadcast(SPECIES, x[i + x3]);
            a03 = f0.fma(v3, a03); a13 = f1.fma(v3, a13); a23 = f2.fma(v3, a23); a33 = f3.fma(v3, a33);
            FloatVector v4 = FloatVector.broadcast(SPECIES, x[i + x4]);
            a04 = f0.fma(v4, a04); a14 = f1.fma(v4, a14); a24 = f2.fma(v4, a24); a34 = f3.fma(v4, a34);
            FloatVector v5 = FloatVector.broadcast(SPECIES, x[i + x5]);
            a05 = f0.fma(v5, a05); a15 = f1.fma(v5, a15); a25 = f2.fma(v5, a25); a35 = f3.fma(v5, a35);
        }
        // Written out: vectors in an array, or passed to a call C2 does not inline, are boxed.
        int o0 = out + first * outHeight * outWidth * BLOCK;
        int os = outHeight * outWidth * BLOCK;
        FloatVector b0 = FloatVector.fromArray(SPECIES, bias, first * BLOCK);
        FloatVector b1 = FloatVector.fromArray(SPECIES, bias, (first + 1) * BLOCK);
        FloatVector b2 = FloatVector.fromArray(SPECIES, bias, (first + 2) * BLOCK);
        FloatVector b3 = FloatVector.fromArray(SPECIES, bias, (first + 3) * BLOCK);
        float lo = lower;
        float hi = upper;
        if (skip <= 0) {
            a00.add(b0).max(lo).min(hi).intoArray(output, o0);
            a10.add(b1).max(lo).min(hi).intoArray(output, o0 + os);
            a20.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os);
            a30.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os);
        }
        if (skip <= 1) {
            a01.add(b0).max(lo).min(hi).intoArray(output, o0 + BLOCK);
            a11.add(b1).max(lo).min(hi).intoArray(output, o0 + os + BLOCK);
            a21.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os + BLOCK);
            a31.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os + BLOCK);
        }
        if (skip <= 2) {
            a02.add(b0).max(lo).min(hi).intoArray(output, o0 + 2 * BLOCK);
            a12.add(b1).max(lo).min(hi).intoArray(output, o0 + os + 2 * BLOCK);
            a22.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os + 2 * BLOCK);
            a32.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os + 2 * BLOCK);
        }
        if (skip <= 3) {
            a03.add(b0).max(lo).min(hi).intoArray(output, o0 + 3 * BLOCK);
            a13.add(b1).max(lo).min(hi).intoArray(output, o0 + os + 3 * BLOCK);
            a23.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os + 3 * BLOCK);
            a33.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os + 3 * BLOCK);
        }
        if (skip <= 4) {
            a04.add(b0).max(lo).min(hi).intoArray(output, o0 + 4 * BLOCK);
            a14.add(b1).max(lo).min(hi).intoArray(output, o0 + os + 4 * BLOCK);
            a24.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os + 4 * BLOCK);
            a34.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os + 4 * BLOCK);
        }
        a05.add(b0).max(lo).min(hi).intoArray(output, o0 + 5 * BLOCK);
        a15.add(b1).max(lo).min(hi).intoArray(output, o0 + os + 5 * BLOCK);
        a25.add(b2).max(lo).min(hi).intoArray(output, o0 + 2 * os + 5 * BLOCK);
        a35.add(b3).max(lo).min(hi).intoArray(output, o0 + 3 * os + 5 * BLOCK);
    }
}
