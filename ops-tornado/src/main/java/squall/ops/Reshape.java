package squall.ops;

import java.util.Arrays;
import java.util.List;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code reshape} to the {@code shape} attribute (0 copies that input dim, -1 is inferred); the data is unchanged. */
final class Reshape implements Operator {
    @Override
    public String id() {
        return "reshape";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        int[] shape = node.attributes().getInts("shape");
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 0) {
                if (i >= x.rank()) {
                    throw Check.bad(node, "shape " + Arrays.toString(shape) + " copies dim " + i + " (0) but x " + x
                            + " has rank " + x.rank());
                }
                shape[i] = x.dim(i);
            }
            if (shape[i] == -1) {
                if (inferred >= 0) {
                    throw Check.bad(node, "shape " + Arrays.toString(shape) + " has more than one -1");
                }
                inferred = i;
            } else if (shape[i] < 0) {
                throw Check.bad(node, "shape " + Arrays.toString(shape) + " has a negative dim other than -1");
            } else {
                known *= shape[i];
            }
        }
        if (inferred >= 0 && known > 0 && x.elementCount() % known == 0) {
            shape[inferred] = (int) (x.elementCount() / known);
        }
        Shape out = Shape.of(shape);
        if (!out.isConcrete() || out.elementCount() != x.elementCount()) {
            throw Check.bad(node, "cannot reshape x " + x + " (" + x.elementCount() + " elements) to "
                    + Arrays.toString(node.attributes().getInts("shape")));
        }
        return List.of(out);
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
