package examples;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.RandomWeights;
import squall.networks.onnx.OnnxExporter;

/**
 * One kind of layer against ONNX Runtime in the same JVM (a benchmark, not a test; CPU-KERNELS.md
 * round 24). A whole network's ratio mixes every kind of layer, and per-step profiles cannot be
 * compared across processes on a host whose speed swings 1.5x within a minute. Here a chain of
 * {@code pairs} blocks at one map size, each a 1x1 expansion C->E and a 1x1 projection E->C (kind
 * {@code pw}), or with a depthwise k x k conv on E between them (kind {@code dw3}, {@code dw5}),
 * runs in Squall's JVM backend and in ORT (Squall's exporter writes the graph), timed in
 * alternating blocks of 5 runs after a 200 ms pause and one untimed run, as {@code bench --compare}
 * times networks (after 30 ms pauses Squall's first runs following ORT's block were up to 1.7x
 * slow, likely from ORT's threads still spinning). Eight pairs make the chain long enough for the
 * backend's NCHWc islands. Run it from examples after {@code mvn install -DskipTests} (and one
 * {@code ./squall} command, which writes target/classpath.txt) with {@code java --add-modules
 * jdk.incubator.vector -cp target/classes:target/test-classes:$(cat target/classpath.txt)
 * examples.ChainBench KIND SIZE C E [activation] [threads] [batch] [seconds] [pairs]}, e.g.
 * {@code examples.ChainBench pw 28 32 192 none}.
 */
public final class ChainBench {
    /** The pause before each block, as {@code Benchmark}'s. */
    private static final long PAUSE_MS = 200;

    private ChainBench() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: ChainBench pw|dw3|dw5 SIZE C E [activation] [threads] [batch] [seconds] [pairs]");
            System.exit(2);
        }
        String kind = args[0];
        int size = Integer.parseInt(args[1]);
        int c = Integer.parseInt(args[2]);
        int e = Integer.parseInt(args[3]);
        String activation = args.length > 4 ? args[4] : "none";
        int threads = args.length > 5 ? Integer.parseInt(args[5]) : 2;
        int batch = args.length > 6 ? Integer.parseInt(args[6]) : 1;
        double seconds = args.length > 7 ? Double.parseDouble(args[7]) : 15;
        int pairs = args.length > 8 ? Integer.parseInt(args[8]) : 8;
        Model model = chain(kind, size, c, e, activation, pairs);
        Random random = new Random(7);
        float[] data = new float[batch * c * size * size];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat();
        }
        Tensor input = new Tensor(Shape.of(batch, c, size, size), data);
        Path file = Files.createTempFile("squall-chain-", ".onnx");
        try {
            OnnxExporter.write(model, file);
            try (CompiledModel squall = Backends.select("jvm").compile(model, Operators.discover(),
                    Map.of("threads", String.valueOf(threads)));
                 OnnxRuntimeSession ort = OnnxRuntimeSession.open(file, threads, input)) {
                double difference = Benchmark.maxRelativeDifference(squall.run(input).data(), ort.run().data());
                double[][] ms = time(() -> squall.run(input), ort::run, seconds);
                System.out.printf("%s %d->%d @%d, %s, batch %d, %d threads, %d pairs: squall %.3f ms, ORT %.3f ms, "
                                + "median ratio %.3f, p10 %.3f / %.3f = %.3f (%d runs each; max |difference| / max |ORT| %.1e)%n",
                        kind, c, e, size, activation, batch, threads, pairs, median(ms[0]), median(ms[1]),
                        median(ms[0]) / median(ms[1]), p10(ms[0]), p10(ms[1]), p10(ms[0]) / p10(ms[1]),
                        ms[0].length, difference);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** The chain with {@link RandomWeights}' weights, as {@code bench} gives a network without a checkpoint. */
    static Model chain(String kind, int size, int c, int e, String activation, int pairs) {
        int k = kind.equals("pw") ? 0 : Integer.parseInt(kind.substring(2));
        Attributes act = activation.equals("none") ? Attributes.EMPTY : Attributes.of("activation", activation);
        var b = Graph.builder("chain");
        String x = b.input("input", Shape.of(-1, c, size, size));
        for (int i = 0; i < pairs; i++) {
            x = b.op("conv2d", i + ".expand", act, x, b.parameter(i + ".expand.weight", e, c, 1, 1),
                    b.parameter(i + ".expand.bias", e));
            if (k > 0) {
                Attributes window = Attributes.of("padding", k / 2, "groups", e);
                x = b.op("conv2d", i + ".depthwise", activation.equals("none") ? window : window.with("activation", activation),
                        x, b.parameter(i + ".depthwise.weight", e, 1, k, k), b.parameter(i + ".depthwise.bias", e));
            }
            x = b.op("conv2d", i + ".project", Attributes.EMPTY, x, b.parameter(i + ".project.weight", c, e, 1, 1),
                    b.parameter(i + ".project.bias", c));
        }
        Graph graph = b.output(x).build();
        return Model.bind(graph, RandomWeights.generate(graph, 42), "random weights");
    }

    /** Warm-up for 2 s, then blocks of 5 timed runs per engine, the engine going first alternating. */
    private static double[][] time(Runnable squall, Runnable ort, double seconds) throws InterruptedException {
        Runnable[] engines = {squall, ort};
        long warm = System.nanoTime() + 2_000_000_000L;
        while (System.nanoTime() < warm) {
            squall.run();
            ort.run();
        }
        double[][] ms = new double[2][100_000];
        int n = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end && n + 5 <= ms[0].length) {
            for (int turn = 0; turn < 2; turn++) {
                int engine = n / 5 % 2 == 0 ? turn : 1 - turn;
                Thread.sleep(PAUSE_MS);
                engines[engine].run();
                for (int k = 0; k < 5; k++) {
                    long start = System.nanoTime();
                    engines[engine].run();
                    ms[engine][n + k] = (System.nanoTime() - start) / 1e6;
                }
            }
            n += 5;
        }
        return new double[][] {Arrays.copyOf(ms[0], n), Arrays.copyOf(ms[1], n)};
    }

    private static double median(double[] values) {
        return percentile(values, 50);
    }

    private static double p10(double[] values) {
        return percentile(values, 10);
    }

    /** {@link Benchmark#percentile}, the one {@code bench} reports, of unsorted values. */
    private static double percentile(double[] values, double percent) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return Benchmark.percentile(sorted, percent);
    }
}
