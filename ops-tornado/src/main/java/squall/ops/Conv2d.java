package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Dense;
import squall.ops.cpu.DepthwiseChannelsInLanes;
import squall.ops.cpu.DepthwiseConv;
import squall.ops.cpu.GemmConv;
import squall.ops.cpu.Nchwc;
import squall.ops.cpu.NchwcConv;
import squall.ops.cpu.NchwcDepthwise;
import squall.ops.cpu.NchwcPointwise;
import squall.ops.cpu.NchwcStem;
import squall.ops.cpu.PointwiseChannelsInLanes;
import squall.ops.cpu.ShallowPointwise;
import squall.ops.cpu.StemConv;

/**
 * {@code conv2d}: x [N,C,H,W], weight [O, C/groups, kH, kW], bias [O]?, residual [N,O,OH,OW]?,
 * input_scale [N,C,1,1]? (x scaled channel by channel first: the JVM backend's fusion of a
 * squeeze-and-excitation gate into the 1x1 conv after it, {@code Passes.fuseChannelScales}). With
 * the attribute {@code pool_output} = 1, a depthwise conv also writes a second output, the mean of
 * each output plane [N,O,1,1] (the JVM backend's fusion of a squeeze-and-excitation block's global
 * average pool into the depthwise conv before it, {@code Passes.fuseSqueezePools}). With the
 * attribute {@code layout} = "nchwc", x, residual and output are stored in the JVM backend's
 * blocked layout ({@code squall.ops.cpu.Nchwc}, {@code Layouts.blockChannels}): only 1x1 convs,
 * dense convs of stride 1 or 2, and 3x3 and 5x5 depthwise convs, on the JVM backend; with
 * "nchwc_output" only the output is, for a stem or a dense conv that starts an island.
 */
final class Conv2d implements Operator {
    /** The validated geometry of one conv2d node for concrete input shapes. */
    private record Geometry(Window window, int groups, int activation, Shape input, Shape weight, Shape output) {
        int batch() {
            return input.dim(0);
        }

        int outChannels() {
            return output.dim(1);
        }

        int outHeight() {
            return output.dim(2);
        }
    }

    @Override
    public String id() {
        return "conv2d";
    }

    private static Geometry geometry(Node node, List<Shape> inputs) {
        Check.atMost(node, inputs, 5);
        Shape x = Check.required(node, inputs, 0, "x");
        Shape weight = Check.required(node, inputs, 1, "weight");
        Check.rank(node, "x", x, 4, "[N, C, H, W]");
        Check.rank(node, "weight", weight, 4, "[O, C/groups, kH, kW]");
        int groups = node.attributes().getInt("groups", 1);
        int inChannels = x.dim(1);
        int outChannels = weight.dim(0);
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0) {
            throw Check.bad(node, "groups = " + groups + " must divide input channels (x " + x + ") and output "
                    + "channels (weight " + weight + ")");
        }
        if (weight.dim(1) != inChannels / groups) {
            throw Check.bad(node, "weight should be [O, C/groups = " + inChannels / groups + ", kH, kW] for x " + x
                    + " and groups = " + groups + ", got " + weight);
        }
        Window window = Window.of(node, weight.dim(2), weight.dim(3), new int[] {1, 1});
        Shape output = Shape.of(x.dim(0), outChannels, window.outHeight(x.dim(2), false),
                window.outWidth(x.dim(3), false));
        if (output.dim(2) < 1 || output.dim(3) < 1) {
            throw Check.bad(node, "x " + x + " is smaller than the " + window + ": the output would be " + output);
        }
        Shape bias = Check.optional(inputs, 2);
        if (bias != null) {
            Check.equal(node, "bias", bias, Shape.of(outChannels));
        }
        Shape residual = Check.optional(inputs, 3);
        if (residual != null) {
            Check.equal(node, "residual", residual, output);
        }
        Shape inputScale = Check.optional(inputs, 4);
        if (inputScale != null) {
            Check.equal(node, "input_scale", inputScale, Shape.of(x.dim(0), inChannels, 1, 1));
            if (groups != 1 || weight.dim(2) != 1 || weight.dim(3) != 1 || GemmConv.needsColumns(window.asArray())) {
                throw Check.bad(node, "input_scale is fused only into 1x1, stride-1, unpadded, ungrouped convs; "
                        + "this one has weight " + weight + ", groups " + groups + " and " + window);
            }
        }
        if (pooled(node) && (inputScale != null
                || !DepthwiseConv.supports(window.asArray(), groups, inChannels, outChannels))) {
            throw Check.bad(node, "pool_output is fused only into depthwise convs with equal strides, no dilation "
                    + "and no input_scale; this one has weight " + weight + ", groups " + groups + " and " + window);
        }
        int[] w = window.asArray();
        String layout = layout(node);
        boolean blockable = layout.equals("nchwc") && (residual == null
                && depthwiseBlocked(w, groups, inChannels, outChannels)
                || pointwiseBlocked(w, groups, inChannels, outChannels, output)
                || inputScale == null && denseBlocked(w, groups, inChannels, outChannels, output, true))
                || layout.equals("nchwc_output") && residual == null && inputScale == null
                && (NchwcStem.supports(w, groups, inChannels, outChannels, output.dim(3))
                || denseBlocked(w, groups, inChannels, outChannels, output, false));
        if (!layout.equals("nchw") && (pooled(node) || !blockable)) {
            throw Check.bad(node, "layout \"" + layout + "\" is only for 1x1 convs, dense convs of stride 1 or 2 and "
                    + "3x3 or 5x5 depthwise convs (\"nchwc\"), or a dense conv of stride 1 or 2 that reads planes "
                    + "(\"nchwc_output\"), no pool_output, with channels a multiple of " + Nchwc.BLOCK
                    + " (Layouts.blockChannels makes them); this one has x " + x + ", weight " + weight + ", groups "
                    + groups + " and " + window);
        }
        return new Geometry(window, groups, Activation.fusedCode(node), x, weight, output);
    }

    /**
     * Where the node's tensors are stored: "nchw" (default), "nchwc" (x, residual and output in the
     * blocked layout) or "nchwc_output" (only the output: a stem or dense conv that starts an island).
     */
    static String layout(Node node) {
        String layout = node.attributes().getString("layout", "nchw");
        if (!layout.equals("nchw") && !layout.equals("nchwc") && !layout.equals("nchwc_output")) {
            throw Check.bad(node, "layout \"" + layout + "\" should be \"nchw\", \"nchwc\" or \"nchwc_output\"");
        }
        return layout;
    }

    /** A dense conv that {@link NchwcConv} runs, its input in blocks or in planes. */
    private static boolean denseBlocked(int[] window, int groups, int inChannels, int outChannels, Shape output,
                                        boolean blockedInput) {
        return groups == 1
                && NchwcConv.supports(window, inChannels, outChannels, output.dim(2) * output.dim(3), blockedInput);
    }

    /** A 3x3 or 5x5 depthwise conv that {@link NchwcDepthwise} runs in the blocked layout. */
    private static boolean depthwiseBlocked(int[] window, int groups, int inChannels, int outChannels) {
        return groups == inChannels && outChannels == inChannels && NchwcDepthwise.supports(window, inChannels);
    }

    /** A 1x1 conv (stride 1, no padding, groups 1) that {@link NchwcPointwise} runs in the blocked layout. */
    private static boolean pointwiseBlocked(int[] window, int groups, int inChannels, int outChannels, Shape output) {
        return groups == 1 && window[0] == 1 && window[1] == 1 && !GemmConv.needsColumns(window)
                && NchwcPointwise.supports(inChannels, outChannels, output.dim(2) * output.dim(3));
    }

    /** Whether the node also writes its output planes' means ({@code pool_output}). */
    static boolean pooled(Node node) {
        return node.attributes().getInt("pool_output", 0) != 0;
    }

    /** The second output for the planes' means, or null without {@code pool_output}. */
    static float[] pooled(KernelContext context) {
        return pooled(context.node()) ? context.output(1) : null;
    }

    /** The output, and with {@code pool_output} the means of its planes. */
    static List<Shape> withPooled(Node node, Shape output) {
        return pooled(node) ? List.of(output, Shape.of(output.dim(0), output.dim(1), 1, 1)) : List.of(output);
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        return withPooled(node, geometry(node, inputShapes).output());
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        Shape weight = inputShapes.get(1);
        return outputShapes.getFirst().elementCount() * weight.dim(1) * weight.dim(2) * weight.dim(3);
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Geometry g = geometry(context.node(), context.inputShapes());
        if (context.input(4) != null) {
            throw Check.bad(context.node(), "input_scale has no portable kernel: it comes from the JVM backend's "
                    + "plan-time fusion and runs on its CPU kernels; keep the mul node for other backends");
        }
        if (!layout(context.node()).equals("nchw")) {
            throw Check.bad(context.node(), "layout \"" + layout(context.node()) + "\" has no portable kernel: it "
                    + "comes from the JVM backend's plan-time pass Layouts.blockChannels; keep the conv in NCHW for "
                    + "other backends");
        }
        if (pooled(context.node())) {
            throw Check.bad(context.node(), "pool_output has no portable kernel: it comes from the JVM backend's "
                    + "plan-time fusion and runs on its CPU kernels; keep the global_avg_pool node for other backends");
        }
        Shape x = g.input();
        Object[] shapeArgs = {g.window().asArray(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), g.outChannels(),
                g.outHeight(), g.output().dim(3), g.groups(), g.activation()};
        float[] residual = context.input(3);
        Object[] buffers = residual == null
                ? new Object[] {context.input(0), context.input(1), bias(context, g), context.output(0)}
                : new Object[] {context.input(0), context.input(1), bias(context, g), residual, context.output(0)};
        Object[] args = java.util.Arrays.copyOf(buffers, buffers.length + shapeArgs.length);
        System.arraycopy(shapeArgs, 0, args, buffers.length, shapeArgs.length);
        return List.of(KernelCall.of(ConvKernels.class, residual == null ? "conv2d" : "conv2dResidual", args));
    }

    /**
     * A depthwise conv at stride 1 whose output is as large as its input: every depthwise kernel
     * has read an output plane's input before it writes the plane ({@link DepthwiseConv}'s direct
     * kernels copy each plane first, its phase planes and {@link DepthwiseChannelsInLanes}'s tiles
     * are copies), and no plane's output lands on another plane's input. In the blocked layout,
     * {@link NchwcDepthwise} keeps the input row above the one it writes (3x3) or copies the plane
     * (5x5).
     */
    @Override
    public boolean writesInPlace(Node node, List<Shape> inputShapes) {
        Geometry g = geometry(node, inputShapes);
        int[] window = g.window().asArray();
        String layout = layout(node);
        return window[2] == 1 && !layout.equals("nchwc_output")
                && (layout.equals("nchwc") ? g.groups() > 1 : takesDepthwiseKernel(node, g))
                && g.output().dim(2) == g.input().dim(2) && g.output().dim(3) == g.input().dim(3);
    }

    /**
     * Whether {@link #cpuKernel} runs the node on a depthwise kernel. A pooled conv (checked in
     * geometry(): depthwise) does so even with one channel, which is also groups = 1: the dense
     * kernels do not write the means.
     */
    private static boolean takesDepthwiseKernel(Node node, Geometry g) {
        return (pooled(node) || g.groups() > 1)
                && DepthwiseConv.supports(g.window().asArray(), g.groups(), g.input().dim(1), g.outChannels());
    }

    /**
     * The Vector API kernels of squall.ops.cpu where one fits (a GEMM for dense convs, phase planes
     * for depthwise, dot products for 1x1 maps); other grouped convs run the portable kernel's
     * convRow over output rows split between the workers.
     */
    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Geometry g = geometry(context.node(), context.inputShapes());
        float[] input = context.input(0);
        float[] weight = context.input(1);
        float[] bias = bias(context, g);
        float[] output = context.output(0);
        int[] window = g.window().asArray();
        int inChannels = g.input().dim(1);
        int inHeight = g.input().dim(2);
        int inWidth = g.input().dim(3);
        int outChannels = g.outChannels();
        int outHeight = g.outHeight();
        int outWidth = g.output().dim(3);
        float[] inputScale = context.input(4);
        if (!layout(context.node()).equals("nchw") && !context.isConstant(1)) {
            // The blocked kernels rearrange the weights once, when they are made.
            throw Check.bad(context.node(), "layout \"" + layout(context.node()) + "\" needs constant weights (a "
                    + "model parameter); Layouts.blockChannels only lays out such convs");
        }
        String layout = layout(context.node());
        // Checked in geometry(): a stem or a dense conv (nchwc_output); a 3x3 or 5x5 depthwise, a 1x1
        // or a dense conv (nchwc).
        if (layout.equals("nchwc_output") && NchwcStem.supports(window, g.groups(), inChannels, outChannels,
                outWidth)) {
            return new NchwcStem(input, weight, bias, output, window, g.batch(), inChannels, inHeight, inWidth,
                    outChannels, outHeight, outWidth, g.activation());
        }
        if (layout.equals("nchwc") && g.groups() > 1) {
            return new NchwcDepthwise(input, weight, bias, output, window[0], window[2], g.batch(), inChannels,
                    inHeight, inWidth, g.activation());
        }
        if (layout.equals("nchwc") && pointwiseBlocked(window, g.groups(), inChannels, outChannels, g.output())) {
            return new NchwcPointwise(input, weight, bias, context.input(3), output, g.batch(), inChannels,
                    outChannels, outHeight * outWidth, g.activation(), inputScale);
        }
        if (!layout.equals("nchw")) {
            return new NchwcConv(input, layout.equals("nchwc"), weight, bias, context.input(3), output, window,
                    g.batch(), inChannels, inHeight, inWidth, outChannels, outHeight, outWidth, g.activation());
        }
        if (takesDepthwiseKernel(context.node(), g)) {
            if (DepthwiseChannelsInLanes.beatsPlanes(outWidth, window[0], window[1], window[2],
                    DepthwiseConv.runsDirect(window, inHeight, inWidth, outHeight, outWidth))) {
                return new DepthwiseChannelsInLanes(input, weight, bias, context.input(3), output, pooled(context),
                        window, g.batch(), inChannels, inHeight, inWidth, outHeight, outWidth, g.activation());
            }
            return new DepthwiseConv(input, weight, bias, context.input(3), output, pooled(context), window, g.batch(),
                    inChannels, inHeight, inWidth, outHeight, outWidth, g.activation());
        }
        if (inputScale != null) {
            // Checked in geometry(): 1x1, stride 1, unpadded, ungrouped.
            if (ShallowPointwise.beatsTheGemm(inChannels, outChannels, outHeight * outWidth)) {
                return new ShallowPointwise(input, weight, bias, context.input(3), output, g.batch(), inChannels,
                        outChannels, outHeight * outWidth, g.activation(), inputScale);
            }
            if (PointwiseChannelsInLanes.beatsTheGemm(g.batch(), outHeight * outWidth, inChannels, outChannels,
                    context.isConstant(1), true)) {
                return new PointwiseChannelsInLanes(input, weight, bias, context.input(3), output, g.batch(),
                        inChannels, outChannels, outHeight * outWidth, g.activation(), inputScale,
                        context.scratch(g.batch() * inChannels * outHeight * outWidth));
            }
            return new GemmConv(input, weight, context.isConstant(1), bias, context.input(3), output, window,
                    g.batch(), inChannels, inHeight, inWidth, outChannels, outHeight, outWidth, g.activation(), null,
                    inputScale);
        }
        if (g.groups() == 1 && !GemmConv.needsColumns(window) && outHeight * outWidth == 1) {
            return new Dense(input, weight, context.isConstant(1), bias, context.input(3), output, g.batch(),
                    inChannels, outChannels, g.activation());
        }
        if (g.groups() == 1 && !GemmConv.needsColumns(window) && ShallowPointwise.beatsTheGemm(inChannels, outChannels, outHeight * outWidth)) {
            return new ShallowPointwise(input, weight, bias, context.input(3), output, g.batch(), inChannels,
                    outChannels, outHeight * outWidth, g.activation(), null);
        }
        if (g.groups() == 1 && !GemmConv.needsColumns(window)
                && PointwiseChannelsInLanes.beatsTheGemm(g.batch(), outHeight * outWidth, inChannels, outChannels,
                    context.isConstant(1), false)) {
            return new PointwiseChannelsInLanes(input, weight, bias, context.input(3), output, g.batch(), inChannels,
                    outChannels, outHeight * outWidth, g.activation(), null, null);
        }
        if (StemConv.supports(window, g.groups(), inChannels) && context.input(3) == null) {
            return new StemConv(input, weight, context.isConstant(1), bias, output, window, g.batch(), inChannels, inHeight, inWidth,
                    outChannels, outHeight, outWidth, g.activation());
        }
        if (g.groups() == 1) {
            float[] columns = GemmConv.needsIm2col(window)
                    ? context.scratch(GemmConv.columnsSize(window, inChannels, outHeight, outWidth)) : null;
            return new GemmConv(input, weight, context.isConstant(1), bias, context.input(3), output, window, g.batch(), inChannels,
                    inHeight, inWidth, outChannels, outHeight, outWidth, g.activation(), columns, null);
        }
        float[] residual = residual(context);
        int hasResidual = context.input(3) == null ? 0 : 1;
        return workers -> Split.ranges(workers, g.batch() * outChannels * outHeight, (from, to) -> {
            for (int row = from; row < to; row++) {
                ConvKernels.convRow(input, weight, bias, residual, output, window, row / (outChannels * outHeight),
                        row / outHeight % outChannels, row % outHeight, inChannels, inHeight, inWidth, outChannels,
                        outHeight, outWidth, g.groups(), g.activation(), hasResidual);
            }
        });
    }

    /** An absent bias is zeros, so the kernel has one code path. */
    private static float[] bias(KernelContext context, Geometry g) {
        float[] bias = context.input(2);
        return bias != null ? bias : new float[g.outChannels()];
    }

    /** Without a residual, convRow never reads its residual array: pass the output. */
    private static float[] residual(KernelContext context) {
        float[] residual = context.input(3);
        return residual != null ? residual : context.output(0);
    }
}
