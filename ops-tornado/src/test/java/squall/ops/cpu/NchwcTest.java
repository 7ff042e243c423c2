package squall.ops.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static squall.ops.cpu.Nchwc.BLOCK;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Attributes;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;
import squall.ops.BuiltinOperators;

/**
 * The blocked layout's kernels against the portable NCHW kernels: the input goes to blocks with
 * {@link Nchwc#toBlocks}, the kernel runs, its output comes back with {@link Nchwc#toPlanes} and
 * must agree within {@link CpuKernelsTest#assertAgrees}'s tolerance. Shapes are awkward on
 * purpose: maps whose pixels are not a multiple of the 6-pixel tile (the last tile overlaps), output
 * channels of 1-7 blocks (tiles of 4, 2 and 1 blocks), 1x1 and one-row maps, odd sizes at stride 2.
 */
class NchwcTest {
    private static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));

    @Test
    void reorderRoundTrips() {
        Random random = new Random(1);
        for (int pixels : new int[] {1, 37, 1200}) {
            int channels = 2 * BLOCK;
            float[] planes = CpuKernelsTest.random(random, 3 * channels * pixels, 1f);
            for (int threads : new int[] {1, 2}) {
                float[] blocks = new float[planes.length];
                new Nchwc(planes, blocks, true, 3, channels, pixels).run(Workers.of(threads));
                assertArrayEquals(Nchwc.toBlocks(planes, 3, channels, pixels), blocks, pixels + " pixels");
                float[] back = new float[planes.length];
                new Nchwc(blocks, back, false, 3, channels, pixels).run(Workers.of(threads));
                assertArrayEquals(planes, back, pixels + " pixels, back");
            }
        }
    }

    @Test
    void globalAvgPoolOfBlocksAgreesWithThePortableKernel() {
        Operator pool = BUILTIN.get("global_avg_pool");
        Random random = new Random(2);
        for (int[] c : new int[][] {{2, 2 * BLOCK, 7, 7}, {1, BLOCK, 1, 1}, {1, 3 * BLOCK, 5, 2}}) {
            Shape x = Shape.of(c[0], c[1], c[2], c[3]);
            Shape y = Shape.of(c[0], c[1], 1, 1);
            float[][] inputs = {CpuKernelsTest.random(random, x.size(), 2f)};
            var portable = JvmKernelContext.withNewOutputs(new Node("pool", "global_avg_pool", List.of("x"),
                    List.of("y"), Attributes.of()), List.of(x), List.of(y), inputs);
            pool.kernels(portable).forEach(KernelCall::invoke);
            Node blocked = new Node("pool", "global_avg_pool", List.of("x"), List.of("y"),
                    Attributes.of("layout", "nchwc"));
            assertThrows(SquallException.class, () -> pool.kernels(JvmKernelContext.withNewOutputs(blocked,
                    List.of(x), List.of(y), inputs)), "no portable kernel in blocks");
            for (int threads : new int[] {1, 2}) {
                float[][] outputs = {new float[y.size()]};
                var context = new JvmKernelContext(blocked, List.of(x), List.of(y),
                        new float[][] {Nchwc.toBlocks(inputs[0], c[0], c[1], c[2] * c[3])}, outputs, new boolean[1]);
                pool.cpuKernel(context).run(Workers.of(threads));
                CpuKernelsTest.assertAgrees(portable.output(0), outputs[0], "pool of " + x + ", " + threads + " threads");
            }
        }
    }

    /**
     * A conv's case. dense: groups 1 with any kernel and stride (else a kernel over 1 is
     * depthwise); planes: x in planes.
     */
    record Case(int batch, int in, int out, int height, int width, int kernel, int stride, String activation,
                boolean residual, boolean scaled, boolean dense, boolean planes) {
        Case(int batch, int in, int out, int height, int width, int kernel, int stride, String activation,
             boolean residual) {
            this(batch, in, out, height, width, kernel, stride, activation, residual, false);
        }

        Case(int batch, int in, int out, int height, int width, int kernel, int stride, String activation,
             boolean residual, boolean scaled) {
            this(batch, in, out, height, width, kernel, stride, activation, residual, scaled, false, false);
        }

        static Case dense(int batch, int in, int out, int height, int width, int kernel, int stride,
                          String activation, boolean residual, boolean planes) {
            return new Case(batch, in, out, height, width, kernel, stride, activation, residual, false, true, planes);
        }

        boolean depthwise() {
            return kernel > 1 && !dense;
        }

        @Override
        public String toString() {
            String conv = dense ? "dense " + kernel + "x" + kernel + " s" + stride + " " + in + "->" + out
                    + (planes ? " from planes" : "")
                    : kernel == 1 ? "1x1 " + in + "->" + out
                    : "depthwise " + kernel + "x" + kernel + " s" + stride + " " + in;
            return conv + " @" + height + "x" + width + ", batch " + batch + ", " + activation
                    + (residual ? ", residual" : "") + (scaled ? ", input scale" : "");
        }
    }

    static Stream<Case> pointwise() {
        return Stream.of(
                new Case(1, BLOCK, BLOCK, 2, 3, 1, 1, "relu", false),
                new Case(2, 3 * BLOCK, 7 * BLOCK, 7, 5, 1, 1, "relu6", false),
                new Case(1, 2 * BLOCK, 4 * BLOCK, 14, 14, 1, 1, "none", true),
                new Case(2, BLOCK, 6 * BLOCK, 3, 4, 1, 1, "hardswish", true),
                new Case(1, 4 * BLOCK, 5 * BLOCK, 1, 7, 1, 1, "silu", false),
                new Case(3, 2 * BLOCK, 3 * BLOCK, 5, 5, 1, 1, "none", true, true),
                new Case(2, 3 * BLOCK, BLOCK, 4, 5, 1, 1, "hardswish", false, true));
    }

    static Stream<Case> depthwise() {
        return Stream.of(
                new Case(2, BLOCK, BLOCK, 7, 5, 3, 1, "relu", false),
                new Case(1, 2 * BLOCK, 2 * BLOCK, 1, 1, 3, 1, "relu6", false),
                new Case(1, BLOCK, BLOCK, 5, 1, 3, 1, "hardswish", false),
                new Case(1, 3 * BLOCK, 3 * BLOCK, 40, 33, 3, 1, "none", false),
                new Case(1, BLOCK, BLOCK, 2, 9, 3, 2, "relu", false),
                new Case(2, 2 * BLOCK, 2 * BLOCK, 7, 7, 3, 2, "silu", false),
                new Case(1, BLOCK, BLOCK, 1, 1, 3, 2, "none", false),
                new Case(2, 2 * BLOCK, 2 * BLOCK, 7, 5, 5, 1, "relu", false),
                new Case(1, BLOCK, BLOCK, 14, 14, 5, 1, "silu", false),
                new Case(2, 2 * BLOCK, 2 * BLOCK, 7, 7, 5, 1, "hardswish", false),
                new Case(1, 3 * BLOCK, 3 * BLOCK, 9, 6, 5, 2, "relu6", false),
                new Case(1, BLOCK, BLOCK, 14, 13, 5, 2, "relu", false),
                new Case(2, BLOCK, BLOCK, 2, 1, 5, 2, "hardswish", false));
    }

    /**
     * Tiles that span rows, maps of 49 pixels (the last tile overlaps one in the band before it, so
     * storing its old pixels would undo that band's activation) and of a multiple of 6; output
     * channels of 1-7 blocks, strides 1 and 2 on odd sizes, 3x3, 5x5 and a strided 1x1, residuals;
     * from planes, input channels that are not a multiple of the block (EfficientNetV2's 24), an
     * RGB image at stride 1, and a 1x1 conv read in place (an island's entry, efficientnet_b0's 40).
     */
    static Stream<Case> dense() {
        return Stream.of(
                Case.dense(1, BLOCK, 4 * BLOCK, 7, 7, 3, 1, "silu", true, false),
                Case.dense(2, 2 * BLOCK, 3 * BLOCK, 13, 13, 3, 2, "hardswish", true, false),
                Case.dense(1, 3 * BLOCK, 5 * BLOCK, 6, 6, 3, 1, "none", true, false),
                Case.dense(1, BLOCK, 7 * BLOCK, 15, 12, 5, 2, "hardswish", false, false),
                Case.dense(1, BLOCK, 2 * BLOCK, 13, 14, 1, 2, "relu", false, false),
                Case.dense(2, 24, 6 * BLOCK, 16, 15, 3, 2, "silu", false, true),
                Case.dense(1, 3, 2 * BLOCK, 7, 9, 3, 1, "relu", false, true),
                Case.dense(2, 40, 3 * BLOCK, 5, 9, 1, 1, "silu", false, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dense")
    void denseAgreesWithThePortableKernel(Case c) {
        check(c, NchwcConv.class, false);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pointwise")
    void pointwiseAgreesWithThePortableKernel(Case c) {
        check(c, NchwcPointwise.class, false);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("depthwise")
    void depthwiseAgreesWithThePortableKernel(Case c) {
        check(c, NchwcDepthwise.class, false);
        if (c.stride() == 1) {
            check(c, NchwcDepthwise.class, true);
        }
    }

    private static void check(Case c, Class<?> kernelType, boolean inPlace) {
        Random random = new Random(c.hashCode());
        Operator conv = BUILTIN.get("conv2d");
        boolean depthwise = c.depthwise();
        Shape x = Shape.of(c.batch(), c.in(), c.height(), c.width());
        Shape y = Shape.of(c.batch(), c.out(), (c.height() - 1) / c.stride() + 1, (c.width() - 1) / c.stride() + 1);
        List<Shape> shapes = new ArrayList<>(List.of(x, Shape.of(c.out(), depthwise ? 1 : c.in(), c.kernel(),
                c.kernel()), Shape.of(c.out())));
        if (c.residual() || c.scaled()) {
            shapes.add(c.residual() ? y : null);
        }
        if (c.scaled()) {
            shapes.add(Shape.of(c.batch(), c.in(), 1, 1));
        }
        float[][] inputs = new float[shapes.size()][];
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = shapes.get(i) == null ? null
                    : CpuKernelsTest.random(random, shapes.get(i).size(), i == 1 ? 0.5f : 2f);
        }
        List<String> names = new ArrayList<>(List.of("x", "w", "b", c.residual() ? "r" : "", "s")
                .subList(0, shapes.size()));
        Attributes attributes = Attributes.of("stride", c.stride(), "padding", c.kernel() / 2, "groups",
                depthwise ? c.in() : 1, "activation", c.activation());
        // The reference of an input scale (which has no portable kernel): the conv of x scaled first.
        int pixels = c.height() * c.width();
        float[][] plainInputs = java.util.Arrays.copyOf(inputs, Math.min(inputs.length, 4));
        if (c.scaled()) {
            plainInputs[0] = inputs[0].clone();
            for (int i = 0; i < plainInputs[0].length; i++) {
                plainInputs[0][i] *= inputs[4][i / pixels];
            }
        }
        List<Shape> plainShapes = shapes.subList(0, plainInputs.length);
        Node plain = new Node("conv", "conv2d", names.subList(0, plainInputs.length), List.of("y"), attributes);
        var portable = JvmKernelContext.withNewOutputs(plain, plainShapes, List.of(y), plainInputs);
        conv.kernels(portable).forEach(KernelCall::invoke);

        Node blocked = new Node("conv", "conv2d", names, List.of("y"), attributes.with("layout",
                c.planes() ? "nchwc_output" : "nchwc"));
        assertTrue(conv.writesInPlace(blocked, shapes) == (depthwise && c.stride() == 1), c + ": in place");
        assertThrows(SquallException.class, () -> conv.kernels(JvmKernelContext.withNewOutputs(blocked, shapes,
                List.of(y), inputs)), "no portable kernel in blocks");
        int outPixels = y.dim(2) * y.dim(3);
        for (int threads : new int[] {1, 2}) {
            float[][] blockedInputs = inputs.clone();
            if (!c.planes()) {
                blockedInputs[0] = Nchwc.toBlocks(inputs[0], c.batch(), c.in(), pixels);
            }
            if (c.residual()) {
                blockedInputs[3] = Nchwc.toBlocks(inputs[3], c.batch(), c.out(), outPixels);
            }
            float[][] outputs = {inPlace ? blockedInputs[0] : new float[y.size()]};
            var context = new JvmKernelContext(blocked, shapes, List.of(y), blockedInputs, outputs,
                    new boolean[] {false, true, true, false, false});
            CpuKernel kernel = conv.cpuKernel(context);
            assertInstanceOf(kernelType, kernel, c.toString());
            var changingWeights = new JvmKernelContext(blocked, shapes, List.of(y), blockedInputs, outputs,
                    new boolean[shapes.size()]);
            assertThrows(SquallException.class, () -> conv.cpuKernel(changingWeights), "weights that may change");
            kernel.run(Workers.of(threads));
            CpuKernelsTest.assertAgrees(portable.output(0), Nchwc.toPlanes(outputs[0], c.batch(), c.out(), outPixels),
                    c + (inPlace ? ", in place, " : ", ") + threads + " threads");
        }
    }

    /** The stem writing blocks: odd sizes, an odd number of blocks, padding 1 and 0, a batch. */
    @Test
    void stemAgreesWithThePortableKernel() {
        Operator conv = BUILTIN.get("conv2d");
        int[][] cases = {{2, 3, 2 * BLOCK, 15, 13, 1}, {1, 3, 3 * BLOCK, 20, 31, 1}, {1, 4, BLOCK, 13, 13, 0}};
        String[] activations = {"relu6", "hardswish", "none"};
        for (int i = 0; i < cases.length; i++) {
            int[] c = cases[i];
            String what = "stem " + c[1] + "->" + c[2] + " @" + c[3] + "x" + c[4] + ", padding " + c[5] + ", batch "
                    + c[0] + ", " + activations[i];
            Random random = new Random(i);
            Shape x = Shape.of(c[0], c[1], c[3], c[4]);
            List<Shape> shapes = List.of(x, Shape.of(c[2], c[1], 3, 3), Shape.of(c[2]));
            float[][] inputs = {CpuKernelsTest.random(random, x.size(), 2f),
                CpuKernelsTest.random(random, shapes.get(1).size(), 0.5f), CpuKernelsTest.random(random, c[2], 2f)};
            Attributes attributes = Attributes.of("stride", 2, "padding", c[5], "activation", activations[i]);
            Node plain = new Node("stem", "conv2d", List.of("x", "w", "b"), List.of("y"), attributes);
            Shape y = conv.outputShapes(plain, shapes).getFirst();
            var portable = JvmKernelContext.withNewOutputs(plain, shapes, List.of(y), inputs);
            conv.kernels(portable).forEach(KernelCall::invoke);
            Node blocked = new Node("stem", "conv2d", List.of("x", "w", "b"), List.of("y"),
                    attributes.with("layout", "nchwc_output"));
            assertFalse(conv.writesInPlace(blocked, shapes), what);
            for (int threads : new int[] {1, 2}) {
                float[][] outputs = {new float[y.size()]};
                var context = new JvmKernelContext(blocked, shapes, List.of(y), inputs, outputs,
                        new boolean[] {false, true, true});
                CpuKernel kernel = conv.cpuKernel(context);
                assertInstanceOf(NchwcStem.class, kernel, what);
                kernel.run(Workers.of(threads));
                CpuKernelsTest.assertAgrees(portable.output(0), Nchwc.toPlanes(outputs[0], c[0], c[2],
                        y.dim(2) * y.dim(3)), what + ", " + threads + " threads");
            }
        }
    }

    @Test
    void convsTheBlockedKernelsDoNotTakeAreRefused() {
        Operator conv = BUILTIN.get("conv2d");
        Attributes blocked = Attributes.of("padding", 1, "layout", "nchwc");
        // A dense 3x3 conv of stride 3, one with dilation 2, one with input channels not a multiple of
        // the block, a depthwise conv of such channels.
        List<List<Shape>> refused = List.of(
                List.of(Shape.of(1, BLOCK, 8, 8), Shape.of(BLOCK, BLOCK, 3, 3)),
                List.of(Shape.of(1, BLOCK, 8, 8), Shape.of(BLOCK, BLOCK, 3, 3)),
                List.of(Shape.of(1, BLOCK + 1, 8, 8), Shape.of(BLOCK, BLOCK + 1, 3, 3)),
                List.of(Shape.of(1, BLOCK + 1, 8, 8), Shape.of(BLOCK + 1, 1, 3, 3)));
        List<Attributes> attributes = List.of(blocked.with("stride", 3), blocked.with("dilation", 2),
                blocked, blocked.with("groups", BLOCK + 1));
        for (int i = 0; i < refused.size(); i++) {
            List<Shape> shapes = refused.get(i);
            Node node = new Node("c", "conv2d", List.of("x", "w"), List.of("y"), attributes.get(i));
            var e = assertThrows(SquallException.class, () -> conv.outputShapes(node, shapes), "case " + i);
            assertTrue(e.getMessage().contains("layout \"nchwc\" is only for 1x1 convs"), e.getMessage());
        }
        // A 5x5 depthwise conv without 'same' padding.
        Node unpadded = new Node("c", "conv2d", List.of("x", "w"), List.of("y"), blocked.with("groups", BLOCK));
        var e5 = assertThrows(SquallException.class, () -> conv.outputShapes(unpadded,
                List.of(Shape.of(1, BLOCK, 8, 8), Shape.of(BLOCK, 1, 5, 5))));
        assertTrue(e5.getMessage().contains("3x3 or 5x5 depthwise convs"), e5.getMessage());
        Node unknown = new Node("c", "conv2d", List.of("x", "w"), List.of("y"), Attributes.of("layout", "nhwc"));
        var e = assertThrows(SquallException.class, () -> conv.outputShapes(unknown,
                List.of(Shape.of(1, 4, 8, 8), Shape.of(4, 4, 1, 1))));
        assertTrue(e.getMessage().contains("layout \"nhwc\" should be"), e.getMessage());
        // A conv that reads planes and writes blocks: dense, stride 1 or 2, no residual.
        Node notAStem = new Node("c", "conv2d", List.of("x", "w"), List.of("y"), Attributes.of("padding", 1,
                "stride", 3, "layout", "nchwc_output"));
        var stride3 = assertThrows(SquallException.class, () -> conv.outputShapes(notAStem,
                List.of(Shape.of(1, 3, 32, 32), Shape.of(BLOCK, 3, 3, 3))));
        assertTrue(stride3.getMessage().contains("layout \"nchwc_output\" is only for"), stride3.getMessage());
        Node withResidual = new Node("c", "conv2d", List.of("x", "w", "", "r"), List.of("y"),
                Attributes.of("padding", 1, "layout", "nchwc_output"));
        Shape y = Shape.of(1, BLOCK, 16, 16);
        var residual = assertThrows(SquallException.class, () -> conv.outputShapes(withResidual,
                java.util.Arrays.asList(Shape.of(1, 3, 16, 16), Shape.of(BLOCK, 3, 3, 3), null, y)));
        assertTrue(residual.getMessage().contains("layout \"nchwc_output\" is only for"), residual.getMessage());

        Operator reorder = BUILTIN.get("reorder");
        var wrongTarget = assertThrows(SquallException.class, () -> reorder.outputShapes(new Node("r", "reorder",
                List.of("x"), List.of("y"), Attributes.of("to", "nhwc")), List.of(Shape.of(1, BLOCK, 2, 2))));
        assertTrue(wrongTarget.getMessage().contains("should be \"nchwc\" or \"nchw\""), wrongTarget.getMessage());
        var oddChannels = assertThrows(SquallException.class, () -> reorder.outputShapes(new Node("r", "reorder",
                List.of("x"), List.of("y"), Attributes.of("to", "nchwc")), List.of(Shape.of(1, BLOCK + 3, 2, 2))));
        assertTrue(oddChannels.getMessage().contains("not a multiple of the block"), oddChannels.getMessage());
        assertFalse(Nchwc.fits(BLOCK + 3));
    }
}
