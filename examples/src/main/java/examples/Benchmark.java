package examples;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import squall.api.CompiledModel;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.backend.jvm.JvmCompiledModel;
import squall.networks.onnx.OnnxExporter;

/** Latency and throughput of a network on a backend, and optionally where the time goes per node. */
@Command(name = "squall bench", mixinStandardHelpOptions = true, version = Tool.VERSION, sortOptions = false,
        description = {"Benchmark a network: warm up, then time --runs runs of one batch.",
                "Reports latency median/p10/p90, images per second, GFLOP/s (2 FLOPs per multiply-add)",
                "and the Java heap allocated per timed run."})
public final class Benchmark extends Tool {
    @Option(names = "--model", paramLabel = "NAME|FILE.onnx", required = true, completionCandidates = NetworkNames.class,
            description = "A network (${COMPLETION-CANDIDATES}) or an ONNX file with its weights inside.")
    String model;

    @Mixin
    ModelOptions options;

    @Option(names = "--resolution", paramLabel = "R",
            description = "Input height and width (default: the network's native resolution, an ONNX model's input "
                    + "size, else 224).")
    Integer resolution;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "1", description = "Images per run (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--warmup", paramLabel = "S", defaultValue = "2", description = "Seconds of warm-up runs (default: ${DEFAULT-VALUE}).")
    double warmup;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "20", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--json", description = "Print the results as JSON.")
    boolean json;

    @Option(names = "--profile", description = "Also time every step of the plan, with its GFLOP/s (jvm backend).")
    boolean profile;

    @Option(names = "--compare", paramLabel = "ort",
            description = {"Also run the same graph, weights, input, batch and threads in ONNX Runtime, check the",
                    "outputs agree, and print both timings and Squall/ONNX Runtime ratios."})
    String compare;

    /** One step of the plan: its time per run, share of the steps' sum, multiply-adds per run and their rate. */
    record NodeTime(String name, String op, double milliseconds, double share, long multiplyAdds,
                    double gflopsPerSecond) {
    }

    /**
     * ONNX Runtime on the same graph, weights, input, batch and thread count. The ratios are
     * Squall's over ONNX Runtime's: a latency ratio above 1 and a throughput ratio below 1 mean
     * Squall is slower.
     */
    record Comparison(String engine, String version, String onnxFile, int threads, String protocol, double medianMs,
                      double p10Ms, double p90Ms, double imagesPerSecond, double gflopsPerSecond, double latencyRatio,
                      double throughputRatio, double maxRelativeDifference, double tolerance, boolean outputsAgree) {
    }

    /** Both engines' latencies (ms) from one alternating measurement, and how far their outputs are apart. */
    private record Measured(double[] squallMs, double[] ortMs, double maxRelativeDifference, String onnxFile) {
    }

    record Report(String model, String backend, int threads, int resolution, int batch, int runs, double medianMs,
                  double p10Ms, double p90Ms, double imagesPerSecond, double gflopsPerSecond, long multiplyAddsPerImage,
                  List<NodeTime> profile, Comparison comparison, long allocatedBytesPerRun) {
    }

    /** Timed runs per engine in one block of --compare's alternation. */
    static final int BLOCK = 5;

    /**
     * Largest max |Squall - ORT| / max |ORT| taken as the same computation. float32 rounding alone
     * comes near 1e-3 on a deep network with random weights: EfficientNetV2-S at 224, batch 8, is
     * 1.3e-3 from a float64 PyTorch run in ONNX Runtime and 4e-4 in Squall; MobileNets stay near
     * 1e-6. A wrong op, weight or padding shows as 1e-2 and more.
     */
    static final double AGREEMENT = 5e-3;

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Benchmark(), args, out, err);
    }

    @Override
    public Integer call() {
        if (batch < 1 || runs < 1 || warmup < 0) {
            throw new SquallException("--batch and --runs must be at least 1 and --warmup at least 0; got batch "
                    + batch + ", runs " + runs + ", warmup " + warmup);
        }
        if (compare != null && !compare.equals("ort") && !compare.equals("onnxruntime")) {
            throw new SquallException("--compare " + compare + ": the one engine to compare with is ort (ONNX Runtime)");
        }
        LoadedModel loaded = LoadedModel.load(model, options, this);
        loaded.checkBatch(batch, "--batch");
        int r = resolution != null ? resolution : loaded.resolution();
        Operators operators = Operators.discover();
        long multiplyAdds = Summary.summarize(loaded.graph(), batch, r, operators).totalMultiplyAdds() / batch;
        Tensor input = randomInput(Shape.of(batch, 3, r, r));
        int threads = options.threads != null ? options.threads : Runtime.getRuntime().availableProcessors();
        double[] latencies;
        String backend;
        Measured measured = null;
        List<NodeTime> nodes = null;
        try (CompiledModel compiled = loaded.compile(options)) {
            backend = compiled.backend();
            if (profile && !backend.equals("jvm")) {
                err.println("warning: --profile is not supported by backend " + backend + "; timing whole runs only");
            }
            if (compare == null) {
                warm(() -> compiled.run(input), backend);
                latencies = timeRuns(() -> compiled.run(input));
            } else {
                measured = measureWithOnnxRuntime(loaded, compiled, input, threads);
                latencies = measured.squallMs();
            }
            if (profile && compiled instanceof JvmCompiledModel jvm) {
                nodes = profileNodes(jvm, input);
            }
        }
        double[] sorted = latencies.clone();
        Arrays.sort(sorted);
        double median = percentile(sorted, 50);
        Comparison comparison = measured == null ? null : compare(measured, median, threads, multiplyAdds);
        Report report = new Report(loaded.description(), backend, threads, r, batch, runs,
                median, percentile(sorted, 10), percentile(sorted, 90), batch / (median / 1e3),
                2.0 * multiplyAdds * batch / (median / 1e3) / 1e9, multiplyAdds, nodes, comparison,
                allocatedRuns == 0 ? -1 : allocatedBytes / allocatedRuns);
        if (json) {
            printJson(report);
        } else {
            print(report);
        }
        if (comparison != null && !comparison.outputsAgree()) {
            err.printf("error: Squall's and ONNX Runtime's outputs differ: max |difference| / max |output| = %.3g, "
                    + "above %.0e, so the timings are not of the same computation%n",
                    comparison.maxRelativeDifference(), comparison.tolerance());
            return 1;
        }
        return 0;
    }

    /** Runs until --warmup seconds have passed, at least once. */
    private void warm(Runnable run, String engine) {
        progress("warming up " + model + " on " + engine + " for " + warmup + " s");
        long warmupEnd = System.nanoTime() + (long) (warmup * 1e9);
        do {
            run.run();
        } while (System.nanoTime() < warmupEnd);
    }

    /** --runs timed runs one after another, in milliseconds. */
    private double[] timeRuns(Runnable run) {
        double[] latencies = new double[runs];
        long lastNote = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            long[][] allocated = allocationSnapshot();
            long start = System.nanoTime();
            run.run();
            long end = System.nanoTime();
            countAllocation(allocated);
            latencies[i] = millis(end - start);
            if (end - lastNote > 5_000_000_000L) {
                progress("run " + (i + 1) + " of " + runs);
                lastNote = end;
            }
        }
        return latencies;
    }

    /**
     * The same graph, weights and input in ONNX Runtime with as many intra-op threads: the user's
     * .onnx file, else the model exported by {@link OnnxExporter} to a temporary file. Both engines
     * warm up, their outputs are compared, then they are timed in alternating blocks (see
     * {@link #timeAlternating}).
     */
    private Measured measureWithOnnxRuntime(LoadedModel loaded, CompiledModel compiled, Tensor input, int threads) {
        Path file = loaded.onnxFile();
        Path exported = null;
        try {
            if (file == null) {
                exported = Files.createTempFile("squall-bench-", ".onnx");
                OnnxExporter.write(loaded.model(), exported);
                file = exported;
            }
            try (OnnxRuntimeSession ort = OnnxRuntimeSession.open(file, threads, input)) {
                warm(() -> compiled.run(input), compiled.backend());
                warm(ort::run, "onnxruntime");
                Tensor squallOutput = compiled.run(input);
                Tensor ortOutput = ort.run();
                if (squallOutput.shape().size() != ortOutput.shape().size()) {
                    throw new SquallException("Squall's output is " + squallOutput.shape() + " but ONNX Runtime's is "
                            + ortOutput.shape() + " for " + file + "; they do not run the same graph");
                }
                double difference = maxRelativeDifference(squallOutput.data(), ortOutput.data());
                double[][] both = timeAlternating(() -> compiled.run(input), ort::run);
                return new Measured(both[0], both[1], difference,
                        exported == null ? file.toString() : "the model exported by OnnxExporter (temporary file)");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (exported != null) {
                exported.toFile().delete();
            }
        }
    }

    /** ONNX Runtime's figures and Squall's over them. */
    private Comparison compare(Measured measured, double squallMedianMs, int threads, long multiplyAdds) {
        double[] sorted = measured.ortMs().clone();
        Arrays.sort(sorted);
        double median = percentile(sorted, 50);
        double imagesPerSecond = batch / (median / 1e3);
        return new Comparison("onnxruntime", OnnxRuntimeSession.version(), measured.onnxFile(), threads,
                "alternating blocks of up to " + BLOCK + " timed runs per engine, each block after a " + SETTLE_MS + " ms pause and one untimed run, "
                        + "the engine going first alternating",
                median, percentile(sorted, 10), percentile(sorted, 90), imagesPerSecond,
                2.0 * multiplyAdds * imagesPerSecond / 1e9, squallMedianMs / median,
                batch / (squallMedianMs / 1e3) / imagesPerSecond, measured.maxRelativeDifference(), AGREEMENT,
                measured.maxRelativeDifference() <= AGREEMENT);
    }

    /**
     * --runs timed runs of each engine in alternating blocks, so that a slow stretch of a shared
     * machine falls on both. The untimed run that opens each block lets the other engine's threads
     * go idle (ONNX Runtime's spin for a while after a run) and brings this engine's weights back
     * into cache; which engine opens a round alternates.
     */
    private double[][] timeAlternating(Runnable squall, Runnable ort) {
        Runnable[] engines = {squall, ort};
        double[][] latencies = new double[2][runs];
        int done = 0;
        for (int round = 0; done < runs; round++) {
            int block = Math.min(BLOCK, runs - done);
            for (int k = 0; k < 2; k++) {
                int engine = (round + k) % 2;
                settle();
                engines[engine].run();
                for (int i = 0; i < block; i++) {
                    long[][] allocated = engine == 0 ? allocationSnapshot() : null;
                    long start = System.nanoTime();
                    engines[engine].run();
                    latencies[engine][done + i] = millis(System.nanoTime() - start);
                    countAllocation(allocated);
                }
            }
            done += block;
            progress("run " + done + " of " + runs + " per engine");
        }
        return latencies;
    }

    /** Java heap bytes allocated during Squall's timed runs (all threads), and how many runs. */
    private long allocatedBytes;
    private int allocatedRuns;

    /**
     * Each live thread's id and the heap bytes it has allocated so far (HotSpot's per-thread
     * counters), or null where the JVM does not count them. Per thread, not the JVM's total
     * (getTotalThreadAllocatedBytes): that jumped by 3 GB within ten runs in 2 of 5
     * efficientnet_v2_s batch-8 benchmarks, apparently as an idle thread ended; threads alive at
     * both ends of a run give the same figure every time.
     */
    private static long[][] allocationSnapshot() {
        if (java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean bean
                && bean.isThreadAllocatedMemorySupported() && bean.isThreadAllocatedMemoryEnabled()) {
            long[] ids = bean.getAllThreadIds();
            return new long[][] {ids, bean.getThreadAllocatedBytes(ids)};
        }
        return null;
    }

    /** Adds what the threads alive at {@code before} ({@link #allocationSnapshot()}) allocated since. */
    private void countAllocation(long[][] before) {
        if (before == null) {
            return;
        }
        var bean = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long[] after = bean.getThreadAllocatedBytes(before[0]);
        for (int t = 0; t < after.length; t++) {
            if (before[1][t] >= 0 && after[t] >= 0) {
                allocatedBytes += after[t] - before[1][t];
            }
        }
        allocatedRuns++;
    }

    /**
     * A pause before each block. Both engines' worker threads spin for a while after a run before
     * they park (ONNX Runtime's intra-op pool, Squall's Workers): without the pause the engine that
     * just ran keeps one of the two cores busy during the other's block, which doubled both
     * engines' latencies on 2 cores.
     */
    private static void settle() {
        try {
            Thread.sleep(SETTLE_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static final long SETTLE_MS = 200;

    /**
     * max |a - b| over max |b|: the error relative to the output's scale, since an element-wise
     * ratio explodes at logits near zero.
     */
    static double maxRelativeDifference(float[] a, float[] b) {
        double difference = 0;
        double scale = 0;
        for (int i = 0; i < a.length; i++) {
            difference = Math.max(difference, Math.abs((double) a[i] - b[i]));
            scale = Math.max(scale, Math.abs((double) b[i]));
        }
        return scale == 0 ? difference : difference / scale;
    }

    private void print(Report report) {
        if (report.profile() != null) {
            int nameWidth = report.profile().stream().mapToInt(n -> n.name().length()).max().orElse(4);
            String format = "%-" + nameWidth + "s  %-16s %10.3f ms %6.1f%%";
            report.profile().forEach(n -> out.println(String.format(format, n.name(), n.op(), n.milliseconds(),
                    100 * n.share()) + (n.multiplyAdds() > 0 ? String.format(" %7.1f GFLOP/s", n.gflopsPerSecond())
                    : "")));
            Map<String, Double> byOp = new java.util.TreeMap<>();
            report.profile().forEach(n -> byOp.merge(n.op(), n.milliseconds(), Double::sum));
            double sum = byOp.values().stream().mapToDouble(Double::doubleValue).sum();
            out.printf("sum of steps: %.2f ms; by op: %s%n", sum, byOp.entrySet().stream()
                    .sorted(Map.Entry.comparingByValue(java.util.Comparator.reverseOrder()))
                    .map(e -> String.format("%s %.1f%%", e.getKey(), 100 * e.getValue() / Math.max(sum, 1e-9)))
                    .collect(java.util.stream.Collectors.joining(", ")));
        }
        out.printf("%s on %s (%d threads), batch %d at %dx%d, %d runs%n", report.model(), report.backend(),
                report.threads(), report.batch(), report.resolution(), report.resolution(), report.runs());
        out.printf("latency: median %.2f ms, p10 %.2f ms, p90 %.2f ms%n", report.medianMs(), report.p10Ms(),
                report.p90Ms());
        out.printf("throughput: %.1f images/s, %.2f GFLOP/s (%.3f GMAC per image)%n", report.imagesPerSecond(),
                report.gflopsPerSecond(), report.multiplyAddsPerImage() / 1e9);
        if (report.allocatedBytesPerRun() >= 0) {
            // Outputs, jobs and lambdas come to tens of KB; a kernel whose vectors C2 left
            // boxed (a vector passed to a call it did not inline, an intrinsic it could not apply)
            // allocates hundreds of KB more a run (ops-tornado/CPU-KERNELS.md, round 13).
            out.printf("allocated: %.1f KB per timed run on the Java heap%n", report.allocatedBytesPerRun() / 1e3);
        }
        Comparison c = report.comparison();
        if (c != null) {
            out.printf("%s %s (%d intra-op threads, 1 inter-op, all optimizations), same input, running %s%n",
                    c.engine(), c.version(), c.threads(), c.onnxFile());
            out.printf("latency: median %.2f ms, p10 %.2f ms, p90 %.2f ms%n", c.medianMs(), c.p10Ms(), c.p90Ms());
            out.printf("throughput: %.1f images/s, %.2f GFLOP/s%n", c.imagesPerSecond(), c.gflopsPerSecond());
            out.printf("squall/onnxruntime: latency %.2fx, throughput %.2fx (median latency ratio above 1 and "
                    + "throughput ratio below 1: Squall slower)%n", c.latencyRatio(), c.throughputRatio());
            // On a shared machine a few slow stretches move the medians; the fastest tenth of each
            // engine's runs is the least disturbed (round 14: medians 1.3x apart, p10s within 3%).
            out.printf("squall/onnxruntime at p10: latency %.2fx%n", report.p10Ms() / c.p10Ms());
            out.printf("outputs %s: max |squall - onnxruntime| / max |onnxruntime| = %.2e (tolerance %.0e)%n",
                    c.outputsAgree() ? "agree" : "DIFFER", c.maxRelativeDifference(), c.tolerance());
            out.println("timing: " + c.protocol());
        }
    }

    /** Nearest-rank percentile of sorted values. */
    static double percentile(double[] sorted, double percent) {
        int rank = (int) Math.ceil(percent / 100 * sorted.length);
        return sorted[Math.clamp(rank - 1, 0, sorted.length - 1)];
    }

    private static Tensor randomInput(Shape shape) {
        SplittableRandom random = new SplittableRandom(1);
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (random.nextDouble() * 4 - 2);
        }
        return new Tensor(shape, data);
    }

    /**
     * Times every step of the jvm backend's own plan for this input (after its passes, buffers
     * shared by liveness, weights packed once) over several runs of the warm model, so the
     * per-node times add up to a run's time.
     */
    private List<NodeTime> profileNodes(JvmCompiledModel compiled, Tensor input) {
        List<Node> steps = compiled.steps(input.shape());
        long[] multiplyAdds = compiled.stepMultiplyAdds(input.shape());
        long[] nanos = new long[steps.size()];
        int passes = Math.max(10, runs);
        progress("profiling " + steps.size() + " steps over " + passes + " runs");
        for (int pass = 0; pass < passes; pass++) {
            compiled.profile(input, nanos);
        }
        long total = Math.max(1, Arrays.stream(nanos).sum());
        List<NodeTime> times = new ArrayList<>();
        for (int i = 0; i < nanos.length; i++) {
            Node node = steps.get(i);
            double milliseconds = millis(nanos[i]) / passes;
            times.add(new NodeTime(node.name(), node.op(), milliseconds, (double) nanos[i] / total, multiplyAdds[i],
                    2.0 * multiplyAdds[i] / Math.max(milliseconds, 1e-9) / 1e6));
        }
        return times;
    }
}
