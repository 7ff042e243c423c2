package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Tensor;

/**
 * Same input, same bits, on the JVM backend with a fixed thread count, from a fresh model's first
 * run on: the CPU kernels sum vector lanes in a fixed order and compute exp from plain IEEE
 * operations, so code the JIT has not compiled yet rounds exactly as compiled code does. The
 * reference for "same" is the model's own first run: nobody else computes these random-weight logits.
 */
class DeterminismTest {
    private static final int RUNS = 200;

    /** The bits of a network's first (cold) run, checked equal to every run up to the 200th. */
    static float[] warmedOutput(CompiledModel compiled, Tensor in, String what) {
        float[] cold = compiled.run(in).data();
        for (int run = 2; run <= RUNS; run++) {
            assertArrayEquals(cold, compiled.run(in).data(), what + ": run " + run + " differs from the first run");
        }
        return cold;
    }

    static float maxRelativeDifference(float[] a, float[] b) {
        float scale = 0;
        float diff = 0;
        for (int i = 0; i < a.length; i++) {
            scale = Math.max(scale, Math.abs(a[i]));
            diff = Math.max(diff, Math.abs(a[i] - b[i]));
        }
        return diff / scale;
    }

    @ParameterizedTest
    @ValueSource(strings = {"1", "2"})
    void sameInputSameBitsRunAfterRun(String threads) {
        for (String network : new String[] {"mobilenet_v3_small", "efficientnet_b0"}) {
            try (CompiledModel compiled = Backends.select("jvm").compile(ConcurrencyTest.model(network),
                    ConcurrencyTest.OPERATORS, Map.of("threads", threads, "warmup", "0"))) {
                Tensor in = ConcurrencyTest.input(3, 2, 64);
                float[] reference = warmedOutput(compiled, in, network + " threads=" + threads);
                for (int run = 0; run < 50; run++) {
                    assertArrayEquals(reference, compiled.run(in).data(), network + " run " + run);
                }
            }
        }
    }

    /** What the README's error catalogue says about thread counts: measured, and bounded. */
    @Test
    void oneAndTwoThreadsAgree() {
        for (String network : new String[] {"mobilenet_v1", "mobilenet_v3_small", "efficientnet_b0"}) {
            Tensor in = ConcurrencyTest.input(4, 2, 64);
            float[][] outputs = new float[2][];
            for (int threads = 1; threads <= 2; threads++) {
                try (CompiledModel compiled = Backends.select("jvm").compile(ConcurrencyTest.model(network),
                        ConcurrencyTest.OPERATORS, Map.of("threads", String.valueOf(threads)))) {
                    outputs[threads - 1] = warmedOutput(compiled, in, network + " threads=" + threads);
                }
            }
            float diff = maxRelativeDifference(outputs[0], outputs[1]);
            System.out.printf("%s: 1 vs 2 threads %s (max difference %.2g of the largest logit)%n", network,
                    Arrays.equals(outputs[0], outputs[1]) ? "bit-identical" : "differ", diff);
            assertArrayEquals(outputs[0], outputs[1], network + ": 1 and 2 threads differ by " + diff);
        }
    }
}
