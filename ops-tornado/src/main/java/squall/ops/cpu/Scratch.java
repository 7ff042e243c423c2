package squall.ops.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-thread scratch for kernels (packed strips of B, depthwise phase planes and channel tiles):
 * one array of each kind per thread ({@link #floats}, {@link #tile}, {@link #aligned}), grown on
 * demand and kept, so a run allocates nothing here. A worker thread runs one task at a time, a task
 * does not fork, and a task takes each kind once, so no two users of an array overlap. Two exceptions, also safe: {@code GemmConv} and {@code ExpandDepthwise} take
 * the calling thread's aligned scratch before a forEach and share it with that forEach's tasks (B
 * packed once for all threads), which take no aligned scratch of their own; {@code NchwcConv}
 * does the same with the calling thread's {@link #floats} (the padded image).
 */
final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> TILES = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<MemorySegment> ALIGNED = ThreadLocal.withInitial(() -> MemorySegment.NULL);
    /** A cache line, and one AVX-512 vector: loads from such an address never split a line. */
    static final int ALIGNMENT = 64;

    private Scratch() {
    }

    /** At least {@code size} floats, contents undefined. */
    static float[] floats(int size) {
        return grown(FLOATS, size);
    }

    /**
     * At least {@code size} floats, contents undefined, apart from {@link #floats}: a register tile
     * or a few vectors of lane sums, which a task may use beside its {@link #floats}. Made per task,
     * these came to 0.2-0.4 MB a run (mobilenet_v3_small, efficientnet_b0: Benchmark's "allocated").
     */
    static float[] tile(int size) {
        return grown(TILES, size);
    }

    private static float[] grown(ThreadLocal<float[]> local, int size) {
        float[] floats = local.get();
        if (floats.length < size) {
            floats = new float[size];
            local.set(floats);
        }
        return floats;
    }

    /**
     * At least {@code size} floats off the heap, starting on a {@link #ALIGNMENT}-byte boundary,
     * contents undefined. A heap array starts wherever the allocator put it (16 bytes past an
     * 8-byte-aligned object), so a vector load at a multiple of 16 floats split a cache line in
     * most JVM runs: packed GEMM strips in aligned memory made 256->256 @28 and 512->512 @14 run
     * at 171 GFLOP/s instead of 127-152 (2 threads), and took out most of the 5-10% run-to-run
     * spread of whole networks. Freed by the GC once the thread drops it.
     */
    static MemorySegment aligned(int size) {
        MemorySegment segment = ALIGNED.get();
        if (segment.byteSize() < 4L * size) {
            segment = Arena.ofAuto().allocate(4L * size, ALIGNMENT);
            ALIGNED.set(segment);
        }
        return segment;
    }

    /** At least {@code size} floats, the first {@code size} zero. */
    static float[] zeroed(int size) {
        float[] floats = floats(size);
        java.util.Arrays.fill(floats, 0, size, 0f);
        return floats;
    }
}
