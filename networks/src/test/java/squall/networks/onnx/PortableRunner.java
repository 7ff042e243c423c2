package squall.networks.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import squall.api.KernelCall;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.backend.jvm.JvmKernelContext;

/**
 * Runs a model node by node with each operator's portable kernels, called directly: no backend, no
 * compiler passes, a fresh buffer for every value. It is the reference the JVM backend is held to.
 */
final class PortableRunner {
    private PortableRunner() {
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
            for (KernelCall call : op.kernels(new JvmKernelContext(node, in, out, inBuffers.toArray(float[][]::new),
                    outBuffers.toArray(float[][]::new)))) {
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
