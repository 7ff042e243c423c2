package squall.backend.tornado;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.ops.passes.Passes;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * A model on the tornado backend: one {@link TaskGraphPlan} (task graph and execution plan) per
 * concrete input shapes. When the graph's declared input shapes are all concrete, that plan is
 * made, and its kernels compiled, when the model is compiled; other shapes are planned on first use.
 */
final class TornadoCompiledModel implements CompiledModel {
    /** Distinct input shapes kept planned; each holds device memory, so the oldest is closed beyond this. */
    private static final int MAX_PLANS = 8;

    private final Model model;
    private final Operators operators;
    private final TornadoDevice device;
    private final boolean fuseResiduals;
    private final int maxGraphTasks;
    private final boolean deviceKernels;
    private final LinkedHashMap<List<Shape>, TaskGraphPlan> plans = new LinkedHashMap<>();
    private boolean closed;

    /**
     * With {@code passes}, the model is optimised as on the JVM backend (residuals once shapes are
     * known); with {@code deviceKernels}, convolutions run their {@link DeviceKernels} variants.
     */
    TornadoCompiledModel(Model model, Operators operators, TornadoDevice device, boolean passes, int maxGraphTasks,
                         boolean deviceKernels) {
        model.graph().nodes().forEach(node -> operators.get(node.op())); // unknown ops fail here, not at first run
        this.model = passes ? Passes.optimize(model) : model;
        this.fuseResiduals = passes;
        this.operators = operators;
        this.device = device;
        this.maxGraphTasks = maxGraphTasks;
        this.deviceKernels = deviceKernels;
        Map<String, Shape> declared = this.model.graph().inputs();
        if (declared.values().stream().allMatch(Shape::isConcrete)) {
            plan(declared);
        }
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
        var declared = model.graph().inputs().keySet();
        if (!declared.equals(inputs.keySet())) {
            throw new SquallException.BadShape("model '" + model.graph().name() + "' takes inputs "
                    + new TreeSet<>(declared) + ", got " + new TreeSet<>(inputs.keySet()));
        }
        Map<String, Shape> shapes = new HashMap<>();
        inputs.forEach((name, t) -> shapes.put(name, t.shape()));
        return plan(shapes).run(inputs);
    }

    /** The plan for these input shapes, made (and compiled) on first use. */
    synchronized TaskGraphPlan plan(Map<String, Shape> inputShapes) {
        if (closed) {
            throw new SquallException("model '" + model.graph().name() + "' on the tornado backend is closed; "
                    + "compile it again to run it");
        }
        List<Shape> key = new ArrayList<>();
        model.graph().inputs().keySet().forEach(name -> key.add(inputShapes.get(name)));
        TaskGraphPlan plan = plans.remove(key);
        if (plan == null) {
            if (plans.size() >= MAX_PLANS) {
                var oldest = plans.entrySet().iterator().next();
                oldest.getValue().close();
                plans.remove(oldest.getKey());
            }
            plan = new TaskGraphPlan(model, operators, inputShapes, device, fuseResiduals, maxGraphTasks, deviceKernels);
        }
        plans.put(key, plan); // most recently used last
        return plan;
    }

    @Override
    public String backend() {
        return "tornado";
    }

    @Override
    public synchronized void close() {
        closed = true;
        plans.values().forEach(TaskGraphPlan::close);
        plans.clear();
    }
}
