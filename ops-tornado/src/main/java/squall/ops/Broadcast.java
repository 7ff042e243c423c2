package squall.ops;

import java.util.Arrays;
import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;
import squall.ops.cpu.Elementwise;

/** {@code add} and {@code mul} with numpy broadcasting up to rank {@link PointwiseKernels#MAX_RANK}. */
final class Broadcast implements Operator {
    private final String id;
    private final int operation;

    Broadcast(String id, int operation) {
        this.id = id;
        this.operation = operation;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 2);
        Shape a = Check.required(node, inputShapes, 0, "a");
        Shape b = Check.required(node, inputShapes, 1, "b");
        int rank = Math.max(a.rank(), b.rank());
        if (rank > PointwiseKernels.MAX_RANK) {
            throw Check.bad(node, "inputs " + a + " and " + b + " have rank " + rank + "; at most "
                    + PointwiseKernels.MAX_RANK + " is supported");
        }
        int[] out = new int[rank];
        for (int axis = 0; axis < rank; axis++) {
            int da = dimFromRight(a, rank - axis);
            int db = dimFromRight(b, rank - axis);
            if (da != db && da != 1 && db != 1) {
                throw Check.bad(node, "shapes " + a + " and " + b + " do not broadcast (numpy rules): axis " + axis
                        + " of the result has " + da + " vs " + db);
            }
            out[axis] = da == 1 ? db : da;
        }
        return List.of(Shape.of(out));
    }

    /** Dimension {@code k} counted from the right (1 = last), 1 where the shape has no such axis. */
    private static int dimFromRight(Shape s, int k) {
        return k <= s.rank() ? s.dim(s.rank() - k) : 1;
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return outputShapes.getFirst().elementCount();
    }

    /** The output shape padded on the left with 1s to MAX_RANK. */
    private static int[] paddedDims(Shape out) {
        int[] dims = new int[PointwiseKernels.MAX_RANK];
        Arrays.fill(dims, 1);
        for (int k = 1; k <= out.rank(); k++) {
            dims[dims.length - k] = out.dim(out.rank() - k);
        }
        return dims;
    }

    /** Row-major strides of {@code in} aligned to the right, 0 along axes it broadcasts over. */
    static int[] broadcastStrides(Shape in) {
        int[] strides = new int[PointwiseKernels.MAX_RANK];
        int stride = 1;
        for (int k = 1; k <= in.rank(); k++) {
            int d = in.dim(in.rank() - k);
            strides[strides.length - k] = d == 1 ? 0 : stride;
            stride *= d;
        }
        return strides;
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape out = context.outputShape(0);
        return List.of(KernelCall.of(PointwiseKernels.class, "broadcast", context.input(0), context.input(1),
                context.output(0), out.size(), paddedDims(out), broadcastStrides(context.inputShape(0)),
                broadcastStrides(context.inputShape(1)), operation));
    }

    /** Squeeze-excite's product: scale [N, C, 1, 1] (or [N, C]) times x [N, C, H, W]. */
    private static boolean isChannelScale(Shape scale, Shape x) {
        return x.rank() == 4 && scale.rank() == 4 && scale.dim(0) == x.dim(0) && scale.dim(1) == x.dim(1)
                && scale.dim(2) == 1 && scale.dim(3) == 1;
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        float[] a = context.input(0);
        float[] b = context.input(1);
        float[] out = context.output(0);
        Shape aShape = context.inputShape(0);
        Shape bShape = context.inputShape(1);
        Shape outShape = context.outputShape(0);
        if (operation == PointwiseKernels.ADD && aShape.equals(bShape)) {
            return Elementwise.add(a, b, out, outShape.size());
        }
        if (operation == PointwiseKernels.MUL && isChannelScale(aShape, bShape)) {
            return Elementwise.scalePlanes(a, b, out, aShape.size(), outShape.size() / aShape.size());
        }
        if (operation == PointwiseKernels.MUL && isChannelScale(bShape, aShape)) {
            return Elementwise.scalePlanes(b, a, out, bShape.size(), outShape.size() / bShape.size());
        }
        int[] dims = paddedDims(context.outputShape(0));
        int[] aStrides = broadcastStrides(context.inputShape(0));
        int[] bStrides = broadcastStrides(context.inputShape(1));
        return workers -> Split.ranges(workers, context.outputShape(0).size(), (from, to) -> {
            for (int i = from; i < to; i++) {
                out[i] = PointwiseKernels.broadcastElement(a, b, i, dims, aStrides, bStrides, operation);
            }
        });
    }
}
