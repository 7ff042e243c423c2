package squall.ops;

import java.util.List;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code gemm} with ONNX semantics: alpha·A'·B' + beta·C, C broadcast to [M, N]. */
final class Gemm implements Operator {
    @Override
    public String id() {
        return "gemm";
    }

    private static boolean flag(Node node, String name) {
        return node.attributes().getInt(name, 0) != 0;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 3);
        Shape a = Check.required(node, inputShapes, 0, "a");
        Shape b = Check.required(node, inputShapes, 1, "b");
        Check.rank(node, "a", a, 2, "a matrix");
        Check.rank(node, "b", b, 2, "a matrix");
        boolean transA = flag(node, "trans_a");
        boolean transB = flag(node, "trans_b");
        int rows = transA ? a.dim(1) : a.dim(0);
        int inner = transA ? a.dim(0) : a.dim(1);
        int innerB = transB ? b.dim(1) : b.dim(0);
        int cols = transB ? b.dim(0) : b.dim(1);
        if (inner != innerB) {
            throw Check.bad(node, "A' is [" + rows + ", " + inner + "] (a " + a + ", trans_a " + transA + ") but B' is ["
                    + innerB + ", " + cols + "] (b " + b + ", trans_b " + transB + "): inner dimensions differ");
        }
        Shape c = Check.optional(inputShapes, 2);
        if (c != null && !broadcastsTo(c, rows, cols)) {
            throw Check.bad(node, "c " + c + " does not broadcast to the result [" + rows + ", " + cols + "]");
        }
        return List.of(Shape.of(rows, cols));
    }

    private static boolean broadcastsTo(Shape c, int rows, int cols) {
        if (c.rank() > 2) {
            return false;
        }
        int cRows = c.rank() == 2 ? c.dim(0) : 1;
        int cCols = c.rank() >= 1 ? c.dim(-1) : 1;
        return (cRows == 1 || cRows == rows) && (cCols == 1 || cCols == cols);
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        Shape a = inputShapes.getFirst();
        return outputShapes.getFirst().elementCount() * (flag(node, "trans_a") ? a.dim(0) : a.dim(1));
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Node node = context.node();
        Shape out = context.outputShape(0);
        Shape a = context.inputShape(0);
        boolean transA = flag(node, "trans_a");
        Shape c = context.inputShape(2);
        float[] cValues = c != null ? context.input(2) : new float[1];
        int cRows = c != null && c.rank() == 2 ? c.dim(0) : 1;
        int cCols = c != null && c.rank() >= 1 ? c.dim(-1) : 1;
        float beta = c != null ? node.attributes().getFloat("beta", 1f) : 0f;
        return List.of(KernelCall.of(DenseKernels.class, "gemm", context.input(0), context.input(1), cValues,
                context.output(0), out.dim(0), out.dim(1), transA ? a.dim(0) : a.dim(1), transA ? 1 : 0,
                flag(node, "trans_b") ? 1 : 0, node.attributes().getFloat("alpha", 1f), beta,
                cRows == 1 ? 0 : cCols, cCols == 1 ? 0 : 1));
    }
}
