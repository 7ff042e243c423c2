package squall.ops.cpu;

import java.util.ArrayList;
import java.util.Collections;
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
 * What the NCHW layout costs (a benchmark, not a test; CPU-KERNELS.md rounds 19-21). On
 * MobileNetV1's and EfficientNetV2-S's layers: Squall's NCHW kernel (as the backend picks it)
 * against its NCHWc kernel ({@link NchwcPointwise}, {@link NchwcDepthwise}, {@link NchwcConv}:
 * activations [C/16][H·W][16], the blocked layout ONNX Runtime's MLAS uses), run alternately on
 * the same shapes; medians, GFLOP/s, and the largest difference between the two outputs, relative
 * to the largest output. Run it from ops-tornado with {@code java --add-modules
 * jdk.incubator.vector -cp target/classes:target/test-classes:<api jar> squall.ops.cpu.LayoutBench
 * [seconds per layer] [threads] [part of layer names] [activation]} (default 3 s, 1 thread, all
 * layers, relu). Round 19 ran it with the prototypes those kernels grew from.
 */
public final class LayoutBench {
    private static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));

    record Layer(int in, int out, int size, int kernel, int stride, boolean depthwise) {
        /** A 1x1 conv or a 3x3 depthwise conv. */
        Layer(int in, int out, int size, int stride, boolean depthwise) {
            this(in, out, size, depthwise ? 3 : 1, stride, depthwise);
        }

        String name() {
            return depthwise ? "depthwise " + in + " @" + size + " s" + stride
                    : kernel == 1 ? in + "->" + out + " @" + size
                    : kernel + "x" + kernel + " " + in + "->" + out + " @" + size + " s" + stride;
        }
    }

    /** MobileNetV1's layers, then EfficientNetV2-S's Fused-MBConv stages (dense 3x3 convs and their projections). */
    private static final List<Layer> LAYERS = List.of(
            new Layer(32, 64, 112, 1, false), new Layer(64, 128, 56, 1, false), new Layer(128, 128, 56, 1, false),
            new Layer(256, 256, 28, 1, false), new Layer(512, 512, 14, 1, false), new Layer(1024, 1024, 7, 1, false),
            new Layer(32, 32, 112, 1, true), new Layer(64, 64, 112, 2, true), new Layer(128, 128, 56, 1, true),
            new Layer(128, 128, 56, 2, true), new Layer(256, 256, 28, 1, true), new Layer(512, 512, 14, 1, true),
            new Layer(512, 512, 14, 2, true), new Layer(1024, 1024, 7, 1, true),
            new Layer(24, 96, 112, 3, 2, false), new Layer(48, 192, 56, 3, 1, false), new Layer(192, 48, 56, 1, false),
            new Layer(48, 192, 56, 3, 2, false), new Layer(64, 256, 28, 3, 1, false), new Layer(256, 64, 28, 1, false));

    private LayoutBench() {
    }

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 3;
        Workers workers = Workers.of(args.length > 1 ? Integer.parseInt(args[1]) : 1);
        System.out.println(workers.count() + " threads, medians of alternate runs after as long a warm-up: NCHW "
                + "| NCHWc");
        for (Layer layer : LAYERS) {
            if (args.length < 3 || layer.name().contains(args[2])) {
                run(layer, seconds, workers, args.length > 3 ? args[3] : "relu");
            }
        }
    }

    private static void run(Layer layer, double seconds, Workers workers, String activation) {
        int c = layer.in();
        int o = layer.out();
        int h = layer.size();
        int outSize = (h - 1) / layer.stride() + 1;
        int k = layer.kernel();
        Random random = new Random(1);
        float[] x = CpuKernelsTest.random(random, c * h * h, 1f);
        float[] w = CpuKernelsTest.random(random, o * (layer.depthwise() ? 1 : c) * k * k, 0.5f);
        float[] bias = CpuKernelsTest.random(random, o, 1f);
        float[] y = new float[o * outSize * outSize];
        Attributes attributes = Attributes.of("stride", layer.stride(), "padding", k / 2, "groups",
                layer.depthwise() ? c : 1, "activation", activation);
        List<Shape> shapes = List.of(Shape.of(1, c, h, h), Shape.of(o, layer.depthwise() ? 1 : c, k, k), Shape.of(o));
        Operator conv = BUILTIN.get("conv2d");
        Node node = new Node("bench", "conv2d", List.of("x", "w", "b"), List.of("y"), attributes);
        CpuKernel squall = conv.cpuKernel(new JvmKernelContext(node, shapes, List.of(Shape.of(1, o, outSize, outSize)),
                new float[][] {x, w, bias}, new float[][] {y}, new boolean[] {false, true, true}));

        // A dense conv whose channels are not a multiple of the block reads planes (EfficientNetV2's 24).
        boolean planes = !Nchwc.fits(c);
        float[] xb = planes ? x : Nchwc.toBlocks(x, 1, c, h * h);
        float[] yb = new float[y.length];
        Node blockedNode = new Node("bench", "conv2d", List.of("x", "w", "b"), List.of("y"),
                attributes.with("layout", planes ? "nchwc_output" : "nchwc"));
        CpuKernel blocked = conv.cpuKernel(new JvmKernelContext(blockedNode, shapes,
                List.of(Shape.of(1, o, outSize, outSize)), new float[][] {xb, w, bias}, new float[][] {yb},
                new boolean[] {false, true, true}));
        List<Double> nchw = new ArrayList<>();
        List<Double> nchwc = new ArrayList<>();
        for (int pass = 0; pass < 2; pass++) {
            // A warm-up pass, then the timed one: the kernels reach C2 only after a second or so.
            nchw.clear();
            nchwc.clear();
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                long t0 = System.nanoTime();
                squall.run(workers);
                long t1 = System.nanoTime();
                blocked.run(workers);
                nchw.add((t1 - t0) / 1e6);
                nchwc.add((System.nanoTime() - t1) / 1e6);
            }
        }
        float[] back = Nchwc.toPlanes(yb, 1, o, outSize * outSize);
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < y.length; i++) {
            diff = Math.max(diff, Math.abs(back[i] - y[i]));
            scale = Math.max(scale, Math.abs(y[i]));
        }
        double a = median(nchw);
        double b = median(nchwc);
        double flop = 2.0 * o * outSize * outSize * k * k * (layer.depthwise() ? 1 : c);
        System.out.printf("%-24s %-26s %7.3f ms %6.1f GFLOP/s | %7.3f ms %6.1f GFLOP/s  (%.2fx; max diff %.1e)%n",
                layer.name(), squall.getClass().getSimpleName(), a, flop / a / 1e6, b, flop / b / 1e6, a / b,
                diff / scale);
    }

    private static double median(List<Double> times) {
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        return sorted.get(sorted.size() / 2);
    }
}
