package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * out = act(A·B + bias) + residual for one image, with A [rows, depth] packed once and B [depth,
 * columns] row-major: a 1x1 convolution in NCHW (A = weight [outChannels, inChannels], B = the
 * image's [inChannels, H·W]) or, over an im2col matrix, any dense convolution. The microkernel holds
 * a 12-row x 2-vector tile of out in 24 registers; each depth step loads two vectors of B and
 * broadcasts twelve weights (Goto and van de Geijn's register blocking with A packed in 12-row
 * panels, zero-padded past the last row).
 */
public final class PackedGemm {
    static final int TILE_ROWS = 12;
    /** Columns of the wide tile. */
    static final int TILE_COLUMNS = 2 * LANES;

    private final float[] packed;
    private final float[] bias;
    private final int rows;
    private final int depth;
    private final int activation;

    /** {@code weight} is [rows, depth] row-major; {@code bias} has {@code rows} values. */
    public PackedGemm(float[] weight, float[] bias, int rows, int depth, int activation) {
        this.packed = pack(weight, rows, depth);
        this.bias = bias;
        this.rows = rows;
        this.depth = depth;
        this.activation = activation;
    }

    /** Panel p holds rows [12p, 12p + 12) as [depth][12]. */
    static float[] pack(float[] weight, int rows, int depth) {
        int panels = (rows + TILE_ROWS - 1) / TILE_ROWS;
        float[] packed = new float[panels * depth * TILE_ROWS];
        for (int r = 0; r < rows; r++) {
            int panelStart = r / TILE_ROWS * depth * TILE_ROWS;
            for (int k = 0; k < depth; k++) {
                packed[panelStart + k * TILE_ROWS + r % TILE_ROWS] = weight[r * depth + k];
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

    /**
     * Rows of panel {@code panel}, columns [from, to) of one image: B starts at {@code b[bStart]}
     * with {@code columns} per row; out and residual (null for none) start at {@code outStart}.
     */
    public void compute(int panel, int from, int to, float[] b, int bStart, int columns, float[] residual,
                        float[] out, int outStart) {
        int col = from;
        for (; col + TILE_COLUMNS <= to; col += TILE_COLUMNS) {
            wideTile(panel, b, bStart + col, columns, residual, out, outStart + col, columns);
        }
        for (; col < to; col += LANES) {
            narrowTile(panel, b, bStart + col, columns, residual, out, outStart + col, columns,
                    Vectors.firstLanes(to - col));
        }
    }

    private void wideTile(int panel, float[] b, int bAt, int bStride, float[] residual, float[] out, int outAt,
                          int outStride) {
        FloatVector c00 = FloatVector.zero(SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        FloatVector c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
        FloatVector c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += bStride) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bAt);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bAt + LANES);
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
        int row = panel * TILE_ROWS;
        store(c00, c01, row, residual, out, outAt, outStride);
        store(c10, c11, row + 1, residual, out, outAt, outStride);
        store(c20, c21, row + 2, residual, out, outAt, outStride);
        store(c30, c31, row + 3, residual, out, outAt, outStride);
        store(c40, c41, row + 4, residual, out, outAt, outStride);
        store(c50, c51, row + 5, residual, out, outAt, outStride);
        store(c60, c61, row + 6, residual, out, outAt, outStride);
        store(c70, c71, row + 7, residual, out, outAt, outStride);
        store(c80, c81, row + 8, residual, out, outAt, outStride);
        store(c90, c91, row + 9, residual, out, outAt, outStride);
        store(ca0, ca1, row + 10, residual, out, outAt, outStride);
        store(cb0, cb1, row + 11, residual, out, outAt, outStride);
    }

    /** The epilogue of one row of a wide tile: bias, activation, residual, store. */
    private void store(FloatVector left, FloatVector right, int row, float[] residual, float[] out, int outAt,
                       int outStride) {
        if (row >= rows) {
            return;
        }
        FloatVector rowBias = FloatVector.broadcast(SPECIES, bias[row]);
        FloatVector v0 = Vectors.activate(activation, left.add(rowBias));
        FloatVector v1 = Vectors.activate(activation, right.add(rowBias));
        int at = outAt + row * outStride;
        if (residual != null) {
            v0 = v0.add(FloatVector.fromArray(SPECIES, residual, at));
            v1 = v1.add(FloatVector.fromArray(SPECIES, residual, at + LANES));
        }
        v0.intoArray(out, at);
        v1.intoArray(out, at + LANES);
    }

    /** One vector of columns, the first lanes of {@code valid}: the right edge of the image. */
    private void narrowTile(int panel, float[] b, int bAt, int bStride, float[] residual, float[] out, int outAt,
                            int outStride, VectorMask<Float> valid) {
        FloatVector c0 = FloatVector.zero(SPECIES), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        float[] a = packed;
        int w = panel * depth * TILE_ROWS;
        for (int k = 0; k < depth; k++, w += TILE_ROWS, bAt += bStride) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bAt, valid);
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
        int row = panel * TILE_ROWS;
        storeNarrow(c0, row, residual, out, outAt, outStride, valid);
        storeNarrow(c1, row + 1, residual, out, outAt, outStride, valid);
        storeNarrow(c2, row + 2, residual, out, outAt, outStride, valid);
        storeNarrow(c3, row + 3, residual, out, outAt, outStride, valid);
        storeNarrow(c4, row + 4, residual, out, outAt, outStride, valid);
        storeNarrow(c5, row + 5, residual, out, outAt, outStride, valid);
        storeNarrow(c6, row + 6, residual, out, outAt, outStride, valid);
        storeNarrow(c7, row + 7, residual, out, outAt, outStride, valid);
        storeNarrow(c8, row + 8, residual, out, outAt, outStride, valid);
        storeNarrow(c9, row + 9, residual, out, outAt, outStride, valid);
        storeNarrow(c10, row + 10, residual, out, outAt, outStride, valid);
        storeNarrow(c11, row + 11, residual, out, outAt, outStride, valid);
    }

    private void storeNarrow(FloatVector sum, int row, float[] residual, float[] out, int outAt, int outStride,
                             VectorMask<Float> valid) {
        if (row >= rows) {
            return;
        }
        int at = outAt + row * outStride;
        FloatVector v = Vectors.activate(activation, sum.add(bias[row]));
        if (residual != null) {
            v = v.add(FloatVector.fromArray(SPECIES, residual, at, valid));
        }
        v.intoArray(out, at, valid);
    }
}
