package squall.ops.cpu;

/**
 * Per-thread scratch arrays for kernels (packed strips of B): grown on demand and kept, so a run
 * allocates nothing. A worker thread runs one task at a time and a task does not fork, so a
 * task's scratch is never shared.
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
}
