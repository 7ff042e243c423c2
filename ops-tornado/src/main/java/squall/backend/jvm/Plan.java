package squall.backend.jvm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import squall.api.CpuKernel;
import squall.api.Graph;
import squall.api.KernelCall;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.api.Workers;
import squall.ops.passes.Passes;

/**
 * A model planned for one set of concrete input shapes: the shape of every value, identity nodes
 * aliased away, and activation buffers assigned by liveness. Runs draw an {@link Execution} (its
 * own buffers and kernels bound to them) from a pool, so concurrent runs never share a buffer.
 */
final class Plan {
    private final Model model;
    private final Map<String, Shape> shapes;
    /** Where each value's data lives: itself, or for an identity node's output the value it aliases. */
    private final Map<String, String> storage = new HashMap<>();
    private final Map<String, Integer> valueIds = new HashMap<>();
    private final List<Node> steps = new ArrayList<>();
    private final List<Operator> stepOperators = new ArrayList<>();
    private final BufferAssignment buffers;
    private final ConcurrentLinkedQueue<Execution> idle = new ConcurrentLinkedQueue<>();
    /** {@link #estimateBytes()}, checked against the heap before each new set of buffers. */
    private final long runBytes;

    /**
     * With {@code fuse}, same-shape adds are fused into the convs before them and channel scales
     * (squeeze-and-excitation gates) into the 1x1 convs after them (shapes are known here).
     */
    Plan(Model model, Operators operators, Map<String, Shape> inputShapes, boolean fuse) {
        this.shapes = model.graph().inferShapes(inputShapes, operators);
        this.model = fuse ? Passes.fuseChannelScales(Passes.fuseResiduals(model, shapes), shapes) : model;
        Graph graph = this.model.graph();
        List<BufferAssignment.Step> liveness = new ArrayList<>();
        for (Node node : graph.nodes()) {
            Operator op = operators.get(node.op());
            if (isAlias(op, node)) {
                storage.put(node.output(), storageOf(node.input(0)));
                continue;
            }
            steps.add(node);
            stepOperators.add(op);
            liveness.add(new BufferAssignment.Step(ids(node.inputs()), ids(node.outputs())));
        }
        Set<Integer> liveAtEnd = new HashSet<>();
        for (String out : graph.outputs()) {
            liveAtEnd.add(id(storageOf(out)));
        }
        int[] sizes = new int[valueIds.size()];
        valueIds.forEach((name, id) -> sizes[id] = shapes.get(name).size());
        this.buffers = BufferAssignment.assign(sizes, liveness, liveAtEnd);
        this.runBytes = estimateBytes();
        checkHeap(runBytes);
    }

    /**
     * Bytes one run of this plan allocates: activation buffers by liveness, input copies, output
     * tensors, and the im2col scratch of dense convs with a window (each such node keeps its own).
     */
    long estimateBytes() {
        long floats = buffers.totalFloats();
        for (String input : model.graph().inputs().keySet()) {
            floats += shapes.get(input).size();
        }
        for (String output : model.graph().outputs()) {
            floats += shapes.get(output).size();
        }
        for (Node node : steps) {
            floats += im2colFloats(node);
        }
        return 4 * floats;
    }

    /** What GemmConv's im2col needs for one image of a groups = 1 conv that is not 1x1 (an estimate: it may take a direct path). */
    private long im2colFloats(Node node) {
        if (!node.op().equals("conv2d") || node.attributes().getInt("groups", 1) != 1) {
            return 0;
        }
        Shape weight = shapes.get(node.input(1));
        Shape out = shapes.get(node.output());
        if (weight == null || weight.rank() != 4 || out.rank() != 4 || weight.dim(2) * weight.dim(3) == 1) {
            return 0;
        }
        return (long) weight.dim(1) * weight.dim(2) * weight.dim(3) * out.dim(2) * out.dim(3);
    }

    /** Refuses a plan the heap cannot hold, before allocating any of it, with the -Xmx that would do. */
    private void checkHeap(long needed) {
        Runtime runtime = Runtime.getRuntime();
        if (needed <= runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory())) {
            return;
        }
        System.gc(); // only on this path: what looked used may be garbage
        if (needed > runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory())) {
            throw outOfHeap(needed);
        }
    }

    private SquallException outOfHeap(long needed) {
        Runtime runtime = Runtime.getRuntime();
        long used = runtime.totalMemory() - runtime.freeMemory();
        long suggestedGiB = (long) Math.ceil((used + needed) * 1.25 / (1L << 30));
        return new SquallException("not enough Java heap to run model '" + model.graph().name() + "' on the jvm "
                + "backend with input shapes " + inputShapesText() + ": a run needs about " + mib(needed)
                + " (activations, inputs, outputs, scratch), the heap is at most " + mib(runtime.maxMemory())
                + " with " + mib(used) + " in use. Use smaller inputs or a smaller batch, or start java with a "
                + "larger heap, e.g. -Xmx" + Math.max(1, suggestedGiB) + "g");
    }

    private String inputShapesText() {
        Map<String, Shape> inputs = new LinkedHashMap<>();
        model.graph().inputs().keySet().forEach(name -> inputs.put(name, shapes.get(name)));
        return inputs.toString();
    }

    private static String mib(long bytes) {
        return (bytes + (1 << 20) - 1) / (1 << 20) + " MiB";
    }

    /** An identity op with one input and output of the same size needs no kernel and no buffer. */
    private boolean isAlias(Operator op, Node node) {
        return op.isIdentity(node) && node.outputs().size() == 1 && !node.input(0).isEmpty()
                && shapes.get(node.input(0)).size() == shapes.get(node.output()).size();
    }

    private String storageOf(String value) {
        return storage.getOrDefault(value, value);
    }

    private int id(String storageValue) {
        return valueIds.computeIfAbsent(storageValue, v -> valueIds.size());
    }

    private int[] ids(List<String> values) {
        return values.stream().filter(v -> !v.isEmpty()).mapToInt(v -> id(storageOf(v))).toArray();
    }

    BufferAssignment buffers() {
        return buffers;
    }

    Map<String, Tensor> run(Map<String, Tensor> inputs, Workers workers) {
        return run(inputs, workers, null);
    }

    /** Runs, adding each step's nanoseconds to {@code stepNanos} when it is not null (for profiling). */
    Map<String, Tensor> run(Map<String, Tensor> inputs, Workers workers, long[] stepNanos) {
        Execution execution = idle.poll();
        if (execution == null) {
            try {
                checkHeap(runBytes);
                execution = new Execution();
            } catch (OutOfMemoryError e) {
                // The estimate passed but other threads or runs took the heap meanwhile; the partly made
                // execution is garbage now, so the heap stays usable.
                throw outOfHeap(runBytes);
            }
        }
        try {
            return execution.run(inputs, workers, stepNanos);
        } finally {
            idle.offer(execution);
        }
    }

    /** The nodes that run, in order (after the passes and aliasing). */
    List<Node> steps() {
        return steps;
    }

    /** One set of buffers and the kernels bound to them; used by one run at a time. */
    private final class Execution {
        private final Map<String, float[]> inputBuffers = new HashMap<>();
        private final float[][] activationBuffers = new float[buffers.bufferSizes().length][];
        private final List<CpuKernel> work = new ArrayList<>();

        Execution() {
            for (int b = 0; b < activationBuffers.length; b++) {
                activationBuffers[b] = new float[buffers.bufferSizes()[b]];
            }
            for (String input : model.graph().inputs().keySet()) {
                inputBuffers.put(input, new float[shapes.get(input).size()]);
            }
            for (int s = 0; s < steps.size(); s++) {
                work.add(bind(steps.get(s), stepOperators.get(s)));
            }
        }

        /** The operator's CPU kernel over this execution's buffers, else its portable kernels. */
        private CpuKernel bind(Node node, Operator op) {
            List<Shape> inShapes = new ArrayList<>();
            float[][] in = new float[node.inputs().size()][];
            boolean[] constant = new boolean[in.length];
            for (int i = 0; i < in.length; i++) {
                String v = node.inputs().get(i);
                inShapes.add(v.isEmpty() ? null : shapes.get(v));
                in[i] = v.isEmpty() ? null : array(v);
                constant[i] = !v.isEmpty() && model.weights().containsKey(storageOf(v));
            }
            List<Shape> outShapes = node.outputs().stream().map(shapes::get).toList();
            float[][] out = node.outputs().stream().map(this::array).toArray(float[][]::new);
            var context = new JvmKernelContext(node, inShapes, outShapes, in, out, constant);
            CpuKernel tuned = op.cpuKernel(context);
            if (tuned != null) {
                return tuned;
            }
            List<KernelCall> calls = op.kernels(context);
            return workers -> calls.forEach(KernelCall::invoke);
        }

        private float[] array(String value) {
            String v = storageOf(value);
            float[] input = inputBuffers.get(v);
            if (input != null) {
                return input;
            }
            Tensor weight = model.weights().get(v);
            if (weight != null) {
                return weight.data();
            }
            return activationBuffers[buffers.bufferOfValue()[valueIds.get(v)]];
        }

        Map<String, Tensor> run(Map<String, Tensor> inputs, Workers workers, long[] stepNanos) {
            inputs.forEach((name, t) -> System.arraycopy(t.data(), 0, inputBuffers.get(name), 0, t.data().length));
            for (int s = 0; s < work.size(); s++) {
                try {
                    long start = stepNanos == null ? 0 : System.nanoTime();
                    work.get(s).run(workers);
                    if (stepNanos != null) {
                        stepNanos[s] += System.nanoTime() - start;
                    }
                } catch (SquallException e) {
                    throw e;
                } catch (RuntimeException e) {
                    throw new SquallException(steps.get(s) + " failed on the jvm backend with input shapes "
                            + steps.get(s).inputs().stream().map(v -> v.isEmpty() ? "-" : String.valueOf(shapes.get(v)))
                            .toList() + ": " + e, e);
                }
            }
            Map<String, Tensor> outputs = new LinkedHashMap<>();
            for (String name : model.graph().outputs()) {
                Shape shape = shapes.get(name);
                float[] data = new float[shape.size()];
                System.arraycopy(array(name), 0, data, 0, data.length);
                outputs.put(name, new Tensor(shape, data));
            }
            return outputs;
        }
    }
}
