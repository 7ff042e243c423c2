package squall.ops;

import java.util.List;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code identity}, and {@code dropout} and {@code stochastic_depth}, which are identities at inference. */
final class Identity implements Operator {
    private final String id;

    Identity(String id) {
        this.id = id;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        return List.of(Check.required(node, inputShapes, 0, "x"));
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
