package squall.ops.cpu;

import static squall.ops.cpu.Nchwc.BLOCK;
import static squall.ops.cpu.Nchwc.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A 3x3 depthwise conv, padding 1, stride 1 or 2, in {@link Nchwc} blocks: a vector holds one
 * pixel's BLOCK channels, so every tap is one FMA with no shuffle. At stride 1 a 3x3 window of
 * input vectors rolls along the row (3 loads and 9 FMAs an output); at stride 2 each output loads
 * its nine inputs. Taps outside the image are zero vectors through the same FMAs, so the sums run
 * from the bias in tap order 0..8, as {@link DepthwiseConv}'s do, and give the same bits.
 * Stride 1 has no branch per output: rows outside the image come from a row of zeros and the last
 * column is written out (with a branch per load, C2 recompiled the kernel after uncommon traps in
 * the network and it ran 6x slower there than alone, CPU-KERNELS.md round 19). Alone, on
 * MobileNetV1's layers, 0.94-1.2x as fast as the NCHW kernels at stride 1 on large maps, 2.6-4x on
 * 7x7, 1.9-3.8x at stride 2 (LayoutBench).
 */
public final class NchwcDepthwise implements CpuKernel {
    private final float[] input;
    /** [C / BLOCK][9][BLOCK]. */
    private final float[] weight;
    private final float[] bias;
    private final float[] output;
    private final int stride;
    private final int blocks;
    private final int height;
    private final int width;
    private final int outHeight;
    private final int outWidth;
    private final int activation;
    private final float lower;
    private final float upper;
    /** A row of zero vectors: the rows above and below the image, read without a branch. */
    private final float[] zeros;
    /** Output over input (stride 1): each task keeps the input row above, which its output overwrote. */
    private final boolean inPlace;

    /** Shapes: input [batch, channels, height, width], output [batch, channels, outHeight, outWidth], blocked; weight [channels, 1, 3, 3]. */
    public NchwcDepthwise(float[] input, float[] weight, float[] bias, float[] output, int stride, int batch,
                          int channels, int height, int width, int activation) {
        this.input = input;
        this.weight = Nchwc.toBlocks(weight, 1, channels, 9);
        this.bias = bias;
        this.output = output;
        this.stride = stride;
        this.blocks = batch * channels / BLOCK;
        this.height = height;
        this.width = width;
        this.outHeight = (height - 1) / stride + 1;
        this.outWidth = (width - 1) / stride + 1;
        this.activation = activation;
        boolean clamp = Vectors.isClamp(activation);
        this.lower = clamp ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clamp ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
        this.zeros = new float[(width + 1) * BLOCK];
        this.inPlace = input == output;
        if (inPlace && stride != 1) {
            throw new IllegalArgumentException("a depthwise conv at stride " + stride + " cannot write over its input");
        }
    }

    /** Whether a depthwise conv (groups = channels) with this window runs here. */
    public static boolean supports(int[] window, int channels) {
        return Nchwc.fits(channels) && window[0] == 3 && window[1] == 3 && window[2] == window[3]
                && (window[2] == 1 || window[2] == 2) && window[4] == 1 && window[5] == 1 && window[6] == 1
                && window[7] == 1 && window[8] == 1 && window[9] == 1;
    }

    @Override
    public void run(Workers workers) {
        // Items (block of channels, band of output rows): a map with few blocks still splits. In
        // place, a band would overwrite the row above the next band: one band per block.
        int bands = inPlace ? 1 : Math.max(1, Math.min(outHeight, (16 + blocks - 1) / blocks));
        int after = Vectors.isClamp(activation) ? Activation.NONE : activation;
        int rowSize = width * BLOCK;
        Split.ranges(workers, blocks * bands, (from, to) -> {
            float[] rows = inPlace ? Scratch.floats(2 * rowSize) : null;
            for (int item = from; item < to; item++) {
                int block = item / bands;
                int band = item % bands;
                int first = outHeight * band / bands;
                int last = outHeight * (band + 1) / bands;
                for (int oy = first; oy < last; oy++) {
                    int r1 = (block * height + oy) * rowSize;
                    if (inPlace) {
                        System.arraycopy(input, r1, rows, oy % 2 * rowSize, rowSize);
                        rollingRow(block, oy, oy > 0 ? rows : zeros, oy > 0 ? (oy - 1) % 2 * rowSize : 0);
                    } else if (stride == 1) {
                        rollingRow(block, oy, oy > 0 ? input : zeros, oy > 0 ? r1 - rowSize : 0);
                    } else {
                        stridedRow(block, oy);
                    }
                }
                if (after != Activation.NONE) {
                    int at = (block * outHeight + first) * outWidth * BLOCK;
                    Vectors.finish(after, output, at, at + (last - first) * outWidth * BLOCK, null);
                }
            }
        });
    }

    /**
     * Stride 1, output row oy of one block: {@code DepthwiseConv.directColumn3x3}'s rolling window
     * turned along the row, columns ox − 1 (a), ox (b) and ox + 1 (c) of rows oy − 1 (in {@code
     * above} at r0) .. oy + 1. In place, each output is stored after the loads of its column and the
     * next, so row oy is read before it is overwritten.
     */
    private void rollingRow(int block, int oy, float[] above, int r0) {
        int wt = block % (weight.length / (9 * BLOCK)) * 9 * BLOCK;
        FloatVector t0 = FloatVector.fromArray(SPECIES, weight, wt);
        FloatVector t1 = FloatVector.fromArray(SPECIES, weight, wt + BLOCK);
        FloatVector t2 = FloatVector.fromArray(SPECIES, weight, wt + 2 * BLOCK);
        FloatVector t3 = FloatVector.fromArray(SPECIES, weight, wt + 3 * BLOCK);
        FloatVector t4 = FloatVector.fromArray(SPECIES, weight, wt + 4 * BLOCK);
        FloatVector t5 = FloatVector.fromArray(SPECIES, weight, wt + 5 * BLOCK);
        FloatVector t6 = FloatVector.fromArray(SPECIES, weight, wt + 6 * BLOCK);
        FloatVector t7 = FloatVector.fromArray(SPECIES, weight, wt + 7 * BLOCK);
        FloatVector t8 = FloatVector.fromArray(SPECIES, weight, wt + 8 * BLOCK);
        FloatVector b = FloatVector.fromArray(SPECIES, bias, wt / 9);
        FloatVector z = FloatVector.zero(SPECIES);
        float lo = lower;
        float hi = upper;
        float[] below = oy + 1 < height ? input : zeros;
        int r1 = (block * height + oy) * width * BLOCK;
        int r2 = oy + 1 < height ? r1 + width * BLOCK : 0;
        int at = r1;
        FloatVector a0 = z, a1 = z, a2 = z;
        FloatVector b0 = FloatVector.fromArray(SPECIES, above, r0);
        FloatVector b1 = FloatVector.fromArray(SPECIES, input, r1);
        FloatVector b2 = FloatVector.fromArray(SPECIES, below, r2);
        for (int ox = 0; ox < width - 1; ox++, at += BLOCK) {
            int q = (ox + 1) * BLOCK;
            FloatVector c0 = FloatVector.fromArray(SPECIES, above, r0 + q);
            FloatVector c1 = FloatVector.fromArray(SPECIES, input, r1 + q);
            FloatVector c2 = FloatVector.fromArray(SPECIES, below, r2 + q);
            FloatVector acc = a0.fma(t0, b);
            acc = b0.fma(t1, acc);
            acc = c0.fma(t2, acc);
            acc = a1.fma(t3, acc);
            acc = b1.fma(t4, acc);
            acc = c1.fma(t5, acc);
            acc = a2.fma(t6, acc);
            acc = b2.fma(t7, acc);
            acc = c2.fma(t8, acc);
            acc.max(lo).min(hi).intoArray(output, at);
            a0 = b0;
            a1 = b1;
            a2 = b2;
            b0 = c0;
            b1 = c1;
            b2 = c2;
        }
        // The last column: column ox + 1 is past the image.
        FloatVector acc = a0.fma(t0, b);
        acc = b0.fma(t1, acc);
        acc = z.fma(t2, acc);
        acc = a1.fma(t3, acc);
        acc = b1.fma(t4, acc);
        acc = z.fma(t5, acc);
        acc = a2.fma(t6, acc);
        acc = b2.fma(t7, acc);
        acc = z.fma(t8, acc);
        acc.max(lo).min(hi).intoArray(output, at);
    }

    /** Stride 2, output row oy of one block: nine loads an output vector, none of them shuffled. */
    private void stridedRow(int block, int oy) {
        int wt = block % (weight.length / (9 * BLOCK)) * 9 * BLOCK;
        FloatVector t0 = FloatVector.fromArray(SPECIES, weight, wt);
        FloatVector t1 = FloatVector.fromArray(SPECIES, weight, wt + BLOCK);
        FloatVector t2 = FloatVector.fromArray(SPECIES, weight, wt + 2 * BLOCK);
        FloatVector t3 = FloatVector.fromArray(SPECIES, weight, wt + 3 * BLOCK);
        FloatVector t4 = FloatVector.fromArray(SPECIES, weight, wt + 4 * BLOCK);
        FloatVector t5 = FloatVector.fromArray(SPECIES, weight, wt + 5 * BLOCK);
        FloatVector t6 = FloatVector.fromArray(SPECIES, weight, wt + 6 * BLOCK);
        FloatVector t7 = FloatVector.fromArray(SPECIES, weight, wt + 7 * BLOCK);
        FloatVector t8 = FloatVector.fromArray(SPECIES, weight, wt + 8 * BLOCK);
        FloatVector b = FloatVector.fromArray(SPECIES, bias, wt / 9);
        FloatVector z = FloatVector.zero(SPECIES);
        float lo = lower;
        float hi = upper;
        // Input rows 2oy − 1 .. 2oy + 1 (r0 above the image at oy = 0), columns 2ox − 1 .. 2ox + 1.
        boolean up = oy > 0;
        boolean down = 2 * oy + 1 < height;
        int r1 = (block * height + 2 * oy) * width * BLOCK;
        int r0 = r1 - width * BLOCK;
        int r2 = r1 + width * BLOCK;
        int at = (block * outHeight + oy) * outWidth * BLOCK;
        for (int ox = 0; ox < outWidth; ox++, at += BLOCK) {
            int q = 2 * ox * BLOCK;
            boolean left = ox > 0;
            boolean right = 2 * ox + 1 < width;
            FloatVector acc = (up && left ? FloatVector.fromArray(SPECIES, input, r0 + q - BLOCK) : z).fma(t0, b);
            acc = (up ? FloatVector.fromArray(SPECIES, input, r0 + q) : z).fma(t1, acc);
            acc = (up && right ? FloatVector.fromArray(SPECIES, input, r0 + q + BLOCK) : z).fma(t2, acc);
            acc = (left ? FloatVector.fromArray(SPECIES, input, r1 + q - BLOCK) : z).fma(t3, acc);
            acc = FloatVector.fromArray(SPECIES, input, r1 + q).fma(t4, acc);
            acc = (right ? FloatVector.fromArray(SPECIES, input, r1 + q + BLOCK) : z).fma(t5, acc);
            acc = (down && left ? FloatVector.fromArray(SPECIES, input, r2 + q - BLOCK) : z).fma(t6, acc);
            acc = (down ? FloatVector.fromArray(SPECIES, input, r2 + q) : z).fma(t7, acc);
            acc = (down && right ? FloatVector.fromArray(SPECIES, input, r2 + q + BLOCK) : z).fma(t8, acc);
            acc.max(lo).min(hi).intoArray(output, at);
        }
    }
}
