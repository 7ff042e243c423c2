package squall.api;

import java.util.List;

/**
 * What an operator sees when asked for its kernels: the node, the concrete shapes, and the
 * backend's buffers for the inputs and outputs (a parameter's buffer holds its values).
 * An absent optional input has a null shape and a null buffer.
 */
public interface KernelContext {
    Node node();

    default Attributes attributes() {
        return node().attributes();
    }

    List<Shape> inputShapes();

    List<Shape> outputShapes();

    default Shape inputShape(int i) {
        return i < inputShapes().size() ? inputShapes().get(i) : null;
    }

    default Shape outputShape(int i) {
        return outputShapes().get(i);
    }

    /**
     * True when input {@code i} holds the same values on every run (a graph parameter), so a
     * kernel may preprocess it once, e.g. pack weights. False when it may change between runs (a
     * graph input, or unknown): then it must be read afresh on every run.
     */
    default boolean isConstant(int i) {
        return false;
    }

    /** The buffer of input {@code i}, or null if that optional input is absent. */
    float[] input(int i);

    float[] output(int i);

    /**
     * A scratch buffer of at least {@code size} floats owned by this node, for kernels that need
     * temporary storage. Its contents are undefined at the start of each run.
     */
    float[] scratch(int size);
}
