package squall.api;

import java.util.List;

/**
 * One operator, identified by a stable lowercase id ({@code conv2d}, {@code hardswish}, ...).
 *
 * <p>An operator validates a node's attributes and input shapes, infers its output shapes, and
 * returns the portable kernel calls that compute it. It may also bring a CPU-tuned implementation
 * for the JVM backend, which must agree with the portable kernels.
 */
public interface Operator {
    /** The op id nodes use. */
    String id();

    /**
     * Checks the node's attributes and input shapes (a null shape is an absent optional input) and
     * returns the output shapes. Throws {@link SquallException.BadShape} naming what is wrong.
     */
    List<Shape> outputShapes(Node node, List<Shape> inputShapes);

    /**
     * The portable kernels that compute the node, in order, over the context's buffers. Both the JVM
     * and the TornadoVM backend run these.
     */
    List<KernelCall> kernels(KernelContext context);

    /** A CPU-tuned implementation for the JVM backend, or null to run the portable kernels. */
    default CpuKernel cpuKernel(KernelContext context) {
        return null;
    }

    /**
     * True when the node's CPU kernel ({@link #cpuKernel}) may write output 0 over input 0: the
     * JVM backend then gives both one buffer where nothing reads input 0 later, so the output goes
     * to memory the step has just read (in cache) instead of a buffer last touched a run ago. The
     * portable kernels never run in place.
     */
    default boolean writesInPlace(Node node, List<Shape> inputShapes) {
        return false;
    }

    /** Multiply-adds of one execution of the node, for summaries and GFLOP/s figures. */
    default long multiplyAdds(Node node, List<Shape> inputShapes, List<Shape> outputShapes) {
        return 0;
    }

    /**
     * True when the output is the first input unchanged (dropout at inference, flatten of a
     * contiguous buffer): backends may alias the buffers and skip the kernels.
     */
    default boolean isIdentity(Node node) {
        return false;
    }
}
