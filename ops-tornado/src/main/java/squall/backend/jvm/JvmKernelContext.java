package squall.backend.jvm;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Shape;

/**
 * A {@link KernelContext} over plain arrays. The JVM backend gives each node one per run slot; tests
 * and tools can make one to call an operator's kernels directly. A buffer may be longer than its
 * shape (buffers are reused by liveness): kernels must size loops by the shapes.
 */
public final class JvmKernelContext implements KernelContext {
    private final Node node;
    private final List<Shape> inputShapes;
    private final List<Shape> outputShapes;
    private final float[][] inputs;
    private final float[][] outputs;
    private final boolean[] constant;
    private float[] scratch = new float[0];

    /** Input shapes and buffers may hold nulls for absent optional inputs; no input is taken as constant. */
    public JvmKernelContext(Node node, List<Shape> inputShapes, List<Shape> outputShapes, float[][] inputs,
                            float[][] outputs) {
        this(node, inputShapes, outputShapes, inputs, outputs, new boolean[inputs.length]);
    }

    /** {@code constant[i]}: input i is a parameter whose values never change (see {@link #isConstant}). */
    public JvmKernelContext(Node node, List<Shape> inputShapes, List<Shape> outputShapes, float[][] inputs,
                            float[][] outputs, boolean[] constant) {
        this.constant = constant.clone();
        this.node = node;
        this.inputShapes = Collections.unmodifiableList(new ArrayList<>(inputShapes));
        this.outputShapes = List.copyOf(outputShapes);
        this.inputs = inputs.clone();
        this.outputs = outputs.clone();
    }

    /** A context with freshly allocated output buffers of the output shapes. */
    public static JvmKernelContext withNewOutputs(Node node, List<Shape> inputShapes, List<Shape> outputShapes,
                                                  float[]... inputs) {
        float[][] outputs = new float[outputShapes.size()][];
        for (int i = 0; i < outputs.length; i++) {
            outputs[i] = new float[outputShapes.get(i).size()];
        }
        return new JvmKernelContext(node, inputShapes, outputShapes, inputs, outputs);
    }

    @Override
    public Node node() {
        return node;
    }

    @Override
    public List<Shape> inputShapes() {
        return inputShapes;
    }

    @Override
    public List<Shape> outputShapes() {
        return outputShapes;
    }

    @Override
    public float[] input(int i) {
        return i < inputs.length ? inputs[i] : null;
    }

    @Override
    public boolean isConstant(int i) {
        return i < constant.length && constant[i];
    }

    @Override
    public float[] output(int i) {
        return outputs[i];
    }

    @Override
    public float[] scratch(int size) {
        if (scratch.length < size) {
            scratch = new float[size];
        }
        return scratch;
    }
}
