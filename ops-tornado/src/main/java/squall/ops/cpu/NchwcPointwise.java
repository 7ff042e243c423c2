package squall.ops.cpu;

import static squall.ops.cpu.Nchwc.BLOCK;
import static squall.ops.cpu.Nchwc.SPECIES;

import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A 1x1 conv (stride 1, no padding, groups 1) in {@link Nchwc} blocks: out = act(W·x + bias) +
 * residual, input, output and residual blocked. MLAS's scheme: a tile of 4 output blocks by 6
 * pixels keeps 24 accumulators; per input channel it loads 4 weight vectors (16 output channels
 * each) and broadcasts 6 input floats, which lie BLOCK apart in the input block, so the input is
 * read in place with no packing. Output blocks past a multiple of 4 take two-block and one-block tiles; the
 * last tile of a map ends at its last pixel, overlapping the one before, and stores only its new
 * pixels. Alone, 1.08-1.26x as fast on one thread as the NCHW
 * GEMM on MobileNetV1's layers (LayoutBench, CPU-KERNELS.md round 19). With an input scale (a
 * squeeze-and-excitation gate, {@code Passes.fuseChannelScales}) each image's input or weights
 * are scaled by its gate first.
 */
public final class NchwcPointwise implements CpuKernel {
    /** Pixels of a tile. */
    static final int PIXELS = 6;
    /** Bytes of weights that stay in L2 (1 MB) beside a tile of the input and output. */
    private static final long WEIGHTS_IN_L2 = 256 * 1024;

    private final float[] input;
    /** [O / BLOCK][C][BLOCK]: per input channel, a vector of BLOCK output channels. */
    private final float[] weight;
    private final float[] bias;
    private final float[] residual;
    private final float[] output;
    private final int batch;
    private final int inChannels;
    private final int outBlocks;
    private final int pixels;
    private final int activation;
    /** The clamp done in registers (none, relu, relu6); other activations run after, on the tile in L1. */
    private final float lower;
    private final float upper;
    /** The squeeze-and-excitation gate [batch, inChannels] that scales x, or null. */
    private final float[] inputScale;
    /** One image's input or weights times its gate (with an input scale). */
    private final float[] scaled;

    /**
     * Shapes: input [batch, inChannels, pixels] and output [batch, outChannels, pixels], blocked;
     * weight [outChannels, inChannels]; inputScale [batch, inChannels] or null.
     */
    public NchwcPointwise(float[] input, float[] weight, float[] bias, float[] residual, float[] output, int batch,
                          int inChannels, int outChannels, int pixels, int activation, float[] inputScale) {
        this.input = input;
        this.weight = Nchwc.toBlocks(weight, 1, outChannels, inChannels);
        this.bias = bias;
        this.residual = residual;
        this.output = output;
        this.batch = batch;
        this.inChannels = inChannels;
        this.outBlocks = outChannels / BLOCK;
        this.pixels = pixels;
        this.activation = activation;
        // Infinite (no clamp) for activations other than relu and relu6.
        this.lower = Vectors.lowerBound(activation);
        this.upper = Vectors.upperBound(activation);
        this.inputScale = inputScale;
        this.scaled = inputScale == null ? null
                : new float[pixels < outChannels ? inChannels * pixels : this.weight.length];
    }

    /** Whether a conv with these channels, on a map of {@code pixels} per image, can run here. */
    public static boolean supports(int inChannels, int outChannels, int pixels) {
        return Nchwc.fits(inChannels) && Nchwc.fits(outChannels) && pixels >= PIXELS;
    }

    @Override
    public void run(Workers workers) {
        if (inputScale == null) {
            run(workers, input, weight, 0, batch, 0);
            return;
        }
        // W·(s ⊙ x) = (W ⊙ s)·x: each image's gate scales its input or the weights, whichever is
        // smaller (efficientnet_v2_s's 1536->256 @7 took 4.1 instead of 3.4 ms scaling 1.5 MB of
        // weights per image, against 0.3 MB of input).
        boolean scaleInput = pixels < outBlocks * BLOCK;
        for (int image = 0; image < batch; image++) {
            int n = image;
            if (scaleInput) {
                Split.ranges(workers, inChannels / BLOCK, (from, to) -> {
                    for (int block = from; block < to; block++) {
                        FloatVector s = FloatVector.fromArray(SPECIES, inputScale, n * inChannels + block * BLOCK);
                        int at = block * pixels * BLOCK;
                        int image0 = n * inChannels * pixels;
                        for (int p = 0; p < pixels; p++, at += BLOCK) {
                            FloatVector.fromArray(SPECIES, input, image0 + at).mul(s).intoArray(scaled, at);
                        }
                    }
                });
                run(workers, scaled, weight, image, image + 1, -image * inChannels * pixels);
                continue;
            }
            Split.ranges(workers, outBlocks, (from, to) -> {
                for (int block = from; block < to; block++) {
                    for (int c = 0; c < inChannels; c++) {
                        int at = (block * inChannels + c) * BLOCK;
                        FloatVector.fromArray(SPECIES, weight, at).mul(inputScale[n * inChannels + c])
                                .intoArray(scaled, at);
                    }
                }
            });
            run(workers, input, scaled, image, image + 1, 0);
        }
    }

    /** Images [firstImage, lastImage) of input {@code x} (image n from n·C·pixels + shift) with weights {@code w}. */
    private void run(Workers workers, float[] x, float[] w, int firstImage, int lastImage, int shift) {
        int tiles = (pixels + PIXELS - 1) / PIXELS;
        int groups = (outBlocks + 3) / 4;
        // Items (image, group of 4 output blocks, tile). With weights that stay in L2, groups inner:
        // each tile of the input is read from memory once, and then from L1 (in mobilenet_v1,
        // 128->128 @56 0.57 -> 0.51 ms, 256->256 @28 0.52 -> 0.49; the others tied). Otherwise
        // tiles inner: on small maps the threads split the groups, and so the weights each reads.
        boolean groupsInner = 4L * outBlocks * BLOCK * inChannels <= WEIGHTS_IN_L2;
        Split.ranges(workers, (lastImage - firstImage) * groups * tiles, (from, to) -> {
            // The pixels of one group finished so far and not yet activated: a run of tiles.
            int pendingOut = -1;
            int pendingGroup = -1;
            int pendingFrom = 0;
            int pendingTo = 0;
            for (int item = from; item < to; item++) {
                int image = firstImage + item / (groups * tiles);
                int group = groupsInner ? item % groups : item / tiles % groups;
                int tile = groupsInner ? item / groups % tiles : item % tiles;
                // The last tile ends at the last pixel and stores only the pixels past the one before it.
                int p = Math.min(tile * PIXELS, pixels - PIXELS);
                int skip = tile * PIXELS - p;
                int in = image * inChannels * pixels + shift;
                int out = image * outBlocks * BLOCK * pixels;
                int first = 4 * group;
                int blocks = Math.min(4, outBlocks - first);
                if (blocks == 4) {
                    tile(x, w, in, out, first, p, skip);
                } else {
                    int b = first;
                    for (; b + 2 <= first + blocks; b += 2) {
                        pairTile(x, w, in, out, b, p, skip);
                    }
                    if (b < first + blocks) {
                        narrowTile(x, w, in, out, b, p, skip);
                    }
                }
                if (out != pendingOut || group != pendingGroup || p + skip != pendingTo) {
                    finish(pendingOut, pendingGroup, pendingFrom, pendingTo);
                    pendingOut = out;
                    pendingGroup = group;
                    pendingFrom = p + skip;
                }
                pendingTo = p + PIXELS;
            }
            finish(pendingOut, pendingGroup, pendingFrom, pendingTo);
        });
    }

    /**
     * The activation after the clamp, and the residual, over pixels [from, to) of a group's blocks,
     * in L1 or L2 still: once per run of a thread's consecutive tiles, not per tile (silu and
     * hardswish are a call each, on 96 floats per block of a tile).
     */
    private void finish(int out, int group, int from, int to) {
        int after = Vectors.isClamp(activation) ? Activation.NONE : activation;
        if (out < 0 || after == Activation.NONE && residual == null) {
            return;
        }
        for (int b = 4 * group; b < Math.min(4 * group + 4, outBlocks); b++) {
            int at = out + (b * pixels + from) * BLOCK;
            Vectors.finish(after, output, at, at + (to - from) * BLOCK, residual);
        }
    }

    /** Output blocks first and first + 1 at pixels p .. p + 5 (stored from p + skip): 12 accumulators. */
    private void pairTile(float[] input, float[] weight, int in, int out, int first, int p, int skip) {
        FloatVector b0 = FloatVector.fromArray(SPECIES, bias, first * BLOCK);
        FloatVector b1 = FloatVector.fromArray(SPECIES, bias, (first + 1) * BLOCK);
        FloatVector a00 = b0, a01 = b0, a02 = b0, a03 = b0, a04 = b0, a05 = b0;
        FloatVector a10 = b1, a11 = b1, a12 = b1, a13 = b1, a14 = b1, a15 = b1;
        int w = first * inChannels * BLOCK;
        int stride = inChannels * BLOCK;
        for (int c = 0; c < inChannels; c++) {
            int x = in + (c / BLOCK * pixels + p) * BLOCK + c % BLOCK;
            FloatVector f0 = FloatVector.fromArray(SPECIES, weight, w + c * BLOCK);
            FloatVector f1 = FloatVector.fromArray(SPECIES, weight, w + c * BLOCK + stride);
            FloatVector x0 = FloatVector.broadcast(SPECIES, input[x]);
            a00 = f0.fma(x0, a00); a10 = f1.fma(x0, a10);
            FloatVector x1 = FloatVector.broadcast(SPECIES, input[x + BLOCK]);
            a01 = f0.fma(x1, a01); a11 = f1.fma(x1, a11);
            FloatVector x2 = FloatVector.broadcast(SPECIES, input[x + 2 * BLOCK]);
            a02 = f0.fma(x2, a02); a12 = f1.fma(x2, a12);
            FloatVector x3 = FloatVector.broadcast(SPECIES, input[x + 3 * BLOCK]);
            a03 = f0.fma(x3, a03); a13 = f1.fma(x3, a13);
            FloatVector x4 = FloatVector.broadcast(SPECIES, input[x + 4 * BLOCK]);
            a04 = f0.fma(x4, a04); a14 = f1.fma(x4, a14);
            FloatVector x5 = FloatVector.broadcast(SPECIES, input[x + 5 * BLOCK]);
            a05 = f0.fma(x5, a05); a15 = f1.fma(x5, a15);
        }
        int o = out + (first * pixels + p) * BLOCK;
        int os = pixels * BLOCK;
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

    /** One output block at pixels p .. p + 5 (stored from p + skip): output channels past a multiple of 4 blocks. */
    private void narrowTile(float[] input, float[] weight, int in, int out, int block, int p, int skip) {
        FloatVector b = FloatVector.fromArray(SPECIES, bias, block * BLOCK);
        FloatVector a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b;
        int w = block * inChannels * BLOCK;
        for (int c = 0; c < inChannels; c++) {
            int x = in + (c / BLOCK * pixels + p) * BLOCK + c % BLOCK;
            FloatVector f = FloatVector.fromArray(SPECIES, weight, w + c * BLOCK);
            a0 = f.fma(FloatVector.broadcast(SPECIES, input[x]), a0);
            a1 = f.fma(FloatVector.broadcast(SPECIES, input[x + BLOCK]), a1);
            a2 = f.fma(FloatVector.broadcast(SPECIES, input[x + 2 * BLOCK]), a2);
            a3 = f.fma(FloatVector.broadcast(SPECIES, input[x + 3 * BLOCK]), a3);
            a4 = f.fma(FloatVector.broadcast(SPECIES, input[x + 4 * BLOCK]), a4);
            a5 = f.fma(FloatVector.broadcast(SPECIES, input[x + 5 * BLOCK]), a5);
        }
        int o = out + (block * pixels + p) * BLOCK;
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

    /**
     * Output blocks first .. first + 3 at pixels p .. p + 5, stored from pixel p + skip: per input
     * channel 4 weight vectors, 6 broadcasts, 24 FMAs.
     */
    private void tile(float[] input, float[] weight, int in, int out, int first, int p, int skip) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a04 = z, a05 = z, a10 = z, a11 = z, a12 = z, a13 = z, a14 = z;
        FloatVector a15 = z, a20 = z, a21 = z, a22 = z, a23 = z, a24 = z, a25 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        FloatVector a34 = z, a35 = z;
        int w0 = first * inChannels * BLOCK;
        int stride = inChannels * BLOCK;
        for (int c = 0; c < inChannels; c++) {
            int x = in + (c / BLOCK * pixels + p) * BLOCK + c % BLOCK;
            int f = w0 + c * BLOCK;
            FloatVector f0 = FloatVector.fromArray(SPECIES, weight, f);
            FloatVector f1 = FloatVector.fromArray(SPECIES, weight, f + stride);
            FloatVector f2 = FloatVector.fromArray(SPECIES, weight, f + 2 * stride);
            FloatVector f3 = FloatVector.fromArray(SPECIES, weight, f + 3 * stride);
            FloatVector x0 = FloatVector.broadcast(SPECIES, input[x]);
            a00 = f0.fma(x0, a00); a10 = f1.fma(x0, a10); a20 = f2.fma(x0, a20); a30 = f3.fma(x0, a30);
            FloatVector x1 = FloatVector.broadcast(SPECIES, input[x + BLOCK]);
            a01 = f0.fma(x1, a01); a11 = f1.fma(x1, a11); a21 = f2.fma(x1, a21); a31 = f3.fma(x1, a31);
            FloatVector x2 = FloatVector.broadcast(SPECIES, input[x + 2 * BLOCK]);
            a02 = f0.fma(x2, a02); a12 = f1.fma(x2, a12); a22 = f2.fma(x2, a22); a32 = f3.fma(x2, a32);
            FloatVector x3 = FloatVector.broadcast(SPECIES, input[x + 3 * BLOCK]);
            a03 = f0.fma(x3, a03); a13 = f1.fma(x3, a13); a23 = f2.fma(x3, a23); a33 = f3.fma(x3, a33);
            FloatVector x4 = FloatVector.broadcast(SPECIES, input[x + 4 * BLOCK]);
            a04 = f0.fma(x4, a04); a14 = f1.fma(x4, a14); a24 = f2.fma(x4, a24); a34 = f3.fma(x4, a34);
            FloatVector x5 = FloatVector.broadcast(SPECIES, input[x + 5 * BLOCK]);
            a05 = f0.fma(x5, a05); a15 = f1.fma(x5, a15); a25 = f2.fma(x5, a25); a35 = f3.fma(x5, a35);
        }
        // Written out: vectors in an array, or passed to a call C2 does not inline, are boxed.
        int o0 = out + (first * pixels + p) * BLOCK;
        int os = pixels * BLOCK;
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
