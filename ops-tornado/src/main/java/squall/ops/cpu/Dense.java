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
 * A fully connected layer y[n, m] = act(x[n, :] · weight[m, :] + bias[m]) + residual[n, m]: torch
 * Linear, and a 1x1 conv on 1x1 maps (squeeze-excite). Few rows of x, so the weights are streamed
 * once: four output features by two rows per step, every pair of rows in turn, dot products along
 * the vector lanes, each reduced at the end. From {@link #BATCHED_ROWS} rows on, with constant
 * weights, features go in the lanes instead ({@link #eightRows}).
 */
public final class Dense implements CpuKernel {
    private static final int FEATURES_PER_STEP = 4;
    /**
     * Rows from which the features-in-lanes path runs: at batch 8 the dot products' 16-lane
     * reductions (one per output, a chain of scalar adds) cost more than the weights' stream (Zen 4,
     * 2 threads: 1280->1000 0.19-0.26 ms against 0.048 at batch 1).
     */
    static final int BATCHED_ROWS = 4;
    /** Features of a strip of W^T: two vectors. */
    private static final int STRIP = 2 * LANES;

    private final float[] x;
    private final float[] weight;
    private final float[] bias;
    private final float[] residual;
    private final float[] y;
    private final int rows;
    private final int inFeatures;
    private final int outFeatures;
    private final int activation;
    /** W^T in strips of {@link #STRIP} features, [strip][inFeatures][STRIP], for the batched path; else null. */
    private final float[] packed;

    /** residual may be null. With {@code weightConstant}, the weights may be packed once for the batched path. */
    public Dense(float[] x, float[] weight, boolean weightConstant, float[] bias, float[] residual, float[] y, int rows,
                 int inFeatures, int outFeatures, int activation) {
        this.packed = weightConstant && rows >= BATCHED_ROWS ? PackedGemm.pack(weight, outFeatures, inFeatures, STRIP)
                : null;
        this.x = x;
        this.weight = weight;
        this.bias = bias;
        this.residual = residual;
        this.y = y;
        this.rows = rows;
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.activation = activation;
    }

    @Override
    public void run(Workers workers) {
        if (packed != null) {
            int strips = (outFeatures + STRIP - 1) / STRIP;
            boolean finishes = activation != Activation.NONE || residual != null;
            Split.ranges(workers, strips, (from, to) -> {
                for (int strip = from; strip < to; strip++) {
                    int m = strip * STRIP;
                    int width = Math.min(STRIP, outFeatures - m);
                    for (int n = 0; n < rows; n += 8) {
                        int count = Math.min(8, rows - n);
                        eightRows(strip, n, count);
                        for (int r = n; finishes && r < n + count; r++) {
                            Vectors.finish(activation, y, r * outFeatures + m, r * outFeatures + m + width,
                                    residual);
                        }
                    }
                }
            });
            return;
        }
        int steps = (outFeatures + FEATURES_PER_STEP - 1) / FEATURES_PER_STEP;
        // Feature blocks outside, rows inside: each block's 4 weight rows serve every pair of rows
        // while in L1, so the weights stream from memory once, not once per pair (batch 8 1280->1000
        // cold 0.57-0.61 -> 0.55 ms, warm 0.42 -> 0.40).
        Split.ranges(workers, steps, (from, to) -> {
            // The thread's array for the lane sums: made per call it cost as much as a 48-deep SE fc.
            float[] lanes = Scratch.tile(2 * FEATURES_PER_STEP * LANES);
            for (int step = from; step < to; step++) {
                for (int n = 0; n < rows; n += 2) {
                    int m = step * FEATURES_PER_STEP;
                    if (m + FEATURES_PER_STEP <= outFeatures) {
                        fourFeatures(n, Math.min(n + 1, rows - 1), m, lanes);
                    } else {
                        for (; m < outFeatures; m++) {
                            finish(n, m, dot(n, m));
                            if (n + 1 < rows) {
                                finish(n + 1, m, dot(n + 1, m));
                            }
                        }
                    }
                }
            }
        });
    }

    /** Features m..m+3 of rows n and n2 (n2 = n when the batch has an odd last row); lanes: 8 vectors of scratch. */
    private void fourFeatures(int n, int n2, int m, float[] lanes) {
        FloatVector s0 = FloatVector.zero(SPECIES), s1 = s0, s2 = s0, s3 = s0;
        FloatVector t0 = s0, t1 = s0, t2 = s0, t3 = s0;
        int xa = n * inFeatures;
        int xb = n2 * inFeatures;
        int w = m * inFeatures;
        int k = 0;
        for (; k + LANES <= inFeatures; k += LANES) {
            FloatVector a = FloatVector.fromArray(SPECIES, x, xa + k);
            FloatVector b = FloatVector.fromArray(SPECIES, x, xb + k);
            FloatVector w0 = FloatVector.fromArray(SPECIES, weight, w + k);
            FloatVector w1 = FloatVector.fromArray(SPECIES, weight, w + inFeatures + k);
            FloatVector w2 = FloatVector.fromArray(SPECIES, weight, w + 2 * inFeatures + k);
            FloatVector w3 = FloatVector.fromArray(SPECIES, weight, w + 3 * inFeatures + k);
            s0 = a.fma(w0, s0);
            s1 = a.fma(w1, s1);
            s2 = a.fma(w2, s2);
            s3 = a.fma(w3, s3);
            t0 = b.fma(w0, t0);
            t1 = b.fma(w1, t1);
            t2 = b.fma(w2, t2);
            t3 = b.fma(w3, t3);
        }
        if (k < inFeatures) {
            VectorMask<Float> rest = Vectors.firstLanes(inFeatures - k);
            FloatVector a = FloatVector.fromArray(SPECIES, x, xa + k, rest);
            FloatVector b = FloatVector.fromArray(SPECIES, x, xb + k, rest);
            FloatVector w0 = FloatVector.fromArray(SPECIES, weight, w + k, rest);
            FloatVector w1 = FloatVector.fromArray(SPECIES, weight, w + inFeatures + k, rest);
            FloatVector w2 = FloatVector.fromArray(SPECIES, weight, w + 2 * inFeatures + k, rest);
            FloatVector w3 = FloatVector.fromArray(SPECIES, weight, w + 3 * inFeatures + k, rest);
            s0 = a.fma(w0, s0);
            s1 = a.fma(w1, s1);
            s2 = a.fma(w2, s2);
            s3 = a.fma(w3, s3);
            t0 = b.fma(w0, t0);
            t1 = b.fma(w1, t1);
            t2 = b.fma(w2, t2);
            t3 = b.fma(w3, t3);
        }
        // Lane sums in a fixed order (see Vectors.sumLanes) so that cold and compiled runs agree.
        s0.intoArray(lanes, 0);
        s1.intoArray(lanes, LANES);
        s2.intoArray(lanes, 2 * LANES);
        s3.intoArray(lanes, 3 * LANES);
        t0.intoArray(lanes, 4 * LANES);
        t1.intoArray(lanes, 5 * LANES);
        t2.intoArray(lanes, 6 * LANES);
        t3.intoArray(lanes, 7 * LANES);
        for (int f = 0; f < FEATURES_PER_STEP; f++) {
            finish(n, m + f, Vectors.sumLanes(lanes, f * LANES));
            if (n2 != n) {
                finish(n2, m + f, Vectors.sumLanes(lanes, (FEATURES_PER_STEP + f) * LANES));
            }
        }
    }

    /**
     * y[n + i, strip's features] = x[n + i, :] · W^T + bias for i < count (at most 8), before the
     * activation: the strip's two weight vectors per input feature serve eight rows (a row past
     * count repeats the last and is not stored), each output summed in input order in its lane.
     */
    private void eightRows(int strip, int n, int count) {
        int k0 = n * inFeatures;
        int last = (n + count - 1) * inFeatures;
        int x1 = Math.min(k0 + inFeatures, last), x2 = Math.min(k0 + 2 * inFeatures, last);
        int x3 = Math.min(k0 + 3 * inFeatures, last), x4 = Math.min(k0 + 4 * inFeatures, last);
        int x5 = Math.min(k0 + 5 * inFeatures, last), x6 = Math.min(k0 + 6 * inFeatures, last);
        int x7 = Math.min(k0 + 7 * inFeatures, last);
        FloatVector a0 = FloatVector.zero(SPECIES), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        FloatVector a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
        float[] in = x;
        for (int k = 0, w = strip * inFeatures * STRIP; k < inFeatures; k++, w += STRIP) {
            FloatVector wa = FloatVector.fromArray(SPECIES, packed, w);
            FloatVector wb = FloatVector.fromArray(SPECIES, packed, w + LANES);
            FloatVector v = FloatVector.broadcast(SPECIES, in[k0 + k]);
            a0 = wa.fma(v, a0);
            b0 = wb.fma(v, b0);
            v = FloatVector.broadcast(SPECIES, in[x1 + k]);
            a1 = wa.fma(v, a1);
            b1 = wb.fma(v, b1);
            v = FloatVector.broadcast(SPECIES, in[x2 + k]);
            a2 = wa.fma(v, a2);
            b2 = wb.fma(v, b2);
            v = FloatVector.broadcast(SPECIES, in[x3 + k]);
            a3 = wa.fma(v, a3);
            b3 = wb.fma(v, b3);
            v = FloatVector.broadcast(SPECIES, in[x4 + k]);
            a4 = wa.fma(v, a4);
            b4 = wb.fma(v, b4);
            v = FloatVector.broadcast(SPECIES, in[x5 + k]);
            a5 = wa.fma(v, a5);
            b5 = wb.fma(v, b5);
            v = FloatVector.broadcast(SPECIES, in[x6 + k]);
            a6 = wa.fma(v, a6);
            b6 = wb.fma(v, b6);
            v = FloatVector.broadcast(SPECIES, in[x7 + k]);
            a7 = wa.fma(v, a7);
            b7 = wb.fma(v, b7);
        }
        int m = strip * STRIP;
        VectorMask<Float> first = Vectors.firstLanes(Math.min(LANES, outFeatures - m));
        VectorMask<Float> second = Vectors.firstLanes(Math.max(0, Math.min(LANES, outFeatures - m - LANES)));
        FloatVector biasA = FloatVector.fromArray(SPECIES, bias, m, first);
        FloatVector biasB = FloatVector.fromArray(SPECIES, bias, m + LANES, second);
        int o = n * outFeatures + m;
        int step = outFeatures;
        a0.add(biasA).intoArray(y, o, first);
        b0.add(biasB).intoArray(y, o + LANES, second);
        if (count > 1) {
            a1.add(biasA).intoArray(y, o + step, first);
            b1.add(biasB).intoArray(y, o + step + LANES, second);
        }
        if (count > 2) {
            a2.add(biasA).intoArray(y, o + 2 * step, first);
            b2.add(biasB).intoArray(y, o + 2 * step + LANES, second);
        }
        if (count > 3) {
            a3.add(biasA).intoArray(y, o + 3 * step, first);
            b3.add(biasB).intoArray(y, o + 3 * step + LANES, second);
        }
        if (count > 4) {
            a4.add(biasA).intoArray(y, o + 4 * step, first);
            b4.add(biasB).intoArray(y, o + 4 * step + LANES, second);
        }
        if (count > 5) {
            a5.add(biasA).intoArray(y, o + 5 * step, first);
            b5.add(biasB).intoArray(y, o + 5 * step + LANES, second);
        }
        if (count > 6) {
            a6.add(biasA).intoArray(y, o + 6 * step, first);
            b6.add(biasB).intoArray(y, o + 6 * step + LANES, second);
        }
        if (count > 7) {
            a7.add(biasA).intoArray(y, o + 7 * step, first);
            b7.add(biasB).intoArray(y, o + 7 * step + LANES, second);
        }
    }

    private float dot(int n, int m) {
        float sum = 0f;
        for (int k = 0; k < inFeatures; k++) {
            sum += x[n * inFeatures + k] * weight[m * inFeatures + k];
        }
        return sum;
    }

    private void finish(int n, int m, float dot) {
        float value = Vectors.flushSubnormal(Activation.fused(activation, dot + bias[m]));
        y[n * outFeatures + m] = residual == null ? value : value + residual[n * outFeatures + m];
    }
}
