package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A 1x1 stride-1 conv with few input channels (MobileNetV2's 16->96 expand at 112x112): with K
 * this small the packed GEMM spends as long storing and re-reading its register tile as it does
 * multiplying, so here the accumulators start at the bias, the clamp and residual are applied in
 * registers and each output vector is stored once (other activations and a residual follow
 * over the chunk while it is in L1). A tile is 6 output channels x 4 vectors of
 * pixels; the K input rows of a 64-pixel chunk stay in L1 while every output channel reads them.
 */
public final class ShallowPointwise implements CpuKernel {
    /**
     * Where this beat {@link PackedGemm} (interleaved A/B, 1 thread, min of runs): 1.2-1.8x for up
     * to 48 input channels from 28x28 up, and up to 160 from 56x56 up for few output channels
     * (144->24 @56: 1.75x then); the GEMM wins on 7x7 and 14x14 maps, whose pixel rows do not fill
     * 64-pixel chunks, for deeper K, and, since its strips are aligned, for 64 output channels and
     * more (2 threads: 128->128 @56 0.86 -> 0.60 ms, 64->128 @56 0.40 -> 0.37).
     */
    public static boolean beatsTheGemm(int depth, int rows, int pixels) {
        return pixels >= 28 * 28 && (depth <= 48 || pixels >= 56 * 56 && depth <= 160 && rows < 64);
    }
    private static final int ROWS = 6;
    private static final int CHUNK = 4 * LANES;
    /** Pixels whose epilogue runs together, chunk by chunk: 4 chunks, 16 vectors a row (13 groups on 56x56). */
    private static final int GROUP = 4 * CHUNK;
    /** Groups of about this many pixels when they run row block by row block ({@link #group}). */
    private static final int ROW_OUTER_PIXELS = 1024;

    private final float[] input;
    /** The weights the kernels read: the layer's, or with an input scale, one scaled copy per image. */
    private final float[] weight;
    private final float[] unscaledWeight;
    /** [batch, depth] factors of the input's channels, or null. */
    private final float[] inputScale;
    private final float[] bias;
    private final float[] residual;
    private final float[] output;
    private final int batch;
    private final int depth;
    private final int rows;
    private final int pixels;
    private final int activation;
    private final float lower;
    private final float upper;
    private final boolean clampOnly;
    /**
     * Row block by row block ({@link #group}): shallow inputs, many output rows, maps from 56x56
     * (with fewer rows or on 28x28 maps it measured 5-15% slower than chunk by chunk).
     */
    private final boolean rowOuter;

    /**
     * Shapes: input [batch, depth, pixels], weight [rows, depth], output and residual (may be null)
     * [batch, rows, pixels]; {@code inputScale} [batch, depth] (or null) scales the input's channels
     * first, applied to a per-image copy of the weights (W ⊙ s)·x, made at the start of each run.
     */
    public ShallowPointwise(float[] input, float[] weight, float[] bias, float[] residual, float[] output, int batch,
                            int depth, int rows, int pixels, int activation, float[] inputScale) {
        this.input = input;
        this.weight = inputScale == null ? weight : new float[batch * rows * depth];
        this.unscaledWeight = weight;
        this.inputScale = inputScale;
        this.bias = bias;
        this.residual = residual;
        this.output = output;
        this.batch = batch;
        this.depth = depth;
        this.rows = rows;
        this.pixels = pixels;
        this.activation = activation;
        this.clampOnly = Vectors.isClamp(activation);
        this.rowOuter = depth <= 48 && rows >= 64 && pixels >= 56 * 56;
        this.lower = clampOnly ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clampOnly ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
    }

    @Override
    public void run(Workers workers) {
        if (inputScale != null) {
            scaleWeights();
        }
        int width = groupWidth(workers.count(), batch);
        int groups = (pixels + width - 1) / width;
        Split.ranges(workers, batch * groups, (from, to) -> {
            for (int item = from; item < to; item++) {
                int n = item / groups;
                int first = item % groups * width;
                group(n * depth * pixels + first, n * rows * pixels + first, Math.min(width, pixels - first),
                        inputScale == null ? 0 : n * rows * depth);
            }
        });
    }

    /**
     * Pixels per group: {@link #GROUP}, or for row-block order about {@link #ROW_OUTER_PIXELS} in
     * whole chunks, as many groups per image as make the images' groups a multiple of the threads
     * (3136 pixels: 4 groups of 832; 1024-pixel groups split 56x56 as 3 and a 64-pixel one).
     */
    private int groupWidth(int threads, int images) {
        if (!rowOuter) {
            return GROUP;
        }
        int groups = (pixels + ROW_OUTER_PIXELS - 1) / ROW_OUTER_PIXELS;
        while (images * groups % threads != 0 && groups * CHUNK < pixels) {
            groups++;
        }
        int width = (pixels + groups - 1) / groups;
        return (width + CHUNK - 1) / CHUNK * CHUNK;
    }

    /** weight[n][row][k] = W[row][k]·s[n][k], subnormal products flushed as the SE gate's mul does. */
    private void scaleWeights() {
        for (int n = 0; n < batch; n++) {
            for (int row = 0; row < rows; row++) {
                for (int k = 0; k < depth; k++) {
                    weight[(n * rows + row) * depth + k] = Vectors.flushSubnormal(unscaledWeight[row * depth + k]
                            * inputScale[n * depth + k]);
                }
            }
        }
    }


    /**
     * Every output row for {@code width} pixels ({@link #groupWidth}), then the rest of the
     * epilogue (a non-clamp activation, the residual) per row over the group while it is in L2:
     * per chunk's row (4 vectors) the calls cost as much as silu itself. Most layers go chunk by
     * chunk, every row block over a chunk while its K input rows are in L1. The expand convs on
     * large maps ({@link #rowOuter}) go row block by row block, each over the whole group: the
     * input group is small enough for L1/L2 either way, and the output is then written as 6 runs
     * of 4 KB instead of 96 interleaved runs of 256 bytes, which the L2 streamer can prefetch
     * (each line of a 4.8 MB output is a write miss). In the networks (2 threads, minimum of 3
     * alternating runs): v2's 16->96 @112 0.66 -> 0.42-0.44 ms, b0's (silu) 1.20 -> 0.88, v1's
     * 32->64 @112 0.59 -> 0.53; v2 7.35 -> 7.00 ms.
     */
    private void group(int in, int out, int width, int weightAt) {
        if (!rowOuter) {
            for (int c = 0; c < width; c += CHUNK) {
                chunk(in + c, out + c, Math.min(CHUNK, width - c), weightAt);
            }
        } else {
            rowBlocks(in, out, width, weightAt);
        }
        if (!clampOnly || residual != null) {
            for (int row = 0; row < rows; row++) {
                Vectors.activate(clampOnly ? Activation.NONE : activation, output, out + row * pixels, output,
                        out + row * pixels, width, residual);
            }
        }
    }

    /** Row block by row block, each over the group's whole chunks; then the partial chunk left, if any. */
    private void rowBlocks(int in, int out, int width, int weightAt) {
        int whole = width / CHUNK * CHUNK;
        int row = 0;
        for (; row + ROWS <= rows; row += ROWS) {
            for (int c = 0; c < whole; c += CHUNK) {
                sixRows(row, in + c, output, out + row * pixels + c, weightAt);
            }
        }
        for (; row + 4 <= rows; row += 4) {
            for (int c = 0; c < whole; c += CHUNK) {
                fourRows(row, in + c, output, out + row * pixels + c, weightAt);
            }
        }
        VectorMask<Float> all = Vectors.firstLanes(LANES);
        for (; row < rows; row++) {
            for (int v = 0; v < whole; v += LANES) {
                oneVector(row, in + v, output, out + row * pixels + v, all, weightAt);
            }
        }
        if (whole < width) {
            chunk(in + whole, out + whole, width - whole, weightAt);
        }
    }

    /**
     * Output rows [row, row + count) of image n, count at most 6, over every pixel into {@code band}
     * from {@code at}, rows {@code pixels} apart, with the activation: a band of the expanded
     * tensor for {@link ExpandDepthwise}, which convolves it while it is in L2. No residual or
     * input scale.
     */
    void band(int n, int row, int count, float[] band, int at) {
        int in = n * depth * pixels;
        int whole = pixels / CHUNK * CHUNK;
        VectorMask<Float> all = Vectors.firstLanes(LANES);
        for (int c = 0; c < whole; c += CHUNK) {
            int r = 0;
            if (count == ROWS) {
                sixRows(row, in + c, band, at + c, 0);
                r = ROWS;
            } else if (count >= 4) {
                fourRows(row, in + c, band, at + c, 0);
                r = 4;
            }
            for (; r < count; r++) {
                for (int v = 0; v < CHUNK; v += LANES) {
                    oneVector(row + r, in + c + v, band, at + r * pixels + c + v, all, 0);
                }
            }
        }
        for (int v = whole; v < pixels; v += LANES) {
            for (int r = 0; r < count; r++) {
                oneVector(row + r, in + v, band, at + r * pixels + v, Vectors.firstLanes(pixels - v), 0);
            }
        }
        if (!clampOnly) {
            for (int r = 0; r < count; r++) {
                Vectors.activate(activation, band, at + r * pixels, band, at + r * pixels, pixels, null);
            }
        }
    }

    /** Every output row for {@code width} pixels from input offset in to output offset out, weights from weight[weightAt]. */
    private void chunk(int in, int out, int width, int weightAt) {
        for (int row = 0; row < rows; row++) {
            if (width == CHUNK && row + ROWS <= rows) {
                sixRows(row, in, output, out + row * pixels, weightAt);
                row += ROWS - 1;
            } else if (width == CHUNK && row + 4 <= rows) {
                fourRows(row, in, output, out + row * pixels, weightAt);
                row += 3;
            } else {
                for (int v = 0; v < width; v += LANES) {
                    oneVector(row, in + v, output, out + row * pixels + v, Vectors.firstLanes(width - v), weightAt);
                }
            }
        }
    }

    /**
     * Output rows row..row+5, four full vectors of pixels from input offset in: 24 accumulators,
     * 10 loads a depth step for 24 FMAs (4 rows: 8 for 16). Against 4 rows, 1 thread: 144->24 @56
     * 0.38 -> 0.34 ms, 24->144 @56 0.34 -> 0.33, 32->64 @28 0.046 -> 0.043; the 112x112 layers
     * are bound by memory either way.
     */
    private void sixRows(int row, int in, float[] output, int out, int weightAt) {
        FloatVector c00 = FloatVector.broadcast(SPECIES, bias[row + 0]), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = FloatVector.broadcast(SPECIES, bias[row + 1]), c11 = c10, c12 = c10, c13 = c10;
        FloatVector c20 = FloatVector.broadcast(SPECIES, bias[row + 2]), c21 = c20, c22 = c20, c23 = c20;
        FloatVector c30 = FloatVector.broadcast(SPECIES, bias[row + 3]), c31 = c30, c32 = c30, c33 = c30;
        FloatVector c40 = FloatVector.broadcast(SPECIES, bias[row + 4]), c41 = c40, c42 = c40, c43 = c40;
        FloatVector c50 = FloatVector.broadcast(SPECIES, bias[row + 5]), c51 = c50, c52 = c50, c53 = c50;
        int w = weightAt + row * depth;
        for (int k = 0; k < depth; k++, in += pixels, w++) {
            FloatVector x0 = FloatVector.fromArray(SPECIES, input, in);
            FloatVector x1 = FloatVector.fromArray(SPECIES, input, in + LANES);
            FloatVector x2 = FloatVector.fromArray(SPECIES, input, in + 2 * LANES);
            FloatVector x3 = FloatVector.fromArray(SPECIES, input, in + 3 * LANES);
            FloatVector w0 = FloatVector.broadcast(SPECIES, weight[w]);
            c00 = x0.fma(w0, c00);
            c01 = x1.fma(w0, c01);
            c02 = x2.fma(w0, c02);
            c03 = x3.fma(w0, c03);
            FloatVector w1 = FloatVector.broadcast(SPECIES, weight[w + depth]);
            c10 = x0.fma(w1, c10);
            c11 = x1.fma(w1, c11);
            c12 = x2.fma(w1, c12);
            c13 = x3.fma(w1, c13);
            FloatVector w2 = FloatVector.broadcast(SPECIES, weight[w + 2 * depth]);
            c20 = x0.fma(w2, c20);
            c21 = x1.fma(w2, c21);
            c22 = x2.fma(w2, c22);
            c23 = x3.fma(w2, c23);
            FloatVector w3 = FloatVector.broadcast(SPECIES, weight[w + 3 * depth]);
            c30 = x0.fma(w3, c30);
            c31 = x1.fma(w3, c31);
            c32 = x2.fma(w3, c32);
            c33 = x3.fma(w3, c33);
            FloatVector w4 = FloatVector.broadcast(SPECIES, weight[w + 4 * depth]);
            c40 = x0.fma(w4, c40);
            c41 = x1.fma(w4, c41);
            c42 = x2.fma(w4, c42);
            c43 = x3.fma(w4, c43);
            FloatVector w5 = FloatVector.broadcast(SPECIES, weight[w + 5 * depth]);
            c50 = x0.fma(w5, c50);
            c51 = x1.fma(w5, c51);
            c52 = x2.fma(w5, c52);
            c53 = x3.fma(w5, c53);
        }
        c00.max(lower).min(upper).intoArray(output, out);
        c01.max(lower).min(upper).intoArray(output, out + LANES);
        c02.max(lower).min(upper).intoArray(output, out + 2 * LANES);
        c03.max(lower).min(upper).intoArray(output, out + 3 * LANES);
        c10.max(lower).min(upper).intoArray(output, out + pixels);
        c11.max(lower).min(upper).intoArray(output, out + pixels + LANES);
        c12.max(lower).min(upper).intoArray(output, out + pixels + 2 * LANES);
        c13.max(lower).min(upper).intoArray(output, out + pixels + 3 * LANES);
        c20.max(lower).min(upper).intoArray(output, out + 2 * pixels);
        c21.max(lower).min(upper).intoArray(output, out + 2 * pixels + LANES);
        c22.max(lower).min(upper).intoArray(output, out + 2 * pixels + 2 * LANES);
        c23.max(lower).min(upper).intoArray(output, out + 2 * pixels + 3 * LANES);
        c30.max(lower).min(upper).intoArray(output, out + 3 * pixels);
        c31.max(lower).min(upper).intoArray(output, out + 3 * pixels + LANES);
        c32.max(lower).min(upper).intoArray(output, out + 3 * pixels + 2 * LANES);
        c33.max(lower).min(upper).intoArray(output, out + 3 * pixels + 3 * LANES);
        c40.max(lower).min(upper).intoArray(output, out + 4 * pixels);
        c41.max(lower).min(upper).intoArray(output, out + 4 * pixels + LANES);
        c42.max(lower).min(upper).intoArray(output, out + 4 * pixels + 2 * LANES);
        c43.max(lower).min(upper).intoArray(output, out + 4 * pixels + 3 * LANES);
        c50.max(lower).min(upper).intoArray(output, out + 5 * pixels);
        c51.max(lower).min(upper).intoArray(output, out + 5 * pixels + LANES);
        c52.max(lower).min(upper).intoArray(output, out + 5 * pixels + 2 * LANES);
        c53.max(lower).min(upper).intoArray(output, out + 5 * pixels + 3 * LANES);
    }

    /** Output rows row..row+3 (what is left of the rows in sixes), four full vectors of pixels from input offset in. */
    private void fourRows(int row, int in, float[] output, int out, int weightAt) {
        FloatVector c00 = FloatVector.broadcast(SPECIES, bias[row]), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = FloatVector.broadcast(SPECIES, bias[row + 1]), c11 = c10, c12 = c10, c13 = c10;
        FloatVector c20 = FloatVector.broadcast(SPECIES, bias[row + 2]), c21 = c20, c22 = c20, c23 = c20;
        FloatVector c30 = FloatVector.broadcast(SPECIES, bias[row + 3]), c31 = c30, c32 = c30, c33 = c30;
        int w = weightAt + row * depth;
        for (int k = 0; k < depth; k++, in += pixels, w++) {
            FloatVector x0 = FloatVector.fromArray(SPECIES, input, in);
            FloatVector x1 = FloatVector.fromArray(SPECIES, input, in + LANES);
            FloatVector x2 = FloatVector.fromArray(SPECIES, input, in + 2 * LANES);
            FloatVector x3 = FloatVector.fromArray(SPECIES, input, in + 3 * LANES);
            FloatVector w0 = FloatVector.broadcast(SPECIES, weight[w]);
            c00 = x0.fma(w0, c00);
            c01 = x1.fma(w0, c01);
            c02 = x2.fma(w0, c02);
            c03 = x3.fma(w0, c03);
            FloatVector w1 = FloatVector.broadcast(SPECIES, weight[w + depth]);
            c10 = x0.fma(w1, c10);
            c11 = x1.fma(w1, c11);
            c12 = x2.fma(w1, c12);
            c13 = x3.fma(w1, c13);
            FloatVector w2 = FloatVector.broadcast(SPECIES, weight[w + 2 * depth]);
            c20 = x0.fma(w2, c20);
            c21 = x1.fma(w2, c21);
            c22 = x2.fma(w2, c22);
            c23 = x3.fma(w2, c23);
            FloatVector w3 = FloatVector.broadcast(SPECIES, weight[w + 3 * depth]);
            c30 = x0.fma(w3, c30);
            c31 = x1.fma(w3, c31);
            c32 = x2.fma(w3, c32);
            c33 = x3.fma(w3, c33);
        }
        c00.max(lower).min(upper).intoArray(output, out);
        c01.max(lower).min(upper).intoArray(output, out + LANES);
        c02.max(lower).min(upper).intoArray(output, out + 2 * LANES);
        c03.max(lower).min(upper).intoArray(output, out + 3 * LANES);
        c10.max(lower).min(upper).intoArray(output, out + pixels);
        c11.max(lower).min(upper).intoArray(output, out + pixels + LANES);
        c12.max(lower).min(upper).intoArray(output, out + pixels + 2 * LANES);
        c13.max(lower).min(upper).intoArray(output, out + pixels + 3 * LANES);
        c20.max(lower).min(upper).intoArray(output, out + 2 * pixels);
        c21.max(lower).min(upper).intoArray(output, out + 2 * pixels + LANES);
        c22.max(lower).min(upper).intoArray(output, out + 2 * pixels + 2 * LANES);
        c23.max(lower).min(upper).intoArray(output, out + 2 * pixels + 3 * LANES);
        c30.max(lower).min(upper).intoArray(output, out + 3 * pixels);
        c31.max(lower).min(upper).intoArray(output, out + 3 * pixels + LANES);
        c32.max(lower).min(upper).intoArray(output, out + 3 * pixels + 2 * LANES);
        c33.max(lower).min(upper).intoArray(output, out + 3 * pixels + 3 * LANES);
    }

    /** One output row, the {@code valid} lanes of one vector of pixels: the rows and pixels left over. */
    private void oneVector(int row, int in, float[] output, int out, VectorMask<Float> valid, int weightAt) {
        FloatVector c = FloatVector.broadcast(SPECIES, bias[row]);
        int w = weightAt + row * depth;
        for (int k = 0; k < depth; k++, in += pixels) {
            c = FloatVector.fromArray(SPECIES, input, in, valid).fma(FloatVector.broadcast(SPECIES, weight[w + k]), c);
        }
        c.max(lower).min(upper).intoArray(output, out, valid);
    }
}
