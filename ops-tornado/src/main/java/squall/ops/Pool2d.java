package squall.ops;

import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Shape;

/** {@code avg_pool2d} and {@code max_pool2d} over x [N,C,H,W]. */
final class Pool2d implements Operator {
    private final boolean max;

    Pool2d(boolean max) {
        this.max = max;
    }

    @Override
    public String id() {
        return max ? "max_pool2d" : "avg_pool2d";
    }

    private Window window(Node node) {
        if (!node.attributes().has("kernel_size")) {
            throw Check.bad(node, "attribute 'kernel_size' (int or int[2]) is required");
        }
        int[] kernel = Window.pair(node, "kernel_size");
        Window w = Window.of(node, kernel[0], kernel[1], kernel);
        if (!max && (w.dilationH() != 1 || w.dilationW() != 1)) {
            throw Check.bad(node, "avg_pool2d has no dilation, got " + w);
        }
        return w;
    }

    private static boolean ceilMode(Node node) {
        return node.attributes().getInt("ceil_mode", 0) != 0;
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Check.atMost(node, inputShapes, 1);
        Shape x = Check.required(node, inputShapes, 0, "x");
        Check.rank(node, "x", x, 4, "[N, C, H, W]");
        Window w = window(node);
        Shape out = Shape.of(x.dim(0), x.dim(1), w.outHeight(x.dim(2), ceilMode(node)),
                w.outWidth(x.dim(3), ceilMode(node)));
        if (out.dim(2) < 1 || out.dim(3) < 1) {
            throw Check.bad(node, "x " + x + " is smaller than the " + w + ": the output would be " + out);
        }
        return List.of(out);
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        Window w = window(node);
        return outputShapes.getFirst().elementCount() * w.kernelH() * w.kernelW();
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape x = context.inputShape(0);
        Shape out = context.outputShape(0);
        int[] window = window(context.node()).asArray();
        int planes = x.dim(0) * x.dim(1);
        if (max) {
            return List.of(KernelCall.of(PoolKernels.class, "maxPool2d", context.input(0), context.output(0), window,
                    planes, x.dim(2), x.dim(3), out.dim(2), out.dim(3)));
        }
        return List.of(KernelCall.of(PoolKernels.class, "avgPool2d", context.input(0), context.output(0), window,
                planes, x.dim(2), x.dim(3), out.dim(2), out.dim(3), countIncludePad(context.node())));
    }

    private static int countIncludePad(Node node) {
        return node.attributes().getInt("count_include_pad", 0) != 0 ? 1 : 0;
    }

    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape x = context.inputShape(0);
        int inHeight = x.dim(2);
        int inWidth = x.dim(3);
        int outHeight = context.outputShape(0).dim(2);
        int outWidth = context.outputShape(0).dim(3);
        int[] window = window(context.node()).asArray();
        int countIncludePad = countIncludePad(context.node());
        float[] in = context.input(0);
        float[] out = context.output(0);
        return workers -> Split.ranges(workers, x.dim(0) * x.dim(1) * outHeight, (from, to) -> {
            for (int row = from; row < to; row++) {
                if (max) {
                    PoolKernels.maxPoolRow(in, out, window, row / outHeight, row % outHeight, inHeight, inWidth,
                            outHeight, outWidth);
                } else {
                    PoolKernels.avgPoolRow(in, out, window, row / outHeight, row % outHeight, inHeight, inWidth,
                            outHeight, outWidth, countIncludePad);
                }
            }
        });
    }
}
