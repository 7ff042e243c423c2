package squall.api;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A network: named inputs, declared parameters (names and shapes, no values), nodes in a valid
 * execution order, and named outputs. Immutable; build one with {@link #builder(String)}.
 */
public final class Graph {
    private final String name;
    private final Map<String, Shape> inputs;
    private final Map<String, Shape> parameters;
    private final List<Node> nodes;
    private final List<String> outputs;

    private Graph(String name, Map<String, Shape> inputs, Map<String, Shape> parameters, List<Node> nodes,
                  List<String> outputs) {
        this.name = name;
        this.inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        this.nodes = List.copyOf(nodes);
        this.outputs = List.copyOf(outputs);
        validate();
    }

    public static GraphBuilder builder(String name) {
        return new GraphBuilder(name);
    }

    static Graph buildFrom(String name, Map<String, Shape> inputs, Map<String, Shape> parameters, List<Node> nodes,
                           List<String> outputs) {
        return new Graph(name, inputs, parameters, nodes, outputs);
    }

    /** A graph with the same inputs and outputs and new parameters and nodes (for compiler passes). */
    public Graph rewrite(Map<String, Shape> newParameters, List<Node> newNodes, List<String> newOutputs) {
        return new Graph(name, inputs, newParameters, newNodes, newOutputs);
    }

    public String name() {
        return name;
    }

    public Map<String, Shape> inputs() {
        return inputs;
    }

    public Map<String, Shape> parameters() {
        return parameters;
    }

    public List<Node> nodes() {
        return nodes;
    }

    public List<String> outputs() {
        return outputs;
    }

    /** Total number of parameter elements, as torchvision counts them. */
    public long parameterCount() {
        long n = 0;
        for (Shape s : parameters.values()) {
            n += s.elementCount();
        }
        return n;
    }

    /** Every value is defined once, before it is used, and every output exists. */
    private void validate() {
        Set<String> defined = new LinkedHashSet<>(inputs.keySet());
        for (String p : parameters.keySet()) {
            if (!defined.add(p)) {
                throw new SquallException.BadShape("graph '" + name + "': parameter '" + p + "' has the name of an input");
            }
        }
        for (Node node : nodes) {
            for (String in : node.inputs()) {
                if (!in.isEmpty() && !defined.contains(in)) {
                    throw new SquallException.BadShape("graph '" + name + "': " + node + " reads '" + in
                            + "', which is not an input, a parameter or an earlier node's output");
                }
            }
            for (String out : node.outputs()) {
                if (!defined.add(out)) {
                    throw new SquallException.BadShape("graph '" + name + "': " + node + " writes '" + out
                            + "', which is already defined");
                }
            }
        }
        for (String out : outputs) {
            if (!defined.contains(out)) {
                throw new SquallException.BadShape("graph '" + name + "': output '" + out + "' is never computed");
            }
        }
    }

    /**
     * The shape of every value for concrete input shapes, checked by each operator. Parameters keep
     * their declared shapes.
     */
    public Map<String, Shape> inferShapes(Map<String, Shape> inputShapes, Operators operators) {
        Map<String, Shape> shapes = new HashMap<>(parameters);
        for (var e : inputs.entrySet()) {
            Shape given = inputShapes.get(e.getKey());
            if (given == null) {
                throw new SquallException.BadShape("graph '" + name + "' needs input '" + e.getKey()
                        + "' of shape " + e.getValue());
            }
            checkInput(e.getKey(), e.getValue(), given);
            shapes.put(e.getKey(), given);
        }
        for (Node node : nodes) {
            List<Shape> in = new ArrayList<>();
            for (String i : node.inputs()) {
                in.add(i.isEmpty() ? null : shapes.get(i));
            }
            List<Shape> out;
            try {
                out = operators.get(node.op()).outputShapes(node, in);
            } catch (SquallException.UnknownOperator e) {
                throw e;
            } catch (SquallException e) {
                throw new SquallException.BadShape("graph '" + name + "', " + node + " with inputs " + in + ": "
                        + e.getMessage());
            }
            if (out.size() != node.outputs().size()) {
                throw new SquallException.BadShape(node + " has " + node.outputs().size() + " outputs but op '"
                        + node.op() + "' produces " + out.size());
            }
            for (int k = 0; k < out.size(); k++) {
                shapes.put(node.outputs().get(k), out.get(k));
            }
        }
        return shapes;
    }

    /** Shapes for a single input graph with the given input shape. */
    public Map<String, Shape> inferShapes(Shape inputShape, Operators operators) {
        if (inputs.size() != 1) {
            throw new SquallException.BadShape("graph '" + name + "' has inputs " + inputs.keySet() + ", not one");
        }
        return inferShapes(Map.of(inputs.keySet().iterator().next(), inputShape), operators);
    }

    private void checkInput(String input, Shape declared, Shape given) {
        boolean ok = declared.rank() == given.rank() && given.isConcrete();
        for (int i = 0; ok && i < declared.rank(); i++) {
            ok = declared.dim(i) < 0 || declared.dim(i) == given.dim(i);
        }
        if (!ok) {
            throw new SquallException.BadShape("graph '" + name + "': input '" + input + "' should have shape "
                    + declared + " (-1 = any), got " + given);
        }
    }

    @Override
    public String toString() {
        return "Graph '" + name + "' (" + nodes.size() + " nodes, " + parameters.size() + " parameters)";
    }
}
