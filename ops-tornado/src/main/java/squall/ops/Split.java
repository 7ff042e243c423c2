package squall.ops;

import squall.api.Workers;

/** Splits a range of independent work items over {@link Workers} in contiguous chunks. */
public final class Split {
    /** Work items [from, to). */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    /** Chunks per thread: enough to even out uneven items, few enough to keep task overhead small. */
    private static final int CHUNKS_PER_THREAD = 4;

    private Split() {
    }

    public static void ranges(Workers workers, int items, Range range) {
        int chunks = Math.min(items, workers.count() * CHUNKS_PER_THREAD);
        if (chunks <= 1) {
            range.run(0, items);
            return;
        }
        workers.forEach(chunks, chunk -> range.run(
                (int) ((long) items * chunk / chunks), (int) ((long) items * (chunk + 1) / chunks)));
    }
}
