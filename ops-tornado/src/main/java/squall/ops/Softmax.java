package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code softmax} along one axis (ONNX opset 13 semantics; default the last axis). */
final class Softmax implements Operator {
    @Override
    public String id() {
        return "softmax";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        if (x.rank() < 1) {
            throw Check.bad(node, "x should have rank >= 1, got " + x);
        }
        axis(node, x);
        return List.of(x);
    }

    private static int axis(Node node, Shape x) {
        return Check.axis(node, "axis", node.attributes().getInt("axis", -1), x.rank(), false);
    }

    /** x viewed as [outer, axisLength, inner]. */
    private static int[] view(Node node, Shape x) {
        int axis = axis(node, x);
        int outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= x.dim(i);
        }
        return new int[] {outer, x.dim(axis), x.size() / outer / Math.max(1, x.dim(axis))};
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount();
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        int[] v = view(context.node(), context.inputShape(0));
        return List.of(KernelCall.of(DenseKernels.class, "softmax", context.input(0), context.output(0), v[0], v[1],
                v[2]));
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        int[] v = view(context.node(), context.inputShape(0));
        float[] x = context.input(0);
        float[] y = context.output(0);
        return workers -> Split.ranges(workers, v[0] * v[2], (from, to) -> {
            for (int line = from; line < to; line++) {
                DenseKernels.softmaxLine(x, y, line / v[2], line % v[2], v[1], v[2]);
            }
        });
    }
}
