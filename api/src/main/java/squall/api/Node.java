package squall.api;

import java.util.List;

/**
 * One operation in a graph. Inputs and outputs are value names: a graph input, a parameter, or
 * another node's output. An empty string stands for an absent optional input (as in ONNX).
 */
public record Node(String name, String op, List<String> inputs, List<String> outputs, Attributes attributes) {
    public Node {
        inputs = List.copyOf(inputs);
        outputs = List.copyOf(outputs);
        attributes = attributes == null ? Attributes.EMPTY : attributes;
    }

    public String input(int i) {
        return i < inputs.size() ? inputs.get(i) : "";
    }

    public String output() {
        return outputs.getFirst();
    }

    @Override
    public String toString() {
        return "node '" + name + "' (" + op + ")";
    }
}
