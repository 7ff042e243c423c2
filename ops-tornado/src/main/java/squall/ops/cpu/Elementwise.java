package squall.ops.cpu;

import static squall.ops.cpu.Vectors.LANES;
import static squall.ops.cpu.Vectors.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import squall.api.CpuKernel;
import squall.ops.Split;

/**
 * Memory-bound element-wise layers on vectors: activations, same-shape add, squeeze-excite's
 * per-channel scale, global average pooling. Work is split in contiguous ranges; each range ends
 * with one masked vector.
 */
public final class Elementwise {
    /** Elements per work item: large enough that splitting costs little next to the copy. */
    private static final int BLOCK = 64 * LANES;

    private Elementwise() {
    }

    /** y = act(x) for a fused activation code (hardsigmoid with torch's constants). */
    public static CpuKernel activation(int code, float[] x, float[] y, int size) {
        return workers -> Split.ranges(workers, (size + BLOCK - 1) / BLOCK, (from, to) -> {
            int start = from * BLOCK;
            Vectors.activate(code, x, start, y, start, Math.min(size, to * BLOCK) - start, null);
        });
    }

    /** out = a + b, same shapes. */
    public static CpuKernel add(float[] a, float[] b, float[] out, int size) {
        return workers -> Split.ranges(workers, (size + BLOCK - 1) / BLOCK, (from, to) -> {
            int end = Math.min(size, to * BLOCK);
            int i = from * BLOCK;
            for (; i + LANES <= end; i += LANES) {
                FloatVector.fromArray(SPECIES, a, i).add(FloatVector.fromArray(SPECIES, b, i)).intoArray(out, i);
            }
            if (i < end) {
                VectorMask<Float> valid = Vectors.firstLanes(end - i);
                FloatVector.fromArray(SPECIES, a, i, valid).add(FloatVector.fromArray(SPECIES, b, i, valid))
                        .intoArray(out, i, valid);
            }
        });
    }

    /**
     * out[plane, :] = scale[plane] · x[plane, :]: x [N, C, H, W] times scale [N, C, 1, 1]. A tiny
     * squeeze-excite gate makes subnormal products, flushed to zero (see {@link Vectors}).
     */
    public static CpuKernel scalePlanes(float[] scale, float[] x, float[] out, int planes, int spatial) {
        return workers -> Split.ranges(workers, planes, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                FloatVector s = FloatVector.broadcast(SPECIES, scale[plane]);
                int start = plane * spatial;
                int end = start + spatial;
                int i = start;
                for (; i + LANES <= end; i += LANES) {
                    FloatVector v = s.mul(FloatVector.fromArray(SPECIES, x, i));
                    v.blend(0f, v.abs().lt(Float.MIN_NORMAL)).intoArray(out, i);
                }
                if (i < end) {
                    VectorMask<Float> valid = Vectors.firstLanes(end - i);
                    FloatVector v = s.mul(FloatVector.fromArray(SPECIES, x, i, valid));
                    v.blend(0f, v.abs().lt(Float.MIN_NORMAL)).intoArray(out, i, valid);
                }
            }
        });
    }

    /**
     * out[plane] = mean of x[plane, :]: four running sums of vectors (one chain waited on the add's
     * latency every vector), then their lanes in a fixed order. The lanes go through one array per
     * range: an array made per plane cost more than the sums on 7x7 maps (b0's 1152@7: 0.023 ms).
     */
    public static CpuKernel globalAvgPool(float[] x, float[] out, int planes, int spatial) {
        return workers -> Split.ranges(workers, planes, (from, to) -> {
            float[] lanes = Scratch.tile(LANES);
            for (int plane = from; plane < to; plane++) {
                out[plane] = planeMean(x, plane * spatial, spatial, lanes);
            }
        });
    }

    /**
     * The mean of x[start, start + spatial), summed in a fixed order ({@code lanes}: a vector of
     * scratch): {@link #globalAvgPool}'s, and the depthwise kernels' that pool each plane they
     * finish while it is in L1 ({@code Passes.fuseSqueezePools}), with the same bits.
     */
    static float planeMean(float[] x, int start, int spatial, float[] lanes) {
        int end = start + spatial;
        FloatVector s0 = FloatVector.zero(SPECIES), s1 = s0, s2 = s0, s3 = s0;
        int i = start;
        for (; i + 4 * LANES <= end; i += 4 * LANES) {
            s0 = s0.add(FloatVector.fromArray(SPECIES, x, i));
            s1 = s1.add(FloatVector.fromArray(SPECIES, x, i + LANES));
            s2 = s2.add(FloatVector.fromArray(SPECIES, x, i + 2 * LANES));
            s3 = s3.add(FloatVector.fromArray(SPECIES, x, i + 3 * LANES));
        }
        for (; i + LANES <= end; i += LANES) {
            s0 = s0.add(FloatVector.fromArray(SPECIES, x, i));
        }
        if (i < end) {
            s1 = s1.add(FloatVector.fromArray(SPECIES, x, i, Vectors.firstLanes(end - i)));
        }
        s0.add(s1).add(s2.add(s3)).intoArray(lanes, 0);
        return Vectors.sumLanes(lanes, 0) / spatial;
    }
}
