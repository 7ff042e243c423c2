package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Elementwise;

/** {@code global_avg_pool}: [N,C,H,W] to [N,C,1,1]. */
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
        return List.of(Shape.of(x.dim(0), x.dim(1), 1, 1));
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return inputShapes.getFirst().elementCount();
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape x = context.inputShape(0);
        return List.of(KernelCall.of(PoolKernels.class, "globalAvgPool", context.input(0), context.output(0),
                x.dim(0) * x.dim(1), x.dim(2) * x.dim(3)));
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape x = context.inputShape(0);
        return Elementwise.globalAvgPool(context.input(0), context.output(0), x.dim(0) * x.dim(1), x.dim(2) * x.dim(3));
    }
}
