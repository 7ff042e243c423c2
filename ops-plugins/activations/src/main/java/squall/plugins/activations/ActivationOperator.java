package squall.plugins.activations;

import java.util.List;
import java.util.Set;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.api.SquallException;

/**
 * mish, gelu (attribute {@code approximate}: "none" or "tanh", as torch.nn.functional.gelu and
 * ONNX Gelu) and hardtanh ({@code min_val}, {@code max_val}; -1 and 1 by default, as torch): one
 * input, one output of the same shape.
 */
final class ActivationOperator implements Operator {
    /** Elements per slice of the CPU kernel: enough to amortise a task, few enough to balance. */
    private static final int SLICE = 1 << 14;

    private final String id;
    private final Set<String> attributes;

    ActivationOperator(String id, Set<String> attributes) {
        this.id = id;
        this.attributes = attributes;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        if (inputShapes.size() != 1 || inputShapes.getFirst() == null) {
            throw bad(node, id + " takes one input, got " + node.inputs());
        }
        for (String name : node.attributes().asMap().keySet()) {
            if (!attributes.contains(name)) {
                throw bad(node, "unknown attribute '" + name + "'; " + id + " takes " + (attributes.isEmpty()
                        ? "none" : attributes));
            }
        }
        function(node);
        float[] bounds = bounds(node);
        if (bounds[0] > bounds[1]) {
            throw bad(node, "min_val = " + bounds[0] + " is greater than max_val = " + bounds[1]);
        }
        return List.of(inputShapes.getFirst());
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        float[] bounds = bounds(context.node());
        return List.of(KernelCall.of(ActivationKernels.class, "activate", context.input(0), context.output(0),
                context.inputShape(0).size(), function(context.node()), bounds[0], bounds[1]));
    }

    /** The portable kernel's loop split into slices over the workers: the same function, so the same bits. */
    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        int function = function(context.node());
        float[] bounds = bounds(context.node());
        float[] x = context.input(0);
        float[] y = context.output(0);
        int size = context.inputShape(0).size();
        return workers -> workers.forEach((size + SLICE - 1) / SLICE, slice -> ActivationKernels.activateRange(
                x, y, slice * SLICE, Math.min(size, (slice + 1) * SLICE), function, bounds[0], bounds[1]));
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount();
    }

    private int function(Node node) {
        return switch (id) {
            case "mish" -> ActivationKernels.MISH;
            case "hardtanh" -> ActivationKernels.HARDTANH;
            default -> switch (node.attributes().getString("approximate", "none")) {
                case "none" -> ActivationKernels.GELU;
                case "tanh" -> ActivationKernels.GELU_TANH;
                default -> throw bad(node, "attribute 'approximate' is \""
                        + node.attributes().getString("approximate") + "\"; expected \"none\" or \"tanh\"");
            };
        };
    }

    /** hardtanh's (min_val, max_val); unused by the others. */
    private float[] bounds(Node node) {
        return new float[] {node.attributes().getFloat("min_val", -1f), node.attributes().getFloat("max_val", 1f)};
    }

    private static SquallException bad(Node node, String problem) {
        return new SquallException.BadShape(node + ": " + problem);
    }
}
