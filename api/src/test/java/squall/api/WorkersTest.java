package squall.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkersTest {
    @Test
    void everyTaskRunsOnceAcrossManyJobs() {
        Workers w = Workers.of(3);
        for (int job = 0; job < 2000; job++) {
            AtomicIntegerArray hits = new AtomicIntegerArray(1 + job % 37);
            w.forEach(hits.length(), hits::incrementAndGet);
            for (int i = 0; i < hits.length(); i++) {
                assertEquals(1, hits.get(i), "job " + job + " task " + i);
            }
        }
    }

    @Test
    void withTwoThreadsTheCallerRunsAFrontRangeAndTheHelperTheRest() {
        Workers w = Workers.of(2);
        Thread caller = Thread.currentThread();
        for (int job = 0; job < 2000; job++) {
            AtomicIntegerArray hits = new AtomicIntegerArray(1 + job % 37);
            boolean[] byCaller = new boolean[hits.length()];
            w.forEach(hits.length(), i -> {
                hits.incrementAndGet(i);
                byCaller[i] = Thread.currentThread() == caller;
            });
            for (int i = 0; i < hits.length(); i++) {
                assertEquals(1, hits.get(i), "job " + job + " task " + i);
                // Tasks the helper ran never come before one the caller ran.
                assertTrue(i == 0 || byCaller[i - 1] || !byCaller[i], "job " + job + " task " + i);
            }
        }
    }

    /**
     * Helpers are not woken: after a job they spin, then nap and look for the next one, and end
     * after an idle second. Both after a nap and after a restart, the helper must take its share:
     * the caller's task waits for the helper's.
     */
    @Test
    void aHelperFindsTheNextJobAfterNappingAndAfterEnding() throws InterruptedException {
        Workers w = Workers.of(2);
        Thread caller = Thread.currentThread();
        for (long pauseMs : new long[] {0, 30, 1300}) {
            Thread.sleep(pauseMs);
            var helperRan = new java.util.concurrent.CountDownLatch(1);
            boolean[] waited = new boolean[1];
            w.forEach(2, i -> {
                if (i == 0) {
                    try {
                        waited[0] = helperRan.await(5, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                } else if (Thread.currentThread() != caller) {
                    helperRan.countDown();
                }
            });
            assertTrue(waited[0], "after a pause of " + pauseMs + " ms the helper did not run task 1");
        }
    }

    @Test
    void aTaskThatCallsForEachRunsItsInnerTasksToo() {
        Workers w = Workers.of(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(64);
        w.forEach(8, outer -> w.forEach(8, inner -> hits.incrementAndGet(outer * 8 + inner)));
        for (int i = 0; i < hits.length(); i++) {
            assertEquals(1, hits.get(i));
        }
    }

    @Test
    void aFailingTaskFailsTheCallerAfterTheOthersFinish() {
        Workers w = Workers.of(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(16);
        var boom = new IllegalStateException("task 5");
        var thrown = assertThrows(IllegalStateException.class, () -> w.forEach(16, i -> {
            hits.incrementAndGet(i);
            if (i == 5) {
                throw boom;
            }
        }));
        assertSame(boom, thrown);
        for (int i = 0; i < hits.length(); i++) {
            assertEquals(1, hits.get(i));
        }
        // still usable afterwards
        AtomicIntegerArray again = new AtomicIntegerArray(16);
        w.forEach(16, again::incrementAndGet);
        assertEquals(16, java.util.stream.IntStream.range(0, 16).map(again::get).sum());
    }

    @Test
    void parallelCallersEachGetAllTheirTasksRun() throws InterruptedException {
        Workers w = Workers.of(2);
        Thread[] callers = new Thread[4];
        AtomicIntegerArray totals = new AtomicIntegerArray(callers.length);
        for (int c = 0; c < callers.length; c++) {
            int caller = c;
            callers[c] = new Thread(() -> {
                for (int job = 0; job < 500; job++) {
                    w.forEach(10, i -> totals.incrementAndGet(caller));
                }
            });
            callers[c].start();
        }
        for (Thread t : callers) {
            t.join();
        }
        for (int c = 0; c < callers.length; c++) {
            assertEquals(5000, totals.get(c));
        }
    }
}
