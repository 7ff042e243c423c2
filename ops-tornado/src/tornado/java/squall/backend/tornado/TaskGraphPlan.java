package squall.backend.tornado;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import squall.api.Graph;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.backend.jvm.BufferAssignment;
import squall.ops.passes.Passes;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.exceptions.TornadoExecutionPlanException;

/**
 * A model for one set of concrete input shapes on a TornadoVM device: every kernel call of every
 * node is a task, in order, in one {@link TornadoExecutionPlan}. Weights go to the device on the
 * first run only, inputs and graph outputs on every run; activations live on the device, in buffers
 * shared by liveness as on the JVM backend.
 *
 * <p>TornadoVM builds a task graph in fixed buffers (8 KiB of bytecode, 1024 graph nodes: a few
 * dozen tasks), so a larger network is a chain of task graphs in the one plan: each hands the
 * activation buffers that carry a value past its end to the next with {@code persistOnDevice} /
 * {@code consumeFromDevice}, which never leave the device.
 */
final class TaskGraphPlan implements AutoCloseable {
    /** TornadoTaskGraph's bytecode buffer is 8192 bytes, and TornadoGraph holds 1024 nodes; the rest is headroom. */
    private static final int GRAPH_BYTES = 8192 - 512;
    private static final int GRAPH_NODES = 1024 - 64;
    private static final AtomicLong PLAN_NUMBERS = new AtomicLong();

    /** A task: the node it computes, its kernel call, and the node's input and output buffers. */
    record Task(String id, Node node, KernelCall call, List<float[]> reads, List<float[]> writes) {
        String describe() {
            return call.name() + " (task " + id + ", " + node + ")";
        }
    }

    private final Model model;
    private final Map<String, Shape> shapes;
    private final Map<String, String> storage = new HashMap<>();
    private final Map<String, Integer> valueIds = new HashMap<>();
    private final Map<String, float[]> inputBuffers = new LinkedHashMap<>();
    private final float[][] activations;
    /** The residual argument of device conv kernels without one; they never read it. */
    private final float[] noResidual = new float[1];
    private final int[] bufferOfValue;
    private final List<Task> tasks = new ArrayList<>();
    private final String name = "squall" + PLAN_NUMBERS.incrementAndGet();
    private final List<List<Task>> segments;
    private final TornadoExecutionPlan execution;
    private final long compileNanos;
    private boolean closed;

    /**
     * With {@code fuseResiduals}, same-shape adds are fused into the convs before them (shapes are
     * known here). {@code maxGraphTasks} caps the tasks of one task graph (0: as many as TornadoVM holds).
     * With {@code deviceKernels}, convolutions and per-plane broadcasts run their {@link DeviceKernels}
     * variants.
     */
    TaskGraphPlan(Model model, Operators operators, Map<String, Shape> inputShapes, TornadoDevice device,
                  boolean fuseResiduals, int maxGraphTasks, boolean deviceKernels) {
        this.shapes = model.graph().inferShapes(inputShapes, operators);
        this.model = fuseResiduals ? Passes.fuseResiduals(model, shapes) : model;
        Graph graph = this.model.graph();
        List<Node> steps = new ArrayList<>();
        List<BufferAssignment.Step> liveness = new ArrayList<>();
        for (Node node : graph.nodes()) {
            Operator op = operators.get(node.op());
            if (isAlias(op, node)) {
                storage.put(node.output(), storageOf(node.input(0)));
                continue;
            }
            steps.add(node);
            liveness.add(new BufferAssignment.Step(ids(node.inputs()), ids(node.outputs())));
        }
        Set<Integer> liveAtEnd = new HashSet<>();
        graph.outputs().forEach(out -> liveAtEnd.add(id(storageOf(out))));
        int[] sizes = new int[valueIds.size()];
        valueIds.forEach((value, id) -> sizes[id] = shapes.get(value).size());
        BufferAssignment buffers = BufferAssignment.assign(sizes, liveness, liveAtEnd);
        this.bufferOfValue = buffers.bufferOfValue();
        this.activations = new float[buffers.bufferSizes().length][];
        for (int b = 0; b < activations.length; b++) {
            activations[b] = new float[buffers.bufferSizes()[b]];
        }
        graph.inputs().keySet().forEach(input -> inputBuffers.put(input, new float[shapes.get(input).size()]));
        for (Node node : steps) {
            List<float[]> reads = node.inputs().stream().filter(v -> !v.isEmpty()).map(this::array).toList();
            List<float[]> writes = node.outputs().stream().map(this::array).toList();
            for (KernelCall given : operators.get(node.op()).kernels(context(node))) {
                KernelCall call = deviceKernels ? DeviceVariants.of(given, noResidual) : given;
                tasks.add(new Task("t" + tasks.size() + "_" + call.kernel().getName(), node, call, reads, writes));
            }
        }
        this.segments = split(maxGraphTasks);
        long start = System.nanoTime();
        this.execution = tasks.isEmpty() ? null : compile(device);
        this.compileNanos = System.nanoTime() - start;
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
        return activations[bufferOfValue[valueIds.get(v)]];
    }

    private KernelContext context(Node node) {
        List<Shape> inShapes = new ArrayList<>();
        List<float[]> in = new ArrayList<>();
        for (String v : node.inputs()) {
            inShapes.add(v.isEmpty() ? null : shapes.get(v));
            in.add(v.isEmpty() ? null : array(v));
        }
        List<Shape> outShapes = node.outputs().stream().map(shapes::get).toList();
        List<float[]> out = node.outputs().stream().map(this::array).toList();
        return new KernelContext() {
            @Override
            public Node node() {
                return node;
            }

            @Override
            public List<Shape> inputShapes() {
                return Collections.unmodifiableList(inShapes);
            }

            @Override
            public List<Shape> outputShapes() {
                return outShapes;
            }

            @Override
            public float[] input(int i) {
                return i < in.size() ? in.get(i) : null;
            }

            @Override
            public float[] output(int i) {
                return out.get(i);
            }

            @Override
            public float[] scratch(int size) {
                // A node's own: scratch shared between nodes would only tie their tasks together.
                return new float[size];
            }
        };
    }

    /** Tasks cut into task graphs that fit TornadoVM's buffers; a node's tasks stay together. */
    private List<List<Task>> split(int maxGraphTasks) {
        List<List<Task>> cut = new ArrayList<>();
        List<Task> current = new ArrayList<>();
        int bytes = 0;
        int nodes = 0;
        for (int t = 0; t < tasks.size(); ) {
            int end = t;
            int stepBytes = 0;
            int stepNodes = 0;
            while (end < tasks.size() && tasks.get(end).node() == tasks.get(t).node()) {
                stepBytes += KernelTasks.graphBytes(tasks.get(end).call());
                stepNodes += KernelTasks.graphNodes(tasks.get(end).call());
                end++;
            }
            boolean full = bytes + stepBytes > GRAPH_BYTES || nodes + stepNodes > GRAPH_NODES
                    || maxGraphTasks > 0 && current.size() + (end - t) > maxGraphTasks;
            if (full && !current.isEmpty()) {
                cut.add(current);
                current = new ArrayList<>();
                bytes = 0;
                nodes = 0;
            }
            current.addAll(tasks.subList(t, end));
            bytes += stepBytes;
            nodes += stepNodes;
            t = end;
        }
        if (!current.isEmpty()) {
            cut.add(current);
        }
        return cut;
    }

    /**
     * The task graphs. TornadoVM wants every array a task touches declared: weights and the
     * operators' own constant arrays (window geometry, a zero bias) go to the device on the first
     * run, inputs on every run, graph outputs come back on every run; activations are declared
     * UNDER_DEMAND (allocated on the device, never copied), or handed on to the next graph.
     */
    private TornadoExecutionPlan compile(TornadoDevice device) {
        int count = segments.size();
        // crossing.get(s): the activation buffers holding a value made before graph s and read in or after it.
        List<Set<Object>> crossing = new ArrayList<>();
        for (int s = 0; s <= count; s++) {
            crossing.add(identitySet(List.of()));
        }
        Map<Object, Integer> lastWrite = new IdentityHashMap<>();
        for (int s = 0; s < count; s++) {
            for (Task task : segments.get(s)) {
                for (float[] read : task.reads()) {
                    Integer written = lastWrite.get(read);
                    for (int j = written == null ? s + 1 : written + 1; j <= s; j++) {
                        crossing.get(j).add(read);
                    }
                }
                for (float[] write : task.writes()) {
                    lastWrite.put(write, s);
                }
            }
        }
        Set<Object> inputs = identitySet(inputBuffers.values());
        Set<Object> activationBuffers = identitySet(Arrays.asList(activations));
        ImmutableTaskGraph[] graphs = new ImmutableTaskGraph[count];
        for (int s = 0; s < count; s++) {
            Set<Object> once = identitySet(List.of());
            Set<Object> everyRun = identitySet(List.of());
            Set<Object> used = identitySet(List.of());
            for (Task task : segments.get(s)) {
                for (Object arg : task.call().args()) {
                    if (arg == null) {
                        throw new SquallException("kernel " + task.describe() + " got a null array: on the tornado "
                                + "backend an operator must pass an array (a one-element dummy) for an absent input");
                    }
                    if (!arg.getClass().isArray()) {
                        continue;
                    }
                    if (inputs.contains(arg)) {
                        everyRun.add(arg);
                    } else if (activationBuffers.contains(arg)) {
                        used.add(arg);
                    } else {
                        once.add(arg); // a weight, or an array the operator made
                    }
                }
            }
            Set<Object> consumed = crossing.get(s);
            Set<Object> handedOn = s + 1 < count ? crossing.get(s + 1) : Set.of();
            Set<Object> outputs = identitySet(List.of());
            for (String out : model.graph().outputs()) {
                float[] data = array(out);
                if (activationBuffers.contains(data) && lastWrite.get(data) == s) {
                    outputs.add(data);
                }
            }
            Set<Object> onDevice = identitySet(used);
            onDevice.removeAll(consumed);
            onDevice.removeAll(handedOn);
            onDevice.removeAll(outputs);

            TaskGraph graph = new TaskGraph(graphName(s));
            if (!once.isEmpty()) {
                graph.transferToDevice(DataTransferMode.FIRST_EXECUTION, once.toArray());
            }
            if (!everyRun.isEmpty()) {
                graph.transferToDevice(DataTransferMode.EVERY_EXECUTION, everyRun.toArray());
            }
            if (!consumed.isEmpty()) {
                graph.consumeFromDevice(graphName(s - 1), consumed.toArray());
            }
            for (Task task : segments.get(s)) {
                KernelTasks.add(graph, task.id(), task.call(), task.describe());
            }
            if (!handedOn.isEmpty()) {
                graph.persistOnDevice(handedOn.toArray());
            }
            if (!onDevice.isEmpty()) {
                graph.transferToHost(DataTransferMode.UNDER_DEMAND, onDevice.toArray());
            }
            if (!outputs.isEmpty()) {
                graph.transferToHost(DataTransferMode.EVERY_EXECUTION, outputs.toArray());
            }
            graphs[s] = graph.snapshot();
        }
        TornadoExecutionPlan plan = new TornadoExecutionPlan(graphs).withDevice(device);
        try {
            plan.withPreCompilation();
        } catch (RuntimeException | Error e) {
            closeQuietly(plan);
            throw compileFailure(device, e);
        }
        return plan;
    }

    private String graphName(int segment) {
        return name + "g" + segment;
    }

    private static Set<Object> identitySet(Collection<?> items) {
        Set<Object> set = Collections.newSetFromMap(new IdentityHashMap<>());
        set.addAll(items);
        return set;
    }

    /**
     * Names the kernel that did not compile. TornadoVM's message names the task when the failure
     * came through its bailout path; otherwise each kernel is compiled alone until one fails.
     */
    private SquallException compileFailure(TornadoDevice device, Throwable error) {
        String message = messages(error);
        Task failed = null;
        Throwable cause = error;
        for (Task task : tasks) {
            if (Pattern.compile("\\." + task.id() + "\\b").matcher(message).find()) {
                failed = task;
                break;
            }
        }
        if (failed == null) {
            Set<Object> tried = new HashSet<>();
            for (Task task : tasks) {
                if (tried.add(task.call().kernel())) {
                    Throwable alone = compileAlone(task, device);
                    if (alone != null) {
                        failed = task;
                        cause = alone;
                        break;
                    }
                }
            }
        }
        String what = failed == null ? "model '" + model.graph().name() + "'" : "kernel " + failed.describe();
        return new SquallException("TornadoVM could not compile " + what + " for " + device.getDeviceName().strip()
                + " (input shapes " + inputShapes() + "): " + firstLine(messages(cause)) + ". " + KernelTasks.ADVICE + ".",
                cause);
    }

    private Throwable compileAlone(Task task, TornadoDevice device) {
        TaskGraph graph = new TaskGraph(name + "check" + task.id());
        Object[] arrays = Arrays.stream(task.call().args()).filter(a -> a != null && a.getClass().isArray()).toArray();
        graph.transferToDevice(DataTransferMode.FIRST_EXECUTION, arrays);
        KernelTasks.add(graph, task.id(), task.call(), task.describe());
        TornadoExecutionPlan plan = new TornadoExecutionPlan(graph.snapshot()).withDevice(device);
        try {
            plan.withPreCompilation();
            return null;
        } catch (RuntimeException | Error e) {
            return e;
        } finally {
            closeQuietly(plan);
        }
    }

    private static String messages(Throwable error) {
        StringBuilder all = new StringBuilder();
        for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
            all.append(t).append('\n');
        }
        return all.toString();
    }

    private static String firstLine(String text) {
        String line = text.strip();
        int end = line.indexOf('\n');
        return end < 0 ? line : line.substring(0, end);
    }

    private Map<String, Shape> inputShapes() {
        Map<String, Shape> in = new LinkedHashMap<>();
        inputBuffers.keySet().forEach(input -> in.put(input, shapes.get(input)));
        return in;
    }

    List<Task> tasks() {
        return Collections.unmodifiableList(tasks);
    }

    /** How many task graphs the tasks were cut into. */
    int taskGraphs() {
        return segments.size();
    }

    /** Wall time spent making the task graphs and compiling their kernels. */
    long compileNanos() {
        return compileNanos;
    }

    /** One run; runs of one plan take turns, since they share its device buffers. */
    synchronized Map<String, Tensor> run(Map<String, Tensor> inputs) {
        if (closed) {
            throw new SquallException("model '" + model.graph().name() + "' on the tornado backend is closed; "
                    + "compile it again to run it");
        }
        inputs.forEach((input, t) -> System.arraycopy(t.data(), 0, inputBuffers.get(input), 0, t.data().length));
        try {
            if (segments.size() == 1) {
                execution.execute();
            } else {
                for (int s = 0; s < segments.size(); s++) {
                    execution.withGraph(s).execute();
                }
            }
        } catch (RuntimeException | Error e) {
            throw new SquallException("TornadoVM failed running model '" + model.graph().name() + "' (input shapes "
                    + inputShapes() + "): " + firstLine(messages(e)), e);
        }
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (String output : model.graph().outputs()) {
            Shape shape = shapes.get(output);
            outputs.put(output, new Tensor(shape, Arrays.copyOf(array(output), shape.size())));
        }
        return outputs;
    }

    @Override
    public synchronized void close() {
        if (!closed && execution != null) {
            closeQuietly(execution);
        }
        closed = true;
    }

    private static void closeQuietly(TornadoExecutionPlan plan) {
        try {
            plan.close();
        } catch (TornadoExecutionPlanException | RuntimeException e) {
            // Freeing device memory failed: nothing a caller could do, and the plan is gone anyway.
        }
    }
}
