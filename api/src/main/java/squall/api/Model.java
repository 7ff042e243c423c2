package squall.api;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** A graph with a value for every declared parameter. */
public record Model(Graph graph, Map<String, Tensor> weights) {
    public Model {
        weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
    }

    /**
     * Binds weights to a graph by name, strictly: every missing key, unexpected key and shape
     * mismatch is reported in one error. {@code source} names where the weights came from.
     */
    public static Model bind(Graph graph, Map<String, Tensor> weights, String source) {
        List<String> problems = new ArrayList<>();
        Map<String, Tensor> bound = new LinkedHashMap<>();
        for (var p : graph.parameters().entrySet()) {
            Tensor t = weights.get(p.getKey());
            if (t == null) {
                problems.add("missing: " + p.getKey() + " " + p.getValue());
            } else if (!t.shape().equals(p.getValue())) {
                problems.add("wrong shape: " + p.getKey() + " is " + t.shape() + " in the file, the graph needs "
                        + p.getValue());
            } else {
                bound.put(p.getKey(), t);
            }
        }
        for (String k : new TreeSet<>(weights.keySet())) {
            if (!graph.parameters().containsKey(k)) {
                problems.add("unexpected: " + k + " " + weights.get(k).shape());
            }
        }
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 40);
            throw new SquallException.BadFile("weights from " + source + " do not fit network '" + graph.name()
                    + "' (" + problems.size() + " problems; is the file for another network or width?):\n  "
                    + String.join("\n  ", problems.subList(0, shown))
                    + (shown < problems.size() ? "\n  ... and " + (problems.size() - shown) + " more" : ""));
        }
        return new Model(graph, bound);
    }
}
