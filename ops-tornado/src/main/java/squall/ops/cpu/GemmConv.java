package squall.ops.cpu;

import java.lang.foreign.MemorySegment;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * A dense (groups = 1) convolution in NCHW as a {@link PackedGemm} per image: a 1x1 stride-1
 * unpadded conv multiplies the weights by the image itself; any other kernel first unrolls the
 * image into an im2col matrix [inChannels·kH·kW, outHeight·outWidth] (Chellapilla et al. 2006).
 * Each thread packs a block of B's column strips once and multiplies each strip by every panel
 * of A (or its share of them).
 */
public final class GemmConv implements CpuKernel {
    /**
     * Packed strips of B per block: an eighth of this machine's 1 MiB L2 per core. With half of it
     * (512 KiB) the output streaming through L2 evicted the block on large outputs (the expand
     * convs at batch 8): 128 KiB took batch 8 mobilenet_v2 from 111 to 124 images/s, mobilenet_v1
     * from 91 to 103, batch 1 unchanged; 32-64 KiB did as well on v2, worse on v1 (A, up to 4 MB,
     * is read once per block).
     */
    private static final int BLOCK_BYTES = 128 * 1024;
    /**
     * Weights (A) over this many bytes go panel by panel over a block of strips instead: in a
     * network A comes from L3 or memory (other layers' weights evicted it since the last run), and
     * strip by strip streamed it once per strip. 512->512 @14 at batch 1 (1 MiB of weights, 7
     * strips): 0.69 -> 0.59 ms in mobilenet_v1, 256->512 @14 0.38 -> 0.32 (2 threads); isolated
     * benchmarks, where A stays in L2, did not show it. Batch 8 unchanged.
     */
    static final long PANEL_OUTER_A = 256 * 1024;
    /** Packed strips per block when panels go outside: half of L2, since A no longer competes for it. */
    static final int PANEL_OUTER_BLOCK = 512 * 1024;
    /**
     * Bytes of packed B, panel by panel, up to which it is packed once for all threads (see
     * {@link #multiply}): a batch-1 layer's B. Larger, a thread's strips were packed by the other
     * core and left its L2: mobilenet_v1 at batch 8 (3.2 MB of B on 14x14 maps) 108-111 images/s
     * shared, 115-117 with this limit (1 MiB).
     */
    private static final long SHARED_B = 1L << 20;
    /** Work items per thread at least, panel by panel. */
    private static final int PANEL_OUTER_ITEMS = 4;

    private final PackedGemm gemm;
    /** For a shallow im2col matrix (a dense conv over few channels), the direct kernel over it instead of the GEMM. */
    private final ShallowPointwise shallow;
    private final float[] input;
    /** [batch, inChannels] factors of the input's channels, or null. */
    private final float[] inputScale;
    private final float[] residual;
    private final float[] output;
    private final float[] columns;
    private final int[] window;
    private final int batch;
    private final int inChannels;
    private final int inHeight;
    private final int inWidth;
    private final int outHeight;
    private final int outWidth;

    /**
     * {@code columnsScratch} holds the im2col matrix of one image (null for a 1x1 conv that needs
     * none, see {@link #needsColumns}); residual may be null; {@code inputScale} [batch, inChannels]
     * (or null) scales the input's channels first, for 1x1 convs only: B's rows are scaled as they
     * are packed.
     */
    public GemmConv(float[] input, float[] weight, boolean weightConstant, float[] bias, float[] residual,
                    float[] output, int[] window, int batch, int inChannels, int inHeight, int inWidth,
                    int outChannels, int outHeight, int outWidth, int activation, float[] columnsScratch,
                    float[] inputScale) {
        int depth = inChannels * window[0] * window[1];
        this.gemm = new PackedGemm(weight, weightConstant, bias, outChannels, depth, activation);
        this.shallow = columnsScratch != null && ShallowPointwise.beatsTheGemmOnColumns(depth, outChannels, outHeight * outWidth)
                ? new ShallowPointwise(columnsScratch, weight, bias, residual, output, 1, depth, outChannels,
                        outHeight * outWidth, activation, null) : null;
        if (inputScale != null && columnsScratch != null) {
            throw new IllegalArgumentException("an input scale goes only with a 1x1 conv, not through im2col");
        }
        this.inputScale = inputScale;
        this.input = input;
        this.residual = residual;
        this.output = output;
        this.columns = columnsScratch;
        this.window = window;
        this.batch = batch;
        this.inChannels = inChannels;
        this.inHeight = inHeight;
        this.inWidth = inWidth;
        this.outHeight = outHeight;
        this.outWidth = outWidth;
    }

    /** A 1x1, stride 1, unpadded conv reads the image as B directly. */
    public static boolean needsColumns(int[] window) {
        for (int i = 0; i < 8; i++) {
            if (window[i] != (i < 4 ? 1 : 0)) {
                return true;
            }
        }
        return false;
    }

    /** Floats of im2col scratch one image needs. */
    public static int columnsSize(int[] window, int inChannels, int outHeight, int outWidth) {
        return inChannels * window[0] * window[1] * outHeight * outWidth;
    }

    @Override
    public void run(Workers workers) {
        gemm.repackIfChanging();
        int pixels = outHeight * outWidth;
        int outSize = gemm.rows() * pixels;
        if (columns == null) {
            multiply(workers, input, inChannels * inHeight * inWidth, batch, pixels, 0);
            return;
        }
        for (int n = 0; n < batch; n++) {
            int image = n;
            int depth = inChannels * window[0] * window[1];
            int inSize = inChannels * inHeight * inWidth;
            Split.ranges(workers, depth, (from, to) -> {
                for (int row = from; row < to; row++) {
                    im2colRow(image * inSize, row);
                }
            });
            if (shallow != null) {
                shallow.runImage(workers, image * outSize);
                continue;
            }
            multiply(workers, columns, 0, 1, pixels, image * outSize);
        }
    }

    /**
     * output[outStart + n·outSize ...] = the GEMM over B = {@code images} matrices [depth, pixels],
     * the n-th at b[n·bImageSize]. Their columns are numbered one after another, so a strip may
     * span two images: on 7x7 maps at batch 8, 392 columns fill 13 strips where per-image strips
     * would need 16. Strips are packed in blocks ({@link #BLOCK_BYTES}), and each strip of a block,
     * in L1, is multiplied by every panel of A (or the item's group of them) streaming from L2; the
     * other order (a panel in L1, the strips from L2) was slower on 16 of 20 MobileNet 1x1 shapes
     * (32->64 @112: 1.00 -> 0.74 ms, 96->576 @14: 0.35 -> 0.27, 1 thread), but that measured
     * layers whose A stayed in L2: over {@link #PANEL_OUTER_A} of weights, each panel (in L1) goes
     * over the block's strips (in L2) instead, so A is read once per block. Work items are (block,
     * group of panels): with fewer blocks than threads each block's panels are split over the
     * threads, one group per thread, each packing the block itself once; panel by panel, other
     * blocks are split into groups too, for at least 4 items per thread; else one block each.
     */
    private void multiply(Workers workers, float[] b, int bImageSize, int images, int pixels, int outStart) {
        int totalColumns = images * pixels;
        int strips = (totalColumns + PackedGemm.TILE_COLUMNS - 1) / PackedGemm.TILE_COLUMNS;
        boolean panelOuter = 4L * gemm.rows() * gemm.stripSize() / PackedGemm.TILE_COLUMNS > PANEL_OUTER_A;
        int blockBytes = panelOuter ? PANEL_OUTER_BLOCK : BLOCK_BYTES;
        int maxPerBlock = Math.max(1, Math.min(strips, blockBytes / (4 * gemm.stripSize())));
        int blocks = (strips + maxPerBlock - 1) / maxPerBlock;
        if (!panelOuter && blocks > 1) {
            // A whole number of blocks per thread: 48->288 @14 at batch 8 was 3 blocks, one thread
            // ran two of them while the other waited (0.38 -> 0.31 ms as 4).
            blocks = Math.min(strips, (blocks + workers.count() - 1) / workers.count() * workers.count());
        }
        // Blocks of equal size: 7 strips of 672 rows (b0's 672->112 @14) were 5 + 2, and one thread
        // computed 5/7 of the layer.
        int stripsPerBlock = (strips + blocks - 1) / blocks;
        int panels = gemm.panels();
        // Panel by panel, a few blocks are cut into groups of panels to deal out evenly: 1024->1024
        // @7 at batch 8 is 4 blocks of 4, 4, 4 and 1 strips, one thread ran 8 strips, the other 5
        // (now 2 groups each: 5.0-7.0 -> 4.0-4.2 ms). One block (batch 1) keeps one group per thread:
        // 8 groups made 512->512 @14 slower (0.60-0.67 -> 0.76-0.85 ms).
        int items = panelOuter && blocks >= workers.count() ? PANEL_OUTER_ITEMS * workers.count()
                : workers.count();
        int groups = Math.max(1, Math.min(panels, (items + blocks - 1) / blocks));
        int outSize = gemm.rows() * pixels;
        // Panel by panel, every block is packed by each thread that takes one of its groups: at
        // batch 1 both threads packed all of B (2x the packing; b0's SE-scaled 672->112 @14 took
        // 0.6 ms, 0.3 without). So B is packed once, shared, the strips split over the threads.
        MemorySegment shared = panelOuter && workers.count() > 1 && 4L * strips * gemm.stripSize() <= SHARED_B
                ? Scratch.aligned(strips * gemm.stripSize()) : null;
        if (shared != null) {
            Split.ranges(workers, strips, (from, to) -> {
                for (int s = from; s < to; s++) {
                    int first = s * PackedGemm.TILE_COLUMNS;
                    pack(b, bImageSize, pixels, first, Math.min(PackedGemm.TILE_COLUMNS, totalColumns - first), shared,
                            s * gemm.stripSize());
                }
            });
        }
        Split.ranges(workers, blocks * groups, (from, to) -> {
            MemorySegment packed = shared != null ? shared : Scratch.aligned(stripsPerBlock * gemm.stripSize());
            float[] tile = new float[PackedGemm.tileSize()];
            int packedBlock = -1;
            for (int item = from; item < to; item++) {
                int block = item / groups;
                int group = item % groups;
                int firstStrip = block * stripsPerBlock;
                int blockStrips = Math.min(stripsPerBlock, strips - firstStrip);
                // Strip s of the block is at packed[(at + s)·stripSize].
                int at = shared != null ? firstStrip : 0;
                if (shared == null && block != packedBlock) {
                    for (int s = 0; s < blockStrips; s++) {
                        int first = (firstStrip + s) * PackedGemm.TILE_COLUMNS;
                        pack(b, bImageSize, pixels, first, Math.min(PackedGemm.TILE_COLUMNS, totalColumns - first), packed,
                                s * gemm.stripSize());
                    }
                    packedBlock = block;
                }
                int firstPanel = group * panels / groups;
                int lastPanel = (group + 1) * panels / groups;
                if (panelOuter) {
                    for (int panel = firstPanel; panel < lastPanel; panel++) {
                        for (int s = 0; s < blockStrips; s++) {
                            panelTimesStrip(panel, packed, at + s, (firstStrip + s) * PackedGemm.TILE_COLUMNS,
                                    totalColumns, pixels, outStart, outSize, tile);
                        }
                    }
                } else {
                    for (int s = 0; s < blockStrips; s++) {
                        for (int panel = firstPanel; panel < lastPanel; panel++) {
                            panelTimesStrip(panel, packed, s, (firstStrip + s) * PackedGemm.TILE_COLUMNS,
                                    totalColumns, pixels, outStart, outSize, tile);
                        }
                    }
                }
            }
        });
    }

    /** One panel times the strip at packed[s·stripSize] (columns from {@code first}), stored to the output. */
    private void panelTimesStrip(int panel, MemorySegment packed, int s, int first, int totalColumns, int pixels,
                                 int outStart, int outSize, float[] tile) {
        int width = Math.min(PackedGemm.TILE_COLUMNS, totalColumns - first);
        int p0 = first % pixels;
        if (width == PackedGemm.TILE_COLUMNS && p0 + width <= pixels && residual == null && gemm.storesWhole(panel)) {
            gemm.multiplyWhole(panel, packed, s * gemm.stripSize(), output, outStart + first / pixels * outSize + p0,
                    pixels);
            return;
        }
        gemm.multiply(panel, packed, s * gemm.stripSize(), width, tile);
        gemm.activate(tile, panel);
        for (int c = 0; c < width; ) {
            int n = (first + c) / pixels;
            int p = (first + c) % pixels;
            int count = Math.min(width - c, pixels - p);
            gemm.store(tile, panel, c, count, residual, output, outStart + n * outSize + p, pixels);
            c += count;
        }
    }

    /** Columns [first, first + width) of the images' B, image by image, into the strip at strip[at]. */
    private void pack(float[] b, int bImageSize, int pixels, int first, int width, MemorySegment strip, int at) {
        int depth = gemm.stripSize() / PackedGemm.TILE_COLUMNS;
        int stride = PackedGemm.rowStride(width);
        int p0 = first % pixels;
        int split = pixels - p0;
        if (width == PackedGemm.TILE_COLUMNS && split < width && pixels >= width) {
            int n = first / pixels;
            PackedGemm.packTwoPieces(b, n * bImageSize + p0, (n + 1) * bImageSize, pixels, depth, split, strip, at,
                    inputScale, n * depth, (n + 1) * depth);
            return;
        }
        for (int c = 0; c < width; ) {
            int n = (first + c) / pixels;
            int p = (first + c) % pixels;
            int count = Math.min(width - c, pixels - p);
            PackedGemm.packStrip(b, n * bImageSize + p, pixels, depth, count, strip, at + c, stride, inputScale,
                    n * depth);
            c += count;
        }
        if (width < stride) {
            PackedGemm.clearStrip(strip, at, depth, width, stride);
        }
    }

    /** Row (c, ky, kx) of the im2col matrix: input channel c shifted by the tap, zero outside the image. */
    private void im2colRow(int imageStart, int row) {
        int kernelH = window[0];
        int kernelW = window[1];
        int c = row / (kernelH * kernelW);
        int ky = row / kernelW % kernelH;
        int kx = row % kernelW;
        int strideH = window[2];
        int strideW = window[3];
        int plane = imageStart + c * inHeight * inWidth;
        int rowStart = row * outHeight * outWidth;
        // Output columns whose tap lands inside the image: ix = ox·strideW − padLeft + kx·dilationW in [0, inWidth).
        int shift = kx * window[9] - window[5];
        int firstX = Math.min(outWidth, Math.max(0, (-shift + strideW - 1) / strideW));
        int lastX = Math.max(firstX, Math.min(outWidth, (inWidth - shift + strideW - 1) / strideW));
        for (int oy = 0; oy < outHeight; oy++) {
            int iy = oy * strideH - window[4] + ky * window[8];
            int at = rowStart + oy * outWidth;
            if (iy < 0 || iy >= inHeight) {
                java.util.Arrays.fill(columns, at, at + outWidth, 0f);
                continue;
            }
            java.util.Arrays.fill(columns, at, at + firstX, 0f);
            Vectors.copyStrided(input, plane + iy * inWidth + firstX * strideW + shift, strideW, columns, at + firstX,
                    lastX - firstX);
            java.util.Arrays.fill(columns, at + lastX, at + outWidth, 0f);
        }
    }
}
