package squall.ops.cpu;

import static squall.ops.cpu.Nchwc.BLOCK;
import static squall.ops.cpu.Nchwc.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A 3x3 or 5x5 depthwise conv, 'same' padding, stride 1 or 2, in {@link Nchwc} blocks: a vector
 * holds one pixel's BLOCK channels, so every tap is one FMA with no shuffle. At stride 1 a 3x3
 * window of input vectors rolls along two rows at once (4 loads and 18 FMAs for two outputs); at
 * stride 2 each output loads its nine inputs; a 5x5 conv reads a padded copy of the plane, four
 * outputs at a time sharing their input vectors. 3x3 taps outside the image are zero vectors
 * through the same FMAs, so the sums run from the bias in tap order 0..8, as {@link
 * DepthwiseConv}'s do, and give the same bits. Stride 1 has no branch per output: rows outside the
 * image come from a row of zeros and the last column is written out (with a branch per load, C2
 * recompiled the kernel after uncommon traps in the network and it ran 6x slower there than alone,
 * CPU-KERNELS.md round 19). On MobileNetV1's layers, 2 threads, against
 * the NCHW kernels: 1.04-1.18x as fast at stride 1, 2.5x on 7x7, 1.6-3.0x at stride 2
 * (LayoutBench, round 20).
 */
public final class NchwcDepthwise implements CpuKernel {
    private final float[] input;
    /** [C / BLOCK][kernel · kernel][BLOCK]. */
    private final float[] weight;
    private final float[] bias;
    private final float[] output;
    /** 3 or 5. */
    private final int kernel;
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
    public NchwcDepthwise(float[] input, float[] weight, float[] bias, float[] output, int kernel, int stride,
                          int batch, int channels, int height, int width, int activation) {
        this.input = input;
        this.kernel = kernel;
        this.weight = Nchwc.toBlocks(weight, 1, channels, kernel * kernel);
        this.bias = bias;
        this.output = output;
        this.stride = stride;
        this.blocks = batch * channels / BLOCK;
        this.height = height;
        this.width = width;
        this.outHeight = (height - 1) / stride + 1;
        this.outWidth = (width - 1) / stride + 1;
        this.activation = activation;
        // Infinite (no clamp) for activations other than relu and relu6.
        this.lower = Vectors.lowerBound(activation);
        this.upper = Vectors.upperBound(activation);
        this.zeros = new float[(width + 1) * BLOCK];
        this.inPlace = input == output;
        if (inPlace && stride != 1) {
            throw new IllegalArgumentException("a depthwise conv at stride " + stride + " cannot write over its input");
        }
    }

    /** Whether a depthwise conv (groups = channels) with this window runs here: 3x3 or 5x5, 'same' padding, stride 1 or 2. */
    public static boolean supports(int[] window, int channels) {
        int k = window[0];
        int pad = k / 2;
        return Nchwc.fits(channels) && (k == 3 || k == 5) && window[1] == k && window[2] == window[3]
                && (window[2] == 1 || window[2] == 2) && window[4] == pad && window[5] == pad && window[6] == pad
                && window[7] == pad && window[8] == 1 && window[9] == 1;
    }

    @Override
    public void run(Workers workers) {
        int after = Vectors.isClamp(activation) ? Activation.NONE : activation;
        if (kernel == 5) {
            Split.ranges(workers, blocks, (from, to) -> {
                // The zero border is written once per task: each plane then overwrites only the interior.
                int size = (height + 4) * paddedWidth() * BLOCK;
                float[] padded = Scratch.floats(size);
                java.util.Arrays.fill(padded, 0, size, 0f);
                float[] four = Scratch.tile(4 * BLOCK);
                for (int block = from; block < to; block++) {
                    plane5x5(block, padded, four);
                    if (after != Activation.NONE) {
                        int at = block * outHeight * outWidth * BLOCK;
                        Vectors.finish(after, output, at, at + outHeight * outWidth * BLOCK, null);
                    }
                }
            });
            return;
        }
        // Items (block of channels, band of output rows): a map with few blocks still splits. In
        // place, a band would overwrite the row above the next band: one band per block.
        int bands = inPlace ? 1 : Math.max(1, Math.min(outHeight, (16 + blocks - 1) / blocks));
        int rowSize = width * BLOCK;
        Split.ranges(workers, blocks * bands, (from, to) -> {
            float[] rows = inPlace ? Scratch.floats(2 * rowSize) : null;
            for (int item = from; item < to; item++) {
                int block = item / bands;
                int band = item % bands;
                int first = outHeight * band / bands;
                int last = outHeight * (band + 1) / bands;
                if (stride == 2) {
                    for (int oy = first; oy < last; oy++) {
                        stridedRow(block, oy);
                    }
                }
                // Stride 1: two rows at a time. In place, the pair's second input row is saved
                // first, for the next pair (or row) to read as the row above.
                for (int oy = first; stride == 1 && oy < last; oy += 2) {
                    int r1 = (block * height + oy) * rowSize;
                    int saved = oy / 2 % 2 * rowSize;
                    float[] above = oy == 0 ? zeros : inPlace ? rows : input;
                    int r0 = oy == 0 ? 0 : inPlace ? rowSize - saved : r1 - rowSize;
                    if (inPlace && oy + 1 < last) {
                        System.arraycopy(input, r1 + rowSize, rows, saved, rowSize);
                    }
                    if (oy + 1 < last) {
                        rollingPair(block, oy, above, r0);
                    } else {
                        rollingRow(block, oy, above, r0);
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
     * Stride 1, output rows oy and oy + 1 of one block: {@link #rollingRow}'s window over input rows
     * oy − 1 (in {@code above} at r0) .. oy + 2, 4 loads and 18 FMAs for 2 outputs. One row at a
     * time (3 loads for 9 FMAs) it ran at 0.72-0.95x the NCHW kernel's speed on mobilenet_v1's
     * stride-1 layers; in pairs 1.04-1.18x (LayoutBench, 2 threads), and in the network 512@14
     * 0.035 -> 0.023 ms.
     */
    private void rollingPair(int block, int oy, float[] above, int r0) {
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
        int rowSize = width * BLOCK;
        float[] below = oy + 2 < height ? input : zeros;
        int r1 = (block * height + oy) * rowSize;
        int r2 = r1 + rowSize;
        int r3 = oy + 2 < height ? r2 + rowSize : 0;
        int at = r1;
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z;
        FloatVector b0 = FloatVector.fromArray(SPECIES, above, r0);
        FloatVector b1 = FloatVector.fromArray(SPECIES, input, r1);
        FloatVector b2 = FloatVector.fromArray(SPECIES, input, r2);
        FloatVector b3 = FloatVector.fromArray(SPECIES, below, r3);
        for (int ox = 0; ox < width - 1; ox++, at += BLOCK) {
            int q = (ox + 1) * BLOCK;
            FloatVector c0 = FloatVector.fromArray(SPECIES, above, r0 + q);
            FloatVector c1 = FloatVector.fromArray(SPECIES, input, r1 + q);
            FloatVector c2 = FloatVector.fromArray(SPECIES, input, r2 + q);
            FloatVector c3 = FloatVector.fromArray(SPECIES, below, r3 + q);
            FloatVector acc = a0.fma(t0, b);
            acc = b0.fma(t1, acc);
            acc = c0.fma(t2, acc);
            acc = a1.fma(t3, acc);
            acc = b1.fma(t4, acc);
            acc = c1.fma(t5, acc);
            acc = a2.fma(t6, acc);
            acc = b2.fma(t7, acc);
            acc = c2.fma(t8, acc);
            FloatVector next = a1.fma(t0, b);
            next = b1.fma(t1, next);
            next = c1.fma(t2, next);
            next = a2.fma(t3, next);
            next = b2.fma(t4, next);
            next = c2.fma(t5, next);
            next = a3.fma(t6, next);
            next = b3.fma(t7, next);
            next = c3.fma(t8, next);
            acc.max(lo).min(hi).intoArray(output, at);
            next.max(lo).min(hi).intoArray(output, at + rowSize);
            a0 = b0;
            a1 = b1;
            a2 = b2;
            a3 = b3;
            b0 = c0;
            b1 = c1;
            b2 = c2;
            b3 = c3;
        }
        // The last column: column ox + 1 is past the image (written out: no branch per output).
        FloatVector acc = a0.fma(t0, b);
        acc = b0.fma(t1, acc);
        acc = z.fma(t2, acc);
        acc = a1.fma(t3, acc);
        acc = b1.fma(t4, acc);
        acc = z.fma(t5, acc);
        acc = a2.fma(t6, acc);
        acc = b2.fma(t7, acc);
        acc = z.fma(t8, acc);
        FloatVector next = a1.fma(t0, b);
        next = b1.fma(t1, next);
        next = z.fma(t2, next);
        next = a2.fma(t3, next);
        next = b2.fma(t4, next);
        next = z.fma(t5, next);
        next = a3.fma(t6, next);
        next = b3.fma(t7, next);
        next = z.fma(t8, next);
        acc.max(lo).min(hi).intoArray(output, at);
        next.max(lo).min(hi).intoArray(output, at + rowSize);
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

    /**
     * 5x5, stride 1 or 2, one block: the plane copied once into {@code padded}, inside two zero rows
     * and columns (so in place reads only the copy; at least {@link #paddedWidth} wide,
     * so that four outputs always fit), then four outputs at a time ({@link #fourStride1},
     * {@link #fourStride2}). A row narrower than four outputs goes through {@code four}, a
     * scratch of four vectors.
     */
    private void plane5x5(int block, float[] padded, float[] four) {
        int paddedWidth = paddedWidth();
        int paddedRow = paddedWidth * BLOCK;
        // The interior only, a vector at a time: the border stays zero from the task's start. With
        // the border written per plane (3 calls a row), 576@7 alone took 0.74-0.85 us a block
        // against 0.70-0.74; in the networks level.
        int from = block * height * width * BLOCK;
        for (int y = 0; y < height; y++) {
            int row = (y + 2) * paddedRow + 2 * BLOCK;
            for (int v = 0; v < width * BLOCK; v += BLOCK) {
                FloatVector.fromArray(SPECIES, input, from + v).intoArray(padded, row + v);
            }
            from += width * BLOCK;
        }
        int wt = block % (weight.length / (25 * BLOCK)) * 25 * BLOCK;
        int at = block * outHeight * outWidth * BLOCK;
        boolean whole = outWidth >= 4;
        float[] out = whole ? output : four;
        for (int oy = 0; oy < outHeight; oy++, at += outWidth * BLOCK) {
            int row = stride * oy * paddedRow;
            // The last four end at the row's end, redoing up to three outputs (the same values).
            for (int ox = 0; ox < outWidth; ox += 4) {
                int x = Math.max(0, Math.min(ox, outWidth - 4));
                int to = whole ? at + x * BLOCK : 0;
                if (stride == 1) {
                    fourStride1(padded, row + x * BLOCK, paddedRow, wt, out, to);
                } else {
                    fourStride2(padded, row + 2 * x * BLOCK, paddedRow, wt, out, to);
                }
                if (!whole) {
                    System.arraycopy(four, 0, output, at, outWidth * BLOCK);
                }
            }
        }
    }

    /** Columns of {@link #plane5x5}'s padded copy: the plane's and 4 of zeros, and at least what four outputs read. */
    private int paddedWidth() {
        return Math.max(width + 4, stride == 1 ? 8 : 11);
    }

    /**
     * Four 5x5 outputs side by side at stride 1 from the padded plane at {@code r}: per window row
     * the 8 input vectors the four share and the 5 weights, 13 loads for 20 FMAs; two outputs with
     * a load per tap (15 loads for 10 FMAs) took 0.184 ms on mobilenet_v3_small's 576@7 at batch
     * 8, four 0.136 (ONNX Runtime 0.103, its hardswish apart); 144@14 0.138 -> 0.119. In-process
     * A/B, medians: mobilenet_v3_small at batch 8 8.03 -> 7.85 ms, at batch 1 1.246 -> 1.202;
     * efficientnet_b0 7.18 -> 6.96 and 54.0 -> 51.2; mobilenet_v3_large 4.08 -> 4.01. Each
     * output sums its even and odd taps in two chains, added at the end, as before.
     */
    private void fourStride1(float[] padded, int r, int rowStep, int wt, float[] out, int at) {
        FloatVector b = FloatVector.fromArray(SPECIES, bias, wt / 25);
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector e0 = b, e1 = b, e2 = b, e3 = b, o0 = z, o1 = z, o2 = z, o3 = z;
        for (int ky = 0; ky < 5; ky++, r += rowStep) {
            int t = wt + ky * 5 * BLOCK;
            FloatVector w0 = FloatVector.fromArray(SPECIES, weight, t);
            FloatVector w1 = FloatVector.fromArray(SPECIES, weight, t + BLOCK);
            FloatVector w2 = FloatVector.fromArray(SPECIES, weight, t + 2 * BLOCK);
            FloatVector w3 = FloatVector.fromArray(SPECIES, weight, t + 3 * BLOCK);
            FloatVector w4 = FloatVector.fromArray(SPECIES, weight, t + 4 * BLOCK);
            FloatVector x0 = FloatVector.fromArray(SPECIES, padded, r);
            FloatVector x1 = FloatVector.fromArray(SPECIES, padded, r + BLOCK);
            FloatVector x2 = FloatVector.fromArray(SPECIES, padded, r + 2 * BLOCK);
            FloatVector x3 = FloatVector.fromArray(SPECIES, padded, r + 3 * BLOCK);
            FloatVector x4 = FloatVector.fromArray(SPECIES, padded, r + 4 * BLOCK);
            FloatVector x5 = FloatVector.fromArray(SPECIES, padded, r + 5 * BLOCK);
            FloatVector x6 = FloatVector.fromArray(SPECIES, padded, r + 6 * BLOCK);
            FloatVector x7 = FloatVector.fromArray(SPECIES, padded, r + 7 * BLOCK);
            e0 = x0.fma(w0, e0);
            e1 = x1.fma(w0, e1);
            e2 = x2.fma(w0, e2);
            e3 = x3.fma(w0, e3);
            o0 = x1.fma(w1, o0);
            o1 = x2.fma(w1, o1);
            o2 = x3.fma(w1, o2);
            o3 = x4.fma(w1, o3);
            e0 = x2.fma(w2, e0);
            e1 = x3.fma(w2, e1);
            e2 = x4.fma(w2, e2);
            e3 = x5.fma(w2, e3);
            o0 = x3.fma(w3, o0);
            o1 = x4.fma(w3, o1);
            o2 = x5.fma(w3, o2);
            o3 = x6.fma(w3, o3);
            e0 = x4.fma(w4, e0);
            e1 = x5.fma(w4, e1);
            e2 = x6.fma(w4, e2);
            e3 = x7.fma(w4, e3);
        }
        store4(e0.add(o0), e1.add(o1), e2.add(o2), e3.add(o3), out, at);
    }

    /**
     * {@link #fourStride1} at stride 2: per window row 11 input vectors and 5 weights for 20 FMAs
     * (mobilenet_v3_small's 288@14 s2 level with the pairs: 0.157 against 0.154 ms).
     */
    private void fourStride2(float[] padded, int r, int rowStep, int wt, float[] out, int at) {
        FloatVector b = FloatVector.fromArray(SPECIES, bias, wt / 25);
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector e0 = b, e1 = b, e2 = b, e3 = b, o0 = z, o1 = z, o2 = z, o3 = z;
        for (int ky = 0; ky < 5; ky++, r += rowStep) {
            int t = wt + ky * 5 * BLOCK;
            FloatVector w0 = FloatVector.fromArray(SPECIES, weight, t);
            FloatVector w1 = FloatVector.fromArray(SPECIES, weight, t + BLOCK);
            FloatVector w2 = FloatVector.fromArray(SPECIES, weight, t + 2 * BLOCK);
            FloatVector w3 = FloatVector.fromArray(SPECIES, weight, t + 3 * BLOCK);
            FloatVector w4 = FloatVector.fromArray(SPECIES, weight, t + 4 * BLOCK);
            FloatVector x0 = FloatVector.fromArray(SPECIES, padded, r);
            FloatVector x1 = FloatVector.fromArray(SPECIES, padded, r + BLOCK);
            FloatVector x2 = FloatVector.fromArray(SPECIES, padded, r + 2 * BLOCK);
            FloatVector x3 = FloatVector.fromArray(SPECIES, padded, r + 3 * BLOCK);
            FloatVector x4 = FloatVector.fromArray(SPECIES, padded, r + 4 * BLOCK);
            FloatVector x5 = FloatVector.fromArray(SPECIES, padded, r + 5 * BLOCK);
            FloatVector x6 = FloatVector.fromArray(SPECIES, padded, r + 6 * BLOCK);
            FloatVector x7 = FloatVector.fromArray(SPECIES, padded, r + 7 * BLOCK);
            FloatVector x8 = FloatVector.fromArray(SPECIES, padded, r + 8 * BLOCK);
            FloatVector x9 = FloatVector.fromArray(SPECIES, padded, r + 9 * BLOCK);
            FloatVector x10 = FloatVector.fromArray(SPECIES, padded, r + 10 * BLOCK);
            e0 = x0.fma(w0, e0);
            e1 = x2.fma(w0, e1);
            e2 = x4.fma(w0, e2);
            e3 = x6.fma(w0, e3);
            o0 = x1.fma(w1, o0);
            o1 = x3.fma(w1, o1);
            o2 = x5.fma(w1, o2);
            o3 = x7.fma(w1, o3);
            e0 = x2.fma(w2, e0);
            e1 = x4.fma(w2, e1);
            e2 = x6.fma(w2, e2);
            e3 = x8.fma(w2, e3);
            o0 = x3.fma(w3, o0);
            o1 = x5.fma(w3, o1);
            o2 = x7.fma(w3, o2);
            o3 = x9.fma(w3, o3);
            e0 = x4.fma(w4, e0);
            e1 = x6.fma(w4, e1);
            e2 = x8.fma(w4, e2);
            e3 = x10.fma(w4, e3);
        }
        store4(e0.add(o0), e1.add(o1), e2.add(o2), e3.add(o3), out, at);
    }

    /** Four output vectors, clamped as a clamp activation needs (other activations follow over the plane). */
    private void store4(FloatVector s0, FloatVector s1, FloatVector s2, FloatVector s3, float[] out, int at) {
        s0.max(lower).min(upper).intoArray(out, at);
        s1.max(lower).min(upper).intoArray(out, at + BLOCK);
        s2.max(lower).min(upper).intoArray(out, at + 2 * BLOCK);
        s3.max(lower).min(upper).intoArray(out, at + 3 * BLOCK);
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
