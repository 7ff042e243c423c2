package squall.backend.jvm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * A benchmark main, not a test: whole-network latency (batch 1) and throughput (batch 8) at
 * 224x224 on the JVM backend, and the slowest steps of the compiled plan (after the passes), for
 * the networks named on the command line. It needs squall-networks on the class path at run time
 * (reflection keeps ops-tornado free of a dependency on it):
 * {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes:<api>:<networks>
 * squall.backend.jvm.NetworkBench THREADS NAME...}. Warm-up: 3 s per batch size; figures are the
 * median of the timed runs.
 */
public final class NetworkBench {
    private NetworkBench() {
    }

    public static void main(String[] args) throws Exception {
        int threads = Integer.parseInt(args[0]);
        Operators operators = Operators.discover();
        for (String name : Arrays.asList(args).subList(1, args.length)) {
            Graph graph = (Graph) Class.forName("squall.networks.Networks").getMethod("build", String.class)
                    .invoke(null, name);
            @SuppressWarnings("unchecked")
            var weights = (Map<String, Tensor>) Class.forName("squall.networks.RandomWeights")
                    .getMethod("generate", Graph.class, long.class).invoke(null, graph, 1L);
            Model model = Model.bind(graph, weights, "random weights");
            long macs = multiplyAdds(graph, operators);
            try (var compiled = (JvmCompiledModel) new JvmBackend().compile(model, operators,
                    Map.of("threads", String.valueOf(threads)))) {
                double latency = medianMs(compiled, input(1), 60);
                double batch8 = medianMs(compiled, input(8), 15);
                System.out.printf("%-20s batch 1: %6.2f ms (%5.1f GFLOP/s)   batch 8: %6.1f img/s (%5.1f GFLOP/s)%n",
                        name, latency, 2.0 * macs / latency / 1e6, 8000 / batch8, 16.0 * macs / batch8 / 1e6);
                printHotSteps(compiled, input(1), 8);
            }
        }
    }

    private static long multiplyAdds(Graph graph, Operators operators) {
        Map<String, Shape> shapes = graph.inferShapes(Shape.of(1, 3, 224, 224), operators);
        long total = 0;
        for (Node node : graph.nodes()) {
            List<Shape> in = node.inputs().stream().map(v -> v.isEmpty() ? null : shapes.get(v)).toList();
            total += operators.get(node.op()).multiplyAdds(node, in, node.outputs().stream().map(shapes::get).toList());
        }
        return total;
    }

    private static Tensor input(int batch) {
        Random random = new Random(batch);
        float[] data = new float[batch * 3 * 224 * 224];
        for (int i = 0; i < data.length; i++) {
            data[i] = random.nextFloat() * 4 - 2;
        }
        return new Tensor(Shape.of(batch, 3, 224, 224), data);
    }

    private static double medianMs(JvmCompiledModel compiled, Tensor input, int runs) {
        long warmEnd = System.nanoTime() + 3_000_000_000L;
        while (System.nanoTime() < warmEnd) {
            compiled.run(input);
        }
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            long start = System.nanoTime();
            compiled.run(input);
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(ms);
        return ms[runs / 2];
    }

    /** The steps taking the most time over 20 profiled runs, with their share. */
    private static void printHotSteps(JvmCompiledModel compiled, Tensor input, int count) {
        List<Node> steps = compiled.steps(input.shape());
        long[] nanos = new long[steps.size()];
        for (int i = 0; i < 20; i++) {
            compiled.profile(input, nanos);
        }
        long total = Arrays.stream(nanos).sum();
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < steps.size(); i++) {
            order.add(i);
        }
        order.sort(Comparator.comparingLong(i -> -nanos[i]));
        Map<String, Long> byKind = new java.util.TreeMap<>();
        for (int i = 0; i < steps.size(); i++) {
            Node node = steps.get(i);
            String kind = node.op() + (node.attributes().getInt("groups", 1) > 1 ? " depthwise" : "");
            byKind.merge(kind, nanos[i], Long::sum);
        }
        System.out.printf("    sum of %d steps: %.2f ms; by kind:", steps.size(), total / 20 / 1e6);
        byKind.forEach((kind, n) -> System.out.printf(" %s %.2f ms,", kind, n / 20 / 1e6));
        System.out.printf("%n    slowest:%n");
        for (int i : order.subList(0, Math.min(count, order.size()))) {
            Node node = steps.get(i);
            System.out.printf("    %-28s %-16s %7.3f ms %5.1f%%  %s%n", node.name(), node.op(), nanos[i] / 20 / 1e6,
                    100.0 * nanos[i] / total, node.attributes());
        }
    }
}
