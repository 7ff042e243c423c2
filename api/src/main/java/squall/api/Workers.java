package squall.api;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * The threads a JVM-backend run may use. {@link #forEach} splits {@code tasks} independent pieces
 * of work over at most {@link #count()} threads and returns when all are done. One Workers is
 * shared by every model that uses the same pool, so parallel callers do not oversubscribe cores.
 */
public final class Workers {
    private static final Workers SEQUENTIAL = new Workers(null, 1);

    private final ForkJoinPool pool;
    private final int count;

    private Workers(ForkJoinPool pool, int count) {
        this.pool = pool;
        this.count = count;
    }

    public static Workers sequential() {
        return SEQUENTIAL;
    }

    /** Workers over a pool of {@code threads} threads (1 means run on the calling thread). */
    public static Workers of(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        if (threads == 1) {
            return SEQUENTIAL;
        }
        return new Workers(new ForkJoinPool(threads), threads);
    }

    public int count() {
        return count;
    }

    /** Runs {@code task.accept(i)} for i in [0, tasks), in parallel when there is more than one thread. */
    public void forEach(int tasks, IntConsumer task) {
        if (pool == null || tasks <= 1) {
            for (int i = 0; i < tasks; i++) {
                task.accept(i);
            }
            return;
        }
        if (java.util.concurrent.ForkJoinTask.getPool() == pool) {
            new Split(task, 0, tasks).compute();
        } else {
            pool.invoke(new Split(task, 0, tasks));
        }
    }

    private static final class Split extends RecursiveAction {
        private final IntConsumer task;
        private final int from;
        private final int to;

        Split(IntConsumer task, int from, int to) {
            this.task = task;
            this.from = from;
            this.to = to;
        }

        @Override
        protected void compute() {
            if (to - from == 1) {
                task.accept(from);
                return;
            }
            int mid = (from + to) >>> 1;
            invokeAll(new Split(task, from, mid), new Split(task, mid, to));
        }
    }
}
