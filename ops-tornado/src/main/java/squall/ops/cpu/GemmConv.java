package squall.ops.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import squall.api.CpuKernel;
import squall.api.Workers;
import squall.ops.Split;

/**
 * A dense (groups = 1) convolution in NCHW as a {@link PackedGemm} per image: a 1x1 stride-1
 * unpadded conv multiplies the weights by the image itself; another conv of stride 1 or 2 reads
 * a padded copy of the image (in phases at stride 2) through each depth step's offset
 * ({@link #readsPadded}: an indirect GEMM); a larger stride first unrolls the image into an
 * im2col matrix [inChannels·kH·kW, outHeight·outWidth] (Chellapilla et al. 2006). Each thread
 * packs a block of B's column strips once and multiplies each strip by every panel of A (or its
 * share of them).
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
     * For a conv of stride 1 or 2 ({@link #readsPadded}), B's depth step k = (c, ky, kx) as an
     * offset into the padded image's phase planes; null otherwise.
     */
    private final int[] steps;
    /** Width and height of a phase plane of the padded image (the padded image itself at stride 1). */
    private final int gridWidth;
    private final int gridHeight;

    /**
     * {@code columnsScratch} holds the im2col matrix of one image (null for a conv that needs
     * none, see {@link #needsIm2col}); residual may be null; {@code inputScale} [batch, inChannels]
     * (or null) scales the input's channels first, for 1x1 convs only: B's rows are scaled as they
     * are packed.
     */
    public GemmConv(float[] input, float[] weight, boolean weightConstant, float[] bias, float[] residual,
                    float[] output, int[] window, int batch, int inChannels, int inHeight, int inWidth,
                    int outChannels, int outHeight, int outWidth, int activation, float[] columnsScratch,
                    float[] inputScale) {
        int depth = inChannels * window[0] * window[1];
        this.gemm = new PackedGemm(weight, weightConstant, bias, outChannels, depth, activation);
        this.steps = readsPadded(window) ? steps(window, inChannels, inHeight, inWidth) : null;
        this.gridWidth = gridSize(inWidth + window[5] + window[7], window[3]);
        this.gridHeight = gridSize(inHeight + window[4] + window[6], window[2]);
        if (inputScale != null && (columnsScratch != null || steps != null)) {
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

    /**
     * A stride-1 conv that is not a plain 1x1 reads B from a padded copy of the image: output
     * pixel (y, x) is column y·gridWidth + x of a grid as wide as the padded image, so tap (ky,
     * kx) of channel c is the plane shifted by ky·gridWidth + kx, a contiguous run for any column
     * strip, and each depth step is that offset ({@link PackedGemm#multiplyIndirect}). The grid's
     * pad columns (2 of 58 on a 56x56 map) are computed and not stored. Through im2col, the image
     * was written out 9 times and packed again: efficientnet_v2_s's Fused-MBConv 3x3 48->192 @56
     * took 1.78 ms, ONNX Runtime 1.10. At stride 2 the padded image is split into its 4 phases
     * (even/odd rows by even/odd columns, Hwu's phase decomposition): padded pixel (2y + ky,
     * 2x + kx) is pixel (y + ky/2, x + kx/2) of phase (ky mod 2, kx mod 2), again a shifted plane.
     * Such a conv takes no columns scratch.
     */
    static boolean readsPadded(int[] window) {
        return needsColumns(window) && window[2] <= 2 && window[3] <= 2;
    }

    /** Phase planes along a padded side of {@code size} at this stride are this long. */
    private static int gridSize(int size, int stride) {
        return (size + stride - 1) / stride;
    }

    /** Offsets of depth step (c, ky, kx): the tap's phase plane of channel c, shifted by the tap. */
    private static int[] steps(int[] window, int inChannels, int inHeight, int inWidth) {
        int kernelH = window[0];
        int kernelW = window[1];
        int strideH = window[2];
        int strideW = window[3];
        int width = gridSize(inWidth + window[5] + window[7], strideW);
        int plane = gridSize(inHeight + window[4] + window[6], strideH) * width;
        int[] steps = new int[inChannels * kernelH * kernelW];
        for (int c = 0, k = 0; c < inChannels; c++) {
            for (int ky = 0; ky < kernelH; ky++) {
                for (int kx = 0; kx < kernelW; kx++, k++) {
                    int row = ky * window[8];
                    int column = kx * window[9];
                    int phase = (c * strideH + row % strideH) * strideW + column % strideW;
                    steps[k] = phase * plane + row / strideH * width + column / strideW;
                }
            }
        }
        return steps;
    }

    /** Whether the conv goes through an im2col matrix, and needs {@link #columnsSize} floats of scratch for it. */
    public static boolean needsIm2col(int[] window) {
        return needsColumns(window) && !readsPadded(window);
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
        if (steps != null) {
            multiplyIndirect(workers);
            return;
        }
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
            float[] tile = Scratch.tile(PackedGemm.tileSize());
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
                if (panelOuter) {
                    // A group is a range of the block's (panel, strip) tiles, panel by panel: at batch 1
                    // 512->512 @14 is 43 panels (the last of 8 rows) by 7 strips (the last of 4
                    // columns), and groups of whole panels left one thread 3% more work.
                    int tiles = panels * blockStrips;
                    for (int t = group * tiles / groups; t < (group + 1) * tiles / groups; t++) {
                        int s = t % blockStrips;
                        panelTimesStrip(t / blockStrips, packed, at + s, (firstStrip + s) * PackedGemm.TILE_COLUMNS,
                                totalColumns, pixels, outStart, outSize, tile);
                    }
                } else {
                    int firstPanel = group * panels / groups;
                    int lastPanel = (group + 1) * panels / groups;
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

    /**
     * Image by image: the padded copy, then every (strip, panel) of the grid
     * ({@link #readsPadded}), strip by strip in each thread's share so a strip's input stays in L1
     * for all panels. The padded image is in the calling thread's aligned scratch, shared with the
     * tasks (which take none of their own); the last strip reads up to a strip and a row past it,
     * lanes that are never stored.
     */
    private void multiplyIndirect(Workers workers) {
        int inSize = inChannels * inHeight * inWidth;
        int outSize = gemm.rows() * outHeight * outWidth;
        int planes = inChannels * window[2] * window[3];
        MemorySegment padded = Scratch.aligned(
                planes * gridHeight * gridWidth + gridWidth + 2 * PackedGemm.TILE_COLUMNS);
        int strips = (outHeight * gridWidth + PackedGemm.TILE_COLUMNS - 1) / PackedGemm.TILE_COLUMNS;
        int panels = gemm.panels();
        for (int n = 0; n < batch; n++) {
            int image = n;
            Split.ranges(workers, inChannels, (from, to) -> pad(image * inSize, from, to, padded));
            Split.ranges(workers, strips * panels, (from, to) -> {
                float[] tile = Scratch.tile(PackedGemm.tileSize());
                int[] pieces = new int[10];
                int piecesOf = -1;
                for (int item = from; item < to; item++) {
                    int panel = item % panels;
                    int first = item / panels * PackedGemm.TILE_COLUMNS;
                    gemm.multiplyIndirect(panel, padded, first, steps, tile);
                    gemm.activate(tile, panel);
                    if (gridWidth < Vectors.LANES) {
                        storeGrid(tile, panel, first, image * outSize);
                        continue;
                    }
                    if (piecesOf != first) {
                        pieces(first, pieces);
                        piecesOf = first;
                    }
                    gemm.storePieces(tile, panel, pieces, residual, output, image * outSize, outHeight * outWidth);
                }
            });
        }
    }

    /**
     * Where the two vectors of the grid's columns [first, first + 32) go in an output plane, for
     * {@link PackedGemm#storePieces}: with the padded width at least a vector, each vector holds
     * the end of one output row (its head) and the start of the next (its tail) at most, pad
     * columns and columns past the last row stored nowhere.
     */
    private void pieces(int first, int[] pieces) {
        for (int j = 0; j < 2; j++) {
            int q = first + j * Vectors.LANES;
            int y = q / gridWidth;
            int x = q - y * gridWidth;
            int tailFrom = Math.min(Vectors.LANES, gridWidth - x);
            pieces[5 * j] = y * outWidth + x;
            pieces[5 * j + 1] = y < outHeight ? Math.max(0, Math.min(Vectors.LANES, outWidth - x)) : 0;
            pieces[5 * j + 2] = (y + 1) * outWidth + x - gridWidth;
            pieces[5 * j + 3] = tailFrom;
            pieces[5 * j + 4] = y + 1 < outHeight ? Math.min(Vectors.LANES, tailFrom + outWidth) : tailFrom;
        }
    }

    /**
     * The tile's grid columns [first, first + 32) that are output pixels, row piece by row piece:
     * grids narrower than a vector, whose vectors may span three rows.
     */
    private void storeGrid(float[] tile, int panel, int first, int outStart) {
        int end = Math.min(first + PackedGemm.TILE_COLUMNS, outHeight * gridWidth);
        for (int q = first; q < end; ) {
            int y = q / gridWidth;
            int x = q - y * gridWidth;
            if (x >= outWidth) {
                q = (y + 1) * gridWidth;
                continue;
            }
            int count = Math.min(outWidth - x, end - q);
            gemm.store(tile, panel, q - first, count, residual, output, outStart + y * outWidth + x,
                    outHeight * outWidth);
            q += count;
        }
    }

    /** Channels [from, to) of the image at input[imageStart] into planes of {@code padded}, zero around. */
    private void pad(int imageStart, int from, int to, MemorySegment padded) {
        if (window[2] > 1 || window[3] > 1) {
            padPhases(imageStart, from, to, padded);
            return;
        }
        int top = window[4];
        int left = window[5];
        long plane = 4L * gridHeight * gridWidth;
        long width = 4L * gridWidth;
        for (int c = from; c < to; c++) {
            long at = c * plane;
            padded.asSlice(at, top * width + 4L * left).fill((byte) 0);
            for (int y = 0; y < inHeight; y++) {
                long row = at + (top + y) * width + 4L * left;
                MemorySegment.copy(input, imageStart + (c * inHeight + y) * inWidth, padded, ValueLayout.JAVA_FLOAT,
                        row, inWidth);
                // The right pad and the next row's left pad.
                padded.asSlice(row + 4L * inWidth, width - 4L * inWidth).fill((byte) 0);
            }
            // With no bottom pad, the last row's fill already reached the next plane.
            long rest = Math.min(at + plane, at + (top + inHeight) * width + 4L * left);
            padded.asSlice(rest, at + plane - rest).fill((byte) 0);
        }
    }

    /**
     * As {@link #pad} at stride 2 (in either direction): channel c's padded image split into its
     * phase planes, each cleared, then each input row's even and odd columns copied to theirs.
     */
    private void padPhases(int imageStart, int from, int to, MemorySegment padded) {
        int strideH = window[2];
        int strideW = window[3];
        int top = window[4];
        int left = window[5];
        long plane = 4L * gridHeight * gridWidth;
        float[] row = Scratch.floats(gridWidth);
        for (int c = from; c < to; c++) {
            long at = c * strideH * strideW * plane;
            padded.asSlice(at, strideH * strideW * plane).fill((byte) 0);
            for (int y = 0; y < inHeight; y++) {
                int r = y + top;
                for (int b = 0; b < strideW; b++) {
                    // The first padded column of phase b holding an input pixel.
                    int p = left + Math.floorMod(b - left, strideW);
                    int x = p - left;
                    if (x >= inWidth) {
                        continue;
                    }
                    int count = (inWidth - x + strideW - 1) / strideW;
                    Vectors.copyStrided(input, imageStart + (c * inHeight + y) * inWidth + x, strideW, row, 0, count);
                    long phase = at + ((long) (r % strideH) * strideW + b) * plane;
                    MemorySegment.copy(row, 0, padded, ValueLayout.JAVA_FLOAT,
                            phase + 4L * ((long) r / strideH * gridWidth + p / strideW), count);
                }
            }
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
