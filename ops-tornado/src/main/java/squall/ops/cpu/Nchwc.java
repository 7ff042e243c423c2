package squall.ops.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * The blocked layout NCHWc that the JVM backend computes in between the stem and the head where
 * {@code Layouts.blockChannels} finds an island of convs for it: an activation [N, C, H, W] is
 * stored as [N][C / BLOCK][H][W][BLOCK], BLOCK = one vector's lanes (16 floats with AVX-512, 8
 * with AVX2), so a vector holds one pixel's channels and a 1x1 conv or a depthwise conv never
 * shuffles (the layout of ONNX Runtime's MLAS, CPU-KERNELS.md rounds 19-20). Shapes stay NCHW;
 * only the order of the floats changes, so C must be a multiple of BLOCK.
 *
 * <p>As a kernel, one reorder between the layouts ({@code reorder}'s JVM kernel): to blocks with
 * one gather of a pixel's BLOCK channels, back with one gather of a channel's BLOCK pixels.
 */
public final class Nchwc implements CpuKernel {
    static final VectorSpecies<Float> SPECIES = Vectors.SPECIES;
    /** Channels per block: one vector. */
    public static final int BLOCK = Vectors.LANES;
    /** Offsets of BLOCK pixels' same channel in a block: 0, BLOCK, 2·BLOCK, ... */
    private static final int[] PIXEL_OFFSETS = java.util.stream.IntStream.range(0, BLOCK)
            .map(i -> i * BLOCK).toArray();

    private final float[] input;
    private final float[] output;
    private final boolean toBlocks;
    private final int blocks;
    private final int pixels;
    /** Offsets of a pixel's BLOCK channels in a plane-major block: 0, pixels, 2·pixels, ... */
    private final int[] channelOffsets = new int[BLOCK];

    /** Reorders [batch, channels, pixels] to blocks ({@code toBlocks}) or back. */
    public Nchwc(float[] input, float[] output, boolean toBlocks, int batch, int channels, int pixels) {
        if (channels % BLOCK != 0) {
            throw new IllegalArgumentException(channels + " channels are not a multiple of the block, " + BLOCK);
        }
        this.input = input;
        this.output = output;
        this.toBlocks = toBlocks;
        this.blocks = batch * channels / BLOCK;
        this.pixels = pixels;
        for (int i = 0; i < BLOCK; i++) {
            channelOffsets[i] = i * pixels;
        }
    }

    /** Whether a tensor with {@code channels} channels can be stored in blocks. */
    public static boolean fits(int channels) {
        return channels % BLOCK == 0;
    }

    @Override
    public void run(Workers workers) {
        // Items: (block, band of pixels), so a map with one block still splits.
        int bands = Math.max(1, Math.min(pixels / 256, 8));
        Split.ranges(workers, blocks * bands, (from, to) -> {
            for (int item = from; item < to; item++) {
                int base = item / bands * BLOCK * pixels;
                int first = (int) ((long) pixels * (item % bands) / bands);
                int last = (int) ((long) pixels * (item % bands + 1) / bands);
                if (toBlocks) {
                    for (int p = first; p < last; p++) {
                        FloatVector.fromArray(SPECIES, input, base + p, channelOffsets, 0)
                                .intoArray(output, base + p * BLOCK);
                    }
                } else {
                    toPlanes(base, first, last);
                }
            }
        });
    }

    /**
     * Pixels [first, last) of one block back to planes: for each channel one gather of BLOCK pixels
     * (a scatter of each pixel's channels, the mirror of the way in, took 0.17 ms on mobilenet_v1's
     * 1024@7; Zen 4 scatters one element per cycle or two), the last pixels one by one.
     */
    private void toPlanes(int base, int first, int last) {
        int p = first;
        for (; p + BLOCK <= last; p += BLOCK) {
            for (int c = 0; c < BLOCK; c++) {
                FloatVector.fromArray(SPECIES, input, base + p * BLOCK + c, PIXEL_OFFSETS, 0)
                        .intoArray(output, base + c * pixels + p);
            }
        }
        for (; p < last; p++) {
            for (int c = 0; c < BLOCK; c++) {
                output[base + c * pixels + p] = input[base + p * BLOCK + c];
            }
        }
    }

    /**
     * Global average pool of a blocked x [batch, channels, pixels] into out [batch, channels] (the
     * same floats in either layout): one vector sum a block, two accumulators apart.
     */
    public static CpuKernel globalAvgPool(float[] x, float[] out, int batch, int channels, int pixels) {
        float scale = 1f / pixels;
        return workers -> Split.ranges(workers, batch * channels / BLOCK, (from, to) -> {
            for (int block = from; block < to; block++) {
                int at = block * pixels * BLOCK;
                FloatVector s0 = FloatVector.zero(SPECIES);
                FloatVector s1 = s0;
                int p = 0;
                for (; p + 2 <= pixels; p += 2, at += 2 * BLOCK) {
                    s0 = s0.add(FloatVector.fromArray(SPECIES, x, at));
                    s1 = s1.add(FloatVector.fromArray(SPECIES, x, at + BLOCK));
                }
                if (p < pixels) {
                    s0 = s0.add(FloatVector.fromArray(SPECIES, x, at));
                }
                s0.add(s1).mul(scale).intoArray(out, block * BLOCK);
            }
        });
    }

    /** [batch][channels][pixels] in blocks, for tests and weights. */
    public static float[] toBlocks(float[] planes, int batch, int channels, int pixels) {
        float[] blocked = new float[planes.length];
        for (int n = 0; n < batch; n++) {
            int image = n * channels * pixels;
            for (int c = 0; c < channels; c++) {
                for (int p = 0; p < pixels; p++) {
                    blocked[image + (c / BLOCK * pixels + p) * BLOCK + c % BLOCK] = planes[image + c * pixels + p];
                }
            }
        }
        return blocked;
    }

    /** The inverse of {@link #toBlocks}. */
    public static float[] toPlanes(float[] blocked, int batch, int channels, int pixels) {
        float[] planes = new float[blocked.length];
        for (int n = 0; n < batch; n++) {
            int image = n * channels * pixels;
            for (int c = 0; c < channels; c++) {
                for (int p = 0; p < pixels; p++) {
                    planes[image + c * pixels + p] = blocked[image + (c / BLOCK * pixels + p) * BLOCK + c % BLOCK];
                }
            }
        }
        return planes;
    }
}
