package squall.api;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * The threads a JVM-backend run may use. {@link #forEach} splits {@code tasks} independent pieces
 * of work over at most {@link #count()} threads and returns when all are done. One Workers is
 * shared by every model that uses the same pool, so parallel callers do not oversubscribe cores.
 *
 * <p>A network runs ~150 short kernels one after another, so the cost of one fork/join round trip
 * matters (a ForkJoinPool invoke measured 10-15 µs on 2 cores). Here the calling thread works too,
 * and {@code count - 1} persistent helpers claim task indices from a shared counter; a helper spins
 * briefly after a job (the next kernel usually follows within microseconds), then naps in short
 * timed parks, looking for a job after each, and ends after an idle second (it is started again on
 * the next job). Only one caller at a time gets the
 * helpers: a caller that finds them busy, or a task that calls forEach, runs its tasks on its own
 * thread, so callers in parallel never oversubscribe the cores.
 */
public final class Workers {
    private static final Workers SEQUENTIAL = new Workers(1);
    /**
     * How long a helper spins for the next job before parking: long enough to stay awake between
     * the steps of a run. With 50 µs, helpers parked between steps and had to be woken for the
     * next: mobilenet_v3_small (about 100 short steps) took 2.6 ms back to back but 5.6 ms in
     * runs after a pause (bench --compare's blocks); with 500 µs, 2.8.
     */
    private static final long SPIN_NANOS = 500_000;
    /**
     * How long an idle helper naps before its thread ends: napping costs about 3% of a core here
     * (1000 wake-ups a second), so for one second after a job, not five as when helpers parked.
     */
    private static final long IDLE_EXIT_NANOS = 1_000_000_000L;
    /**
     * A helper idle for longer than its spin naps for 1/20 of its idle time so far, from 50 µs up to
     * 1 ms, and then looks for a job: a job finds it within 5% of the pause before it (at most 1 ms).
     * Parked and woken by the caller's unpark instead, as until round 24, the first runs after any
     * pause were slow on this VM for ~5 ms, slower than on one thread: mobilenet_v3_small at batch
     * 1, 200 ms idle before each group of six runs, six pairs of processes, took 4.2-5.9 ms (mean
     * 5.1) in its first run and 4.0-5.4 (4.7) in its second, against 2.4-3.4 steady; napping, 3.1-4.2
     * (3.5) and 2.5-3.6 (3.1). A helper restarted after exiting was as slow as a woken one
     * (CPU-KERNELS.md round 24).
     */
    private static final long NAP_MIN_NANOS = 50_000;
    private static final long NAP_MAX_NANOS = 1_000_000;

    private final int count;
    private final Helper[] helpers;
    private final AtomicBoolean busy = new AtomicBoolean();
    /** The latest job; helpers watch it change. */
    private volatile Job current;

    private Workers(int count) {
        this.count = count;
        this.helpers = new Helper[count - 1];
    }

    public static Workers sequential() {
        return SEQUENTIAL;
    }

    /** Workers over {@code threads} threads, the caller's included (1 means run on the calling thread). */
    public static Workers of(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        return threads == 1 ? SEQUENTIAL : new Workers(threads);
    }

    public int count() {
        return count;
    }

    /** Runs {@code task.accept(i)} for i in [0, tasks), in parallel when there is more than one thread. */
    public void forEach(int tasks, IntConsumer task) {
        if (count == 1 || tasks <= 1 || !busy.compareAndSet(false, true)) {
            for (int i = 0; i < tasks; i++) {
                task.accept(i);
            }
            return;
        }
        try {
            Job job = new Job(task, tasks, count == 2);
            current = job;
            startHelpers();
            job.work(false);
            job.awaitDone();
        } finally {
            busy.set(false);
        }
    }

    /** Called with the helpers held: restarts any that ended while idle (the others find the job themselves). */
    private void startHelpers() {
        for (int h = 0; h < helpers.length; h++) {
            Helper helper = helpers[h];
            if (helper == null || !helper.alive) {
                helper = new Helper();
                helpers[h] = helper;
                helper.start();
            }
        }
    }

    /**
     * One forEach: tasks are claimed one at a time by whichever thread is free. With two threads
     * the caller takes them from the front and the helper from the back, so each keeps the same end
     * of a range from one kernel to the next (the channels a layer wrote to its own L2 are the ones
     * it reads in the next); a shared counter of claims keeps them from overlapping. Claimed in
     * turn, the halves changed cores at random (mobilenet_v1's depthwise 512@14 took 0.033 ms
     * alone, 0.042-0.045 after the GEMM that wrote its input). From both ends: v1's depthwise 128@56
     * s2 0.093 -> 0.082 ms, 512@14 s2 0.051 -> 0.040; at batch 8 its 512->512 @14 4.8 -> 4.2 ms and
     * mobilenet_v3_small 19.3 -> 18.6 ms (minimum of 3-4 alternating runs each).
     */
    private static final class Job {
        private final IntConsumer task;
        private final int tasks;
        private final boolean fromBothEnds;
        private final AtomicInteger claimed = new AtomicInteger();
        private final AtomicInteger done = new AtomicInteger();
        private volatile Throwable failure;

        Job(IntConsumer task, int tasks, boolean fromBothEnds) {
            this.task = task;
            this.tasks = tasks;
            this.fromBothEnds = fromBothEnds;
        }

        /** Runs tasks until none is left; {@code fromEnd}: the helper of two, which takes them last first. */
        void work(boolean fromEnd) {
            int finished = 0;
            for (int claim = claimed.getAndIncrement(); claim < tasks; claim = claimed.getAndIncrement()) {
                // The k-th claim of the front thread is task k, of the back thread task tasks-1-k; with
                // two claimers and one claim per task, the two ends never meet on the same task.
                int i = !fromBothEnds ? claim : fromEnd ? tasks - 1 - finished : finished;
                try {
                    task.accept(i);
                } catch (Throwable t) {
                    if (failure == null) {
                        failure = t;
                    }
                }
                finished++;
            }
            if (finished > 0) {
                done.addAndGet(finished);
            }
        }

        /** Waits for tasks claimed by helpers, then rethrows the first failure on the caller's thread. */
        void awaitDone() {
            for (int spins = 0; done.get() < tasks; spins++) {
                if (spins < 10_000) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
            Throwable t = failure;
            if (t instanceof RuntimeException e) {
                throw e;
            }
            if (t instanceof Error e) {
                throw e;
            }
        }
    }

    private final class Helper extends Thread {
        volatile boolean alive = true;

        Helper() {
            super("squall-worker");
            setDaemon(true);
        }

        @Override
        public void run() {
            Job seen = null;
            long idleSince = System.nanoTime();
            while (true) {
                Job job = current;
                if (job != seen) {
                    seen = job;
                    job.work(true);
                    idleSince = System.nanoTime();
                    continue;
                }
                long idle = System.nanoTime() - idleSince;
                if (idle < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                if (idle > IDLE_EXIT_NANOS) {
                    alive = false;
                    return;
                }
                LockSupport.parkNanos(this, Math.clamp(idle / 20, NAP_MIN_NANOS, NAP_MAX_NANOS));
            }
        }
    }
}
