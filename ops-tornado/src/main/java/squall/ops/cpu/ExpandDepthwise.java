package squall.ops.cpu;

import java.lang.foreign.MemorySegment;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * The expansion and depthwise convs of an inverted residual block (MobileNetV2's, Sandler et al.
 * 2018; EfficientNet's MBConv) in one pass, band of channels by band: a panel of 12 expanded
 * channels is computed by the 1x1 conv's {@link PackedGemm} (or 6 by {@link ShallowPointwise}'s
 * tiles, for shallow inputs) into the thread's scratch and convolved by the {@link DepthwiseConv}
 * at once, while it is still in L2. Run as two layers, the
 * expanded tensor (96 channels of 112x112 in MobileNetV2's second block: 4.8 MB) went out to L3 or
 * memory and came back: efficientnet_b0's depthwise convs on 112x112 and 56x56 maps took 2-4 times
 * as long in the network as alone with their input in L2. Bands of channels, not rows, so that a
 * band needs no halo and the two threads share nothing but the packed input: B (the block's input)
 * is packed once for both, then the panels are dealt out. Each band reads all of B: where B
 * is over L2 and the expansion small (MobileNetV1's 1-2x), that costs more than it saves, and the
 * plan keeps the two layers apart ({@code Passes.fusionPays}).
 */
public final class ExpandDepthwise implements CpuKernel {
    /** The expansion as a packed GEMM, or null where {@link #shallow} computes it. */
    private final PackedGemm expand;
    /**
     * The expansion where its input is shallow ({@link ShallowPointwise#beatsTheGemm}: at most 48
     * channels from 28x28), else null: bands of 6 channels from its register tiles, which start at
     * the bias and store each vector once, with no packing. Against the packed GEMM's bands, this
     * kernel alone (hot, medians): 1 thread 3-9% faster, 2 threads 8-27% (16->72 @56 s2 85 -> 69
     * us, 16->96 @112 s2 596 -> 450); in-process A/B, medians: mobilenet_v3_small at batch 8 9.94
     * -> 9.81 ms, mobilenet_v3_large at batch 1 4.59 -> 4.38, mobilenet_v2 at batch 1 4.18 -> 4.07
     * and at batch 8 30.1 -> 29.5, efficientnet_b0 at batch 1 7.14 -> 7.07.
     */
    private final ShallowPointwise shallow;
    private final DepthwiseConv depthwise;
    private final float[] input;
    private final int batch;
    private final int inChannels;
    private final int channels;
    private final int pixels;

    /**
     * input [batch, inChannels, height, width]; expandWeight [channels, inChannels] with its bias
     * and activation; the depthwise conv ({@link DepthwiseConv#runsDirect}) writes output [batch,
     * channels, outHeight, outWidth] from the expanded [batch, channels, height, width], which is
     * never stored whole, and the means of its planes into {@code pooled} (or null), as
     * {@link DepthwiseConv} does.
     */
    public ExpandDepthwise(float[] input, float[] expandWeight, boolean weightConstant, float[] expandBias,
                           int expandActivation, float[] depthwiseWeight, float[] depthwiseBias, float[] output,
                           float[] pooled, int[] window, int batch, int inChannels, int channels, int height,
                           int width, int outHeight, int outWidth, int depthwiseActivation) {
        if (!DepthwiseConv.runsDirect(window, height, width, outHeight, outWidth)) {
            throw new IllegalArgumentException("the depthwise conv of an ExpandDepthwise must be a 3x3 or 5x5 with "
                    + "'same' padding at stride 1 or 2");
        }
        boolean isShallow = ShallowPointwise.beatsTheGemm(inChannels, channels, height * width);
        this.expand = isShallow ? null : new PackedGemm(expandWeight, weightConstant, expandBias, channels, inChannels,
                expandActivation);
        this.shallow = !isShallow ? null : new ShallowPointwise(input, expandWeight, expandBias, null, null, batch,
                inChannels, channels, height * width, expandActivation, null);
        this.depthwise = new DepthwiseConv(null, depthwiseWeight, depthwiseBias, null, output, pooled, window, batch,
                channels, height, width, outHeight, outWidth, depthwiseActivation);
        this.input = input;
        this.batch = batch;
        this.inChannels = inChannels;
        this.channels = channels;
        this.pixels = height * width;
    }

    @Override
    public void run(Workers workers) {
        if (shallow != null) {
            int bands = (channels + SHALLOW_BAND - 1) / SHALLOW_BAND;
            workers.forEach(batch * bands, item -> shallowBand(item / bands, item % bands));
            return;
        }
        expand.repackIfChanging();
        int strips = (pixels + PackedGemm.TILE_COLUMNS - 1) / PackedGemm.TILE_COLUMNS;
        int stripSize = expand.stripSize();
        for (int n = 0; n < batch; n++) {
            int image = n;
            // The calling thread's aligned scratch, shared with the tasks (see Scratch).
            MemorySegment packed = Scratch.aligned(strips * stripSize);
            Split.ranges(workers, strips, (from, to) -> {
                for (int s = from; s < to; s++) {
                    pack(image, s, packed, s * stripSize);
                }
            });
            workers.forEach(expand.panels(), panel -> band(image, panel, packed, strips));
        }
    }

    /** Expanded channels per band where {@link #shallow} computes them: its tile's rows. */
    private static final int SHALLOW_BAND = 6;

    /** Expanded channels [6·b, 6·b + 6) of image n by {@link #shallow} into the thread's scratch, then their depthwise conv. */
    private void shallowBand(int n, int b) {
        float[] band = Scratch.floats(DepthwiseConv.MARGIN_BEFORE + SHALLOW_BAND * pixels + DepthwiseConv.MARGIN_AFTER);
        int first = b * SHALLOW_BAND;
        int rows = Math.min(SHALLOW_BAND, channels - first);
        shallow.band(n, first, rows, band, DepthwiseConv.MARGIN_BEFORE);
        for (int r = 0; r < rows; r++) {
            depthwise.directPlane(n * channels + first + r, band, DepthwiseConv.MARGIN_BEFORE + r * pixels);
        }
    }

    /** Strip s of image n's B (its pixels [32·s, 32·s + 32)) into packed[at]. */
    private void pack(int n, int s, MemorySegment packed, int at) {
        int first = s * PackedGemm.TILE_COLUMNS;
        int width = Math.min(PackedGemm.TILE_COLUMNS, pixels - first);
        int stride = PackedGemm.rowStride(width);
        PackedGemm.packStrip(input, n * inChannels * pixels + first, pixels, inChannels, width, packed, at, stride,
                null, 0);
        if (width < stride) {
            PackedGemm.clearStrip(packed, at, inChannels, width, stride);
        }
    }

    /** Expanded channels [12·panel, 12·panel + 12) of image n into the thread's scratch, then their depthwise conv. */
    private void band(int n, int panel, MemorySegment packed, int strips) {
        float[] band = Scratch.floats(DepthwiseConv.MARGIN_BEFORE + PackedGemm.TILE_ROWS * pixels
                + DepthwiseConv.MARGIN_AFTER);
        // Row r of the panel (channel 12·panel + r) at band[MARGIN_BEFORE + r·pixels]: the GEMM
        // counts rows from A's first.
        int outAt = DepthwiseConv.MARGIN_BEFORE - panel * PackedGemm.TILE_ROWS * pixels;
        float[] tile = null;
        for (int s = 0; s < strips; s++) {
            int first = s * PackedGemm.TILE_COLUMNS;
            int width = Math.min(PackedGemm.TILE_COLUMNS, pixels - first);
            if (width == PackedGemm.TILE_COLUMNS && expand.storesWhole(panel)) {
                expand.multiplyWhole(panel, packed, s * expand.stripSize(), band, outAt + first, pixels);
                continue;
            }
            tile = tile != null ? tile : Scratch.tile(PackedGemm.tileSize());
            expand.multiply(panel, packed, s * expand.stripSize(), width, tile);
            expand.activate(tile, panel);
            expand.store(tile, panel, 0, width, null, band, outAt + first, pixels);
        }
        int rows = Math.min(PackedGemm.TILE_ROWS, channels - panel * PackedGemm.TILE_ROWS);
        for (int r = 0; r < rows; r++) {
            depthwise.directPlane(n * channels + panel * PackedGemm.TILE_ROWS + r, band,
                    DepthwiseConv.MARGIN_BEFORE + r * pixels);
        }
    }
}
