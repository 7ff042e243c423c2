package squall.plugins.mbconv;

import com.google.auto.service.AutoService;
import java.util.ArrayList;
import java.util.List;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.OperatorProvider;
import squall.api.Shape;
import squall.api.SquallException;

/**
 * {@code mbconv}: EfficientNet's MBConv block with BatchNorm folded in, as one node.
 *
 * <p>Inputs: x [N, C, H, W]; expand weight [E, C, 1, 1] and bias [E] (both "" when the block has
 * no expansion, E = C); depthwise weight [E, 1, k, k] and bias [E]; squeeze-excitation reduce
 * weight [S, E, 1, 1], bias [S], expand weight [E, S, 1, 1], bias [E]; project weight [O, E, 1, 1]
 * and bias [O]. Attributes: {@code stride} (1), {@code residual} (0; 1 adds x, which needs stride 1
 * and O = C). Output [N, O, OH, OW] with torchvision's padding (k - 1) / 2. SiLU after the
 * expansion, the depthwise conv and the squeeze, a sigmoid gate, no activation after the projection:
 * torchvision's MBConv. {@link MbConvFusion} makes these nodes from a network's composite blocks.
 */
@AutoService(OperatorProvider.class)
public final class MbConv implements OperatorProvider, Operator {
    private static final String[] ROLES = {"x", "expand weight", "expand bias", "depthwise weight", "depthwise bias",
        "reduce weight", "reduce bias", "excite weight", "excite bias", "project weight", "project bias"};

    /** The block's sizes, from its input shapes. */
    private record Block(int batch, int inChannels, int height, int width, int expanded, int kernelSize, int stride,
                         int squeeze, int outChannels, boolean hasExpansion, boolean residual) {
        int outHeight() {
            return (height + 2 * ((kernelSize - 1) / 2) - kernelSize) / stride + 1;
        }

        int outWidth() {
            return (width + 2 * ((kernelSize - 1) / 2) - kernelSize) / stride + 1;
        }

        /** Where the depthwise output starts in the scratch buffer: after the expanded map, if any. */
        int depthwiseOffset() {
            return hasExpansion ? batch * expanded * height * width : 0;
        }

        int meansOffset() {
            return depthwiseOffset() + batch * expanded * outHeight() * outWidth();
        }

        int gateOffset() {
            return meansOffset() + batch * (expanded + squeeze);
        }

        int scratchSize() {
            return gateOffset() + batch * expanded;
        }
    }

    @Override
    public int spiVersion() {
        return OperatorProvider.SPI_VERSION;
    }

    @Override
    public List<Operator> operators() {
        return List.of(this);
    }

    @Override
    public String id() {
        return "mbconv";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Block b = block(node, inputShapes);
        return List.of(Shape.of(b.batch(), b.outChannels(), b.outHeight(), b.outWidth()));
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Block b = block(context.node(), context.inputShapes());
        float[] scratch = context.scratch(b.scratchSize());
        List<KernelCall> calls = new ArrayList<>();
        if (b.hasExpansion()) {
            calls.add(KernelCall.of(MbConvKernels.class, "expand", context.input(0), context.input(1),
                    context.input(2), scratch, b.batch(), b.inChannels(), b.expanded(), b.height() * b.width()));
        }
        calls.add(KernelCall.of(MbConvKernels.class, "depthwise", b.hasExpansion() ? scratch : context.input(0),
                context.input(3), context.input(4), scratch, b.batch(), b.expanded(), b.height(), b.width(),
                b.kernelSize(), b.stride(), b.depthwiseOffset()));
        calls.add(KernelCall.of(MbConvKernels.class, "squeezeExcite", scratch, context.input(5), context.input(6),
                context.input(7), context.input(8), b.batch(), b.expanded(), b.squeeze(), b.meansOffset()));
        calls.add(KernelCall.of(MbConvKernels.class, "project", scratch, context.input(9), context.input(10),
                context.input(0), context.output(0), b.batch(), b.expanded(), b.outChannels(),
                b.outHeight() * b.outWidth(), b.depthwiseOffset(), b.gateOffset(), b.residual() ? 1 : 0));
        return calls;
    }

    /** The kernels' per-plane functions over the workers: the same arithmetic, in parallel. */
    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Block b = block(context.node(), context.inputShapes());
        float[] scratch = context.scratch(b.scratchSize());
        float[] x = context.input(0);
        float[] y = context.output(0);
        float[] depthwiseInput = b.hasExpansion() ? scratch : x;
        int expanded = b.expanded();
        return workers -> {
            if (b.hasExpansion()) {
                workers.forEach(b.batch() * expanded, plane -> MbConvKernels.expandPlane(x, context.input(1),
                        context.input(2), scratch, plane / expanded, plane % expanded, b.inChannels(), expanded,
                        b.height() * b.width()));
            }
            workers.forEach(b.batch() * expanded, plane -> MbConvKernels.depthwisePlane(depthwiseInput,
                    context.input(3), context.input(4), scratch, plane / expanded, plane % expanded, b.batch(),
                    expanded, b.height(), b.width(), b.kernelSize(), b.stride(), b.depthwiseOffset()));
            workers.forEach(b.batch(), n -> MbConvKernels.squeezeExciteImage(scratch, context.input(5),
                    context.input(6), context.input(7), context.input(8), n, b.batch(), expanded, b.squeeze(),
                    b.meansOffset()));
            workers.forEach(b.batch() * b.outChannels(), plane -> MbConvKernels.projectPlane(scratch,
                    context.input(9), context.input(10), x, y, plane / b.outChannels(), plane % b.outChannels(),
                    expanded, b.outChannels(), b.outHeight() * b.outWidth(), b.depthwiseOffset(), b.gateOffset(),
                    b.residual() ? 1 : 0));
        };
    }

    @Override
    public long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        Block b = block(node, inputShapes);
        long in = (long) b.height() * b.width();
        long out = (long) b.outHeight() * b.outWidth();
        long expand = b.hasExpansion() ? in * b.inChannels() * b.expanded() : 0;
        long depthwise = out * b.expanded() * b.kernelSize() * b.kernelSize();
        long squeezeExcite = 2L * b.expanded() * b.squeeze();
        long project = out * b.expanded() * b.outChannels();
        return b.batch() * (expand + depthwise + squeezeExcite + project);
    }

    private static Block block(Node node, List<Shape> in) {
        if (in.size() != ROLES.length) {
            throw bad(node, "mbconv takes " + ROLES.length + " inputs (" + String.join(", ", ROLES) + "), got "
                    + in.size() + ": " + node.inputs());
        }
        for (int i = 0; i < ROLES.length; i++) {
            if (in.get(i) == null && i != 1 && i != 2) {
                throw bad(node, "input " + i + " (" + ROLES[i] + ") is missing");
            }
        }
        Shape x = in.get(0);
        if (x.rank() != 4) {
            throw bad(node, "x should be [N, C, H, W], got " + x);
        }
        Shape depthwise = in.get(3);
        if (depthwise.rank() != 4 || depthwise.dim(1) != 1 || depthwise.dim(2) != depthwise.dim(3)
                || depthwise.dim(2) % 2 == 0) {
            throw bad(node, "depthwise weight should be [E, 1, k, k] with k odd, got " + depthwise);
        }
        int expanded = depthwise.dim(0);
        int kernelSize = depthwise.dim(2);
        boolean hasExpansion = in.get(1) != null;
        int inChannels = x.dim(1);
        if (hasExpansion) {
            expect(node, 1, in.get(1), expanded, inChannels, 1, 1);
            expect(node, 2, in.get(2), expanded);
        } else if (in.get(2) != null || expanded != inChannels) {
            throw bad(node, "without an expansion the depthwise conv takes x's " + inChannels
                    + " channels, got weight " + depthwise + (in.get(2) != null ? " and an expand bias" : ""));
        }
        expect(node, 4, in.get(4), expanded);
        int squeeze = in.get(5).dim(0);
        expect(node, 5, in.get(5), squeeze, expanded, 1, 1);
        expect(node, 6, in.get(6), squeeze);
        expect(node, 7, in.get(7), expanded, squeeze, 1, 1);
        expect(node, 8, in.get(8), expanded);
        int outChannels = in.get(9).dim(0);
        expect(node, 9, in.get(9), outChannels, expanded, 1, 1);
        expect(node, 10, in.get(10), outChannels);
        int stride = node.attributes().getInt("stride", 1);
        boolean residual = node.attributes().getInt("residual", 0) == 1;
        if (stride < 1) {
            throw bad(node, "attribute 'stride' = " + stride + " should be at least 1");
        }
        if (residual && (stride != 1 || outChannels != inChannels)) {
            throw bad(node, "residual = 1 needs stride 1 and as many output as input channels; got stride " + stride
                    + ", " + inChannels + " -> " + outChannels + " channels");
        }
        if (x.dim(2) + 2 * ((kernelSize - 1) / 2) < kernelSize || x.dim(3) + 2 * ((kernelSize - 1) / 2) < kernelSize) {
            throw bad(node, "x " + x + " is smaller than the " + kernelSize + "x" + kernelSize + " kernel");
        }
        return new Block(x.dim(0), inChannels, x.dim(2), x.dim(3), expanded, kernelSize, stride, squeeze,
                outChannels, hasExpansion, residual);
    }

    private static void expect(Node node, int input, Shape actual, int... dims) {
        if (!actual.equals(Shape.of(dims))) {
            throw bad(node, "input " + input + " (" + ROLES[input] + ") should have shape " + Shape.of(dims)
                    + ", got " + actual);
        }
    }

    private static SquallException bad(Node node, String problem) {
        return new SquallException.BadShape(node + ": " + problem);
    }
}
