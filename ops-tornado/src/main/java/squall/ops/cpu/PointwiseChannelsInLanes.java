package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Activation;
import squall.ops.Split;

/**
 * A 1x1 stride-1 conv on small maps (7x7) with output channels in the vector lanes: out^T = x^T ·
 * W^T, a tile of 32 output channels (two vectors) by 7 pixels in 14 registers, each depth step
 * loading two vectors of W^T and broadcasting 7 input pixels. {@link PackedGemm} puts pixels in
 * the lanes, and a 7x7 map's 49 pixels fill 64 lanes (77%); every map of a 224x224 network has a
 * multiple of 7 pixels, so here every lane is used (channel counts are multiples of 32 or nearly).
 * Each tile goes through a small buffer: the activation runs over it (whole vectors), then it is
 * transposed into the NCHW output, the residual added on the way. Same sums in the same order as
 * the GEMM (k ascending from zero, then the bias), so the same bits.
 */
public final class PointwiseChannelsInLanes implements CpuKernel {
    /** Pixels of a tile. */
    static final int PIXELS = 7;
    /** Output channels of a tile: two vectors. */
    static final int CHANNELS = 2 * LANES;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /**
     * Where this beats the packed GEMM. Pixel counts that tile by 7 and fill less than 80% of the
     * GEMM's 32-pixel strips, i.e. 7x7 maps at batch 1 and 2 (1024->1024 @7: 0.79 -> 0.68 ms on 2
     * threads, 1.54 -> 1.38 on 1; mobilenet_v3_large 8.1 -> 7.6 ms). Maps of 7x7 or less at any
     * batch when the weights are at most {@link #BATCHED_WEIGHTS}: at batch 8 the GEMM's strips of
     * 32 pixels pieced from two images ran deep 1x1 convs at 60-75% of its batch-1 speed (Zen 4, 2
     * threads: 1152->192 @7 1.15 -> 0.84 ms, 960->160 0.69 -> 0.58, 320->1280 1.79 -> 1.72;
     * 1024->1024, 4 MB of weights read again for each image here, 4.3 -> 4.5). And, ungated,
     * projections (depth at least 4 times the outputs) of one 14x14 map: 384->64 0.061 -> 0.046 ms,
     * 672->112 0.185 -> 0.160, 960->160 0.33 -> 0.30 (at batch 8 the GEMM stays ahead; expansions
     * like 112->672 lose here, 0.21 -> 0.28). Constant weights only: they are transposed and
     * packed once.
     */
    public static boolean beatsTheGemm(int batch, int pixels, int depth, int rows, boolean weightConstant,
                                       boolean gated) {
        int columns = batch * pixels;
        int strips = (columns + PackedGemm.TILE_COLUMNS - 1) / PackedGemm.TILE_COLUMNS;
        boolean smallMap = pixels <= 49 && (long) depth * rows <= BATCHED_WEIGHTS;
        boolean projection = !gated && columns <= 14 * 14 && depth >= 4 * rows;
        return weightConstant && pixels % PIXELS == 0
                && (columns < 0.8 * strips * PackedGemm.TILE_COLUMNS || smallMap || projection);
    }

    /** Floats of weights up to which a batch of small maps runs here image by image: 2 MB. */
    static final int BATCHED_WEIGHTS = 1 << 19;

    /**
     * W^T in strips of 32 channels: strip s holds [depth][32] (zero past the last channel), off the
     * heap and 64-byte aligned so that no load splits a cache line ({@link Scratch#aligned}).
     */
    private final MemorySegment packed;
    /** The bias, zero-padded to whole strips. */
    private final float[] bias;
    private final float[] input;
    private final float[] residual;
    private final float[] output;
    private final int batch;
    private final int depth;
    private final int rows;
    private final int pixels;
    private final int strips;
    private final int activation;
    /** The input's channels times their squeeze-excite factors, into {@link #input} first; or null. */
    private final CpuKernel scaling;

    /**
     * Shapes: input [batch, depth, pixels], weight [rows, depth], output and residual (may be null)
     * [batch, rows, pixels]. With {@code inputScale} [batch, depth] (else null: then
     * {@code scaledScratch} may be null too), the input's channels are scaled first (a fused
     * squeeze-and-excitation gate), into {@code scaledScratch} [batch, depth, pixels], as the
     * gate's mul would: on 7x7 maps at batch 1 the GEMM took these convs too, with its 77% filled
     * strips (efficientnet_v2_s's 1536->256 @7: 0.194 ms, ONNX Runtime 0.14 with the gate; here
     * efficientnet_b0's 1152->320 @7 0.197 -> 0.142 ms, 1152->192 0.126 -> 0.094).
     */
    public PointwiseChannelsInLanes(float[] input, float[] weight, float[] bias, float[] residual, float[] output,
                                    int batch, int depth, int rows, int pixels, int activation, float[] inputScale,
                                    float[] scaledScratch) {
        if (pixels % PIXELS != 0) {
            throw new IllegalArgumentException(pixels + " pixels do not tile by " + PIXELS);
        }
        this.strips = (rows + CHANNELS - 1) / CHANNELS;
        float[] transposed = PackedGemm.pack(weight, rows, depth, CHANNELS);
        this.packed = Arena.ofAuto().allocate(4L * transposed.length, Scratch.ALIGNMENT);
        MemorySegment.copy(transposed, 0, packed, ValueLayout.JAVA_FLOAT, 0, transposed.length);
        this.bias = java.util.Arrays.copyOf(bias, strips * CHANNELS);
        this.scaling = inputScale == null ? null
                : Elementwise.scalePlanes(inputScale, input, scaledScratch, batch * depth, pixels);
        this.input = inputScale == null ? input : scaledScratch;
        this.residual = residual;
        this.output = output;
        this.batch = batch;
        this.depth = depth;
        this.rows = rows;
        this.pixels = pixels;
        this.activation = activation;
    }

    @Override
    public void run(Workers workers) {
        if (scaling != null) {
            scaling.run(workers);
        }
        int tiles = pixels / PIXELS;
        // Items run strip by strip, so a task reuses a strip of W^T for all the tiles of an image.
        Split.ranges(workers, batch * strips * tiles, (from, to) -> {
            float[] buffer = Scratch.tile(PIXELS * CHANNELS);
            for (int item = from; item < to; item++) {
                int image = item / (strips * tiles);
                int strip = item / tiles % strips;
                int firstPixel = item % tiles * PIXELS;
                tile(strip, image * depth * pixels + firstPixel, buffer);
                if (activation != Activation.NONE) {
                    Vectors.activate(activation, buffer, 0, buffer, 0, PIXELS * CHANNELS, null);
                }
                store(buffer, image, strip, firstPixel);
            }
        });
    }

    /**
     * buffer[p·32 + c] = the strip's channel c at pixel p of the tile (the 7 pixels input[bAt] ..
     * input[bAt + 6] of each input channel, rows {@code pixels} apart) plus its bias.
     */
    private void tile(int strip, int bAt, float[] buffer) {
        float[] b = input;
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00;
        MemorySegment w = packed;
        int stride = pixels;
        long at = 4L * strip * depth * CHANNELS;
        for (int k = 0; k < depth; k++, at += 4 * CHANNELS, bAt += stride) {
            FloatVector w0 = FloatVector.fromMemorySegment(SPECIES, w, at, NATIVE);
            FloatVector w1 = FloatVector.fromMemorySegment(SPECIES, w, at + 4 * LANES, NATIVE);
            FloatVector x = FloatVector.broadcast(SPECIES, b[bAt]);
            c00 = w0.fma(x, c00);
            c01 = w1.fma(x, c01);
            x = FloatVector.broadcast(SPECIES, b[bAt + 1]);
            c10 = w0.fma(x, c10);
            c11 = w1.fma(x, c11);
            x = FloatVector.broadcast(SPECIES, b[bAt + 2]);
            c20 = w0.fma(x, c20);
            c21 = w1.fma(x, c21);
            x = FloatVector.broadcast(SPECIES, b[bAt + 3]);
            c30 = w0.fma(x, c30);
            c31 = w1.fma(x, c31);
            x = FloatVector.broadcast(SPECIES, b[bAt + 4]);
            c40 = w0.fma(x, c40);
            c41 = w1.fma(x, c41);
            x = FloatVector.broadcast(SPECIES, b[bAt + 5]);
            c50 = w0.fma(x, c50);
            c51 = w1.fma(x, c51);
            x = FloatVector.broadcast(SPECIES, b[bAt + 6]);
            c60 = w0.fma(x, c60);
            c61 = w1.fma(x, c61);
        }
        FloatVector bias0 = FloatVector.fromArray(SPECIES, bias, strip * CHANNELS);
        FloatVector bias1 = FloatVector.fromArray(SPECIES, bias, strip * CHANNELS + LANES);
        c00.add(bias0).intoArray(buffer, 0);
        c01.add(bias1).intoArray(buffer, LANES);
        c10.add(bias0).intoArray(buffer, CHANNELS);
        c11.add(bias1).intoArray(buffer, CHANNELS + LANES);
        c20.add(bias0).intoArray(buffer, 2 * CHANNELS);
        c21.add(bias1).intoArray(buffer, 2 * CHANNELS + LANES);
        c30.add(bias0).intoArray(buffer, 3 * CHANNELS);
        c31.add(bias1).intoArray(buffer, 3 * CHANNELS + LANES);
        c40.add(bias0).intoArray(buffer, 4 * CHANNELS);
        c41.add(bias1).intoArray(buffer, 4 * CHANNELS + LANES);
        c50.add(bias0).intoArray(buffer, 5 * CHANNELS);
        c51.add(bias1).intoArray(buffer, 5 * CHANNELS + LANES);
        c60.add(bias0).intoArray(buffer, 6 * CHANNELS);
        c61.add(bias1).intoArray(buffer, 6 * CHANNELS + LANES);
    }

    /** The buffer's real channels into the NCHW output, transposed, plus the residual. */
    private void store(float[] buffer, int image, int strip, int firstPixel) {
        int firstChannel = strip * CHANNELS;
        int channels = Math.min(CHANNELS, rows - firstChannel);
        for (int c = 0; c < channels; c++) {
            int o = (image * rows + firstChannel + c) * pixels + firstPixel;
            for (int p = 0; p < PIXELS; p++) {
                float value = buffer[p * CHANNELS + c];
                output[o + p] = residual == null ? value : value + residual[o + p];
            }
        }
    }
}
