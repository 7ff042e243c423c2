package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.DepthwiseConv;
import squall.ops.cpu.ExpandDepthwise;

/**
 * {@code expand_depthwise}: x [N,C,H,W], expand_weight [E,C,1,1], expand_bias [E]?, weight
 * [E,1,kH,kW], bias [E]?; the depthwise conv's attributes plus {@code expand_activation}. The JVM
 * backend's plan-time fusion of an inverted residual block's 1x1 expansion into the depthwise
 * conv that reads it ({@code Passes.fuseExpandDepthwise}): out = act(dwconv(expand_act(conv1x1(x,
 * expand_weight) + expand_bias), weight) + bias), the expanded tensor never stored. With
 * {@code pool_output} = 1, as conv2d: a second output [N,E,1,1] of the output planes' means.
 * Importers do not make it, and it has no portable kernel: other backends keep the two conv2d
 * nodes.
 */
final class ExpandDepthwiseConv implements Operator {
    @Override
    public String id() {
        return "expand_depthwise";
    }

    /** The validated depthwise window and output shape. */
    private record Geometry(Window window, Shape input, Shape output, int kernelH, int kernelW) {
        int channels() {
            return output.dim(1);
        }
    }

    private static Geometry geometry(Node node, List<Shape> inputs) {
        Check.atMost(node, inputs, 5);
        Shape x = Check.required(node, inputs, 0, "x");
        Shape expandWeight = Check.required(node, inputs, 1, "expand_weight");
        Shape weight = Check.required(node, inputs, 3, "weight");
        Check.rank(node, "x", x, 4, "[N, C, H, W]");
        Check.rank(node, "expand_weight", expandWeight, 4, "[E, C, 1, 1]");
        int expanded = expandWeight.dim(0);
        Check.equal(node, "expand_weight", expandWeight, Shape.of(expanded, x.dim(1), 1, 1));
        Check.rank(node, "weight", weight, 4, "[E, 1, kH, kW]");
        Check.equal(node, "weight", weight, Shape.of(expanded, 1, weight.dim(2), weight.dim(3)));
        for (int i : new int[] {2, 4}) {
            Shape bias = Check.optional(inputs, i);
            if (bias != null) {
                Check.equal(node, i == 2 ? "expand_bias" : "bias", bias, Shape.of(expanded));
            }
        }
        if (node.attributes().getInt("groups", 1) != expanded) {
            throw Check.bad(node, "groups = " + node.attributes().getInt("groups", 1) + " must be the expanded "
                    + "channels (" + expanded + "): the second conv is depthwise");
        }
        Window window = Window.of(node, weight.dim(2), weight.dim(3), new int[] {1, 1});
        Shape output = Shape.of(x.dim(0), expanded, window.outHeight(x.dim(2), false), window.outWidth(x.dim(3), false));
        if (!DepthwiseConv.supports(window.asArray(), expanded, expanded, expanded)
                || !DepthwiseConv.runsDirect(window.asArray(), x.dim(2), x.dim(3), output.dim(2), output.dim(3))) {
            throw Check.bad(node, "expand_depthwise takes only an undilated 3x3 or 5x5 depthwise conv with 'same' "
                    + "padding at stride 1 or 2, not " + window + " on x " + x);
        }
        return new Geometry(window, x, output, weight.dim(2), weight.dim(3));
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        return Conv2d.withPooled(node, geometry(node, inputShapes).output());
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        Geometry g = geometry(node, inputShapes);
        Shape x = g.input();
        return (long) x.dim(0) * g.channels() * x.dim(2) * x.dim(3) * x.dim(1)
                + g.output().elementCount() * g.kernelH() * g.kernelW();
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        throw Check.bad(context.node(), "expand_depthwise has no portable kernel: it comes from the JVM backend's "
                + "plan-time fusion; keep the two conv2d nodes for other backends");
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Geometry g = geometry(context.node(), context.inputShapes());
        Shape x = g.input();
        return new ExpandDepthwise(context.input(0), context.input(1), context.isConstant(1),
                bias(context, 2, g.channels()), Activation.fusedCode(context.node(), "expand_activation"),
                context.input(3), bias(context, 4, g.channels()), context.output(0), Conv2d.pooled(context),
                g.window().asArray(), x.dim(0), x.dim(1), g.channels(), x.dim(2), x.dim(3), g.output().dim(2),
                g.output().dim(3), Activation.fusedCode(context.node()));
    }

    /** An absent bias is zeros. */
    private static float[] bias(KernelContext context, int input, int channels) {
        float[] bias = context.input(input);
        return bias != null ? bias : new float[channels];
    }
}
