package squall.ops;

import java.util.List;
import squall.api.Node;
import squall.api.Shape;
import squall.api.SquallException;

/** Shape and attribute checks whose messages name the node, the expected and the actual shape. */
final class Check {
    private Check() {
    }

    static SquallException.BadShape bad(Node node, String problem) {
        return new SquallException.BadShape(node + ": " + problem);
    }

    /** Input {@code i}, which must be present; {@code role} names it in messages ("x", "weight"). */
    static Shape required(Node node, List<Shape> inputs, int i, String role) {
        Shape s = i < inputs.size() ? inputs.get(i) : null;
        if (s == null) {
            throw bad(node, "input " + i + " (" + role + ") is missing; " + node.op() + " needs it (inputs given: "
                    + node.inputs() + ")");
        }
        return s;
    }

    /** Input {@code i} or null when that optional input is absent. */
    static Shape optional(List<Shape> inputs, int i) {
        return i < inputs.size() ? inputs.get(i) : null;
    }

    static void rank(Node node, String role, Shape shape, int rank, String layout) {
        if (shape.rank() != rank) {
            throw bad(node, role + " should be " + layout + " (rank " + rank + "), got " + shape);
        }
    }

    static void equal(Node node, String role, Shape actual, Shape expected) {
        if (!actual.equals(expected)) {
            throw bad(node, role + " should have shape " + expected + ", got " + actual);
        }
    }

    static void atMost(Node node, List<Shape> inputs, int count) {
        if (inputs.size() > count) {
            throw bad(node, node.op() + " takes at most " + count + " inputs, got " + inputs.size() + ": "
                    + node.inputs());
        }
    }

    /** An axis in [-rank, rank) (or [-rank, rank] when {@code inclusive}), made non-negative. */
    static int axis(Node node, String attribute, int axis, int rank, boolean inclusive) {
        int limit = inclusive ? rank + 1 : rank;
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= limit) {
            throw bad(node, "attribute '" + attribute + "' = " + axis + " is out of range for rank " + rank);
        }
        return a;
    }
}
