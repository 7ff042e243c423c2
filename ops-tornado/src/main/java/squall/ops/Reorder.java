package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Nchwc;

/**
 * {@code reorder}: x [N,C,H,W] to the same values in another layout, attribute {@code to} =
 * "nchwc" (the JVM backend's blocked layout, {@link Nchwc}) or "nchw". The JVM backend's
 * plan-time pass {@code Layouts.blockChannels} puts one at each edge of an island of blocked convs.
 * Importers do not make it, and it has no portable kernel.
 */
final class Reorder implements Operator {
    @Override
    public String id() {
        return "reorder";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        Check.rank(node, "x", x, 4, "[N, C, H, W]");
        toBlocks(node);
        if (!Nchwc.fits(x.dim(1))) {
            throw Check.bad(node, "x " + x + " has channels that are not a multiple of the block, " + Nchwc.BLOCK);
        }
        return List.of(x);
    }

    /** Whether the node reorders to blocks (to = "nchwc") rather than back (to = "nchw"). */
    private static boolean toBlocks(Node node) {
        String to = node.attributes().getString("to", "");
        if (!to.equals("nchwc") && !to.equals("nchw")) {
            throw Check.bad(node, "attribute to = \"" + to + "\" should be \"nchwc\" or \"nchw\"");
        }
        return to.equals("nchwc");
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return 0;
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        throw Check.bad(context.node(), "reorder has no portable kernel: it comes from the JVM backend's plan-time "
                + "pass Layouts.blockChannels; keep the graph in NCHW for other backends");
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape x = context.inputShape(0);
        return new Nchwc(context.input(0), context.output(0), toBlocks(context.node()), x.dim(0), x.dim(1),
                x.dim(2) * x.dim(3));
    }
}
