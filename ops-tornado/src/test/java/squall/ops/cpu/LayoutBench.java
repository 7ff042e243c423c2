package squall.ops.cpu;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import squall.api.Attributes;
import squall.api.CpuKernel;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;
import squall.ops.BuiltinOperators;
import squall.ops.Split;

/**
 * What the NCHW layout costs (a benchmark, not a test; CPU-KERNELS.md round 19). On MobileNetV1's
 * layers: Squall's kernel (NCHW, as the backend picks it) against a prototype in
 * NCHW16c, the blocked layout ONNX Runtime's MLAS uses (activations [C/16][H·W][16]), run
 * alternately on the same shapes; medians, GFLOP/s, and the largest difference between the two
 * outputs, relative to the largest output. Run it from ops-tornado with {@code java --add-modules
 * jdk.incubator.vector -cp target/classes:target/test-classes:<api jar> squall.ops.cpu.LayoutBench
 * [seconds per layer] [threads]} (default 3 s, 1 thread). The prototypes are not kernels of the
 * backend: they take only what these shapes need (channels a multiple of 16, output channels a
 * multiple of 64, 3x3 depthwise, relu); with threads, the 1x1 conv splits its (group of 4 output
 * blocks, 6-pixel tile) items and the depthwise conv its blocks of 16 channels.
 */
public final class LayoutBench {
    private static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_512;
    private static final int BLOCK = 16;
    /** Pixels of the 1x1 conv's tile, times 4 blocks of 16 output channels: 24 accumulators. */
    private static final int PIXELS = 6;

    record Layer(int in, int out, int size, int stride, boolean depthwise) {
        String name() {
            return depthwise ? "depthwise " + in + " @" + size + " s" + stride : in + "->" + out + " @" + size;
        }
    }

    private static final List<Layer> LAYERS = List.of(
            new Layer(32, 64, 112, 1, false), new Layer(64, 128, 56, 1, false), new Layer(128, 128, 56, 1, false),
            new Layer(256, 256, 28, 1, false), new Layer(512, 512, 14, 1, false), new Layer(1024, 1024, 7, 1, false),
            new Layer(32, 32, 112, 1, true), new Layer(64, 64, 112, 2, true), new Layer(128, 128, 56, 1, true),
            new Layer(128, 128, 56, 2, true), new Layer(256, 256, 28, 1, true), new Layer(512, 512, 14, 1, true),
            new Layer(512, 512, 14, 2, true), new Layer(1024, 1024, 7, 1, true));

    private LayoutBench() {
    }

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 3;
        Workers workers = Workers.of(args.length > 1 ? Integer.parseInt(args[1]) : 1);
        System.out.println(workers.count() + " threads, medians of alternate runs after as long a warm-up: NCHW "
                + "(Squall) | NCHW16c (prototype)");
        for (Layer layer : LAYERS) {
            run(layer, seconds, workers);
        }
    }

    private static void run(Layer layer, double seconds, Workers workers) {
        int c = layer.in();
        int o = layer.out();
        int h = layer.size();
        int outSize = (h - 1) / layer.stride() + 1;
        int k = layer.depthwise() ? 3 : 1;
        Random random = new Random(1);
        float[] x = CpuKernelsTest.random(random, c * h * h, 1f);
        float[] w = CpuKernelsTest.random(random, o * (layer.depthwise() ? 1 : c) * k * k, 0.5f);
        float[] bias = CpuKernelsTest.random(random, o, 1f);
        float[] y = new float[o * outSize * outSize];
        Attributes attributes = Attributes.of("stride", layer.stride(), "padding", k / 2, "groups",
                layer.depthwise() ? c : 1, "activation", "relu");
        List<Shape> shapes = List.of(Shape.of(1, c, h, h), Shape.of(o, layer.depthwise() ? 1 : c, k, k), Shape.of(o));
        Operator conv = BUILTIN.get("conv2d");
        Node node = new Node("bench", "conv2d", List.of("x", "w", "b"), List.of("y"), attributes);
        CpuKernel squall = conv.cpuKernel(new JvmKernelContext(node, shapes, List.of(Shape.of(1, o, outSize, outSize)),
                new float[][] {x, w, bias}, new float[][] {y}, new boolean[] {false, true, true}));

        float[] xb = blocked(x, c, h * h);
        float[] wb = layer.depthwise() ? blocked(w, c, 9) : blockedWeights(w, o, c);
        float[] yb = new float[y.length];
        Runnable prototype = layer.depthwise()
                ? () -> depthwise(workers, xb, wb, bias, yb, c, h, layer.stride())
                : () -> pointwise(workers, xb, wb, bias, yb, c, o, h * h);
        List<Double> nchw = new ArrayList<>();
        List<Double> nchw16c = new ArrayList<>();
        for (int pass = 0; pass < 2; pass++) {
            // A warm-up pass, then the timed one: the prototypes reach C2 only after a second or so.
            nchw.clear();
            nchw16c.clear();
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                long t0 = System.nanoTime();
                squall.run(workers);
                long t1 = System.nanoTime();
                prototype.run();
                nchw.add((t1 - t0) / 1e6);
                nchw16c.add((System.nanoTime() - t1) / 1e6);
            }
        }
        float[] back = unblocked(yb, o, outSize * outSize);
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < y.length; i++) {
            diff = Math.max(diff, Math.abs(back[i] - y[i]));
            scale = Math.max(scale, Math.abs(y[i]));
        }
        double a = median(nchw);
        double b = median(nchw16c);
        double flop = 2.0 * o * outSize * outSize * k * k * (layer.depthwise() ? 1 : c);
        System.out.printf("%-22s %-26s %7.3f ms %6.1f GFLOP/s | %7.3f ms %6.1f GFLOP/s  (%.2fx; max diff %.1e)%n",
                layer.name(), squall.getClass().getSimpleName(), a, flop / a / 1e6, b, flop / b / 1e6, a / b,
                diff / scale);
    }

    private static double median(List<Double> times) {
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        return sorted.get(sorted.size() / 2);
    }

    /** [channels][pixels] to [channels/16][pixels][16]. */
    private static float[] blocked(float[] nchw, int channels, int pixels) {
        float[] b = new float[nchw.length];
        for (int ch = 0; ch < channels; ch++) {
            for (int p = 0; p < pixels; p++) {
                b[(ch / BLOCK * pixels + p) * BLOCK + ch % BLOCK] = nchw[ch * pixels + p];
            }
        }
        return b;
    }

    private static float[] unblocked(float[] b, int channels, int pixels) {
        float[] nchw = new float[b.length];
        for (int ch = 0; ch < channels; ch++) {
            for (int p = 0; p < pixels; p++) {
                nchw[ch * pixels + p] = b[(ch / BLOCK * pixels + p) * BLOCK + ch % BLOCK];
            }
        }
        return nchw;
    }

    /** weight [out][in] to [out/16][in][16]: per input channel, a vector of 16 output channels. */
    private static float[] blockedWeights(float[] w, int out, int in) {
        float[] b = new float[w.length];
        for (int r = 0; r < out; r++) {
            for (int ch = 0; ch < in; ch++) {
                b[(r / BLOCK * in + ch) * BLOCK + r % BLOCK] = w[r * in + ch];
            }
        }
        return b;
    }

    /**
     * relu(1x1 conv + bias), MLAS's scheme: tiles of 4 blocks of output channels by 6 pixels, the
     * input read in place (no packing), then the remaining pixels one by one.
     */
    private static void pointwise(Workers workers, float[] in, float[] w, float[] bias, float[] out, int c, int o,
                                  int pixels) {
        int tiles = pixels / PIXELS;
        int groups = o / (4 * BLOCK);
        // Items (group, tile), tiles inner: on small maps the threads split the groups, and so the weights.
        Split.ranges(workers, groups * tiles, (from, to) -> {
            for (int i = from; i < to; i++) {
                tile(in, w, bias, out, c, pixels, i / tiles, i % tiles * PIXELS);
            }
        });
        workers.forEach(groups, group -> {
            for (int p = tiles * PIXELS; p < pixels; p++) {
                for (int f = 4 * group; f < 4 * group + 4; f++) {
                    FloatVector acc = FloatVector.zero(S);
                    for (int ch = 0; ch < c; ch++) {
                        acc = FloatVector.fromArray(S, w, (f * c + ch) * BLOCK)
                                .fma(FloatVector.broadcast(S, in[(ch / BLOCK * pixels + p) * BLOCK + ch % BLOCK]), acc);
                    }
                    acc.add(FloatVector.fromArray(S, bias, f * BLOCK)).max(0f).intoArray(out, (f * pixels + p) * BLOCK);
                }
            }
        });
    }

    /** Output blocks 4·group .. 4·group + 3 at pixels p .. p + 5: per input channel 4 weight vectors, 6 broadcasts, 24 FMAs. */
    private static void tile(float[] in, float[] w, float[] bias, float[] out, int c, int pixels, int group, int p) {
        FloatVector z = FloatVector.zero(S);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a04 = z, a05 = z, a10 = z, a11 = z, a12 = z, a13 = z, a14 = z;
        FloatVector a15 = z, a20 = z, a21 = z, a22 = z, a23 = z, a24 = z, a25 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        FloatVector a34 = z, a35 = z;
        int w0 = 4 * group * c * BLOCK;
        int stride = c * BLOCK;
        for (int ch = 0; ch < c; ch++) {
            int x = (ch / BLOCK * pixels + p) * BLOCK + ch % BLOCK;
            int f = w0 + ch * BLOCK;
            FloatVector f0 = FloatVector.fromArray(S, w, f);
            FloatVector f1 = FloatVector.fromArray(S, w, f + stride);
            FloatVector f2 = FloatVector.fromArray(S, w, f + 2 * stride);
            FloatVector f3 = FloatVector.fromArray(S, w, f + 3 * stride);
            FloatVector x0 = FloatVector.broadcast(S, in[x]);
            a00 = f0.fma(x0, a00); a10 = f1.fma(x0, a10); a20 = f2.fma(x0, a20); a30 = f3.fma(x0, a30);
            FloatVector x1 = FloatVector.broadcast(S, in[x + BLOCK]);
            a01 = f0.fma(x1, a01); a11 = f1.fma(x1, a11); a21 = f2.fma(x1, a21); a31 = f3.fma(x1, a31);
            FloatVector x2 = FloatVector.broadcast(S, in[x + 2 * BLOCK]);
            a02 = f0.fma(x2, a02); a12 = f1.fma(x2, a12); a22 = f2.fma(x2, a22); a32 = f3.fma(x2, a32);
            FloatVector x3 = FloatVector.broadcast(S, in[x + 3 * BLOCK]);
            a03 = f0.fma(x3, a03); a13 = f1.fma(x3, a13); a23 = f2.fma(x3, a23); a33 = f3.fma(x3, a33);
            FloatVector x4 = FloatVector.broadcast(S, in[x + 4 * BLOCK]);
            a04 = f0.fma(x4, a04); a14 = f1.fma(x4, a14); a24 = f2.fma(x4, a24); a34 = f3.fma(x4, a34);
            FloatVector x5 = FloatVector.broadcast(S, in[x + 5 * BLOCK]);
            a05 = f0.fma(x5, a05); a15 = f1.fma(x5, a15); a25 = f2.fma(x5, a25); a35 = f3.fma(x5, a35);
        }
        // Written out: vectors in an array, or passed to a call C2 does not inline, are boxed.
        int o0 = (4 * group * pixels + p) * BLOCK;
        int os = pixels * BLOCK;
        FloatVector b0 = FloatVector.fromArray(S, bias, 4 * group * BLOCK);
        FloatVector b1 = FloatVector.fromArray(S, bias, (4 * group + 1) * BLOCK);
        FloatVector b2 = FloatVector.fromArray(S, bias, (4 * group + 2) * BLOCK);
        FloatVector b3 = FloatVector.fromArray(S, bias, (4 * group + 3) * BLOCK);
        a00.add(b0).max(0f).intoArray(out, o0);
        a01.add(b0).max(0f).intoArray(out, o0 + BLOCK);
        a02.add(b0).max(0f).intoArray(out, o0 + 2 * BLOCK);
        a03.add(b0).max(0f).intoArray(out, o0 + 3 * BLOCK);
        a04.add(b0).max(0f).intoArray(out, o0 + 4 * BLOCK);
        a05.add(b0).max(0f).intoArray(out, o0 + 5 * BLOCK);
        a10.add(b1).max(0f).intoArray(out, o0 + os);
        a11.add(b1).max(0f).intoArray(out, o0 + os + BLOCK);
        a12.add(b1).max(0f).intoArray(out, o0 + os + 2 * BLOCK);
        a13.add(b1).max(0f).intoArray(out, o0 + os + 3 * BLOCK);
        a14.add(b1).max(0f).intoArray(out, o0 + os + 4 * BLOCK);
        a15.add(b1).max(0f).intoArray(out, o0 + os + 5 * BLOCK);
        a20.add(b2).max(0f).intoArray(out, o0 + 2 * os);
        a21.add(b2).max(0f).intoArray(out, o0 + 2 * os + BLOCK);
        a22.add(b2).max(0f).intoArray(out, o0 + 2 * os + 2 * BLOCK);
        a23.add(b2).max(0f).intoArray(out, o0 + 2 * os + 3 * BLOCK);
        a24.add(b2).max(0f).intoArray(out, o0 + 2 * os + 4 * BLOCK);
        a25.add(b2).max(0f).intoArray(out, o0 + 2 * os + 5 * BLOCK);
        a30.add(b3).max(0f).intoArray(out, o0 + 3 * os);
        a31.add(b3).max(0f).intoArray(out, o0 + 3 * os + BLOCK);
        a32.add(b3).max(0f).intoArray(out, o0 + 3 * os + 2 * BLOCK);
        a33.add(b3).max(0f).intoArray(out, o0 + 3 * os + 3 * BLOCK);
        a34.add(b3).max(0f).intoArray(out, o0 + 3 * os + 4 * BLOCK);
        a35.add(b3).max(0f).intoArray(out, o0 + 3 * os + 5 * BLOCK);
    }

    /**
     * relu(3x3 depthwise conv + bias), padding 1, channels in the lanes: at stride 1 a 3x3 window
     * of input vectors rolls along the row (3 loads, 9 FMAs per output), at stride 2 nine loads;
     * rows and columns outside the image are zero vectors through the same FMAs, so the taps add
     * from the bias in the order 0..8 as Squall's kernels do.
     */
    private static void depthwise(Workers workers, float[] in, float[] w, float[] bias, float[] out, int c, int h,
                                  int stride) {
        workers.forEach(c / BLOCK, cb -> {
            if (stride == 1) {
                rollingPlane(in, w, bias, out, cb, h);
            } else {
                stridedPlane(in, w, bias, out, cb, h);
            }
        });
    }

    /** A row of zero vectors: the rows above and below the image, read without a branch per output. */
    private static final float[] ZEROS = new float[1024 * BLOCK];

    /**
     * Stride 1, one block of 16 channels: {@code DepthwiseConv.directColumn3x3}'s rolling window
     * turned along the row, columns ox − 1 (a), ox (b) and ox + 1 (c) of rows oy − 1 .. oy + 1. No
     * branch per output: rows outside the image come from {@link #ZEROS} and the last column is
     * written out. With a branch per load (round 19), C2 recompiled the method after uncommon traps
     * in the network and 512 @14 ran 6x slower there than here.
     */
    private static void rollingPlane(float[] in, float[] w, float[] bias, float[] out, int cb, int h) {
        FloatVector z = FloatVector.zero(S);
        int wt = cb * 9 * BLOCK;
        FloatVector t0 = FloatVector.fromArray(S, w, wt), t1 = FloatVector.fromArray(S, w, wt + BLOCK);
        FloatVector t2 = FloatVector.fromArray(S, w, wt + 2 * BLOCK), t3 = FloatVector.fromArray(S, w, wt + 3 * BLOCK);
        FloatVector t4 = FloatVector.fromArray(S, w, wt + 4 * BLOCK), t5 = FloatVector.fromArray(S, w, wt + 5 * BLOCK);
        FloatVector t6 = FloatVector.fromArray(S, w, wt + 6 * BLOCK), t7 = FloatVector.fromArray(S, w, wt + 7 * BLOCK);
        FloatVector t8 = FloatVector.fromArray(S, w, wt + 8 * BLOCK);
        FloatVector b = FloatVector.fromArray(S, bias, cb * BLOCK);
        int plane = cb * h * h * BLOCK;
        int at = plane;
        for (int oy = 0; oy < h; oy++) {
            float[] above = oy > 0 ? in : ZEROS;
            float[] below = oy + 1 < h ? in : ZEROS;
            int r1 = plane + oy * h * BLOCK;
            int r0 = oy > 0 ? r1 - h * BLOCK : 0;
            int r2 = oy + 1 < h ? r1 + h * BLOCK : 0;
            FloatVector a0 = z, a1 = z, a2 = z;
            FloatVector b0 = FloatVector.fromArray(S, above, r0);
            FloatVector b1 = FloatVector.fromArray(S, in, r1);
            FloatVector b2 = FloatVector.fromArray(S, below, r2);
            for (int ox = 0; ox < h - 1; ox++, at += BLOCK) {
                int q = (ox + 1) * BLOCK;
                FloatVector c0 = FloatVector.fromArray(S, above, r0 + q);
                FloatVector c1 = FloatVector.fromArray(S, in, r1 + q);
                FloatVector c2 = FloatVector.fromArray(S, below, r2 + q);
                FloatVector acc = a0.fma(t0, b);
                acc = b0.fma(t1, acc);
                acc = c0.fma(t2, acc);
                acc = a1.fma(t3, acc);
                acc = b1.fma(t4, acc);
                acc = c1.fma(t5, acc);
                acc = a2.fma(t6, acc);
                acc = b2.fma(t7, acc);
                acc = c2.fma(t8, acc);
                acc.max(0f).intoArray(out, at);
                a0 = b0;
                a1 = b1;
                a2 = b2;
                b0 = c0;
                b1 = c1;
                b2 = c2;
            }
            // The last column: column ox + 1 is past the image.
            FloatVector acc = a0.fma(t0, b);
            acc = b0.fma(t1, acc);
            acc = z.fma(t2, acc);
            acc = a1.fma(t3, acc);
            acc = b1.fma(t4, acc);
            acc = z.fma(t5, acc);
            acc = a2.fma(t6, acc);
            acc = b2.fma(t7, acc);
            acc = z.fma(t8, acc);
            acc.max(0f).intoArray(out, at);
            at += BLOCK;
        }
    }

    /** Stride 2, one block of 16 channels: nine loads per output vector, none of them shuffled. */
    private static void stridedPlane(float[] in, float[] w, float[] bias, float[] out, int cb, int h) {
        FloatVector z = FloatVector.zero(S);
        int wt = cb * 9 * BLOCK;
        FloatVector t0 = FloatVector.fromArray(S, w, wt), t1 = FloatVector.fromArray(S, w, wt + BLOCK);
        FloatVector t2 = FloatVector.fromArray(S, w, wt + 2 * BLOCK), t3 = FloatVector.fromArray(S, w, wt + 3 * BLOCK);
        FloatVector t4 = FloatVector.fromArray(S, w, wt + 4 * BLOCK), t5 = FloatVector.fromArray(S, w, wt + 5 * BLOCK);
        FloatVector t6 = FloatVector.fromArray(S, w, wt + 6 * BLOCK), t7 = FloatVector.fromArray(S, w, wt + 7 * BLOCK);
        FloatVector t8 = FloatVector.fromArray(S, w, wt + 8 * BLOCK);
        FloatVector b = FloatVector.fromArray(S, bias, cb * BLOCK);
        int outSize = (h - 1) / 2 + 1;
        int plane = cb * h * h * BLOCK;
        int at = cb * outSize * outSize * BLOCK;
        for (int oy = 0; oy < outSize; oy++) {
            // Input rows 2oy − 1 .. 2oy + 1 (r0 above the image at oy = 0), columns 2ox − 1 .. 2ox + 1.
            boolean up = oy > 0;
            boolean down = 2 * oy + 1 < h;
            int r1 = plane + 2 * oy * h * BLOCK;
            int r0 = r1 - h * BLOCK;
            int r2 = r1 + h * BLOCK;
            for (int ox = 0; ox < outSize; ox++, at += BLOCK) {
                int q = 2 * ox * BLOCK;
                boolean left = ox > 0;
                boolean right = 2 * ox + 1 < h;
                FloatVector acc = (up && left ? FloatVector.fromArray(S, in, r0 + q - BLOCK) : z).fma(t0, b);
                acc = (up ? FloatVector.fromArray(S, in, r0 + q) : z).fma(t1, acc);
                acc = (up && right ? FloatVector.fromArray(S, in, r0 + q + BLOCK) : z).fma(t2, acc);
                acc = (left ? FloatVector.fromArray(S, in, r1 + q - BLOCK) : z).fma(t3, acc);
                acc = FloatVector.fromArray(S, in, r1 + q).fma(t4, acc);
                acc = (right ? FloatVector.fromArray(S, in, r1 + q + BLOCK) : z).fma(t5, acc);
                acc = (down && left ? FloatVector.fromArray(S, in, r2 + q - BLOCK) : z).fma(t6, acc);
                acc = (down ? FloatVector.fromArray(S, in, r2 + q) : z).fma(t7, acc);
                acc = (down && right ? FloatVector.fromArray(S, in, r2 + q + BLOCK) : z).fma(t8, acc);
                acc.max(0f).intoArray(out, at);
            }
        }
    }
}
