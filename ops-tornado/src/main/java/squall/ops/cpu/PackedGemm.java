package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import squall.ops.Activation;

/**
 * out = act(A·B + bias) + residual, with A [rows, depth] packed once and B [depth, columns]: a 1x1
 * convolution in NCHW (A = weight [outChannels, inChannels], B = the images' [inChannels, H·W]) or,
 * over an im2col matrix, any dense convolution. Goto and van de Geijn's scheme: A is packed in
 * 12-row panels (zero-padded past the last row), B in strips of two vectors of columns, each
 * copied once into a contiguous [depth][2 vectors] buffer and reused by every panel; the
 * microkernel holds a 12-row x 2-vector tile of out in 24 registers, and each depth step loads two
 * vectors of the strip and broadcasts twelve weights. Packing B turned strided loads that split
 * cache lines into one sequential stream: 1.2-3.3x on MobileNet's 1x1 shapes (CPU-KERNELS.md).
 */
public final class PackedGemm {
    static final int TILE_ROWS = 12;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    /** Columns of the wide tile. */
    static final int TILE_COLUMNS = 2 * LANES;
    /**
     * Strips of at most this many columns (a 14x14 map's last 4 of 196) are packed [depth][4] and
     * multiplied with the panel's rows in the lanes ({@link #thinTile}), where a vector holds all
     * 12 rows: with 16 lanes only.
     */
    static final int THIN = LANES >= TILE_ROWS ? 4 : 0;

    private final float[] packed;
    /** The weights to pack again before every run, or null when they are constant (packed once). */
    private final float[] changingWeight;
    private final float[] bias;
    private final int rows;
    private final int depth;
    private final int activation;
    /** The activation when it is a clamp (else none here, and {@link Vectors#finish} applies it). */
    private final float lower;
    private final float upper;
    private final boolean clampOnly;
    /** Hardswish and silu are applied in {@link #store}'s registers too (with the bias): no pass of their own. */
    private final boolean hardswish;
    private final boolean silu;

    /**
     * {@code weight} is [rows, depth] row-major; {@code bias} has {@code rows} values. Constant
     * weights (parameters) are packed here once; others (a graph input, e.g. ONNX's W fed at run
     * time) again by {@link #repackIfChanging} at the start of every run.
     */
    public PackedGemm(float[] weight, boolean weightConstant, float[] bias, int rows, int depth, int activation) {
        this.packed = pack(weight, rows, depth);
        this.changingWeight = weightConstant ? null : weight;
        this.bias = bias;
        this.rows = rows;
        this.depth = depth;
        this.activation = activation;
        this.clampOnly = Vectors.isClamp(activation);
        this.hardswish = activation == Activation.HARDSWISH;
        this.silu = activation == Activation.SILU;
        this.lower = clampOnly ? Vectors.lowerBound(activation) : Float.NEGATIVE_INFINITY;
        this.upper = clampOnly ? Vectors.upperBound(activation) : Float.POSITIVE_INFINITY;
    }

    /** Call once per run before computing: packs the weights again when they may have changed. */
    public void repackIfChanging() {
        if (changingWeight != null) {
            pack(changingWeight, rows, depth, TILE_ROWS, packed);
        }
    }

    /** Panel p holds rows [12p, 12p + 12) as [depth][12]. */
    static float[] pack(float[] weight, int rows, int depth) {
        return pack(weight, rows, depth, TILE_ROWS);
    }

    /**
     * weight [rows, depth] in panels of {@code height} rows, panel p holding rows [hp, hp + h) as
     * [depth][h], zero past the last row: for each depth step, the panel's rows side by side.
     */
    static float[] pack(float[] weight, int rows, int depth, int height) {
        int panels = (rows + height - 1) / height;
        // One vector of slack: thinTile loads 16 floats from each depth step's 12.
        return pack(weight, rows, depth, height, new float[panels * depth * height + LANES]);
    }

    private static float[] pack(float[] weight, int rows, int depth, int height, float[] packed) {
        for (int r = 0; r < rows; r++) {
            int panelStart = r / height * depth * height;
            for (int k = 0; k < depth; k++) {
                packed[panelStart + k * height + r % height] = weight[r * depth + k];
            }
        }
        return packed;
    }

    public int rows() {
        return rows;
    }

    public int panels() {
        return (rows + TILE_ROWS - 1) / TILE_ROWS;
    }

    /** Floats between a strip's rows: {@link #THIN} for a strip that narrow, else {@link #TILE_COLUMNS}. */
    public static int rowStride(int stripWidth) {
        return stripWidth <= THIN ? THIN : TILE_COLUMNS;
    }

    /**
     * Copies {@code width} columns of B's {@code depth} rows (the first at {@code b[bAt]}, the next
     * {@code bStride} floats on) into a strip [depth][stride] ({@link #rowStride}), the first
     * column to {@code strip[at]} (the strip's start plus the first column's index in it). The microkernels
     * then read B as one sequential stream (no strided, cache-line-splitting loads) that stays in
     * cache for every panel of A. With {@code scale} (else null), row k is multiplied by
     * scale[scaleAt + k] on the way, subnormal products flushed to zero as the SE gate's mul does
     * (a fused squeeze-and-excitation gate; see {@code Passes.fuseChannelScales}).
     */
    public static void packStrip(float[] b, int bAt, int bStride, int depth, int width, MemorySegment strip, int at,
                                 int stride, float[] scale, int scaleAt) {
        if (scale != null) {
            packScaled(b, bAt, bStride, depth, width, strip, at, stride, scale, scaleAt);
            return;
        }
        long to = 4L * at;
        if (width == TILE_COLUMNS) {
            for (int k = 0; k < depth; k++, to += 4 * TILE_COLUMNS, bAt += bStride) {
                FloatVector.fromArray(SPECIES, b, bAt).intoMemorySegment(strip, to, NATIVE);
                FloatVector.fromArray(SPECIES, b, bAt + LANES).intoMemorySegment(strip, to + 4 * LANES, NATIVE);
            }
            return;
        }
        for (int k = 0; k < depth; k++, to += 4 * stride, bAt += bStride) {
            MemorySegment.copy(b, bAt, strip, ValueLayout.JAVA_FLOAT, to, width);
        }
    }

    /**
     * A whole strip ({@link #TILE_COLUMNS} columns) pieced from two images, as on 7x7 maps at
     * batch 8: columns [0, split) are b's rows from {@code bAt} (one image), the others b's rows
     * from {@code nextAt} (the next image), each row {@code bStride} floats on and scaled as in
     * {@link #packStrip} (factors from scaleAt and nextScaleAt). Each piece is copied as two whole
     * vectors, the second piece at column {@code split} over the first piece's extra lanes; its
     * lanes past the row land at the start of the next row, which is packed after it (the last
     * row's are masked). Both pieces are read as whole vectors, so the second image needs at least
     * {@link #TILE_COLUMNS} pixels a row. Copied piece by piece (a row copy or masked vectors per
     * piece and row), the packing took 40% of the SE-gated 576->96 @7 at batch 8.
     */
    public static void packTwoPieces(float[] b, int bAt, int nextAt, int bStride, int depth, int split,
                                     MemorySegment strip, int at, float[] scale, int scaleAt, int nextScaleAt) {
        long to = 4L * at;
        long second = 4L * split;
        for (int k = 0; k < depth; k++, to += 4 * TILE_COLUMNS, bAt += bStride, nextAt += bStride) {
            FloatVector v0 = FloatVector.fromArray(SPECIES, b, bAt);
            FloatVector v1 = FloatVector.fromArray(SPECIES, b, bAt + LANES);
            FloatVector u0 = FloatVector.fromArray(SPECIES, b, nextAt);
            FloatVector u1 = FloatVector.fromArray(SPECIES, b, nextAt + LANES);
            if (scale != null) {
                float factor = scale[scaleAt + k];
                float nextFactor = scale[nextScaleAt + k];
                v0 = v0.mul(factor);
                v0 = v0.blend(0f, v0.abs().lt(Float.MIN_NORMAL));
                v1 = v1.mul(factor);
                v1 = v1.blend(0f, v1.abs().lt(Float.MIN_NORMAL));
                u0 = u0.mul(nextFactor);
                u0 = u0.blend(0f, u0.abs().lt(Float.MIN_NORMAL));
                u1 = u1.mul(nextFactor);
                u1 = u1.blend(0f, u1.abs().lt(Float.MIN_NORMAL));
            }
            v0.intoMemorySegment(strip, to, NATIVE);
            v1.intoMemorySegment(strip, to + 4 * LANES, NATIVE);
            if (k + 1 < depth) {
                u0.intoMemorySegment(strip, to + second, NATIVE);
                u1.intoMemorySegment(strip, to + second + 4 * LANES, NATIVE);
            } else {
                int rest = TILE_COLUMNS - split;
                u0.intoMemorySegment(strip, to + second, NATIVE, Vectors.firstLanes(rest));
                if (rest > LANES) {
                    u1.intoMemorySegment(strip, to + second + 4 * LANES, NATIVE, Vectors.firstLanes(rest - LANES));
                }
            }
        }
    }

    private static void packScaled(float[] b, int bAt, int bStride, int depth, int width, MemorySegment strip, int at,
                                   int stride, float[] scale, int scaleAt) {
        long to = 4L * at;
        if (width == TILE_COLUMNS) {
            // A whole strip's two vectors written out, as packStrip does: through the general loop
            // below, the SE-gated 240->40 @14 took 0.31 ms at batch 8 (0.27 this way), 0.044 at batch 1 (0.037).
            for (int k = 0; k < depth; k++, to += 4 * TILE_COLUMNS, bAt += bStride) {
                float factor = scale[scaleAt + k];
                FloatVector v0 = FloatVector.fromArray(SPECIES, b, bAt).mul(factor);
                FloatVector v1 = FloatVector.fromArray(SPECIES, b, bAt + LANES).mul(factor);
                v0.blend(0f, v0.abs().lt(Float.MIN_NORMAL)).intoMemorySegment(strip, to, NATIVE);
                v1.blend(0f, v1.abs().lt(Float.MIN_NORMAL)).intoMemorySegment(strip, to + 4 * LANES, NATIVE);
            }
            return;
        }
        for (int k = 0; k < depth; k++, to += 4 * stride, bAt += bStride) {
            float factor = scale[scaleAt + k];
            int j = 0;
            for (; j + LANES <= width; j += LANES) {
                FloatVector v = FloatVector.fromArray(SPECIES, b, bAt + j).mul(factor);
                v.blend(0f, v.abs().lt(Float.MIN_NORMAL)).intoMemorySegment(strip, to + 4L * j, NATIVE);
            }
            if (width - j > 4) {
                // Masked, not scalar, past 4 columns: on 7x7 maps at batch 8 strips are pieced from
                // images (17 + 15, 2 + 30, ...), and scalar tails made the SE-gated 576->96 @7 1.4x
                // slower than unscaled; masked 0.42 -> 0.35 ms. For 1-4 columns scalar is faster.
                VectorMask<Float> valid = Vectors.firstLanes(width - j);
                FloatVector v = FloatVector.fromArray(SPECIES, b, bAt + j, valid).mul(factor);
                v.blend(0f, v.abs().lt(Float.MIN_NORMAL)).intoMemorySegment(strip, to + 4L * j, NATIVE, valid);
                j = width;
            }
            for (; j < width; j++) {
                strip.set(ValueLayout.JAVA_FLOAT, to + 4L * j, Vectors.flushSubnormal(b[bAt + j] * factor));
            }
        }
    }

    /** Zeroes columns [fromColumn, stride) of the strip at strip[at]: a last strip narrower than the tile. */
    public static void clearStrip(MemorySegment strip, int at, int depth, int fromColumn, int stride) {
        for (int k = 0; k < depth; k++, at += stride) {
            strip.asSlice(4L * (at + fromColumn), 4L * (stride - fromColumn)).fill((byte) 0);
        }
    }

    /** Floats of a strip for this GEMM's depth. */
    public int stripSize() {
        return depth * TILE_COLUMNS;
    }

    /** Floats of a tile: one vector of slack, since {@link #store} reads whole vectors from any column. */
    public static int tileSize() {
        return TILE_ROWS * TILE_COLUMNS + LANES;
    }

    /** tile = rows of {@code panel} times the first {@code width} columns of the strip at strip[at] (zero-padded to the tile). */
    public void multiply(int panel, MemorySegment strip, int at, int width, float[] tile) {
        // A last panel of 4 or 8 real rows in a shorter tile: 240->40 @14 (SE-gated) 0.037 -> 0.033
        // ms, 384->64 @14 0.076 -> 0.070, 480->80 @14 0.116 -> 0.111 (2 threads).
        int realRows = rows - panel * TILE_ROWS;
        if (width > LANES && realRows <= 4) {
            wideTile4(panel, strip, at, tile);
        } else if (width > LANES && realRows <= 8) {
            wideTile8(panel, strip, at, tile);
        } else if (width > LANES) {
            wideTile(panel, strip, at, tile, null, 0, 0);
        } else if (width > THIN) {
            narrowTile(panel, strip, at, tile);
        } else {
            thinTile(panel, strip, at, tile);
        }
    }

    /**
     * Whether {@link #multiplyWhole} may compute this panel: all 12 of its rows are real and the
     * activation is a clamp (or none); the caller also needs a whole strip of one image and no
     * residual.
     */
    public boolean storesWhole(int panel) {
        return clampOnly && (panel + 1) * TILE_ROWS <= rows;
    }

    /**
     * The panel times a whole strip (32 columns), plus the bias and clamped, stored straight from
     * the registers to out[outAt + row·outStride + j] (row counted from A's first): see
     * {@link #storesWhole}. Through the tile array and {@link #store} (taken out, the layer ran
     * 27% faster on 64->128 @56), this way: 64->128 @56 -10%, 128->128 @56 -5%, 512->512 @14 -3.5%
     * (1 thread).
     */
    public void multiplyWhole(int panel, MemorySegment strip, int at, float[] out, int outAt, int outStride) {
        wideTile(panel, strip, at, null, out, outAt + panel * TILE_ROWS * outStride, outStride);
    }

    /**
     * For an activation other than a clamp: tile = act(tile + bias) for the panel's rows, over the
     * whole tile in one call, before {@link #store} copies it out. Per stored row segment (32
     * floats), the calls cost as much as the activation itself (silu on 112->672 @14: 1.7 ns a
     * float). A clamp, hardswish and silu are applied in {@link #store}'s registers instead (with
     * the bias); then this does nothing. Passes saved that way, 2 threads: 48->288 @14 hardswish at
     * batch 8 0.45 -> 0.39 ms, 80->480 @14 0.124 -> 0.110; silu 80->480 @14 batch 8 1.21 -> 1.13.
     */
    public void activate(float[] tile, int panel) {
        if (clampOnly || hardswish || silu) {
            return;
        }
        int firstRow = panel * TILE_ROWS;
        for (int r = 0; r < TILE_ROWS; r++) {
            // Padding rows past the last one get no bias; they are never stored.
            float rowBias = firstRow + r < rows ? bias[firstRow + r] : 0f;
            int at = r * TILE_COLUMNS;
            FloatVector.fromArray(SPECIES, tile, at).add(rowBias).intoArray(tile, at);
            FloatVector.fromArray(SPECIES, tile, at + LANES).add(rowBias).intoArray(tile, at + LANES);
        }
        Vectors.activate(activation, tile, 0, tile, 0, TILE_ROWS * TILE_COLUMNS, null);
    }

    /**
     * out = act(tile + bias) + residual for the panel's real rows and tile columns [tileColumn,
     * tileColumn + count), written to out[outAt + row·outStride + j] (residual at the same index,
     * null for none); for other activations than a clamp, hardswish or silu, the tile is already
     * act(tile + bias) ({@link #activate}). Kept apart from the microkernels so that each stays
     * small enough for C2 to inline every vector operation (a vector passed to a call that is not
     * inlined is boxed: ~100x slower). Each row's two vectors are computed whole; a part of the
     * strip is stored with masks. A whole strip's rows without a loop and masked tail: 96->576 @14
     * hardswish at batch 8 1.38 -> 1.27 ms, 112->672 @14 silu at batch 1 0.276 -> 0.263, 240->40
     * @14 with a residual at batch 8 0.280 -> 0.272.
     */
    public void store(float[] tile, int panel, int tileColumn, int count, float[] residual, float[] out, int outAt,
                      int outStride) {
        int firstRow = panel * TILE_ROWS;
        boolean whole = count == TILE_COLUMNS;
        // Otherwise tile lanes [tileColumn, tileColumn + count) of each row, from the first vector
        // (v) and the second (u), go to out[at + j - tileColumn]: masked stores from there.
        int end = tileColumn + count;
        VectorMask<Float> inV = Vectors.firstLanes(Math.min(LANES, end)).andNot(
                Vectors.firstLanes(Math.min(LANES, tileColumn)));
        VectorMask<Float> inU = Vectors.firstLanes(Math.max(0, end - LANES)).andNot(
                Vectors.firstLanes(Math.max(0, tileColumn - LANES)));
        for (int row = firstRow; row < Math.min(rows, firstRow + TILE_ROWS); row++) {
            float rowBias = clampOnly || hardswish || silu ? bias[row] : 0f;
            int tileAt = (row - firstRow) * TILE_COLUMNS;
            // Both vectors of the row side by side: silu's two chains of ~20 dependent operations
            // overlap (in a loop over the two, 112->672 @14 at batch 8 spent a fifth of its time
            // here, 1 thread). Written out, not in a helper: a vector passed to a call C2 does not
            // inline is boxed, and these two are the method's only calls of exp (with a third, C2
            // ran out of inlining budget in efficientnet_v2_s at batch 8: 256 MB boxed a run).
            FloatVector v = FloatVector.fromArray(SPECIES, tile, tileAt).add(rowBias);
            FloatVector u = FloatVector.fromArray(SPECIES, tile, tileAt + LANES).add(rowBias);
            if (hardswish) {
                FloatVector r = v.add(3f);
                r = r.blend(0f, r.compare(VectorOperators.LE, 0f));
                v = v.mul(r.blend(6f, r.compare(VectorOperators.GE, 6f))).div(6f);
                FloatVector q = u.add(3f);
                q = q.blend(0f, q.compare(VectorOperators.LE, 0f));
                u = u.mul(q.blend(6f, q.compare(VectorOperators.GE, 6f))).div(6f);
            } else if (silu) {
                v = v.div(Vectors.expNegative(v).add(1f));
                u = u.div(Vectors.expNegative(u).add(1f));
            } else {
                v = v.max(lower).min(upper);
                u = u.max(lower).min(upper);
            }
            int at = outAt + row * outStride;
            if (whole) {
                if (residual != null) {
                    v = v.add(FloatVector.fromArray(SPECIES, residual, at));
                    u = u.add(FloatVector.fromArray(SPECIES, residual, at + LANES));
                }
                v.intoArray(out, at);
                u.intoArray(out, at + LANES);
            } else {
                at -= tileColumn;
                if (residual != null) {
                    v = v.add(FloatVector.fromArray(SPECIES, residual, at, inV));
                    u = u.add(FloatVector.fromArray(SPECIES, residual, at + LANES, inU));
                }
                v.intoArray(out, at, inV);
                u.intoArray(out, at + LANES, inU);
            }
        }
    }

    /**
     * As {@link #store} for a whole tile whose columns are not one run of out: vector j (tile
     * columns 16j to 16j + 15) of each row goes with lanes [0, head) to out[outAt + row·outStride
     * + headAt + lane] and lanes [tailFrom, tailTo) to out[outAt + row·outStride + tailAt + lane],
     * other lanes nowhere, where pieces[5j ...] = {headAt, head, tailAt, tailFrom, tailTo}: a
     * strip of {@code GemmConv}'s padded grid, whose vectors end one output row and start the next
     * with the pad columns between. The masks are the same for all 12 rows, so each row is two
     * masked stores a vector; through {@link #store}, row piece by row piece, storing took a fifth
     * of the Fused-MBConv 3x3 48->192 @56 with silu (1 thread).
     */
    public void storePieces(float[] tile, int panel, int[] pieces, float[] residual, float[] out, int outAt,
                            int outStride) {
        int firstRow = panel * TILE_ROWS;
        for (int j = 0; j < 2; j++) {
            int headAt = pieces[5 * j];
            int tailAt = pieces[5 * j + 2];
            VectorMask<Float> head = Vectors.firstLanes(pieces[5 * j + 1]);
            VectorMask<Float> tail = Vectors.firstLanes(pieces[5 * j + 4])
                    .andNot(Vectors.firstLanes(pieces[5 * j + 3]));
            boolean hasTail = pieces[5 * j + 4] > pieces[5 * j + 3];
            for (int row = firstRow; row < Math.min(rows, firstRow + TILE_ROWS); row++) {
                float rowBias = clampOnly || hardswish || silu ? bias[row] : 0f;
                int at = outAt + row * outStride;
                FloatVector v = FloatVector.fromArray(SPECIES, tile, (row - firstRow) * TILE_COLUMNS + j * LANES)
                        .add(rowBias);
                if (hardswish) {
                    FloatVector r = v.add(3f);
                    r = r.blend(0f, r.compare(VectorOperators.LE, 0f));
                    v = v.mul(r.blend(6f, r.compare(VectorOperators.GE, 6f))).div(6f);
                } else if (silu) {
                    v = v.div(Vectors.expNegative(v).add(1f));
                } else {
                    v = v.max(lower).min(upper);
                }
                if (residual != null) {
                    FloatVector r = FloatVector.fromArray(SPECIES, residual, at + headAt, head);
                    if (hasTail) {
                        r = r.add(FloatVector.fromArray(SPECIES, residual, at + tailAt, tail));
                    }
                    v = v.add(r);
                }
                v.intoArray(out, at + headAt, head);
                if (hasTail) {
                    v.intoArray(out, at + tailAt, tail);
                }
            }
        }
    }

    /**
     * tile[12][2 vectors] = the panel's rows of A times the strip's 2 vectors of columns; with
     * {@code out} (else null) the sums go there instead, finished ({@link #multiplyWhole}).
     */
    private void wideTile(int panel, MemorySegment strip, int stripAt, float[] tile, float[] out, int outAt,
                          int outStride) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        FloatVector c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
        FloatVector c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        long bAt = 4L * stripAt;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += 4 * TILE_COLUMNS) {
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, strip, bAt, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(SPECIES, strip, bAt + 4 * LANES, NATIVE);
            FloatVector a0 = FloatVector.broadcast(SPECIES, a[w]);
            c00 = b0.fma(a0, c00);
            c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(SPECIES, a[w + 1]);
            c10 = b0.fma(a1, c10);
            c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(SPECIES, a[w + 2]);
            c20 = b0.fma(a2, c20);
            c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(SPECIES, a[w + 3]);
            c30 = b0.fma(a3, c30);
            c31 = b1.fma(a3, c31);
            FloatVector a4 = FloatVector.broadcast(SPECIES, a[w + 4]);
            c40 = b0.fma(a4, c40);
            c41 = b1.fma(a4, c41);
            FloatVector a5 = FloatVector.broadcast(SPECIES, a[w + 5]);
            c50 = b0.fma(a5, c50);
            c51 = b1.fma(a5, c51);
            FloatVector a6 = FloatVector.broadcast(SPECIES, a[w + 6]);
            c60 = b0.fma(a6, c60);
            c61 = b1.fma(a6, c61);
            FloatVector a7 = FloatVector.broadcast(SPECIES, a[w + 7]);
            c70 = b0.fma(a7, c70);
            c71 = b1.fma(a7, c71);
            FloatVector a8 = FloatVector.broadcast(SPECIES, a[w + 8]);
            c80 = b0.fma(a8, c80);
            c81 = b1.fma(a8, c81);
            FloatVector a9 = FloatVector.broadcast(SPECIES, a[w + 9]);
            c90 = b0.fma(a9, c90);
            c91 = b1.fma(a9, c91);
            FloatVector a10 = FloatVector.broadcast(SPECIES, a[w + 10]);
            ca0 = b0.fma(a10, ca0);
            ca1 = b1.fma(a10, ca1);
            FloatVector a11 = FloatVector.broadcast(SPECIES, a[w + 11]);
            cb0 = b0.fma(a11, cb0);
            cb1 = b1.fma(a11, cb1);
        }
        if (out != null) {
            // Written out, not in a loop or helper: a vector passed to a call C2 does not inline is boxed.
            int row = panel * TILE_ROWS;
            float low = lower;
            float high = upper;
            FloatVector r0 = FloatVector.broadcast(SPECIES, bias[row + 0]);
            c00.add(r0).max(low).min(high).intoArray(out, outAt + 0 * outStride);
            c01.add(r0).max(low).min(high).intoArray(out, outAt + 0 * outStride + LANES);
            FloatVector r1 = FloatVector.broadcast(SPECIES, bias[row + 1]);
            c10.add(r1).max(low).min(high).intoArray(out, outAt + 1 * outStride);
            c11.add(r1).max(low).min(high).intoArray(out, outAt + 1 * outStride + LANES);
            FloatVector r2 = FloatVector.broadcast(SPECIES, bias[row + 2]);
            c20.add(r2).max(low).min(high).intoArray(out, outAt + 2 * outStride);
            c21.add(r2).max(low).min(high).intoArray(out, outAt + 2 * outStride + LANES);
            FloatVector r3 = FloatVector.broadcast(SPECIES, bias[row + 3]);
            c30.add(r3).max(low).min(high).intoArray(out, outAt + 3 * outStride);
            c31.add(r3).max(low).min(high).intoArray(out, outAt + 3 * outStride + LANES);
            FloatVector r4 = FloatVector.broadcast(SPECIES, bias[row + 4]);
            c40.add(r4).max(low).min(high).intoArray(out, outAt + 4 * outStride);
            c41.add(r4).max(low).min(high).intoArray(out, outAt + 4 * outStride + LANES);
            FloatVector r5 = FloatVector.broadcast(SPECIES, bias[row + 5]);
            c50.add(r5).max(low).min(high).intoArray(out, outAt + 5 * outStride);
            c51.add(r5).max(low).min(high).intoArray(out, outAt + 5 * outStride + LANES);
            FloatVector r6 = FloatVector.broadcast(SPECIES, bias[row + 6]);
            c60.add(r6).max(low).min(high).intoArray(out, outAt + 6 * outStride);
            c61.add(r6).max(low).min(high).intoArray(out, outAt + 6 * outStride + LANES);
            FloatVector r7 = FloatVector.broadcast(SPECIES, bias[row + 7]);
            c70.add(r7).max(low).min(high).intoArray(out, outAt + 7 * outStride);
            c71.add(r7).max(low).min(high).intoArray(out, outAt + 7 * outStride + LANES);
            FloatVector r8 = FloatVector.broadcast(SPECIES, bias[row + 8]);
            c80.add(r8).max(low).min(high).intoArray(out, outAt + 8 * outStride);
            c81.add(r8).max(low).min(high).intoArray(out, outAt + 8 * outStride + LANES);
            FloatVector r9 = FloatVector.broadcast(SPECIES, bias[row + 9]);
            c90.add(r9).max(low).min(high).intoArray(out, outAt + 9 * outStride);
            c91.add(r9).max(low).min(high).intoArray(out, outAt + 9 * outStride + LANES);
            FloatVector ra = FloatVector.broadcast(SPECIES, bias[row + 10]);
            ca0.add(ra).max(low).min(high).intoArray(out, outAt + 10 * outStride);
            ca1.add(ra).max(low).min(high).intoArray(out, outAt + 10 * outStride + LANES);
            FloatVector rb = FloatVector.broadcast(SPECIES, bias[row + 11]);
            cb0.add(rb).max(low).min(high).intoArray(out, outAt + 11 * outStride);
            cb1.add(rb).max(low).min(high).intoArray(out, outAt + 11 * outStride + LANES);
            return;
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, LANES);
        c10.intoArray(tile, TILE_COLUMNS);
        c11.intoArray(tile, TILE_COLUMNS + LANES);
        c20.intoArray(tile, 2 * TILE_COLUMNS);
        c21.intoArray(tile, 2 * TILE_COLUMNS + LANES);
        c30.intoArray(tile, 3 * TILE_COLUMNS);
        c31.intoArray(tile, 3 * TILE_COLUMNS + LANES);
        c40.intoArray(tile, 4 * TILE_COLUMNS);
        c41.intoArray(tile, 4 * TILE_COLUMNS + LANES);
        c50.intoArray(tile, 5 * TILE_COLUMNS);
        c51.intoArray(tile, 5 * TILE_COLUMNS + LANES);
        c60.intoArray(tile, 6 * TILE_COLUMNS);
        c61.intoArray(tile, 6 * TILE_COLUMNS + LANES);
        c70.intoArray(tile, 7 * TILE_COLUMNS);
        c71.intoArray(tile, 7 * TILE_COLUMNS + LANES);
        c80.intoArray(tile, 8 * TILE_COLUMNS);
        c81.intoArray(tile, 8 * TILE_COLUMNS + LANES);
        c90.intoArray(tile, 9 * TILE_COLUMNS);
        c91.intoArray(tile, 9 * TILE_COLUMNS + LANES);
        ca0.intoArray(tile, 10 * TILE_COLUMNS);
        ca1.intoArray(tile, 10 * TILE_COLUMNS + LANES);
        cb0.intoArray(tile, 11 * TILE_COLUMNS);
        cb1.intoArray(tile, 11 * TILE_COLUMNS + LANES);
    }

    /**
     * tile[12][2 vectors] = the panel's rows times B's 2 vectors of columns at float bAt +
     * steps[k] of b for depth step k: an indirect GEMM (Dukhan 2019), where B is never packed. For
     * a convolution over a padded image (in phase planes at stride 2), step (c, ky, kx) is a plane
     * of channel c shifted by the tap (see {@code GemmConv}); the 9x im2col matrix and its packed
     * copy are never written.
     * B in a native segment, not a heap array: C2 kept the array in a stack slot and reloaded it
     * for each of the two loads (48->192 @56, 1 thread: 185 -> 215 GFLOP/s).
     */
    public void multiplyIndirect(int panel, MemorySegment b, int bAt, int[] steps, float[] tile) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        FloatVector c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
        FloatVector c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        for (int k = 0; k < depth; k++, w += TILE_ROWS) {
            int at = bAt + steps[k];
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, b, 4L * at, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(SPECIES, b, 4L * at + 4 * LANES, NATIVE);
            FloatVector a0 = FloatVector.broadcast(SPECIES, a[w]);
            c00 = b0.fma(a0, c00);
            c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(SPECIES, a[w + 1]);
            c10 = b0.fma(a1, c10);
            c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(SPECIES, a[w + 2]);
            c20 = b0.fma(a2, c20);
            c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(SPECIES, a[w + 3]);
            c30 = b0.fma(a3, c30);
            c31 = b1.fma(a3, c31);
            FloatVector a4 = FloatVector.broadcast(SPECIES, a[w + 4]);
            c40 = b0.fma(a4, c40);
            c41 = b1.fma(a4, c41);
            FloatVector a5 = FloatVector.broadcast(SPECIES, a[w + 5]);
            c50 = b0.fma(a5, c50);
            c51 = b1.fma(a5, c51);
            FloatVector a6 = FloatVector.broadcast(SPECIES, a[w + 6]);
            c60 = b0.fma(a6, c60);
            c61 = b1.fma(a6, c61);
            FloatVector a7 = FloatVector.broadcast(SPECIES, a[w + 7]);
            c70 = b0.fma(a7, c70);
            c71 = b1.fma(a7, c71);
            FloatVector a8 = FloatVector.broadcast(SPECIES, a[w + 8]);
            c80 = b0.fma(a8, c80);
            c81 = b1.fma(a8, c81);
            FloatVector a9 = FloatVector.broadcast(SPECIES, a[w + 9]);
            c90 = b0.fma(a9, c90);
            c91 = b1.fma(a9, c91);
            FloatVector a10 = FloatVector.broadcast(SPECIES, a[w + 10]);
            ca0 = b0.fma(a10, ca0);
            ca1 = b1.fma(a10, ca1);
            FloatVector a11 = FloatVector.broadcast(SPECIES, a[w + 11]);
            cb0 = b0.fma(a11, cb0);
            cb1 = b1.fma(a11, cb1);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, LANES);
        c10.intoArray(tile, TILE_COLUMNS);
        c11.intoArray(tile, TILE_COLUMNS + LANES);
        c20.intoArray(tile, 2 * TILE_COLUMNS);
        c21.intoArray(tile, 2 * TILE_COLUMNS + LANES);
        c30.intoArray(tile, 3 * TILE_COLUMNS);
        c31.intoArray(tile, 3 * TILE_COLUMNS + LANES);
        c40.intoArray(tile, 4 * TILE_COLUMNS);
        c41.intoArray(tile, 4 * TILE_COLUMNS + LANES);
        c50.intoArray(tile, 5 * TILE_COLUMNS);
        c51.intoArray(tile, 5 * TILE_COLUMNS + LANES);
        c60.intoArray(tile, 6 * TILE_COLUMNS);
        c61.intoArray(tile, 6 * TILE_COLUMNS + LANES);
        c70.intoArray(tile, 7 * TILE_COLUMNS);
        c71.intoArray(tile, 7 * TILE_COLUMNS + LANES);
        c80.intoArray(tile, 8 * TILE_COLUMNS);
        c81.intoArray(tile, 8 * TILE_COLUMNS + LANES);
        c90.intoArray(tile, 9 * TILE_COLUMNS);
        c91.intoArray(tile, 9 * TILE_COLUMNS + LANES);
        ca0.intoArray(tile, 10 * TILE_COLUMNS);
        ca1.intoArray(tile, 10 * TILE_COLUMNS + LANES);
        cb0.intoArray(tile, 11 * TILE_COLUMNS);
        cb1.intoArray(tile, 11 * TILE_COLUMNS + LANES);
    }

    /**
     * A last panel with at most 4 real rows (40, 64, 112 or 160 output channels): 4 rows x 2
     * vectors, a third of the wide tile's FMAs (whose other 8 rows are zero padding).
     */
    private void wideTile4(int panel, MemorySegment strip, int stripAt, float[] tile) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00;
        FloatVector c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        long bAt = 4L * stripAt;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += 4 * TILE_COLUMNS) {
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, strip, bAt, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(SPECIES, strip, bAt + 4 * LANES, NATIVE);
            FloatVector a0 = FloatVector.broadcast(SPECIES, a[w]);
            c00 = b0.fma(a0, c00);
            c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(SPECIES, a[w + 1]);
            c10 = b0.fma(a1, c10);
            c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(SPECIES, a[w + 2]);
            c20 = b0.fma(a2, c20);
            c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(SPECIES, a[w + 3]);
            c30 = b0.fma(a3, c30);
            c31 = b1.fma(a3, c31);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, LANES);
        c10.intoArray(tile, TILE_COLUMNS);
        c11.intoArray(tile, TILE_COLUMNS + LANES);
        c20.intoArray(tile, 2 * TILE_COLUMNS);
        c21.intoArray(tile, 2 * TILE_COLUMNS + LANES);
        c30.intoArray(tile, 3 * TILE_COLUMNS);
        c31.intoArray(tile, 3 * TILE_COLUMNS + LANES);
    }

    /** A last panel with 5 to 8 real rows (32, 80, 128, 320 or 1280 output channels): 8 rows x 2 vectors. */
    private void wideTile8(int panel, MemorySegment strip, int stripAt, float[] tile) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00;
        FloatVector c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        FloatVector c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        FloatVector c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        long bAt = 4L * stripAt;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += 4 * TILE_COLUMNS) {
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, strip, bAt, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(SPECIES, strip, bAt + 4 * LANES, NATIVE);
            FloatVector a0 = FloatVector.broadcast(SPECIES, a[w]);
            c00 = b0.fma(a0, c00);
            c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(SPECIES, a[w + 1]);
            c10 = b0.fma(a1, c10);
            c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(SPECIES, a[w + 2]);
            c20 = b0.fma(a2, c20);
            c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(SPECIES, a[w + 3]);
            c30 = b0.fma(a3, c30);
            c31 = b1.fma(a3, c31);
            FloatVector a4 = FloatVector.broadcast(SPECIES, a[w + 4]);
            c40 = b0.fma(a4, c40);
            c41 = b1.fma(a4, c41);
            FloatVector a5 = FloatVector.broadcast(SPECIES, a[w + 5]);
            c50 = b0.fma(a5, c50);
            c51 = b1.fma(a5, c51);
            FloatVector a6 = FloatVector.broadcast(SPECIES, a[w + 6]);
            c60 = b0.fma(a6, c60);
            c61 = b1.fma(a6, c61);
            FloatVector a7 = FloatVector.broadcast(SPECIES, a[w + 7]);
            c70 = b0.fma(a7, c70);
            c71 = b1.fma(a7, c71);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, LANES);
        c10.intoArray(tile, TILE_COLUMNS);
        c11.intoArray(tile, TILE_COLUMNS + LANES);
        c20.intoArray(tile, 2 * TILE_COLUMNS);
        c21.intoArray(tile, 2 * TILE_COLUMNS + LANES);
        c30.intoArray(tile, 3 * TILE_COLUMNS);
        c31.intoArray(tile, 3 * TILE_COLUMNS + LANES);
        c40.intoArray(tile, 4 * TILE_COLUMNS);
        c41.intoArray(tile, 4 * TILE_COLUMNS + LANES);
        c50.intoArray(tile, 5 * TILE_COLUMNS);
        c51.intoArray(tile, 5 * TILE_COLUMNS + LANES);
        c60.intoArray(tile, 6 * TILE_COLUMNS);
        c61.intoArray(tile, 6 * TILE_COLUMNS + LANES);
        c70.intoArray(tile, 7 * TILE_COLUMNS);
        c71.intoArray(tile, 7 * TILE_COLUMNS + LANES);
    }

    /** The strip's first vector of columns only (its other columns are padding), into the tile's first vector. */
    private void narrowTile(int panel, MemorySegment strip, int stripAt, float[] tile) {
        FloatVector c0 = FloatVector.zero(SPECIES), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        long bAt = 4L * stripAt;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += 4 * TILE_COLUMNS) {
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, strip, bAt, NATIVE);
            c0 = b0.fma(FloatVector.broadcast(SPECIES, a[w]), c0);
            c1 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 1]), c1);
            c2 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 2]), c2);
            c3 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 3]), c3);
            c4 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 4]), c4);
            c5 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 5]), c5);
            c6 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 6]), c6);
            c7 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 7]), c7);
            c8 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 8]), c8);
            c9 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 9]), c9);
            c10 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 10]), c10);
            c11 = b0.fma(FloatVector.broadcast(SPECIES, a[w + 11]), c11);
        }
        c0.intoArray(tile, 0);
        c1.intoArray(tile, TILE_COLUMNS);
        c2.intoArray(tile, 2 * TILE_COLUMNS);
        c3.intoArray(tile, 3 * TILE_COLUMNS);
        c4.intoArray(tile, 4 * TILE_COLUMNS);
        c5.intoArray(tile, 5 * TILE_COLUMNS);
        c6.intoArray(tile, 6 * TILE_COLUMNS);
        c7.intoArray(tile, 7 * TILE_COLUMNS);
        c8.intoArray(tile, 8 * TILE_COLUMNS);
        c9.intoArray(tile, 9 * TILE_COLUMNS);
        c10.intoArray(tile, 10 * TILE_COLUMNS);
        c11.intoArray(tile, 11 * TILE_COLUMNS);
    }

    /**
     * A strip of at most {@link #THIN} columns, packed [depth][THIN]: the panel's 12 rows in the
     * lanes of one vector (its last 4 lanes are the next depth step's, never stored), one FMA per
     * column with B's value broadcast, two depth steps per loop for 8 independent sums. The narrow
     * tile spent 12 FMAs and 13 loads per depth step on 4 columns; 512->512 @14 spent 9-12% of its
     * time on that last 4-column strip. Column j's sums land in tile[r][j].
     */
    private void thinTile(int panel, MemorySegment strip, int stripAt, float[] tile) {
        FloatVector e0 = FloatVector.zero(SPECIES), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        long bAt = 4L * stripAt;
        int k = 0;
        for (; k + 1 < depth; k += 2, w += 2 * TILE_ROWS, bAt += 8 * THIN) {
            FloatVector even = FloatVector.fromArray(SPECIES, a, w);
            FloatVector odd = FloatVector.fromArray(SPECIES, a, w + TILE_ROWS);
            e0 = even.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt)), e0);
            e1 = even.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 4)), e1);
            e2 = even.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 8)), e2);
            e3 = even.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 12)), e3);
            o0 = odd.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 16)), o0);
            o1 = odd.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 20)), o1);
            o2 = odd.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 24)), o2);
            o3 = odd.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 28)), o3);
        }
        if (k < depth) {
            FloatVector last = FloatVector.fromArray(SPECIES, a, w);
            e0 = last.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt)), e0);
            e1 = last.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 4)), e1);
            e2 = last.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 8)), e2);
            e3 = last.fma(FloatVector.broadcast(SPECIES, strip.get(ValueLayout.JAVA_FLOAT, bAt + 12)), e3);
        }
        // Column j's 12 sums go to tile[j][8..20) first (columns no thin strip uses), then to tile[r][j].
        e0.add(o0).intoArray(tile, 8);
        e1.add(o1).intoArray(tile, TILE_COLUMNS + 8);
        e2.add(o2).intoArray(tile, 2 * TILE_COLUMNS + 8);
        e3.add(o3).intoArray(tile, 3 * TILE_COLUMNS + 8);
        for (int j = 0; j < THIN; j++) {
            for (int r = 0; r < TILE_ROWS; r++) {
                tile[r * TILE_COLUMNS + j] = tile[j * TILE_COLUMNS + 8 + r];
            }
        }
    }
}
