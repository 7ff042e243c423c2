package squall.ops.cpu;

/**
 * Per-thread scratch for kernels (packed strips of B, depthwise phase planes and channel tiles):
 * one array per thread, grown on demand and kept, so a run allocates nothing. A worker thread runs
 * one task at a time, a task does not fork, and a task takes its scratch once, so no two users of
 * the array overlap.
 */
final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);

    private Scratch() {
    }

    /** At least {@code size} floats, contents undefined. */
    static float[] floats(int size) {
        float[] floats = FLOATS.get();
        if (floats.length < size) {
            floats = new float[size];
            FLOATS.set(floats);
        }
        return floats;
    }

    /** At least {@code size} floats, the first {@code size} zero. */
    static float[] zeroed(int size) {
        float[] floats = floats(size);
        java.util.Arrays.fill(floats, 0, size, 0f);
        return floats;
    }
}
