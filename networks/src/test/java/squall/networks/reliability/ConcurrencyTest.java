package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.RandomWeights;

/**
 * One compiled model shared by many threads: each run gives the bits a lone sequential run gives,
 * once warm (see DeterminismTest), and {@code close()} while runs are in flight lets them finish (or fail with a SquallException)
 * and makes every later run fail clearly. The reference is the same model run by one thread.
 */
class ConcurrencyTest {
    static final Operators OPERATORS = Operators.discover();
    private static final int THREADS = 16;

    /** A network with deterministic random weights (no checkpoint needed). */
    static Model model(String name) {
        Graph graph = Networks.build(name);
        return Model.bind(graph, RandomWeights.generate(graph, 2026), "RandomWeights(2026)");
    }

    /** A normalised-photo-like input: N(0, 1) values, distinct per seed. */
    static Tensor input(long seed, int batch, int size) {
        Random random = new Random(seed);
        float[] data = new float[batch * 3 * size * size];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) random.nextGaussian();
        }
        return new Tensor(Shape.of(batch, 3, size, size), data);
    }

    @Test
    void sixteenThreadsGetTheSequentialBits() throws Exception {
        try (CompiledModel compiled = Backends.select("jvm").compile(model("mobilenet_v3_small"), OPERATORS,
                Map.of("threads", "2"))) {
            List<Tensor> inputs = new ArrayList<>();
            List<float[]> sequential = new ArrayList<>();
            for (int i = 0; i < THREADS; i++) {
                // two batch sizes: two plans are made and used concurrently
                inputs.add(input(i, 1 + i % 2, 64));
                // after warm-up: a cold JVM's first runs differ in the last bits (DeterminismTest)
                sequential.add(DeterminismTest.warmedOutput(compiled, inputs.get(i), "input " + i));
            }
            // A kernel compiled late (warmed by a later input) can still move an earlier input's bits:
            // the reference is a whole sequential pass that repeats the pass before it.
            for (int pass = 0; ; pass++) {
                List<float[]> again = inputs.stream().map(in -> compiled.run(in).data()).toList();
                boolean same = true;
                for (int i = 0; i < THREADS; i++) {
                    same &= Arrays.equals(again.get(i), sequential.get(i));
                }
                sequential = again;
                if (same) {
                    break;
                }
                assertTrue(pass < 50, "sequential passes never repeat");
            }
            List<float[]> reference = sequential;
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Integer>> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int first = t;
                threads.add(pool.submit(() -> {
                    start.await();
                    for (int round = 0; round < 4; round++) {
                        // each thread walks the inputs from its own start, so different inputs overlap
                        for (int k = 0; k < THREADS; k += 3) {
                            int i = (first + k) % THREADS;
                            assertArrayEquals(reference.get(i), compiled.run(inputs.get(i)).data(),
                                    "input " + i + " on thread " + first + ", round " + round);
                        }
                    }
                    return first;
                }));
            }
            start.countDown();
            for (Future<Integer> f : threads) {
                f.get(5, TimeUnit.MINUTES); // rethrows a thread's assertion
            }
            pool.shutdown();
        }
    }

    @Test
    void closeDuringRunsFinishesThemOrFailsClearly() throws Exception {
        CompiledModel compiled = Backends.select("jvm").compile(model("mobilenet_v3_small"), OPERATORS,
                Map.of("threads", "2"));
        Tensor in = input(7, 1, 64);
        float[] reference = DeterminismTest.warmedOutput(compiled, in, "close test");
        AtomicInteger finished = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
        CountDownLatch running = new CountDownLatch(8);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        for (int t = 0; t < 8; t++) {
            pool.submit(() -> {
                running.countDown();
                while (true) {
                    try {
                        float[] out = compiled.run(in).data();
                        assertArrayEquals(reference, out, "a run that finishes is right");
                        finished.incrementAndGet();
                    } catch (SquallException e) {
                        if (!e.getMessage().contains("closed")) {
                            unexpected.add(e);
                        }
                        refused.incrementAndGet();
                        return; // after the first refusal; that later runs keep failing is checked below
                    } catch (Throwable e) {
                        unexpected.add(e);
                        return;
                    }
                }
            });
        }
        running.await();
        while (finished.get() < 16) {
            Thread.sleep(5);
        }
        compiled.close();
        pool.shutdown();
        assertTrue(pool.awaitTermination(2, TimeUnit.MINUTES), "runs did not stop after close()");
        assertTrue(unexpected.isEmpty(), () -> "unexpected: " + unexpected.peek());
        assertEquals(8, refused.get(), "every thread's next run after close() is refused");
        SquallException later = assertThrows(SquallException.class, () -> compiled.run(in));
        assertTrue(later.getMessage().contains("closed") && later.getMessage().contains("compile it again"),
                later.getMessage());
        compiled.close(); // a second close is harmless
    }
}
