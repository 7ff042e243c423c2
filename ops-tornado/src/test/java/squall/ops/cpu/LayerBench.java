package squall.ops.cpu;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import squall.api.Attributes;
import squall.api.CpuKernel;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;
import squall.ops.BuiltinOperators;

/**
 * Prints the speed of the CPU kernels on MobileNetV2 and EfficientNet-B0 layer shapes at 224x224
 * (a benchmark, not a test): per layer the median time of repeated runs after a warm-up, and
 * GFLOP/s at 2 FLOPs per multiply-add. Run it from ops-tornado with
 * {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes:<api jar>
 * squall.ops.cpu.LayerBench [threads] [batch] [name filter] [cold]}. With {@code cold}, each timed run
 * starts after every thread swept 32 MB of other data, so weights and input come from L3 or memory
 * as in a network (each layer's data was last touched a whole run ago); without it they stay in L2,
 * which flattered the GEMM over large weights (CPU-KERNELS.md round 6).
 */
public final class LayerBench {
    private static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));
    /**
     * Floats each thread sweeps before a cold run: 32 MB, near this machine's 36 MB L3;
     * {@code -Dsweep=524288} (2 MB) leaves L3 warm and only L2 cold.
     */
    private static final int SWEEP = Integer.getInteger("sweep", 8 << 20);
    private static boolean cold;
    private static float[][] sweeps;

    /** conv2d with a kernel, stride and groups (groups = -1: depthwise) on [batch, in, size, size]. */
    record Layer(String name, int in, int size, int out, int kernel, int stride, boolean depthwise, String activation) {
    }

    private static final List<Layer> LAYERS = List.of(
            new Layer("stem 3x3 s2", 3, 224, 32, 3, 2, false, "relu6"),
            new Layer("b0 stem 3x3 s2 silu", 3, 224, 32, 3, 2, false, "silu"),
            new Layer("v1 pw 32->64 @112", 32, 112, 64, 1, 1, false, "relu"),
            new Layer("v1 pw 64->128 @56", 64, 56, 128, 1, 1, false, "relu"),
            new Layer("v1 pw 128->128 @56", 128, 56, 128, 1, 1, false, "relu"),
            new Layer("v3 pw 72->40 @28", 72, 28, 40, 1, 1, false, "none"),
            new Layer("v3 pw 24->72 @56", 24, 56, 72, 1, 1, false, "relu"),
            new Layer("v3 pw 64->24 @56", 64, 56, 24, 1, 1, false, "none"),
            new Layer("b0 pw 96->24 @56", 96, 56, 24, 1, 1, false, "none"),
            new Layer("b0 pw 144->24 @56", 144, 56, 24, 1, 1, false, "none"),
            new Layer("v1 pw 256->256 @28", 256, 28, 256, 1, 1, false, "relu"),
            new Layer("v1 pw 512->512 @14", 512, 14, 512, 1, 1, false, "relu"),
            new Layer("v1 pw 1024->1024 @7", 1024, 7, 1024, 1, 1, false, "relu"),
            new Layer("v2 dw 32 @112", 32, 112, 32, 3, 1, true, "relu6"),
            new Layer("v2 pw 32->16 @112", 32, 112, 16, 1, 1, false, "none"),
            new Layer("v2 pw 16->96 @112", 16, 112, 96, 1, 1, false, "relu6"),
            new Layer("v2 dw 96 s2 @112", 96, 112, 96, 3, 2, true, "relu6"),
            new Layer("v2 pw 96->24 @56", 96, 56, 24, 1, 1, false, "none"),
            new Layer("v2 pw 24->144 @56", 24, 56, 144, 1, 1, false, "relu6"),
            new Layer("v2 dw 144 @56", 144, 56, 144, 3, 1, true, "relu6"),
            new Layer("v2 pw 144->24 @56", 144, 56, 24, 1, 1, false, "none"),
            new Layer("v2 dw 144 s2 @56", 144, 56, 144, 3, 2, true, "relu6"),
            new Layer("v2 pw 144->32 @28", 144, 28, 32, 1, 1, false, "none"),
            new Layer("v2 pw 32->192 @28", 32, 28, 192, 1, 1, false, "relu6"),
            new Layer("v2 dw 192 @28", 192, 28, 192, 3, 1, true, "relu6"),
            new Layer("v2 pw 192->32 @28", 192, 28, 32, 1, 1, false, "none"),
            new Layer("v2 pw 64->384 @14", 64, 14, 384, 1, 1, false, "relu6"),
            new Layer("v2 dw 384 @14", 384, 14, 384, 3, 1, true, "relu6"),
            new Layer("v2 pw 384->64 @14", 384, 14, 64, 1, 1, false, "none"),
            new Layer("v2 pw 96->576 @14", 96, 14, 576, 1, 1, false, "relu6"),
            new Layer("v2 dw 192 s2 @28", 192, 28, 192, 3, 2, true, "relu6"),
            new Layer("v2 dw 576 s2 @14", 576, 14, 576, 3, 2, true, "relu6"),
            new Layer("v2 pw 160->960 @7", 160, 7, 960, 1, 1, false, "relu6"),
            new Layer("v2 dw 960 @7", 960, 7, 960, 3, 1, true, "relu6"),
            new Layer("v2s dw 1536 @7", 1536, 7, 1536, 3, 1, true, "silu"),
            new Layer("v2 pw 960->160 @7", 960, 7, 160, 1, 1, false, "none"),
            new Layer("v2 pw 320->1280 @7", 320, 7, 1280, 1, 1, false, "relu6"),
            new Layer("b0 dw 32 @112", 32, 112, 32, 3, 1, true, "silu"),
            new Layer("b0 dw 144 @56", 144, 56, 144, 3, 1, true, "silu"),
            new Layer("b0 dw5 144 s2 @56", 144, 56, 144, 5, 2, true, "silu"),
            new Layer("b0 dw5 672 @14", 672, 14, 672, 5, 1, true, "silu"),
            new Layer("dw5 672 @14 relu6 (clamp path)", 672, 14, 672, 5, 1, true, "relu6"),
            new Layer("b0 pw 112->672 @14", 112, 14, 672, 1, 1, false, "silu"),
            new Layer("b0 dw5 1152 @7", 1152, 7, 1152, 5, 1, true, "silu"),
            new Layer("b0 pw 192->1152 @7", 192, 7, 1152, 1, 1, false, "silu"),
            new Layer("b0 pw 1152->192 @7", 1152, 7, 192, 1, 1, false, "none"),
            new Layer("v3s dw5 576 @7", 576, 7, 576, 5, 1, true, "hardswish"),
            new Layer("v3s dw5 288 s2 @14", 288, 14, 288, 5, 2, true, "hardswish"),
            new Layer("dw5 240 @7 relu (clamp path)", 240, 7, 240, 5, 1, true, "relu"),
            new Layer("v2s fused 3x3 24->96 s2 @112", 24, 112, 96, 3, 2, false, "silu"),
            new Layer("v2s pw 96->48 @56", 96, 56, 48, 1, 1, false, "none"),
            new Layer("v2s pw 192->48 @56", 192, 56, 48, 1, 1, false, "none"),
            new Layer("v2s pw 192->64 @28", 192, 28, 64, 1, 1, false, "none"),
            new Layer("v2s pw 960->160 @14", 960, 14, 160, 1, 1, false, "none"),
            new Layer("b0 pw 672->112 @14", 672, 14, 112, 1, 1, false, "none"),
            new Layer("b0 pw 480->80 @14", 480, 14, 80, 1, 1, false, "none"),
            new Layer("v2s fused 3x3 24->24 @112", 24, 112, 24, 3, 1, false, "silu"),
            new Layer("v2s fused 3x3 48->192 @56", 48, 56, 192, 3, 1, false, "silu"),
            new Layer("v2s fused 3x3 64->256 @28", 64, 28, 256, 3, 1, false, "silu"));

    private LayerBench() {
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        String only = args.length > 2 ? args[2] : "";
        cold = args.length > 3 && args[3].equals("cold");
        Workers workers = Workers.of(threads);
        System.out.printf("%d threads, batch %d, %s lanes %d; %s%n", threads, batch, Vectors.SPECIES,
                Vectors.LANES, cold ? "cold caches, median of 61 runs" : "median of 7 repeats");
        double totalMs = 0;
        for (Layer layer : LAYERS) {
            if (!layer.name().contains(only)) {
                continue;
            }
            double ms = time(layer, batch, workers);
            totalMs += ms;
            int outSize = (layer.size() + 2 * (layer.kernel() / 2) - layer.kernel()) / layer.stride() + 1;
            double macs = (double) batch * layer.out() * outSize * outSize * layer.kernel() * layer.kernel()
                    * (layer.depthwise() ? 1 : layer.in());
            System.out.printf("%-30s %8.3f ms %8.1f GFLOP/s%n", layer.name(), ms, 2 * macs / ms / 1e6);
        }
        System.out.printf("sum %.2f ms%n", totalMs);
        linear(batch, workers);
    }

    private static double time(Layer layer, int batch, Workers workers) {
        int groups = layer.depthwise() ? layer.in() : 1;
        List<Shape> shapes = Arrays.asList(Shape.of(batch, layer.in(), layer.size(), layer.size()),
                Shape.of(layer.out(), layer.in() / groups, layer.kernel(), layer.kernel()), Shape.of(layer.out()));
        Attributes attributes = Attributes.of("stride", layer.stride(), "padding", layer.kernel() / 2, "groups", groups,
                "activation", layer.activation());
        return timeOp("conv2d", attributes, shapes, workers);
    }

    private static void linear(int batch, Workers workers) {
        List<Shape> shapes = List.of(Shape.of(batch, 1280), Shape.of(1000, 1280), Shape.of(1000));
        double ms = timeOp("linear", Attributes.EMPTY, shapes, workers);
        System.out.printf("%-30s %8.3f ms %8.1f GFLOP/s%n", "linear 1280->1000", ms, 2.0 * batch * 1280 * 1000 / ms / 1e6);
    }

    /** Median milliseconds of one run, after two seconds of warm-up runs. */
    static double timeOp(String op, Attributes attributes, List<Shape> shapes, Workers workers) {
        Operator operator = BUILTIN.get(op);
        Node node = new Node("bench", op, List.of("x", "w", "b"), List.of("y"), attributes);
        Random random = new Random(1);
        float[][] inputs = shapes.stream().map(s -> CpuKernelsTest.random(random, s.size(), 1f)).toArray(float[][]::new);
        // Weights and bias constant, as the backend marks a model's parameters: packed once, not per run.
        List<Shape> outShapes = operator.outputShapes(node, shapes);
        float[][] outputs = outShapes.stream().map(s -> new float[s.size()]).toArray(float[][]::new);
        boolean[] constant = new boolean[inputs.length];
        Arrays.fill(constant, 1, constant.length, true);
        var context = new JvmKernelContext(node, shapes, outShapes, inputs, outputs, constant);
        CpuKernel kernel = operator.cpuKernel(context);
        long warmEnd = System.nanoTime() + 2_000_000_000L; // the kernels' loops reach C2 only after ~1 s
        int runsPerRepeat = 1;
        while (System.nanoTime() < warmEnd) {
            kernel.run(workers);
            runsPerRepeat++;
        }
        if (cold) {
            return coldMedian(kernel, workers);
        }
        runsPerRepeat = Math.max(3, runsPerRepeat / 10);
        double[] repeats = new double[7];
        for (int r = 0; r < repeats.length; r++) {
            long start = System.nanoTime();
            for (int i = 0; i < runsPerRepeat; i++) {
                kernel.run(workers);
            }
            repeats[r] = (System.nanoTime() - start) / 1e6 / runsPerRepeat;
        }
        Arrays.sort(repeats);
        return repeats[repeats.length / 2];
    }

    /** Median milliseconds of 61 runs, each after every thread swept its own 32 MB. */
    private static double coldMedian(CpuKernel kernel, Workers workers) {
        if (sweeps == null) {
            sweeps = new float[workers.count()][SWEEP];
        }
        double[] runs = new double[61];
        float sink = 0;
        for (int r = 0; r < runs.length; r++) {
            float[] sums = new float[workers.count()];
            workers.forEach(workers.count(), t -> {
                float[] data = sweeps[t];
                float sum = 0;
                for (int i = 0; i < data.length; i += 16) {
                    data[i] += 1f;
                    sum += data[i];
                }
                sums[t] = sum;
            });
            sink += sums[0];
            long start = System.nanoTime();
            kernel.run(workers);
            runs[r] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(runs);
        if (sink == 42f) {
            System.out.print("");
        }
        return runs[runs.length / 2];
    }
}
