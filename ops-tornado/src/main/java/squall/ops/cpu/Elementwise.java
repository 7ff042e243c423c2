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

    /** out[plane] = mean of x[plane, :]. */
    public static CpuKernel globalAvgPool(float[] x, float[] out, int planes, int spatial) {
        return workers -> Split.ranges(workers, planes, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int start = plane * spatial;
                int end = start + spatial;
                FloatVector sum = FloatVector.zero(SPECIES);
                int i = start;
                for (; i + LANES <= end; i += LANES) {
                    sum = sum.add(FloatVector.fromArray(SPECIES, x, i));
                }
                if (i < end) {
                    sum = sum.add(FloatVector.fromArray(SPECIES, x, i, Vectors.firstLanes(end - i)));
                }
                float[] lanes = new float[LANES];
                sum.intoArray(lanes, 0);
                out[plane] = Vectors.sumLanes(lanes, 0) / spatial;
            }
        });
    }
}
