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
import squall.ops.passes.Passes;

/** A model on the JVM backend: one {@link Plan} per concrete input shapes, made on first use. */
public final class JvmCompiledModel implements CompiledModel {
    /** Distinct input shapes planned before the cache starts over (each plan holds its buffers). */
    private static final int MAX_PLANS = 32;

    private final Model model;
    private final Operators operators;
    private final Workers workers;
    private final Map<List<Shape>, Plan> plans = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** Whether {@link Passes} rewrite the model (at compile) and each plan (residual fusion, shapes known). */
    private final boolean passes;
    /** Whether plans run islands of convs in the blocked layout ({@code Layouts.blockChannels}; with passes only). */
    private final boolean blocked;

    JvmCompiledModel(Model model, Operators operators, Workers workers, boolean passes, boolean blocked) {
        model.graph().nodes().forEach(node -> operators.get(node.op()));
        this.model = passes ? Passes.optimize(model) : model;
        this.operators = operators;
        this.workers = workers;
        this.passes = passes;
        this.blocked = passes && blocked;
    }

    /**
     * Runs the model on a small random input for about {@code millis} ms so the JIT compiles the
     * kernels now rather than during the caller's first runs; the plan it made is dropped. Unknown
     * dimensions are 1 for the batch and 64 elsewhere; a graph that cannot run at that size is
     * simply not warmed.
     */
    void warmUp(int millis) {
        if (millis <= 0) {
            return;
        }
        Map<String, Tensor> inputs = new java.util.HashMap<>();
        java.util.Random random = new java.util.Random(1);
        model.graph().inputs().forEach((name, declared) -> {
            int[] dims = declared.dims();
            for (int i = 0; i < dims.length; i++) {
                dims[i] = dims[i] >= 0 ? dims[i] : i == 0 ? 1 : 64;
            }
            Shape shape = Shape.of(dims);
            float[] data = new float[shape.size()];
            for (int i = 0; i < data.length; i++) {
                data[i] = random.nextFloat() * 2 - 1;
            }
            inputs.put(name, new Tensor(shape, data));
        });
        long end = System.nanoTime() + millis * 1_000_000L;
        try {
            do {
                run(inputs);
            } while (System.nanoTime() < end);
        } catch (SquallException.BadShape e) {
            // Not runnable at the guessed size: the first real run warms it instead.
        } finally {
            plans.clear();
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
            plan = plans.computeIfAbsent(key, k -> new Plan(model, operators, shapes, passes, blocked));
        }
        return plan.run(inputs, workers);
    }

    /** The plan for these input shapes (for tests and summaries). */
    Plan plan(Map<String, Shape> inputShapes) {
        List<Shape> key = new ArrayList<>();
        model.graph().inputs().keySet().forEach(name -> key.add(inputShapes.get(name)));
        return plans.computeIfAbsent(key, k -> new Plan(model, operators, inputShapes, passes, blocked));
    }

    /**
     * Runs once on {@code input}, adding each step's time to {@code stepNanos} (sized by
     * {@link #steps}), and returns the output: a per-layer profile of exactly what run() does.
     * Where threads run a batch's head image by image side by side, its steps get shares of the
     * head's wall time in proportion to the threads' time in each, so the steps add up to the run.
     */
    public Tensor profile(Tensor input, long[] stepNanos) {
        String name = model.graph().inputs().keySet().iterator().next();
        Plan plan = plan(Map.of(name, input.shape()));
        return plan.run(Map.of(name, input), workers, stepNanos).get(model.graph().outputs().getFirst());
    }

    /** The nodes a run of this input shape executes, in order. */
    public List<squall.api.Node> steps(Shape inputShape) {
        return plan(Map.of(model.graph().inputs().keySet().iterator().next(), inputShape)).steps();
    }

    /** Each of {@link #steps}' multiply-adds for this input shape (its whole batch). */
    public long[] stepMultiplyAdds(Shape inputShape) {
        return plan(Map.of(model.graph().inputs().keySet().iterator().next(), inputShape)).stepMultiplyAdds();
    }

    /** Plans held now (for tests). */
    int planCount() {
        return plans.size();
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
