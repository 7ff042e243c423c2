package squall.ops;

import java.util.List;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code flatten}: [d0..dn] to [prod(d < axis), prod(d >= axis)]; the data is unchanged. */
final class Flatten implements Operator {
    @Override
    public String id() {
        return "flatten";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        int axis = Check.axis(node, "axis", node.attributes().getInt("axis", 1), x.rank(), true);
        long outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= x.dim(i);
        }
        return List.of(Shape.of(outer, x.elementCount() / Math.max(1, outer)));
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        return List.of(KernelCall.of(PointwiseKernels.class, "copy", context.input(0), context.output(0),
                context.outputShape(0).size()));
    }

    @Override
    public boolean isIdentity(Node node) {
        return true;
    }
}
