package squall.ops.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
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
 * The Vector API kernels against the portable kernels (the reference semantics) on awkward shapes:
 * odd sizes, 1x1 maps, channel counts that are not multiples of the 16 lanes or the 12-row tile,
 * stride 2 on odd inputs, batches above 1. Tolerance: |cpu - portable| <= 1e-5 · (|portable| + mean
 * |portable|), since the kernels sum in another order and use fused multiply-adds.
 */
class CpuKernelsTest {
    private static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));
    private static final List<String> ACTIVATIONS = List.of("none", "relu", "relu6", "sigmoid", "silu", "hardsigmoid",
            "hardswish");

    /** A conv2d case; kernel type is the CPU kernel class the operator must pick. */
    record Conv(String name, int batch, int inChannels, int height, int width, int outChannels, int kernel, int stride,
                int groups, boolean residual, Class<?> kernelType) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Conv> convs() {
        return Stream.of(
                new Conv("pointwise 16->24 on 56x56 (MobileNetV2 shape)", 1, 16, 56, 56, 24, 1, 1, 1, false,
                        ShallowPointwise.class),
                new Conv("pointwise 13->25 on 7x7, batch 3, residual (channels in lanes: small weights, a small map)", 3,
                        13, 7, 7, 25, 1, 1, 1, true, PointwiseChannelsInLanes.class),
                new Conv("pointwise 13->25 on 6x6, batch 3, residual (GEMM strips pieced from two images)", 3, 13, 6, 6,
                        25, 1, 1, 1, true, GemmConv.class),
                new Conv("pointwise 1->12 on 5x9", 2, 1, 5, 9, 12, 1, 1, 1, false, GemmConv.class),
                new Conv("pointwise 32->14 on 31x29, batch 2, residual", 2, 32, 31, 29, 14, 1, 1, 1, true,
                        ShallowPointwise.class),
                new Conv("pointwise 150->7 on 57x56", 1, 150, 57, 56, 7, 1, 1, 1, false, ShallowPointwise.class),
                new Conv("pointwise 20->23 on 30x28 (rows by six, four, then one)", 1, 20, 30, 28, 23, 1, 1, 1, false,
                        ShallowPointwise.class),
                new Conv("pointwise 16->71 on 57x58, batch 2, residual (row blocks over groups of whole chunks, then a "
                        + "partial chunk)", 2, 16, 57, 58, 71, 1, 1, 1, true, ShallowPointwise.class),
                new Conv("pointwise 49->40 on 28x28", 1, 49, 28, 28, 40, 1, 1, 1, false, GemmConv.class),
                new Conv("pointwise 70->64 on 57x56 (64 output channels: the GEMM)", 1, 70, 57, 56, 64, 1, 1, 1, false,
                        GemmConv.class),
                new Conv("pointwise 40->17 on 33x1", 1, 40, 33, 1, 17, 1, 1, 1, true, GemmConv.class),
                new Conv("pointwise 97->30 on 14x14, residual (a thin 4-column strip, odd depth)", 1, 97, 14, 14, 30, 1,
                        1, 1, true, GemmConv.class),
                new Conv("pointwise 301->250 on 6x6, residual (panel by panel, B packed once, a thin strip, odd depth)",
                        1, 301, 6, 6, 250, 1, 1, 1, true, GemmConv.class),
                new Conv("pointwise 600->29 on 13x15, batch 3, residual (strips in several L2 blocks, across images)",
                        3, 600, 13, 15, 29, 1, 1, 1, true, GemmConv.class),
                new Conv("pointwise 260->257 on 9x10, batch 6, residual (267 KiB of weights: panel by panel over 2 "
                        + "blocks of strips)", 6, 260, 9, 10, 257, 1, 1, 1, true, GemmConv.class),
                new Conv("pointwise on a 1x1 map, batch 2 (squeeze-excite)", 2, 37, 1, 1, 19, 1, 1, 1, false, Dense.class),
                new Conv("pointwise 33->64 on 7x7, batch 2, residual (channels in lanes)", 2, 33, 7, 7, 64, 1, 1, 1,
                        true, PointwiseChannelsInLanes.class),
                new Conv("pointwise 130->30 on 14x14, residual (a projection: channels in lanes)", 1, 130, 14, 14, 30, 1,
                        1, 1, true, PointwiseChannelsInLanes.class),
                new Conv("pointwise 40->70 on 14x7 (channels in lanes, a partial strip of channels)", 1, 40, 14, 7, 70, 1,
                        1, 1, false, PointwiseChannelsInLanes.class),
                new Conv("pointwise on a 1x1 map with residual", 3, 8, 1, 1, 5, 1, 1, 1, true, Dense.class),
                new Conv("pointwise on a 1x1 map, batch 9, residual (squeeze-excite batched: 8 + 1 rows)", 9, 20, 1, 1,
                        37, 1, 1, 1, true, Dense.class),
                new Conv("stem 3x3 s2 3->32 on 15x17, batch 2", 2, 3, 15, 17, 32, 3, 2, 1, false, StemConv.class),
                new Conv("stem 3x3 s2 3->32 on 61x57, batch 2 (direct: a partial second vector)", 2, 3, 61, 57, 32, 3,
                        2, 1, false, StemConv.class),
                new Conv("stem 3x3 s2 3->21 on 70x68 (direct: 3 channel tiles, the last partial; a one-vector tile)", 1,
                        3, 70, 68, 21, 3, 2, 1, false, StemConv.class),
                new Conv("stem 3x3 s2 3->16 on 130x129, batch 2 (direct: whole tiles stored from registers, then a "
                        + "1-column tile)", 2, 3, 130, 129, 16, 3, 2, 1, false, StemConv.class),
                new Conv("stem 3x3 s2 3->32 on 15x17 with residual (the indirect GEMM over phases)", 1, 3, 15, 17, 32, 3, 2, 1,
                        true, GemmConv.class),
                new Conv("dense 3x3 s1 5->9 on 29x30 with residual (the indirect GEMM: one padded panel)", 1, 5, 29, 30, 9, 3, 1, 1, true,
                        GemmConv.class),
                new Conv("dense 3x3 s1 24->24 on 9x9 with residual (Fused-MBConv)", 1, 24, 9, 9, 24, 3, 1, 1, true,
                        GemmConv.class),
                new Conv("dense 3x3 s1 25->21 on 57x56, batch 2, residual (the indirect GEMM: a partial last panel)",
                        2, 25, 57, 56, 21, 3, 1, 1, true, GemmConv.class),
                new Conv("dense 3x3 s2 on a 1x1 map", 2, 5, 1, 1, 7, 3, 2, 1, false, GemmConv.class),
                new Conv("dense 3x3 s3 12->14 on 31x35, batch 2, residual (stride 3: im2col, then the GEMM)", 2, 12,
                        31, 35, 14, 3, 3, 1, true, GemmConv.class),
                new Conv("depthwise 3x3 s1 on 37x19, batch 2, residual (NCHW direct, two edge vectors)", 2, 20, 37, 19,
                        20, 3, 1, 20, true, DepthwiseConv.class),
                new Conv("depthwise 5x5 s1 on 21x23, batch 2, residual (NCHW direct)", 2, 20, 21, 23, 20, 5, 1, 20,
                        true, DepthwiseConv.class),
                new Conv("depthwise 5x5 s1 on 37x50 (NCHW direct: an interior vector, two partial edges)", 1, 6, 37, 50,
                        6, 5, 1, 6, false, DepthwiseConv.class),
                new Conv("depthwise 7x7 s2 on 61x67, batch 2, residual (NCHW phase planes)", 2, 5, 61, 67, 5, 7, 2, 5,
                        true, DepthwiseConv.class),
                new Conv("depthwise 5x5 s2 on 38x36 (NCHW direct: an even height, one full and one 2-lane vector)", 1, 6,
                        38, 36, 6, 5, 2, 6, false, DepthwiseConv.class),
                new Conv("depthwise 5x5 s2 on 61x67, batch 2, residual (NCHW direct)", 2, 5, 61, 67, 5, 5, 2, 5,
                        true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 9x11", 1, 17, 9, 11, 17, 3, 2, 17, false, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 3x3 s2 on 112x112 (MobileNetV2 shape)", 1, 3, 112, 112, 3, 3, 2, 3, false,
                        DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 23x67, batch 2, residual (NCHW direct: interior vectors, odd sizes)", 2,
                        5, 23, 67, 5, 3, 2, 5, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 9x70 (NCHW direct: both edges in one row of vectors)", 1, 4, 9, 70, 4, 3, 2,
                        4, false, DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 57x55, batch 2, residual (NCHW direct)", 2, 35, 57, 55, 35, 3, 2,
                        35, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 15x13, batch 2, residual (NCHW direct: 7 wide)", 2, 35, 15, 13, 35, 3, 2,
                        35, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s2 on 11x12, batch 2, residual (channels in lanes: 6 wide)", 2, 35, 11, 12, 35, 3,
                        2, 35, true, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s2 on 14x14, 40 channels (NCHW direct: 7 wide)", 1, 40, 14, 14, 40, 5, 2, 40,
                        false, DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 30x29 (NCHW, direct)", 1, 18, 30, 29, 18, 3, 1, 18, false,
                        DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 35x48, batch 2, residual (NCHW, direct: interior vectors, full last one)",
                        2, 5, 35, 48, 5, 3, 1, 5, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 17x45 (NCHW, direct: interior vectors, partial last one)", 1, 6, 17, 45,
                        6, 3, 1, 6, false, DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 13x8, 33 channels, batch 3, residual (NCHW direct)", 3, 33, 13, 8, 33, 3,
                        1, 33, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 9x7, batch 2, residual (NCHW direct: a row is under half a vector)", 2,
                        19, 9, 7, 19, 3, 1, 19, true, DepthwiseConv.class),
                new Conv("depthwise 3x3 s1 on 6x6, batch 2 (channels in lanes)", 2, 21, 6, 6, 21, 3, 1, 21, false,
                        DepthwiseChannelsInLanes.class),
                new Conv("depthwise 3x3 s1 on 13x14, 33 channels, batch 3, residual (NCHW direct, one vector)", 3, 33, 13,
                        14, 33, 3, 1, 33, true, DepthwiseConv.class),
                new Conv("depthwise 5x5 s1 on 14x14 (NCHW direct, one vector)", 2, 7, 14, 14, 7, 5, 1, 7, false,
                        DepthwiseConv.class),
                new Conv("depthwise 5x5 s1 on 9x7", 2, 7, 9, 7, 7, 5, 1, 7, false, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s1 on 7x7, batch 2, residual (channels in lanes: 4 + 3 pixels a row, a "
                        + "partial block of channels)", 2, 40, 7, 7, 40, 5, 1, 40, true, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s1 on 3x5, batch 2, residual (channels in lanes: 15 pixels, the last 4-pixel "
                        + "step stores 3 past them)", 2, 18, 3, 5, 18, 5, 1, 18, true, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s1 on 8x8 (channels in lanes: two whole 4-pixel steps a row)", 1, 16, 8, 8, 16, 5,
                        1, 16, false, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s2 on 7x7", 1, 9, 7, 7, 9, 5, 2, 9, false, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 5x5 s2 on 2x3", 2, 3, 2, 3, 3, 5, 2, 3, true, DepthwiseChannelsInLanes.class),
                new Conv("depthwise 3x3 s1 on a 1x1 map", 3, 33, 1, 1, 33, 3, 1, 33, false,
                        DepthwiseChannelsInLanes.class),
                new Conv("depthwise 3x3 s2 on 1x1", 1, 4, 1, 1, 4, 3, 2, 4, false, DepthwiseChannelsInLanes.class));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convs")
    void convMatchesThePortableKernel(Conv c) {
        Random random = new Random(c.name().hashCode());
        for (String activation : ACTIVATIONS) {
            int pad = c.kernel() / 2;
            int outH = (c.height() + 2 * pad - c.kernel()) / c.stride() + 1;
            int outW = (c.width() + 2 * pad - c.kernel()) / c.stride() + 1;
            Shape out = Shape.of(c.batch(), c.outChannels(), outH, outW);
            List<Shape> shapes = Arrays.asList(Shape.of(c.batch(), c.inChannels(), c.height(), c.width()),
                    Shape.of(c.outChannels(), c.inChannels() / c.groups(), c.kernel(), c.kernel()),
                    Shape.of(c.outChannels()), c.residual() ? out : null);
            Attributes attributes = Attributes.of("stride", c.stride(), "padding", pad, "groups", c.groups(),
                    "activation", activation);
            check("conv2d", attributes, shapes, random, c.kernelType(), c.name() + ", " + activation);
        }
    }

    /**
     * Dense convs of stride 1 and 2 that read a padded copy of the image, split into phases at
     * stride 2 (GemmConv's indirect GEMM), with what {@link #convs} does not vary: dilation, a
     * non-square kernel, padding on some sides only (no bottom pad: the last row's fill reaches the
     * next plane), a padded 1x1, odd and even padded sizes, a stride in one direction only, and
     * grids whose last strip is partial.
     */
    @Test
    void indirectConvsMatchThePortableKernel() {
        Random random = new Random(8);
        // batch, in, height, width, out, kernel h, kernel w, dilation, padding (top, left, bottom, right),
        // residual, stride h, stride w
        int[][] cases = {{2, 7, 17, 19, 13, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1}, {1, 9, 11, 23, 26, 5, 3, 1, 1, 2, 0, 0, 0, 1, 1},
            {2, 6, 8, 5, 12, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 40, 29, 30, 37, 3, 3, 1, 0, 1, 2, 1, 1, 1, 1},
            {2, 24, 37, 36, 30, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2}, {1, 11, 34, 45, 17, 5, 5, 1, 2, 2, 2, 2, 0, 2, 2},
            {1, 8, 20, 33, 14, 3, 3, 2, 2, 1, 0, 2, 1, 2, 1}, {2, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1, 0, 2, 2}};
        for (int[] c : cases) {
            int outH = (c[2] + c[8] + c[10] - c[7] * (c[5] - 1) - 1) / c[13] + 1;
            int outW = (c[3] + c[9] + c[11] - c[7] * (c[6] - 1) - 1) / c[14] + 1;
            List<Shape> shapes = Arrays.asList(Shape.of(c[0], c[1], c[2], c[3]), Shape.of(c[4], c[1], c[5], c[6]),
                    Shape.of(c[4]), c[12] == 1 ? Shape.of(c[0], c[4], outH, outW) : null);
            for (String activation : List.of("none", "relu6", "silu", "sigmoid")) {
                Attributes attributes = Attributes.of("padding", new int[] {c[8], c[9], c[10], c[11]}, "dilation",
                        c[7], "stride", new int[] {c[13], c[14]}, "activation", activation);
                check("conv2d", attributes, shapes, random, GemmConv.class, "indirect " + Arrays.toString(c) + " "
                        + activation);
            }
        }
    }

    @Test
    void linearMatchesThePortableKernel() {
        Random random = new Random(5);
        // From 4 rows with constant weights, features in lanes: 8 + 4 rows, 5 rows, partial strips.
        for (int[] size : new int[][] {{1, 1280, 1000}, {3, 17, 6}, {8, 33, 13}, {2, 5, 3}, {1, 16, 4},
                {12, 40, 70}, {5, 48, 1152}, {4, 7, 33}}) {
            for (String activation : List.of("none", "hardswish")) {
                var shapes = Arrays.asList(Shape.of(size[0], size[1]), Shape.of(size[2], size[1]), Shape.of(size[2]));
                check("linear", Attributes.of("activation", activation), shapes, random, Dense.class,
                        "linear " + Arrays.toString(size) + " " + activation);
            }
        }
    }

    @Test
    void elementwiseLayersMatchThePortableKernels() {
        Random random = new Random(6);
        Shape x = Shape.of(2, 19, 7, 9);
        Shape scale = Shape.of(2, 19, 1, 1);
        check("mul", Attributes.EMPTY, List.of(scale, x), random, null, "squeeze-excite scale");
        check("mul", Attributes.EMPTY, List.of(x, scale), random, null, "scale on the right");
        check("add", Attributes.EMPTY, List.of(x, x), random, null, "residual add");
        check("global_avg_pool", Attributes.EMPTY, List.of(x), random, null, "global average pool");
        check("global_avg_pool", Attributes.EMPTY, List.of(Shape.of(3, 5, 1, 1)), random, null, "pool of 1x1");
        check("global_avg_pool", Attributes.EMPTY, List.of(Shape.of(2, 5, 15, 10)), random, null,
                "pool of 150 pixels: 4-vector steps, one vector, a partial one");
        for (String activation : List.of("relu", "relu6", "sigmoid", "silu", "hardsigmoid", "hardswish")) {
            check(activation, Attributes.EMPTY, List.of(Shape.of(3, 7, 5, 11)), random, null, activation);
        }
    }

    /**
     * conv2d with input_scale (a squeeze-and-excitation gate fused into the 1x1 conv after it)
     * against the portable kernels of what it replaces: mul(x, scale), then conv2d. The three CPU
     * routes: the shallow kernel (scaled weights per image), the GEMM (rows of B scaled while
     * packed, strips across images, and over 256 KiB of weights B packed once for all threads) and
     * channels in lanes on 7x7 maps (the input scaled first); with a residual and with a non-clamp
     * activation.
     */
    @Test
    void convWithInputScaleMatchesMulThenConv() {
        Random random = new Random(8);
        checkInputScale(2, 40, 28, 29, 24, "relu6", true, ShallowPointwise.class, random);
        checkInputScale(3, 100, 7, 9, 37, "none", true, GemmConv.class, random);
        checkInputScale(1, 200, 14, 14, 30, "silu", false, GemmConv.class, random);
        checkInputScale(2, 300, 9, 11, 230, "silu", true, GemmConv.class, random);
        checkInputScale(2, 70, 7, 7, 45, "hardswish", true, PointwiseChannelsInLanes.class, random);
        checkInputScale(1, 96, 7, 7, 40, "none", false, PointwiseChannelsInLanes.class, random);
        checkInputScale(5, 120, 7, 7, 33, "silu", true, PointwiseChannelsInLanes.class, random);
    }

    private static void checkInputScale(int batch, int channels, int height, int width, int outChannels,
                                        String activation, boolean withResidual, Class<?> kernelType, Random random) {
        String what = "1x1 conv " + channels + "->" + outChannels + " on " + height + "x" + width + ", batch " + batch
                + ", " + activation + (withResidual ? ", residual" : "");
        Shape x = Shape.of(batch, channels, height, width);
        Shape gate = Shape.of(batch, channels, 1, 1);
        Shape weight = Shape.of(outChannels, channels, 1, 1);
        Shape out = Shape.of(batch, outChannels, height, width);
        float[] xData = random(random, x.size(), 2f);
        float[] gateData = random(random, gate.size(), 1f);
        float[] weightData = random(random, weight.size(), 0.5f);
        float[] biasData = random(random, outChannels, 2f);
        float[] residualData = withResidual ? random(random, out.size(), 2f) : null;
        Attributes attributes = Attributes.of("activation", activation);
        // Reference: the portable mul, then the portable conv2d on its output.
        Operator mul = BUILTIN.get("mul");
        Node mulNode = new Node("gate", "mul", List.of("x", "gate"), List.of("gated"), Attributes.EMPTY);
        var mulContext = JvmKernelContext.withNewOutputs(mulNode, List.of(x, gate), List.of(x), xData, gateData);
        mul.kernels(mulContext).forEach(KernelCall::invoke);
        Operator conv = BUILTIN.get("conv2d");
        Node plain = new Node("conv", "conv2d", List.of("gated", "w", "b", withResidual ? "r" : ""), List.of("y"),
                attributes);
        List<Shape> plainShapes = Arrays.asList(x, weight, Shape.of(outChannels), withResidual ? out : null);
        var reference = JvmKernelContext.withNewOutputs(plain, plainShapes, List.of(out), mulContext.output(0),
                weightData, biasData, residualData);
        conv.kernels(reference).forEach(KernelCall::invoke);
        Node fused = new Node("conv", "conv2d", List.of("x", "w", "b", withResidual ? "r" : "", "gate"), List.of("y"),
                attributes);
        List<Shape> fusedShapes = Arrays.asList(x, weight, Shape.of(outChannels), withResidual ? out : null, gate);
        for (int threads : new int[] {1, 2}) {
            boolean[] constant = {false, true, true, false, false};
            var tuned = new JvmKernelContext(fused, fusedShapes, List.of(out),
                    new float[][] {xData, weightData, biasData, residualData, gateData},
                    new float[][] {new float[out.size()]}, constant);
            CpuKernel kernel = conv.cpuKernel(tuned);
            assertInstanceOf(kernelType, kernel, what);
            kernel.run(Workers.of(threads));
            kernel.run(Workers.of(threads));
            assertAgrees(reference.output(0), tuned.output(0), what + ", " + threads + " threads");
        }
    }

    /**
     * The fused expansion and depthwise conv against the two portable conv2d kernels one after the
     * other: odd maps (partial and thin strips, a partial chunk), a last panel or band of 4 rows and
     * a band of 2, 3x3 and 5x5, strides 1 and 2, batch 2, activations in both places; the
     * expansion by the packed GEMM (the 9x7 and 6x6 maps) and by ShallowPointwise's tiles (the
     * others: at most 48 input channels, from 28x28).
     */
    @Test
    void expandDepthwiseMatchesTheTwoPortableConvs() {
        Random random = new Random(9);
        checkExpandDepthwise(1, 16, 96, 29, 31, 3, 2, "silu", "silu", random);
        checkExpandDepthwise(2, 24, 40, 28, 28, 5, 1, "relu6", "none", random);
        checkExpandDepthwise(1, 8, 20, 9, 7, 3, 1, "hardswish", "relu", random);
        checkExpandDepthwise(1, 5, 12, 6, 6, 3, 1, "none", "sigmoid", random);
        checkExpandDepthwise(2, 7, 30, 30, 27, 5, 2, "sigmoid", "hardswish", random);
        checkExpandDepthwise(1, 48, 86, 28, 29, 3, 2, "relu", "relu6", random);
    }

    private static void checkExpandDepthwise(int batch, int in, int channels, int height, int width, int kernel,
                                             int stride, String expandActivation, String activation, Random random) {
        String what = "expand " + in + "->" + channels + " " + expandActivation + ", depthwise " + kernel + "x"
                + kernel + " stride " + stride + " " + activation + " on " + height + "x" + width + ", batch " + batch;
        Shape x = Shape.of(batch, in, height, width);
        Shape expandWeight = Shape.of(channels, in, 1, 1);
        Shape weight = Shape.of(channels, 1, kernel, kernel);
        Shape bias = Shape.of(channels);
        float[][] data = {random(random, x.size(), 2f), random(random, expandWeight.size(), 0.5f),
            random(random, channels, 1f), random(random, weight.size(), 0.5f), random(random, channels, 1f)};
        Attributes depthwise = Attributes.of("stride", stride, "padding", kernel / 2, "groups", channels,
                "activation", activation);
        // Reference: the portable 1x1 conv, then the portable depthwise conv on its output.
        Operator conv = BUILTIN.get("conv2d");
        Node expand = new Node("expand", "conv2d", List.of("x", "ew", "eb"), List.of("e"),
                Attributes.of("activation", expandActivation));
        Shape expanded = Shape.of(batch, channels, height, width);
        var first = JvmKernelContext.withNewOutputs(expand, List.of(x, expandWeight, bias), List.of(expanded),
                data[0], data[1], data[2]);
        conv.kernels(first).forEach(KernelCall::invoke);
        Node dw = new Node("dw", "conv2d", List.of("e", "w", "b"), List.of("y"), depthwise);
        Shape out = conv.outputShapes(dw, List.of(expanded, weight, bias)).getFirst();
        var reference = JvmKernelContext.withNewOutputs(dw, List.of(expanded, weight, bias), List.of(out),
                first.output(0), data[3], data[4]);
        conv.kernels(reference).forEach(KernelCall::invoke);

        Operator fusedOp = BUILTIN.get("expand_depthwise");
        Node fused = new Node("dw", "expand_depthwise", List.of("x", "ew", "eb", "w", "b"), List.of("y"),
                depthwise.with("expand_activation", expandActivation));
        List<Shape> shapes = List.of(x, expandWeight, bias, weight, bias);
        assertEquals(List.of(out), fusedOp.outputShapes(fused, shapes), what);
        for (int threads : new int[] {1, 2}) {
            var tuned = new JvmKernelContext(fused, shapes, List.of(out), data, new float[][] {new float[out.size()]},
                    new boolean[] {false, true, true, true, true});
            CpuKernel tunedKernel = fusedOp.cpuKernel(tuned);
            assertInstanceOf(ExpandDepthwise.class, tunedKernel, what);
            tunedKernel.run(Workers.of(threads));
            tunedKernel.run(Workers.of(threads));
            assertAgrees(reference.output(0), tuned.output(0), what + ", " + threads + " threads");
        }
        // With pool_output: the same output, and its planes' means as the portable pool gives them.
        Shape means = Shape.of(batch, channels, 1, 1);
        Node squeeze = new Node("pool", "global_avg_pool", List.of("y"), List.of("s"), Attributes.EMPTY);
        var pooled = JvmKernelContext.withNewOutputs(squeeze, List.of(out), List.of(means), reference.output(0));
        BUILTIN.get("global_avg_pool").kernels(pooled).forEach(KernelCall::invoke);
        Node fusedPool = new Node("dw", "expand_depthwise", List.of("x", "ew", "eb", "w", "b"), List.of("y", "s"),
                fused.attributes().with("pool_output", 1));
        assertEquals(List.of(out, means), fusedOp.outputShapes(fusedPool, shapes), what);
        var tuned = new JvmKernelContext(fusedPool, shapes, List.of(out, means), data,
                newOutputs(List.of(out, means)), new boolean[] {false, true, true, true, true});
        fusedOp.cpuKernel(tuned).run(Workers.of(2));
        assertAgrees(reference.output(0), tuned.output(0), what + ", pooled");
        assertAgrees(pooled.output(0), tuned.output(1), what + ", its means");
    }

    /**
     * A depthwise conv with pool_output against the portable conv2d and then the portable
     * global_avg_pool, on each depthwise kernel: direct (3x3, 5x5; a clamp stored from the
     * registers, silu finished after), phase planes (5x5 with padding 1), channels in lanes (7x7
     * maps), with a residual and batch 2.
     */
    @Test
    void depthwiseConvsPoolTheirPlanesAsThePortablePoolDoes() {
        Random random = new Random(12);
        checkPooled(2, 20, 29, 31, 3, 1, 1, "relu6", false, DepthwiseConv.class, random);
        checkPooled(1, 24, 28, 28, 5, 2, 2, "silu", true, DepthwiseConv.class, random);
        checkPooled(1, 16, 40, 37, 5, 1, 1, "hardswish", false, DepthwiseConv.class, random);
        checkPooled(2, 40, 7, 7, 5, 1, 2, "silu", true, DepthwiseChannelsInLanes.class, random);
        checkPooled(1, 33, 5, 6, 3, 1, 1, "relu", false, DepthwiseChannelsInLanes.class, random);
        // One channel: groups = 1 too, and still a depthwise kernel, which writes the means.
        checkPooled(2, 1, 9, 9, 3, 1, 1, "relu", false, DepthwiseConv.class, random);
    }

    private static void checkPooled(int batch, int channels, int height, int width, int kernel, int stride,
                                    int padding, String activation, boolean withResidual, Class<?> kernelType,
                                    Random random) {
        String what = "depthwise " + kernel + "x" + kernel + " stride " + stride + " padding " + padding + " "
                + activation + (withResidual ? " with a residual" : "") + " on " + channels + "@" + height + "x"
                + width + ", batch " + batch;
        Attributes attributes = Attributes.of("stride", stride, "padding", padding, "groups", channels, "activation",
                activation);
        Operator conv = BUILTIN.get("conv2d");
        Shape x = Shape.of(batch, channels, height, width);
        Shape weight = Shape.of(channels, 1, kernel, kernel);
        Shape bias = Shape.of(channels);
        Node plain = new Node("dw", "conv2d", List.of("x", "w", "b"), List.of("y"), attributes);
        Shape out = conv.outputShapes(plain, List.of(x, weight, bias)).getFirst();
        List<Shape> shapes = withResidual ? List.of(x, weight, bias, out) : List.of(x, weight, bias);
        float[][] data = randomInputs(random, shapes);
        // Reference: the portable conv, then the portable pool on its output.
        Node reference = new Node("dw", "conv2d", inputNames(shapes), List.of("y"), attributes);
        var convolved = JvmKernelContext.withNewOutputs(reference, shapes, List.of(out), data);
        conv.kernels(convolved).forEach(KernelCall::invoke);
        Operator pool = BUILTIN.get("global_avg_pool");
        Node squeeze = new Node("pool", "global_avg_pool", List.of("y"), List.of("s"), Attributes.EMPTY);
        Shape means = Shape.of(batch, channels, 1, 1);
        var pooled = JvmKernelContext.withNewOutputs(squeeze, List.of(out), List.of(means), convolved.output(0));
        pool.kernels(pooled).forEach(KernelCall::invoke);

        Node fused = new Node("dw", "conv2d", inputNames(shapes), List.of("y", "s"), attributes.with("pool_output", 1));
        assertEquals(List.of(out, means), conv.outputShapes(fused, shapes), what);
        for (int threads : new int[] {1, 2}) {
            var tuned = new JvmKernelContext(fused, shapes, List.of(out, means), data, newOutputs(List.of(out, means)),
                    new boolean[shapes.size()]);
            CpuKernel tunedKernel = conv.cpuKernel(tuned);
            assertInstanceOf(kernelType, tunedKernel, what);
            tunedKernel.run(Workers.of(threads));
            tunedKernel.run(Workers.of(threads));
            assertAgrees(convolved.output(0), tuned.output(0), what + ", " + threads + " threads");
            assertAgrees(pooled.output(0), tuned.output(1), what + ", its means, " + threads + " threads");
        }
        SquallException.BadShape portable = assertThrows(SquallException.BadShape.class, () -> conv.kernels(
                JvmKernelContext.withNewOutputs(fused, shapes, List.of(out, means), data)), what);
        assertTrue(portable.getMessage().contains("pool_output"), portable.getMessage());
    }

    /**
     * Conv2d.writesInPlace: the depthwise kernels at stride 1 (direct, phase planes, channels in
     * lanes) write their output over their input (one buffer, as the JVM backend assigns it) and
     * agree with the portable conv writing a separate output; other convs do not claim it.
     */
    @Test
    void depthwiseConvsInPlaceAgreeWithThePortableConv() {
        Random random = new Random(13);
        checkInPlace(1, 3, 112, 112, 3, "relu6", false, false, DepthwiseConv.class, random);
        checkInPlace(2, 5, 29, 31, 3, "silu", true, false, DepthwiseConv.class, random);
        checkInPlace(1, 4, 14, 14, 5, "hardswish", false, true, DepthwiseConv.class, random);
        checkInPlace(2, 3, 9, 17, 5, "relu", true, true, DepthwiseConv.class, random);
        checkInPlace(2, 3, 11, 30, 7, "relu", true, false, DepthwiseConv.class, random);
        checkInPlace(2, 40, 7, 7, 5, "silu", true, true, DepthwiseChannelsInLanes.class, random);
        checkInPlace(3, 17, 5, 6, 3, "relu6", false, false, DepthwiseChannelsInLanes.class, random);
        Operator conv = BUILTIN.get("conv2d");
        // {kernel, stride, padding, groups, size}: stride 2, a smaller output, dense.
        for (int[] notInPlace : new int[][] {{3, 2, 1, 4, 56}, {5, 1, 1, 4, 28}, {1, 1, 0, 1, 56}, {3, 1, 1, 1, 9}}) {
            int kernel = notInPlace[0];
            int groups = notInPlace[3];
            int size = notInPlace[4];
            Node node = new Node("c", "conv2d", List.of("x", "w"), List.of("y"), Attributes.of("stride",
                    notInPlace[1], "padding", notInPlace[2], "groups", groups));
            List<Shape> shapes = List.of(Shape.of(1, 4, size, size), Shape.of(4, 4 / groups, kernel, kernel));
            assertFalse(conv.writesInPlace(node, shapes), "not in place: " + node.attributes() + " @" + size);
        }
    }

    private static void checkInPlace(int batch, int channels, int height, int width, int kernel, String activation,
                                     boolean withResidual, boolean pooled, Class<?> kernelType, Random random) {
        String what = "depthwise " + kernel + "x" + kernel + " " + activation + (withResidual ? " with a residual" : "")
                + (pooled ? ", pooled" : "") + " on " + channels + "@" + height + "x" + width + ", batch " + batch;
        Attributes attributes = Attributes.of("padding", kernel / 2, "groups", channels, "activation", activation);
        Operator conv = BUILTIN.get("conv2d");
        Shape x = Shape.of(batch, channels, height, width);
        List<Shape> shapes = withResidual ? List.of(x, Shape.of(channels, 1, kernel, kernel), Shape.of(channels), x)
                : List.of(x, Shape.of(channels, 1, kernel, kernel), Shape.of(channels));
        float[][] data = randomInputs(random, shapes);
        Node reference = new Node("dw", "conv2d", inputNames(shapes), List.of("y"), attributes);
        var portable = JvmKernelContext.withNewOutputs(reference, shapes, List.of(x), data);
        conv.kernels(portable).forEach(KernelCall::invoke);
        Shape means = Shape.of(batch, channels, 1, 1);
        Node node = pooled ? new Node("dw", "conv2d", inputNames(shapes), List.of("y", "s"),
                attributes.with("pool_output", 1)) : reference;
        List<Shape> outShapes = pooled ? List.of(x, means) : List.of(x);
        assertTrue(conv.writesInPlace(node, shapes), what);
        for (int threads : new int[] {1, 2}) {
            float[][] inputs = data.clone();
            inputs[0] = data[0].clone();
            float[][] outputs = newOutputs(outShapes);
            outputs[0] = inputs[0];
            var tuned = new JvmKernelContext(node, shapes, outShapes, inputs, outputs, new boolean[shapes.size()]);
            CpuKernel tunedKernel = conv.cpuKernel(tuned);
            assertInstanceOf(kernelType, tunedKernel, what);
            tunedKernel.run(Workers.of(threads));
            assertAgrees(portable.output(0), outputs[0], what + ", in place, " + threads + " threads");
        }
    }

    /** Runs the portable kernels and the CPU kernel with 1 and 2 workers on random inputs and compares. */
    private static void check(String op, Attributes attributes, List<Shape> shapes, Random random, Class<?> kernelType,
                              String what) {
        Operator operator = BUILTIN.get(op);
        Node node = new Node("test", op, inputNames(shapes), List.of("y"), attributes);
        List<Shape> outShapes = operator.outputShapes(node, shapes);
        float[][] inputs = randomInputs(random, shapes);
        var portable = JvmKernelContext.withNewOutputs(node, shapes, outShapes, inputs);
        operator.kernels(portable).forEach(KernelCall::invoke);
        // Weights and bias are graph inputs here (as in ONNX test cases), which every kernel must
        // handle; the channels-in-lanes kernel needs them constant, as a model's parameters are,
        // and Dense packs them for a batch only then: it runs both ways.
        boolean[] constantCases = kernelType == Dense.class ? new boolean[] {false, true}
                : new boolean[] {kernelType == PointwiseChannelsInLanes.class};
        for (boolean constantWeights : constantCases) {
            boolean[] constant = new boolean[shapes.size()];
            for (int i = 1; i < Math.min(3, constant.length); i++) {
                constant[i] = constantWeights;
            }
            for (int threads : new int[] {1, 2}) {
                var tuned = new JvmKernelContext(node, shapes, outShapes, inputs, newOutputs(outShapes), constant);
                CpuKernel kernel = operator.cpuKernel(tuned);
                if (kernelType != null) {
                    assertInstanceOf(kernelType, kernel, what);
                }
                kernel.run(Workers.of(threads));
                kernel.run(Workers.of(threads));
                assertAgrees(portable.output(0), tuned.output(0), what + ", " + threads + " threads"
                        + (constantWeights ? ", constant weights" : ""));
            }
        }
    }

    private static float[][] newOutputs(List<Shape> shapes) {
        float[][] outputs = new float[shapes.size()][];
        for (int i = 0; i < outputs.length; i++) {
            outputs[i] = new float[shapes.get(i).size()];
        }
        return outputs;
    }

    private static List<String> inputNames(List<Shape> shapes) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            names.add(shapes.get(i) == null ? "" : "in" + i);
        }
        return names;
    }

    /** Random values for each input shape (null for an absent one), the weights (input 1) in a narrower range. */
    private static float[][] randomInputs(Random random, List<Shape> shapes) {
        float[][] inputs = new float[shapes.size()][];
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = shapes.get(i) == null ? null : random(random, shapes.get(i).size(), i == 1 ? 0.5f : 2f);
        }
        return inputs;
    }

    static float[] random(Random random, int size, float range) {
        float[] a = new float[size];
        for (int i = 0; i < size; i++) {
            a[i] = (random.nextFloat() * 2 - 1) * range;
        }
        return a;
    }

    static void assertAgrees(float[] portable, float[] cpu, String what) {
        double meanAbs = 0;
        for (float v : portable) {
            meanAbs += Math.abs(v) / portable.length;
        }
        for (int i = 0; i < portable.length; i++) {
            double tolerance = 1e-5 * (Math.abs(portable[i]) + meanAbs);
            if (!(Math.abs(cpu[i] - portable[i]) <= tolerance)) {
                fail(what + ": element " + i + " of " + portable.length + " is " + cpu[i] + ", the portable kernel "
                        + "gives " + portable[i] + " (tolerance " + tolerance + ")");
            }
        }
    }

    /** Vectors.expNegative of -x against Math.exp(x) over the range the activations use: within 2 ulp. */
    @Test
    void vectorExpIsWithinTwoUlpOfMathExp() {
        int lanes = Vectors.LANES;
        float[] x = new float[lanes];
        float[] y = new float[lanes];
        for (float start = -87f; start < 88f; start += 0.37f * lanes) {
            for (int i = 0; i < lanes; i++) {
                x[i] = start + 0.37f * i + 0.001f * i * i;
            }
            var negated = jdk.incubator.vector.FloatVector.fromArray(Vectors.SPECIES, x, 0).neg();
            Vectors.expNegative(negated).intoArray(y, 0);
            for (int i = 0; i < lanes; i++) {
                if (x[i] > 88f) {
                    continue;
                }
                float expected = (float) Math.exp(x[i]);
                assertTrue(Math.abs(y[i] - expected) <= 2 * Math.ulp(expected),
                        "exp(" + x[i] + ") = " + y[i] + ", Math.exp gives " + expected);
            }
        }
    }
}
