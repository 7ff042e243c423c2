package squall.ops.cpu;

import static squall.ops.cpu.Nchwc.BLOCK;
import static squall.ops.cpu.Nchwc.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * The stem (a dense 3x3 stride-2 conv of an RGB image, as {@link StemConv}) writing its output in
 * {@link Nchwc} blocks, so an island that starts after the stem needs no reorder (mobilenet_v1's
 * took 0.09-0.13 ms, CPU-KERNELS.md round 20). For each output row, each input channel's three
 * rows are copied once with their padding as zeros; a tile of 2 output blocks by 6 pixels then
 * sums the 27 taps as {@link NchwcPointwise} sums input channels: per tap 2 weight vectors, 6
 * broadcast inputs (2 columns apart), 12 FMAs. The last tile of a row ends at the row's end and
 * stores only its new pixels.
 */
public final class NchwcStem implements CpuKernel {
    private static final int KERNEL = 3;
    private static final int PIXELS = NchwcPointwise.PIXELS;

    private final float[] input;
    /** [O / BLOCK][tap = (c, ky, kx)][BLOCK]. */
    private final float[] weight;
    private final float[] bias;
    private final float[] output;
    private final int inChannels;
    private final int inHeight;
    private final int inWidth;
    private final int blocks;
    private final int outHeight;
    private final int outWidth;
    private final int padTop;
    private final int padLeft;
    private final int activation;
    private final float lower;
    private final float upper;
    /** Floats of one padded input row: output column ox's taps are at 2·ox + kx. */
    private final int rowLength;
    private final int items;

    /** Shapes: input [batch, inChannels, inHeight, inWidth] in planes, weight [outChannels, inChannels, 3, 3], output blocked. */
    public NchwcStem(float[] input, float[] weight, float[] bias, float[] output, int[] window, int batch,
                     int inChannels, int inHeight, int inWidth, int outChannels, int outHeight, int outWidth,
                     int activation) {
        this.input = input;
        this.weight = Nchwc.toBlocks(weight, 1, outChannels, inChannels * KERNEL * KERNEL);
        this.bias = bias;
        this.output = output;
        this.inChannels = inChannels;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.blocks = outChannels / BLOCK;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
        this.padTop = window[4];
        this.padLeft = window[5];
        this.activation = activation;
        // Infinite (no clamp) for activations other than relu and relu6.
        this.lower = Vectors.lowerBound(activation);
        this.upper = Vectors.upperBound(activation);
        this.rowLength = 2 * outWidth + 1;
        this.items = batch * outHeight;
    }

    /** Whether {@link StemConv}'s conv with these output channels and width can write blocks. */
    public static boolean supports(int[] window, int groups, int inChannels, int outChannels, int outWidth) {
        return StemConv.supports(window, groups, inChannels) && Nchwc.fits(outChannels) && outWidth >= PIXELS;
    }

    @Override
    public void run(Workers workers) {
        int after = Vectors.isClamp(activation) ? Activation.NONE : activation;
        Split.ranges(workers, items, (from, to) -> {
            float[] rows = Scratch.floats(inChannels * KERNEL * rowLength);
            for (int item = from; item < to; item++) {
                int n = item / outHeight;
                int oy = item % outHeight;
                padRows(n, oy, rows);
                int tiles = (outWidth + PIXELS - 1) / PIXELS;
                for (int b = 0; b < blocks; b += 2) {
                    // An odd last block pairs with itself and stores once.
                    int second = Math.min(b + 1, blocks - 1);
                    for (int t = 0; t < tiles; t++) {
                        int ox = Math.min(t * PIXELS, outWidth - PIXELS);
                        tile(rows, n, oy, b, second, ox, t * PIXELS - ox);
                    }
                    if (after != Activation.NONE) {
                        for (int block = b; block <= second; block++) {
                            int at = (((n * blocks + block) * outHeight + oy) * outWidth) * BLOCK;
                            Vectors.finish(after, output, at, at + outWidth * BLOCK, null);
                        }
                    }
                }
            }
        });
    }

    /** Input rows 2·oy − padTop + ky of each channel, from column −padLeft, zeros outside the image. */
    private void padRows(int n, int oy, float[] rows) {
        java.util.Arrays.fill(rows, 0, inChannels * KERNEL * rowLength, 0f);
        for (int c = 0; c < inChannels; c++) {
            for (int ky = 0; ky < KERNEL; ky++) {
                int iy = 2 * oy - padTop + ky;
                if (iy >= 0 && iy < inHeight) {
                    int columns = Math.min(inWidth, rowLength - padLeft);
                    System.arraycopy(input, ((n * inChannels + c) * inHeight + iy) * inWidth, rows,
                            (c * KERNEL + ky) * rowLength + padLeft, columns);
                }
            }
        }
    }

    /** Blocks b0 and b1 at output columns ox .. ox + 5 of row oy, stored from ox + skip. */
    private void tile(float[] rows, int n, int oy, int b0, int b1, int ox, int skip) {
        FloatVector bias0 = FloatVector.fromArray(SPECIES, bias, b0 * BLOCK);
        FloatVector bias1 = FloatVector.fromArray(SPECIES, bias, b1 * BLOCK);
        FloatVector a00 = bias0, a01 = bias0, a02 = bias0, a03 = bias0, a04 = bias0, a05 = bias0;
        FloatVector a10 = bias1, a11 = bias1, a12 = bias1, a13 = bias1, a14 = bias1, a15 = bias1;
        int taps = inChannels * KERNEL * KERNEL;
        int w0 = b0 * taps * BLOCK;
        int w1 = b1 * taps * BLOCK;
        for (int c = 0; c < inChannels; c++) {
            for (int ky = 0; ky < KERNEL; ky++) {
                for (int kx = 0; kx < KERNEL; kx++) {
                    int t = ((c * KERNEL + ky) * KERNEL + kx) * BLOCK;
                    int x = (c * KERNEL + ky) * rowLength + 2 * ox + kx;
                    FloatVector f0 = FloatVector.fromArray(SPECIES, weight, w0 + t);
                    FloatVector f1 = FloatVector.fromArray(SPECIES, weight, w1 + t);
                    FloatVector x0 = FloatVector.broadcast(SPECIES, rows[x]);
                    a00 = f0.fma(x0, a00); a10 = f1.fma(x0, a10);
                    FloatVector x1 = FloatVector.broadcast(SPECIES, rows[x + 2]);
                    a01 = f0.fma(x1, a01); a11 = f1.fma(x1, a11);
                    FloatVector x2 = FloatVector.broadcast(SPECIES, rows[x + 4]);
                    a02 = f0.fma(x2, a02); a12 = f1.fma(x2, a12);
                    FloatVector x3 = FloatVector.broadcast(SPECIES, rows[x + 6]);
                    a03 = f0.fma(x3, a03); a13 = f1.fma(x3, a13);
                    FloatVector x4 = FloatVector.broadcast(SPECIES, rows[x + 8]);
                    a04 = f0.fma(x4, a04); a14 = f1.fma(x4, a14);
                    FloatVector x5 = FloatVector.broadcast(SPECIES, rows[x + 10]);
                    a05 = f0.fma(x5, a05); a15 = f1.fma(x5, a15);
                }
            }
        }
        int o0 = (((n * blocks + b0) * outHeight + oy) * outWidth + ox) * BLOCK;
        int o1 = (((n * blocks + b1) * outHeight + oy) * outWidth + ox) * BLOCK;
        float lo = lower;
        float hi = upper;
        boolean pair = b1 != b0;
        // Written out: vectors in an array, or passed to a call C2 does not inline, are boxed.
        if (skip <= 0) {
            a00.max(lo).min(hi).intoArray(output, o0);
            if (pair) {
                a10.max(lo).min(hi).intoArray(output, o1);
            }
        }
        if (skip <= 1) {
            a01.max(lo).min(hi).intoArray(output, o0 + BLOCK);
            if (pair) {
                a11.max(lo).min(hi).intoArray(output, o1 + BLOCK);
            }
        }
        if (skip <= 2) {
            a02.max(lo).min(hi).intoArray(output, o0 + 2 * BLOCK);
            if (pair) {
                a12.max(lo).min(hi).intoArray(output, o1 + 2 * BLOCK);
            }
        }
        if (skip <= 3) {
            a03.max(lo).min(hi).intoArray(output, o0 + 3 * BLOCK);
            if (pair) {
                a13.max(lo).min(hi).intoArray(output, o1 + 3 * BLOCK);
            }
        }
        if (skip <= 4) {
            a04.max(lo).min(hi).intoArray(output, o0 + 4 * BLOCK);
            if (pair) {
                a14.max(lo).min(hi).intoArray(output, o1 + 4 * BLOCK);
            }
        }
        a05.max(lo).min(hi).intoArray(output, o0 + 5 * BLOCK);
        if (pair) {
            a15.max(lo).min(hi).intoArray(output, o1 + 5 * BLOCK);
        }
    }
}
