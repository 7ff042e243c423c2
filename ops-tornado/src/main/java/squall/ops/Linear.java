package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Dense;

/** {@code linear} as torch.nn.Linear: x [..., K], weight [M, K], bias [M]? to [..., M], with a fused activation. */
final class Linear implements Operator {
    @Override
    public String id() {
        return "linear";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 3);
        Shape x = Check.required(node, inputShapes, 0, "x");
        Shape weight = Check.required(node, inputShapes, 1, "weight");
        Check.rank(node, "weight", weight, 2, "[M, K]");
        if (x.rank() < 1 || x.dim(-1) != weight.dim(1)) {
            throw Check.bad(node, "x should be [N, K = " + weight.dim(1) + "] to match weight " + weight + ", got " + x);
        }
        Shape bias = Check.optional(inputShapes, 2);
        if (bias != null) {
            Check.equal(node, "bias", bias, Shape.of(weight.dim(0)));
        }
        Activation.fusedCode(node);
        int[] out = x.dims();
        out[out.length - 1] = weight.dim(0);
        return List.of(Shape.of(out));
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount() * inputShapes.get(1).dim(1);
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape weight = context.inputShape(1);
        return List.of(KernelCall.of(DenseKernels.class, "linear", context.input(0), context.input(1), bias(context),
                context.output(0), context.inputShape(0).size() / weight.dim(1), weight.dim(1), weight.dim(0),
                Activation.fusedCode(context.node())));
    }

    /** Vector dot products, four output features by two rows at a time (squall.ops.cpu.Dense). */
    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        int inFeatures = context.inputShape(1).dim(1);
        return new Dense(context.input(0), context.input(1), context.isConstant(1), bias(context), null,
                context.output(0), context.inputShape(0).size() / inFeatures, inFeatures, context.inputShape(1).dim(0),
                Activation.fusedCode(context.node()));
    }

    private static float[] bias(KernelContext context) {
        float[] bias = context.input(2);
        return bias != null ? bias : new float[context.inputShape(1).dim(0)];
    }
}
