package examples;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import squall.api.CompiledModel;
import squall.api.CpuKernel;
import squall.api.Graph;
import squall.api.KernelCall;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;
import squall.ops.passes.Passes;
import squall.networks.Networks;

/** Latency and throughput of a network on a backend, and optionally where the time goes per node. */
@Command(name = "squall bench", mixinStandardHelpOptions = true, version = Tool.VERSION, sortOptions = false,
        description = {"Benchmark a network: warm up, then time --runs runs of one batch.",
                "Reports latency median/p10/p90, images per second and GFLOP/s (2 FLOPs per multiply-add)."})
public final class Benchmark extends Tool {
    @Option(names = "--model", paramLabel = "NAME", required = true, completionCandidates = NetworkNames.class,
            description = "One of: ${COMPLETION-CANDIDATES}.")
    String model;

    @Mixin
    ModelOptions options;

    @Option(names = "--resolution", paramLabel = "R",
            description = "Input height and width (default: the network's native resolution).")
    Integer resolution;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "1", description = "Images per run (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--warmup", paramLabel = "S", defaultValue = "2", description = "Seconds of warm-up runs (default: ${DEFAULT-VALUE}).")
    double warmup;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "20", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--json", description = "Print the results as JSON.")
    boolean json;

    @Option(names = "--profile", description = "Also time every node alone (jvm backend).")
    boolean profile;

    record NodeTime(String name, String op, double milliseconds, double share) {
    }

    record Report(String model, String backend, int threads, int resolution, int batch, int runs, double medianMs,
                  double p10Ms, double p90Ms, double imagesPerSecond, double gflopsPerSecond, long multiplyAddsPerImage,
                  List<NodeTime> profile) {
    }

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
        int r = resolution != null ? resolution : Networks.info(model).resolution();
        LoadedModel loaded = LoadedModel.load(model, options, this);
        Operators operators = Operators.discover();
        long multiplyAdds = Summary.summarize(loaded.graph(), r, operators).totalMultiplyAdds();
        Tensor input = randomInput(Shape.of(batch, 3, r, r));
        double[] latencies = new double[runs];
        String backend;
        try (CompiledModel compiled = loaded.compile(options)) {
            backend = compiled.backend();
            if (profile && !backend.equals("jvm")) {
                err.println("warning: --profile is not supported by backend " + backend + "; timing whole runs only");
            }
            progress("warming up " + model + " on " + backend + " for " + warmup + " s");
            long warmupEnd = System.nanoTime() + (long) (warmup * 1e9);
            do {
                compiled.run(input);
            } while (System.nanoTime() < warmupEnd);
            long lastNote = System.nanoTime();
            for (int i = 0; i < runs; i++) {
                long start = System.nanoTime();
                compiled.run(input);
                long end = System.nanoTime();
                latencies[i] = millis(end - start);
                if (end - lastNote > 5_000_000_000L) {
                    progress("run " + (i + 1) + " of " + runs);
                    lastNote = end;
                }
            }
        }
        double[] sorted = latencies.clone();
        Arrays.sort(sorted);
        double median = percentile(sorted, 50);
        List<NodeTime> nodes = profile && backend.equals("jvm")
                ? profileNodes(loaded.model(), input, operators, options.threads) : null;
        Report report = new Report(loaded.description(), backend,
                options.threads != null ? options.threads : Runtime.getRuntime().availableProcessors(), r, batch, runs,
                median, percentile(sorted, 10), percentile(sorted, 90), batch / (median / 1e3),
                2.0 * multiplyAdds * batch / (median / 1e3) / 1e9, multiplyAdds, nodes);
        if (json) {
            printJson(report);
        } else {
            print(report);
        }
        return 0;
    }

    private void print(Report report) {
        if (report.profile() != null) {
            int nameWidth = report.profile().stream().mapToInt(n -> n.name().length()).max().orElse(4);
            String format = "%-" + nameWidth + "s  %-16s %10.3f ms %6.1f%%%n";
            report.profile().forEach(n -> out.printf(format, n.name(), n.op(), n.milliseconds(), 100 * n.share()));
            Map<String, Double> byOp = new java.util.TreeMap<>();
            report.profile().forEach(n -> byOp.merge(n.op(), n.milliseconds(), Double::sum));
            double sum = byOp.values().stream().mapToDouble(Double::doubleValue).sum();
            out.printf("sum of nodes run alone: %.2f ms; by op: %s%n", sum, byOp.entrySet().stream()
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
     * Times each node of the optimised graph alone with the kernels the jvm backend runs for it (its
     * CPU kernel, else its portable kernels), through the backend's public {@link JvmKernelContext}. Nodes run in graph
     * order on fresh buffers, a value dropped after its last reader, so memory stays near the
     * backend's; one untimed pass first warms the JIT.
     */
    private List<NodeTime> profileNodes(Model written, Tensor input, Operators operators, Integer threads) {
        // The graph the jvm backend runs: its compile-time passes, then residual fusion once shapes are known.
        Model optimized = Passes.optimize(written);
        Model model = Passes.fuseResiduals(optimized, optimized.graph().inferShapes(input.shape(), operators));
        Graph graph = model.graph();
        Map<String, Shape> shapes = graph.inferShapes(input.shape(), operators);
        Map<String, Integer> lastUse = new HashMap<>();
        for (int i = 0; i < graph.nodes().size(); i++) {
            for (String value : graph.nodes().get(i).inputs()) {
                lastUse.put(value, i);
            }
        }
        Workers workers = Workers.of(threads != null ? threads : Runtime.getRuntime().availableProcessors());
        long[] nanos = new long[graph.nodes().size()];
        int passes = Math.max(1, Math.min(runs, 10));
        progress("profiling " + graph.nodes().size() + " nodes, " + passes + " passes");
        for (int pass = 0; pass <= passes; pass++) {
            Map<String, float[]> values = new HashMap<>();
            values.put(graph.inputs().keySet().iterator().next(), input.data());
            model.weights().forEach((name, tensor) -> values.put(name, tensor.data()));
            for (int i = 0; i < graph.nodes().size(); i++) {
                Node node = graph.nodes().get(i);
                Operator op = operators.get(node.op());
                if (op.isIdentity(node) && node.outputs().size() == 1
                        && shapes.get(node.input(0)).size() == shapes.get(node.output()).size()) {
                    // The backend aliases these buffers and runs nothing.
                    values.put(node.output(), values.get(node.input(0)));
                    continue;
                }
                List<Shape> inShapes = node.inputs().stream().map(v -> v.isEmpty() ? null : shapes.get(v)).toList();
                float[][] in = node.inputs().stream().map(v -> v.isEmpty() ? null : values.get(v))
                        .toArray(float[][]::new);
                List<Shape> outShapes = node.outputs().stream().map(shapes::get).toList();
                var context = JvmKernelContext.withNewOutputs(node, inShapes, outShapes, in);
                CpuKernel kernel = kernel(op, context);
                long start = System.nanoTime();
                kernel.run(workers);
                long elapsed = System.nanoTime() - start;
                if (pass > 0) {
                    nanos[i] += elapsed;
                }
                for (int k = 0; k < node.outputs().size(); k++) {
                    values.put(node.outputs().get(k), context.output(k));
                }
                final int step = i;
                node.inputs().forEach(v -> {
                    if (lastUse.get(v) == step && !graph.parameters().containsKey(v)) {
                        values.remove(v);
                    }
                });
            }
        }
        long total = Math.max(1, Arrays.stream(nanos).sum());
        List<NodeTime> times = new ArrayList<>();
        for (int i = 0; i < nanos.length; i++) {
            Node node = graph.nodes().get(i);
            times.add(new NodeTime(node.name(), node.op(), millis(nanos[i]) / passes, (double) nanos[i] / total));
        }
        return times;
    }

    private static CpuKernel kernel(Operator op, JvmKernelContext context) {
        CpuKernel tuned = op.cpuKernel(context);
        if (tuned != null) {
            return tuned;
        }
        List<KernelCall> calls = op.kernels(context);
        return workers -> calls.forEach(KernelCall::invoke);
    }
}
