package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Tensor;

/**
 * Many inferences of one small model: heap in use after a full GC does not grow. Runs:
 * {@code -Dsquall.soak.runs} (default 10,000). The median of the used-heap samples over the first
 * and the last tenth of the runs may differ by at most {@link #TOLERANCE_BYTES}: a leak of even
 * 1 KB per run would show as 10 MB over 10,000 runs.
 */
class SoakTest {
    static final int RUNS = Integer.getInteger("squall.soak.runs", 10_000);
    /** 4 MB: G1's after-GC figure moves by a region or two (1-2 MB) with nothing leaking. */
    static final long TOLERANCE_BYTES = 4L << 20;

    @Test
    void heapDoesNotGrowOverManyRuns() {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        int sampleEvery = Math.max(1, RUNS / 100);
        List<Long> samples = new ArrayList<>();
        long start = System.nanoTime();
        try (CompiledModel compiled = Backends.select("jvm").compile(ConcurrencyTest.model("mobilenet_v3_small"),
                ConcurrencyTest.OPERATORS, Map.of())) {
            Tensor[] inputs = {ConcurrencyTest.input(1, 1, 32), ConcurrencyTest.input(2, 1, 32)};
            float[][] warm = new float[2][];
            for (int run = 0; run < RUNS; run++) {
                Tensor out = compiled.run(inputs[run % 2]);
                if (run == RUNS / 2) {
                    warm[0] = compiled.run(inputs[0]).data();
                    warm[1] = compiled.run(inputs[1]).data();
                }
                if (run % sampleEvery == 0) {
                    System.gc();
                    samples.add(memory.getHeapMemoryUsage().getUsed());
                }
                if (run == RUNS - 1) {
                    // still computing the same thing at the end (once warm, see DeterminismTest)
                    assertArrayEquals(warm[run % 2], out.data(), "last run");
                }
            }
        }
        int tenth = Math.max(1, samples.size() / 10);
        long first = median(samples.subList(0, tenth));
        long last = median(samples.subList(samples.size() - tenth, samples.size()));
        System.out.printf("soak: %d runs in %.1f s; used heap after GC, median of first and last %d samples: "
                + "%.1f MB -> %.1f MB%n", RUNS, (System.nanoTime() - start) / 1e9, tenth, first / 1e6, last / 1e6);
        assertTrue(last - first <= TOLERANCE_BYTES, "heap after GC grew from " + first + " to " + last + " bytes over "
                + RUNS + " runs (tolerance " + TOLERANCE_BYTES + ")");
    }

    private static long median(List<Long> values) {
        long[] sorted = values.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
