package squall.networks.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Runs a model node by node with each operator's portable kernels, called directly: no backend, no
 * compiler passes, a fresh buffer for every value. It is the reference the JVM backend is held to.
 */
final class PortableRunner {
    private PortableRunner() {
    }

    /** A KernelContext over plain arrays, with one scratch buffer per node. */
    private static final class Context implements KernelContext {
        private final Node node;
        private final List<Shape> inputShapes;
        private final List<Shape> outputShapes;
        private final List<float[]> inputs;
        private final List<float[]> outputs;
        private float[] scratch = new float[0];

        Context(Node node, List<Shape> inputShapes, List<Shape> outputShapes, List<float[]> inputs,
                List<float[]> outputs) {
            this.node = node;
            this.inputShapes = inputShapes;
            this.outputShapes = outputShapes;
            this.inputs = inputs;
            this.outputs = outputs;
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
            return i < inputs.size() ? inputs.get(i) : null;
        }

        @Override
        public float[] output(int i) {
            return outputs.get(i);
        }

        @Override
        public float[] scratch(int size) {
            if (scratch.length < size) {
                scratch = new float[size];
            }
            return scratch;
        }
    }

    /** Every graph output by name. Inputs and weights are copied, so kernels cannot change them. */
    static Map<String, Tensor> run(Model model, Operators operators, Map<String, Tensor> inputs) {
        Map<String, Shape> inputShapes = new HashMap<>();
        inputs.forEach((name, t) -> inputShapes.put(name, t.shape()));
        Map<String, Shape> shapes = model.graph().inferShapes(inputShapes, operators);
        Map<String, float[]> values = new HashMap<>();
        inputs.forEach((name, t) -> values.put(name, t.data().clone()));
        model.weights().forEach((name, t) -> values.put(name, t.data().clone()));
        for (Node node : model.graph().nodes()) {
            Operator op = operators.get(node.op());
            List<Shape> in = new ArrayList<>();
            List<float[]> inBuffers = new ArrayList<>();
            for (String name : node.inputs()) {
                in.add(name.isEmpty() ? null : shapes.get(name));
                inBuffers.add(name.isEmpty() ? null : values.get(name));
            }
            List<Shape> out = new ArrayList<>();
            List<float[]> outBuffers = new ArrayList<>();
            for (String name : node.outputs()) {
                out.add(shapes.get(name));
                float[] buffer = new float[shapes.get(name).size()];
                outBuffers.add(buffer);
                values.put(name, buffer);
            }
            for (KernelCall call : op.kernels(new Context(node, in, out, inBuffers, outBuffers))) {
                call.invoke();
            }
        }
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (String name : model.graph().outputs()) {
            outputs.put(name, new Tensor(shapes.get(name), values.get(name)));
        }
        return outputs;
    }
}
