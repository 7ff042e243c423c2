package squall.plugins.shuffle;

import com.google.auto.service.AutoService;
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
 * {@code channel_shuffle}: x [N, C, ...] (rank 3 or more), attribute {@code groups} (required,
 * dividing C), output of x's shape; torch.nn.functional.channel_shuffle. Provider and operator in
 * one class, as a plugin with a single op can be.
 */
@AutoService(OperatorProvider.class)
public final class ChannelShuffle implements OperatorProvider, Operator {
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
        return "channel_shuffle";
    }

    @Override
    public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
        Shape x = inputShapes.size() == 1 ? inputShapes.getFirst() : null;
        if (x == null || x.rank() < 3) {
            throw bad(node, "channel_shuffle takes one input of shape [N, C, ...] (rank 3 or more), got "
                    + inputShapes);
        }
        int groups = node.attributes().getInt("groups");
        if (groups < 1 || x.dim(1) % groups != 0) {
            throw bad(node, "attribute 'groups' = " + groups + " should be at least 1 and divide the "
                    + x.dim(1) + " channels of " + x);
        }
        return List.of(x);
    }

    @Override
    public List<KernelCall> kernels(KernelContext context) {
        Shape x = context.inputShape(0);
        return List.of(KernelCall.of(ShuffleKernels.class, "channelShuffle", context.input(0), context.output(0),
                x.dim(0), x.dim(1), spatial(x), context.attributes().getInt("groups")));
    }

    /** Planes copied in parallel over the workers, as the portable kernel's grid would. */
    @Override
    public CpuKernel cpuKernel(KernelContext context) {
        Shape shape = context.inputShape(0);
        float[] x = context.input(0);
        float[] y = context.output(0);
        int channels = shape.dim(1);
        int spatial = spatial(shape);
        int groups = context.attributes().getInt("groups");
        return workers -> workers.forEach(shape.dim(0) * channels, plane -> ShuffleKernels.copyPlane(x, y,
                plane / channels, plane % channels, channels, spatial, groups));
    }

    private static int spatial(Shape x) {
        return x.size() / Math.max(1, x.dim(0) * x.dim(1));
    }

    private static SquallException bad(Node node, String problem) {
        return new SquallException.BadShape(node + ": " + problem);
    }
}
