package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Elementwise;

/** An activation as its own node: relu, relu6, sigmoid, silu, hardswish, hardsigmoid, clip. */
final class Unary implements Operator {
    private final String id;
    private final int activation;

    Unary(String id, int activation) {
        this.id = id;
        this.activation = activation;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        float[] pq = parameters(node);
        if (activation == Activation.CLIP && pq[0] > pq[1]) {
            throw Check.bad(node, "attribute 'min' = " + pq[0] + " is greater than 'max' = " + pq[1]);
        }
        return List.of(x);
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount();
    }

    /** hardsigmoid's (alpha, beta) or clip's (min, max); unused otherwise. */
    private float[] parameters(Node node) {
        var a = node.attributes();
        return switch (activation) {
            case Activation.HARDSIGMOID -> new float[] {a.getFloat("alpha", Activation.HARDSIGMOID_ALPHA),
                    a.getFloat("beta", Activation.HARDSIGMOID_BETA)};
            case Activation.CLIP -> new float[] {a.getFloat("min", Float.NEGATIVE_INFINITY),
                    a.getFloat("max", Float.POSITIVE_INFINITY)};
            default -> new float[] {0f, 0f};
        };
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        float[] pq = parameters(context.node());
        return List.of(KernelCall.of(PointwiseKernels.class, "unary", context.input(0), context.output(0),
                context.inputShape(0).size(), activation, pq[0], pq[1]));
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        float[] pq = parameters(context.node());
        float[] x = context.input(0);
        float[] y = context.output(0);
        boolean torchHardsigmoid = pq[0] == Activation.HARDSIGMOID_ALPHA && pq[1] == Activation.HARDSIGMOID_BETA;
        if (activation != Activation.CLIP && (activation != Activation.HARDSIGMOID || torchHardsigmoid)) {
            return Elementwise.activation(activation, x, y, context.inputShape(0).size());
        }
        return workers -> Split.ranges(workers, context.inputShape(0).size(), (from, to) -> {
            for (int i = from; i < to; i++) {
                y[i] = Activation.apply(activation, x[i], pq[0], pq[1]);
            }
        });
    }
}
