package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code batch_norm} at inference: x [N,C,...], weight, bias, running_mean, running_var [C]. */
final class BatchNorm implements Operator {
    private static final String[] ROLES = {"x", "weight", "bias", "running_mean", "running_var"};

    @Override
    public String id() {
        return "batch_norm";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 5);
        Shape x = Check.required(node, inputShapes, 0, "x");
        if (x.rank() < 2) {
            throw Check.bad(node, "x should be [N, C, ...] (rank >= 2), got " + x);
        }
        for (int i = 1; i < ROLES.length; i++) {
            Check.equal(node, ROLES[i], Check.required(node, inputShapes, i, ROLES[i]), Shape.of(x.dim(1)));
        }
        return List.of(x);
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount();
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape x = context.inputShape(0);
        return List.of(KernelCall.of(PointwiseKernels.class, "batchNorm", context.input(0), context.input(1),
                context.input(2), context.input(3), context.input(4), context.output(0), x.dim(0), x.dim(1),
                x.size() / x.dim(0) / x.dim(1), epsilon(context.node())));
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape x = context.inputShape(0);
        int channels = x.dim(1);
        int spatial = x.size() / x.dim(0) / channels;
        float epsilon = epsilon(context.node());
        float[] in = context.input(0);
        float[] weight = context.input(1);
        float[] bias = context.input(2);
        float[] mean = context.input(3);
        float[] variance = context.input(4);
        float[] out = context.output(0);
        return workers -> Split.ranges(workers, x.dim(0) * channels, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                PointwiseKernels.batchNormPlane(in, weight, bias, mean, variance, out, plane / channels,
                        plane % channels, channels, spatial, epsilon);
            }
        });
    }

    private static float epsilon(Node node) {
        float epsilon = node.attributes().getFloat("epsilon", 1e-5f);
        if (!(epsilon >= 0)) {
            throw Check.bad(node, "attribute 'epsilon' should be >= 0, got " + epsilon);
        }
        return epsilon;
    }
}
