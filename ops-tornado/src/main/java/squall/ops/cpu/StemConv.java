package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * The stem of every MobileNet and EfficientNet: a dense 3x3 stride-2 convolution of an RGB image,
 * computed directly instead of through an im2col matrix. For each output row the 3 input rows of
 * each channel are split once into their even and odd columns (with the left padding in front),
 * so that every tap of a stride-2 window is a plain vector load at the output column; a tile of 8
 * output channels x 2 vectors of pixels then sums its 27 taps in 16 registers, and is stored
 * once with its bias and clamp, from the registers. The im2col route wrote and re-read a 27-row
 * matrix the size of 9 input images (1.35 MB at 224x224), and in a network ran 0.48-0.54 ms (2
 * threads) on mobilenet_v1's 3->32 stem.
 */
public final class StemConv implements CpuKernel {
    /** Output channels of a tile. */
    private static final int CHANNELS = 8;
    private static final int KERNEL = 3;

    private final float[] input;
    /** Weights by tile: [channel group][tap = (c, ky, kx)][8 channels], zero past the last channel. */
    private final float[] packed;
    /** The weights to pack again before every run, or null when they are constant (packed once). */
    private final float[] changingWeight;
    private final float[] bias;
    private final float[] output;
    private final int batch;
    private final int inChannels;
    private final int inHeight;
    private final int inWidth;
    private final int outChannels;
    private final int outHeight;
    private final int outWidth;
    private final int padTop;
    private final int padLeft;
    private final int activation;
    private final float lower;
    private final float upper;
    private final boolean clampOnly;
    /** Floats of one phase row: the output width in whole vectors, one more vector, and one float of shift. */
    private final int rowLength;
    /** Where tap (c, ky, kx) starts in the per-row scratch, relative to the output column. */
    private final int[] tapAt;

    /** A 3x3 stride-2 ungrouped conv of at most 4 channels, padding 0 or 1 at top and left, no dilation. */
    public static boolean supports(int[] window, int groups, int inChannels) {
        return groups == 1 && inChannels <= 4 && window[0] == KERNEL && window[1] == KERNEL && window[2] == 2
                && window[3] == 2 && window[4] <= 1 && window[5] <= 1 && window[8] == 1 && window[9] == 1;
    }

    /** Shapes: input [batch, inChannels, inHeight, inWidth], weight [outChannels, inChannels, 3, 3], output NCHW. */
    public StemConv(float[] input, float[] weight, boolean weightConstant, float[] bias, float[] output, int[] window,
                    int batch, int inChannels, int inHeight, int inWidth, int outChannels, int outHeight,
                    int outWidth, int activation) {
        this.input = input;
        this.bias = bias;
        this.output = output;
        this.batch = batch;
        this.inChannels = inChannels;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.outChannels = outChannels;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
        this.padTop = window[4];
        this.padLeft = window[5];
        this.activation = activation;
        this.clampOnly = Vectors.isClamp(activation);
        this.lower = clampOnly ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clampOnly ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
        int taps = inChannels * KERNEL * KERNEL;
        int groups = (outChannels + CHANNELS - 1) / CHANNELS;
        this.packed = new float[groups * taps * CHANNELS];
        this.changingWeight = weightConstant ? null : weight;
        pack(weight);
        this.rowLength = ((outWidth + LANES - 1) / LANES + 1) * LANES + 1;
        this.tapAt = new int[taps];
        for (int c = 0; c < inChannels; c++) {
            for (int ky = 0; ky < KERNEL; ky++) {
                for (int kx = 0; kx < KERNEL; kx++) {
                    // Input column 2·ox - padLeft + kx is column 2·ox + q of the row with one zero in front.
                    int q = kx - padLeft + 1;
                    tapAt[(c * KERNEL + ky) * KERNEL + kx] = ((c * KERNEL + ky) * 2 + q % 2) * rowLength + q / 2;
                }
            }
        }
    }

    private void pack(float[] weight) {
        int taps = inChannels * KERNEL * KERNEL;
        for (int o = 0; o < outChannels; o++) {
            for (int t = 0; t < taps; t++) {
                packed[(o / CHANNELS * taps + t) * CHANNELS + o % CHANNELS] = weight[o * taps + t];
            }
        }
    }

    @Override
    public void run(Workers workers) {
        if (changingWeight != null) {
            pack(changingWeight);
        }
        Split.ranges(workers, batch * outHeight, (from, to) -> {
            float[] phases = Scratch.floats(inChannels * KERNEL * 2 * rowLength);
            float[] tile = Scratch.tile(CHANNELS * 2 * LANES);
            int unfinished = from;
            for (int item = from; item < to; item++) {
                row(item / outHeight, item % outHeight, phases, tile);
                // An activation other than a clamp over a few rows of each channel at once: row by
                // row, a 112-wide row's last half step went through Vectors' padded tail.
                boolean last = item + 1 == to || (item + 1) % outHeight == 0;
                if (!clampOnly && (last || (item + 1 - unfinished) * outWidth >= FINISH_RUN)) {
                    finishRows(item / outHeight, unfinished % outHeight, item % outHeight + 1);
                    unfinished = item + 1;
                }
            }
        });
    }

    /** Outputs per channel that {@link #run} activates at once: two 112-wide rows, in L1 still. */
    private static final int FINISH_RUN = 224;

    /** The activation (not a clamp) over rows [fromRow, toRow) of image n, every channel. */
    private void finishRows(int n, int fromRow, int toRow) {
        for (int o = 0; o < outChannels; o++) {
            int at = ((n * outChannels + o) * outHeight + fromRow) * outWidth;
            Vectors.activate(activation, output, at, output, at, (toRow - fromRow) * outWidth, null);
        }
    }

    /** Output row oy of image n, every channel (before an activation other than a clamp). */
    private void row(int n, int oy, float[] phases, float[] tile) {
        splitRows(n, oy, phases);
        int taps = inChannels * KERNEL * KERNEL;
        for (int group = 0; group * CHANNELS < outChannels; group++) {
            for (int ox = 0; ox < outWidth; ox += 2 * LANES) {
                if (tile(phases, group, taps, ox, tile, n, oy)) {
                    store(tile, group, n, oy, ox);
                }
            }
        }
    }

    /**
     * For each channel and tap row ky, input row 2·oy - padTop + ky (zeros outside the image) with
     * a zero in front, split into its even columns (phase 0) and odd columns (phase 1).
     */
    private void splitRows(int n, int oy, float[] phases) {
        for (int c = 0; c < inChannels; c++) {
            for (int ky = 0; ky < KERNEL; ky++) {
                int even = (c * KERNEL + ky) * 2 * rowLength;
                int odd = even + rowLength;
                java.util.Arrays.fill(phases, even, even + 2 * rowLength, 0f);
                int iy = 2 * oy - padTop + ky;
                if (iy < 0 || iy >= inHeight) {
                    continue;
                }
                int rowStart = ((n * inChannels + c) * inHeight + iy) * inWidth;
                // With a zero in front, even columns are the input's odd ones shifted by one, odd ones its even ones.
                Vectors.copyStrided(input, rowStart + 1, 2, phases, even + 1, Math.min(inWidth / 2, rowLength - 1));
                Vectors.copyStrided(input, rowStart, 2, phases, odd, Math.min((inWidth + 1) / 2, rowLength));
            }
        }
    }

    /**
     * 8 output channels x 2 vectors of pixels from column ox: the 27 taps' sums, plus the bias and
     * clamped, stored to the output from the registers when the tile is whole (all 8 channels and
     * 32 columns inside the row; returns false), else into tile[channel][32] for {@link #store}
     * (returns true). Stored through the tile array, every tile took as long again as its 27 taps
     * (mobilenet_v1's stem 0.29-0.32 -> 0.22-0.24 ms on 2 threads, 0.56 -> 0.44 on 1). The 16
     * stores are written out: a vector passed to a helper C2 does not inline is boxed.
     */
    private boolean tile(float[] phases, int group, int taps, int ox, float[] tile, int n, int oy) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        FloatVector c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        float[] w = packed;
        for (int t = 0, at = group * taps * CHANNELS; t < taps; t++, at += CHANNELS) {
            int x = tapAt[t] + ox;
            FloatVector x0 = FloatVector.fromArray(SPECIES, phases, x);
            FloatVector x1 = FloatVector.fromArray(SPECIES, phases, x + LANES);
            FloatVector w0 = FloatVector.broadcast(SPECIES, w[at]);
            c00 = x0.fma(w0, c00);
            c01 = x1.fma(w0, c01);
            FloatVector w1 = FloatVector.broadcast(SPECIES, w[at + 1]);
            c10 = x0.fma(w1, c10);
            c11 = x1.fma(w1, c11);
            FloatVector w2 = FloatVector.broadcast(SPECIES, w[at + 2]);
            c20 = x0.fma(w2, c20);
            c21 = x1.fma(w2, c21);
            FloatVector w3 = FloatVector.broadcast(SPECIES, w[at + 3]);
            c30 = x0.fma(w3, c30);
            c31 = x1.fma(w3, c31);
            FloatVector w4 = FloatVector.broadcast(SPECIES, w[at + 4]);
            c40 = x0.fma(w4, c40);
            c41 = x1.fma(w4, c41);
            FloatVector w5 = FloatVector.broadcast(SPECIES, w[at + 5]);
            c50 = x0.fma(w5, c50);
            c51 = x1.fma(w5, c51);
            FloatVector w6 = FloatVector.broadcast(SPECIES, w[at + 6]);
            c60 = x0.fma(w6, c60);
            c61 = x1.fma(w6, c61);
            FloatVector w7 = FloatVector.broadcast(SPECIES, w[at + 7]);
            c70 = x0.fma(w7, c70);
            c71 = x1.fma(w7, c71);
        }
        int first = group * CHANNELS;
        if (ox + 2 * LANES <= outWidth && first + CHANNELS <= outChannels) {
            // A whole tile: bias, clamp (or nothing before another activation) and store from registers.
            int plane = outHeight * outWidth;
            int at = ((n * outChannels + first) * outHeight + oy) * outWidth + ox;
            FloatVector b0 = FloatVector.broadcast(SPECIES, bias[first + 0]);
            c00.add(b0).max(lower).min(upper).intoArray(output, at + 0 * plane);
            c01.add(b0).max(lower).min(upper).intoArray(output, at + 0 * plane + LANES);
            FloatVector b1 = FloatVector.broadcast(SPECIES, bias[first + 1]);
            c10.add(b1).max(lower).min(upper).intoArray(output, at + 1 * plane);
            c11.add(b1).max(lower).min(upper).intoArray(output, at + 1 * plane + LANES);
            FloatVector b2 = FloatVector.broadcast(SPECIES, bias[first + 2]);
            c20.add(b2).max(lower).min(upper).intoArray(output, at + 2 * plane);
            c21.add(b2).max(lower).min(upper).intoArray(output, at + 2 * plane + LANES);
            FloatVector b3 = FloatVector.broadcast(SPECIES, bias[first + 3]);
            c30.add(b3).max(lower).min(upper).intoArray(output, at + 3 * plane);
            c31.add(b3).max(lower).min(upper).intoArray(output, at + 3 * plane + LANES);
            FloatVector b4 = FloatVector.broadcast(SPECIES, bias[first + 4]);
            c40.add(b4).max(lower).min(upper).intoArray(output, at + 4 * plane);
            c41.add(b4).max(lower).min(upper).intoArray(output, at + 4 * plane + LANES);
            FloatVector b5 = FloatVector.broadcast(SPECIES, bias[first + 5]);
            c50.add(b5).max(lower).min(upper).intoArray(output, at + 5 * plane);
            c51.add(b5).max(lower).min(upper).intoArray(output, at + 5 * plane + LANES);
            FloatVector b6 = FloatVector.broadcast(SPECIES, bias[first + 6]);
            c60.add(b6).max(lower).min(upper).intoArray(output, at + 6 * plane);
            c61.add(b6).max(lower).min(upper).intoArray(output, at + 6 * plane + LANES);
            FloatVector b7 = FloatVector.broadcast(SPECIES, bias[first + 7]);
            c70.add(b7).max(lower).min(upper).intoArray(output, at + 7 * plane);
            c71.add(b7).max(lower).min(upper).intoArray(output, at + 7 * plane + LANES);
            return false;
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, LANES);
        c10.intoArray(tile, 2 * LANES);
        c11.intoArray(tile, 3 * LANES);
        c20.intoArray(tile, 4 * LANES);
        c21.intoArray(tile, 5 * LANES);
        c30.intoArray(tile, 6 * LANES);
        c31.intoArray(tile, 7 * LANES);
        c40.intoArray(tile, 8 * LANES);
        c41.intoArray(tile, 9 * LANES);
        c50.intoArray(tile, 10 * LANES);
        c51.intoArray(tile, 11 * LANES);
        c60.intoArray(tile, 12 * LANES);
        c61.intoArray(tile, 13 * LANES);
        c70.intoArray(tile, 14 * LANES);
        c71.intoArray(tile, 15 * LANES);
        return true;
    }

    /**
     * A partial tile's real channels plus their bias, clamped, into output row oy from column ox
     * (the columns inside the row only): the row's last tile when it is not 32 wide, and a last
     * group of fewer than 8 channels.
     */
    private void store(float[] tile, int group, int n, int oy, int ox) {
        int first = group * CHANNELS;
        int count = Math.min(2 * LANES, outWidth - ox);
        for (int c = 0; c < Math.min(CHANNELS, outChannels - first); c++) {
            float channelBias = bias[first + c];
            int at = ((n * outChannels + first + c) * outHeight + oy) * outWidth + ox;
            for (int v = 0; v < count; v += LANES) {
                FloatVector x = FloatVector.fromArray(SPECIES, tile, c * 2 * LANES + v).add(channelBias);
                x = x.max(lower).min(upper);
                if (v + LANES <= count) {
                    x.intoArray(output, at + v);
                } else {
                    x.intoArray(output, at + v, Vectors.firstLanes(count - v));
                }
            }
        }
    }
}
