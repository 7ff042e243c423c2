package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Elementwise;
import squall.ops.cpu.Nchwc;

/**
 * {@code global_avg_pool}: [N,C,H,W] to [N,C,1,1]. With the attribute {@code layout} = "nchwc", x
 * is in the JVM backend's blocked layout ({@code squall.ops.cpu.Nchwc}; the output, one pixel, is
 * the same either way): an island's reader, from {@code Layouts.blockChannels}, with no portable
 * kernel.
 */
final class GlobalAvgPool implements Operator {
    @Override
    public String id() {
        return "global_avg_pool";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        Check.rank(node, "x", x, 4, "[N, C, H, W]");
        if (x.dim(2) * x.dim(3) == 0) {
            throw Check.bad(node, "x " + x + " has an empty spatial extent; there is nothing to average");
        }
        if (blocked(node) && !Nchwc.fits(x.dim(1))) {
            throw Check.bad(node, "layout \"nchwc\" needs channels a multiple of " + Nchwc.BLOCK + ", x is " + x);
        }
        return List.of(Shape.of(x.dim(0), x.dim(1), 1, 1));
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return inputShapes.getFirst().elementCount();
    }

    /** Whether x is in the blocked layout. */
    private static boolean blocked(Node node) {
        String layout = node.attributes().getString("layout", "nchw");
        if (!layout.equals("nchw") && !layout.equals("nchwc")) {
            throw Check.bad(node, "layout \"" + layout + "\" should be \"nchw\" or \"nchwc\"");
        }
        return layout.equals("nchwc");
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        if (blocked(context.node())) {
            throw Check.bad(context.node(), "layout \"nchwc\" has no portable kernel: it comes from the JVM "
                    + "backend's plan-time pass Layouts.blockChannels; keep the pool in NCHW for other backends");
        }
        Shape x = context.inputShape(0);
        return List.of(KernelCall.of(PoolKernels.class, "globalAvgPool", context.input(0), context.output(0),
                x.dim(0) * x.dim(1), x.dim(2) * x.dim(3)));
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape x = context.inputShape(0);
        if (blocked(context.node())) {
            return Nchwc.globalAvgPool(context.input(0), context.output(0), x.dim(0), x.dim(1), x.dim(2) * x.dim(3));
        }
        return Elementwise.globalAvgPool(context.input(0), context.output(0), x.dim(0) * x.dim(1), x.dim(2) * x.dim(3));
    }
}
