package squall.backend.jvm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.api.Workers;

/** A model on the JVM backend: one {@link Plan} per concrete input shapes, made on first use. */
final class JvmCompiledModel implements CompiledModel {
    /** Distinct input shapes planned before the cache starts over (each plan holds its buffers). */
    private static final int MAX_PLANS = 32;

    private final Model model;
    private final Operators operators;
    private final Workers workers;
    private final Map<List<Shape>, Plan> plans = new ConcurrentHashMap<>();
    private volatile boolean closed;

    JvmCompiledModel(Model model, Operators operators, Workers workers) {
        this.model = model;
        this.operators = operators;
        this.workers = workers;
        model.graph().nodes().forEach(node -> operators.get(node.op()));
    }

    @Override
    public Tensor run(Tensor input) {
        var graph = model.graph();
        if (graph.inputs().size() != 1 || graph.outputs().size() != 1) {
            throw new SquallException("model '" + graph.name() + "' has inputs " + graph.inputs().keySet()
                    + " and outputs " + graph.outputs() + "; use run(Map) for more than one of either");
        }
        return run(Map.of(graph.inputs().keySet().iterator().next(), input)).get(graph.outputs().getFirst());
    }

    @Override
    public Map<String, Tensor> run(Map<String, Tensor> inputs) {
        if (closed) {
            throw new SquallException("model '" + model.graph().name() + "' on the jvm backend is closed; "
                    + "compile it again to run it");
        }
        var declared = model.graph().inputs().keySet();
        if (!declared.equals(inputs.keySet())) {
            throw new SquallException.BadShape("model '" + model.graph().name() + "' takes inputs "
                    + new TreeSet<>(declared) + ", got " + new TreeSet<>(inputs.keySet()));
        }
        List<Shape> key = new ArrayList<>();
        declared.forEach(name -> key.add(inputs.get(name).shape()));
        Plan plan = plans.get(key);
        if (plan == null) {
            if (plans.size() >= MAX_PLANS) {
                plans.clear();
            }
            Map<String, Shape> shapes = new java.util.HashMap<>();
            inputs.forEach((name, t) -> shapes.put(name, t.shape()));
            plan = plans.computeIfAbsent(key, k -> new Plan(model, operators, shapes));
        }
        return plan.run(inputs, workers);
    }

    /** The plan for these input shapes (for tests and summaries). */
    Plan plan(Map<String, Shape> inputShapes) {
        List<Shape> key = new ArrayList<>();
        model.graph().inputs().keySet().forEach(name -> key.add(inputShapes.get(name)));
        return plans.computeIfAbsent(key, k -> new Plan(model, operators, inputShapes));
    }

    @Override
    public String backend() {
        return "jvm";
    }

    @Override
    public void close() {
        closed = true;
        plans.clear();
    }
}
