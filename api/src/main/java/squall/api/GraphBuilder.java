package squall.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a {@link Graph} in execution order. Each method returns the name of the value it defines,
 * so a network reads top to bottom:
 *
 * <pre>{@code
 * var b = Graph.builder("tiny");
 * String x = b.input("input", Shape.of(-1, 3, -1, -1));
 * String w = b.parameter("conv.weight", 8, 3, 3, 3);
 * x = b.op("conv2d", "conv", Attributes.of("stride", 2, "padding", 1), x, w);
 * x = b.op("relu", "relu", Attributes.EMPTY, x);
 * Graph g = b.output(x).build();
 * }</pre>
 */
public final class GraphBuilder {
    private final String name;
    private final Map<String, Shape> inputs = new LinkedHashMap<>();
    private final Map<String, Shape> parameters = new LinkedHashMap<>();
    private final List<Node> nodes = new ArrayList<>();
    private final List<String> outputs = new ArrayList<>();

    GraphBuilder(String name) {
        this.name = name;
    }

    public String input(String inputName, Shape shape) {
        inputs.put(inputName, shape);
        return inputName;
    }

    public String parameter(String paramName, int... dims) {
        return parameter(paramName, Shape.of(dims));
    }

    public String parameter(String paramName, Shape shape) {
        if (parameters.putIfAbsent(paramName, shape) != null) {
            throw new SquallException.BadShape("graph '" + name + "': parameter '" + paramName + "' declared twice");
        }
        return paramName;
    }

    /** A single-output node whose output value is named after the node. */
    public String op(String op, String nodeName, Attributes attributes, String... inputNames) {
        nodes.add(new Node(nodeName, op, List.of(inputNames), List.of(nodeName), attributes));
        return nodeName;
    }

    /** A node with explicit output names. */
    public GraphBuilder node(Node node) {
        nodes.add(node);
        return this;
    }

    public GraphBuilder output(String valueName) {
        outputs.add(valueName);
        return this;
    }

    public Graph build() {
        return Graph.buildFrom(name, inputs, parameters, nodes, outputs);
    }
}
