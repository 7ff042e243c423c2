package squall.backend.tornado;

import java.lang.invoke.CallSite;
import java.lang.invoke.LambdaMetafactory;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
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
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.exceptions.TornadoExecutionPlanException;

/**
 * A model for one set of concrete input shapes as ONE TornadoVM task graph: every kernel call of
 * every node becomes a task, in order. Weights go to the device on the first run only, the inputs
 * and graph outputs on every run; activations live on the device, in buffers shared by liveness as
 * on the JVM backend. Its {@link TornadoExecutionPlan} is made (and its kernels compiled) here and
 * closed with {@link #close}.
 */
final class TaskGraphPlan implements AutoCloseable {
    /** TornadoFunctions has Task1..Task20; a kernel with more parameters cannot be a task. */
    private static final int MAX_KERNEL_PARAMETERS = 20;
    private static final AtomicLong GRAPH_NUMBERS = new AtomicLong();
    /** One lambda factory per kernel method, shared by every task (and plan) that calls it. */
    private static final Map<Method, MethodHandle> TASK_FACTORIES = new ConcurrentHashMap<>();

    /** A task of the graph: the node it computes and its kernel call. */
    record Task(String id, Node node, KernelCall call) {
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
    private final int[] bufferOfValue;
    private final List<Task> tasks = new ArrayList<>();
    private final TornadoExecutionPlan execution;
    private final long compileNanos;
    private boolean closed;

    TaskGraphPlan(Model model, Operators operators, Map<String, Shape> inputShapes, TornadoDevice device) {
        this.model = model;
        Graph graph = model.graph();
        this.shapes = graph.inferShapes(inputShapes, operators);
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
        valueIds.forEach((name, id) -> sizes[id] = shapes.get(name).size());
        BufferAssignment buffers = BufferAssignment.assign(sizes, liveness, liveAtEnd);
        this.bufferOfValue = buffers.bufferOfValue();
        this.activations = new float[buffers.bufferSizes().length][];
        for (int b = 0; b < activations.length; b++) {
            activations[b] = new float[buffers.bufferSizes()[b]];
        }
        graph.inputs().keySet().forEach(name -> inputBuffers.put(name, new float[shapes.get(name).size()]));
        for (Node node : steps) {
            for (KernelCall call : operators.get(node.op()).kernels(context(node))) {
                tasks.add(new Task("t" + tasks.size() + "_" + call.kernel().getName(), node, call));
            }
        }
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
                // Each node its own: on a device, scratch shared between tasks would only add
                // dependencies between them.
                return new float[size];
            }
        };
    }

    /**
     * The task graph. TornadoVM wants every array a task touches declared: weights and the
     * operators' own constant arrays (window geometry, zero bias) go to the device on the first run,
     * inputs on every run, graph outputs come back on every run, and activations are declared
     * UNDER_DEMAND, which allocates them on the device and never copies them.
     */
    private TornadoExecutionPlan compile(TornadoDevice device) {
        Set<Object> inputs = identitySet(inputBuffers.values());
        Set<Object> activationBuffers = identitySet(Arrays.asList(activations));
        Set<Object> outputs = identitySet(List.of());
        for (String out : model.graph().outputs()) {
            float[] data = array(out);
            if (activationBuffers.contains(data)) {
                outputs.add(data);
            }
        }
        Set<Object> once = identitySet(List.of());
        Set<Object> everyRun = identitySet(List.of());
        Set<Object> onDevice = identitySet(List.of());
        for (Task task : tasks) {
            for (Object arg : task.call().args()) {
                if (arg == null) {
                    throw new SquallException("kernel " + task.describe() + " got a null array: an operator must pass "
                            + "an array (e.g. a one-element dummy) for an absent optional input on the tornado backend");
                }
                if (!arg.getClass().isArray()) {
                    continue;
                }
                if (inputs.contains(arg)) {
                    everyRun.add(arg);
                } else if (activationBuffers.contains(arg)) {
                    if (!outputs.contains(arg)) {
                        onDevice.add(arg);
                    }
                } else {
                    once.add(arg); // a weight, or an array the operator made
                }
            }
        }
        TaskGraph graph = new TaskGraph("squall" + GRAPH_NUMBERS.incrementAndGet());
        if (!once.isEmpty()) {
            graph.transferToDevice(DataTransferMode.FIRST_EXECUTION, once.toArray());
        }
        if (!everyRun.isEmpty()) {
            graph.transferToDevice(DataTransferMode.EVERY_EXECUTION, everyRun.toArray());
        }
        for (Task task : tasks) {
            addTask(graph, task);
        }
        if (!onDevice.isEmpty()) {
            graph.transferToHost(DataTransferMode.UNDER_DEMAND, onDevice.toArray());
        }
        if (!outputs.isEmpty()) {
            graph.transferToHost(DataTransferMode.EVERY_EXECUTION, outputs.toArray());
        }
        ImmutableTaskGraph snapshot = graph.snapshot();
        TornadoExecutionPlan plan = new TornadoExecutionPlan(snapshot).withDevice(device);
        try {
            plan.withPreCompilation();
        } catch (RuntimeException | Error e) {
            closeQuietly(plan);
            throw compileFailure(graph.getTaskGraphName(), device, e);
        }
        return plan;
    }

    private static Set<Object> identitySet(java.util.Collection<?> items) {
        Set<Object> set = Collections.newSetFromMap(new IdentityHashMap<>());
        set.addAll(items);
        return set;
    }

    private static void addTask(TaskGraph graph, Task task) {
        Method kernel = task.call().kernel();
        int n = kernel.getParameterCount();
        if (n < 1 || n > MAX_KERNEL_PARAMETERS) {
            throw new SquallException("kernel " + task.describe() + " takes " + n + " parameters; a TornadoVM task "
                    + "takes 1 to " + MAX_KERNEL_PARAMETERS + ": merge scalars into an int[] parameter");
        }
        Object[] taskArgs = new Object[n + 2];
        taskArgs[0] = task.id();
        taskArgs[1] = taskFunction(kernel);
        System.arraycopy(task.call().args(), 0, taskArgs, 2, n);
        Class<?>[] types = new Class<?>[n + 2];
        Arrays.fill(types, Object.class);
        types[0] = String.class;
        types[1] = taskInterface(n);
        try {
            TaskGraph.class.getMethod("task", types).invoke(graph, taskArgs);
        } catch (InvocationTargetException e) {
            throw new SquallException("TornadoVM refused kernel " + task.describe() + ": " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new SquallException("cannot make a TornadoVM task of kernel " + task.describe() + ": " + e, e);
        }
    }

    private static Class<?> taskInterface(int parameters) {
        try {
            return Class.forName("uk.ac.manchester.tornado.api.common.TornadoFunctions$Task" + parameters);
        } catch (ClassNotFoundException e) {
            throw new SquallException("this TornadoVM has no TornadoFunctions.Task" + parameters, e);
        }
    }

    /**
     * A {@code TornadoFunctions.TaskN} whose {@code apply} calls the kernel. TornadoVM finds the
     * kernel by reading {@code apply}'s bytecode, so this must be a real lambda over the method (as
     * {@code Kernels::conv2d} in source would be), not a reflective call.
     */
    static Object taskFunction(Method kernel) {
        MethodHandle factory = TASK_FACTORIES.computeIfAbsent(kernel, TaskGraphPlan::lambdaFactory);
        try {
            return factory.invoke();
        } catch (Throwable e) {
            throw new SquallException("cannot make a TornadoVM task function for kernel " + kernel + ": " + e, e);
        }
    }

    private static MethodHandle lambdaFactory(Method kernel) {
        int n = kernel.getParameterCount();
        Class<?> taskInterface = taskInterface(n);
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            MethodHandle target = lookup.unreflect(kernel);
            // apply(Object...) erased; instantiated with the kernel's types, scalars boxed (the
            // generated apply unboxes them before the static call).
            MethodType erased = MethodType.genericMethodType(n).changeReturnType(void.class);
            MethodType instantiated = target.type().wrap().changeReturnType(void.class);
            CallSite site = LambdaMetafactory.metafactory(lookup, "apply", MethodType.methodType(taskInterface),
                    erased, target, instantiated);
            return site.getTarget();
        } catch (ReflectiveOperationException | java.lang.invoke.LambdaConversionException e) {
            throw new SquallException("cannot make a TornadoVM task function for kernel " + kernel + ": " + e, e);
        }
    }

    /**
     * Names the kernel that did not compile. TornadoVM's message names the task when the failure
     * came through its bailout path; otherwise each task is compiled alone until one fails.
     */
    private SquallException compileFailure(String graphName, TornadoDevice device, Throwable error) {
        String message = messages(error);
        Task failed = null;
        for (Task task : tasks) {
            if (message.contains(graphName + "." + task.id() + "\n") || message.contains(graphName + "." + task.id() + " ")) {
                failed = task;
                break;
            }
        }
        Throwable cause = error;
        if (failed == null) {
            Map<Method, Boolean> tried = new HashMap<>();
            for (Task task : tasks) {
                if (tried.putIfAbsent(task.call().kernel(), true) != null) {
                    continue;
                }
                Throwable alone = compileAlone(task, device);
                if (alone != null) {
                    failed = task;
                    cause = alone;
                    break;
                }
            }
        }
        String what = failed == null ? "a kernel of model '" + model.graph().name() + "'" : "kernel " + failed.describe();
        return new SquallException("TornadoVM could not compile " + what + " for " + device.getDeviceName().strip()
                + " (input shapes " + inputShapes() + "): " + firstLine(messages(cause))
                + ". Run the model on the jvm backend, or fix the kernel (TornadoVM needs primitive arrays and "
                + "scalars, no objects or allocation; run with --debug / -Dtornado.debug=True for the full reason).",
                cause);
    }

    private static Throwable compileAlone(Task task, TornadoDevice device) {
        TaskGraph graph = new TaskGraph("squallcheck" + GRAPH_NUMBERS.incrementAndGet());
        Object[] arrays = Arrays.stream(task.call().args()).filter(a -> a != null && a.getClass().isArray()).toArray();
        graph.transferToDevice(DataTransferMode.FIRST_EXECUTION, arrays);
        addTask(graph, task);
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
        inputBuffers.keySet().forEach(name -> in.put(name, shapes.get(name)));
        return in;
    }

    List<Task> tasks() {
        return Collections.unmodifiableList(tasks);
    }

    /** Wall time spent making the task graph and compiling its kernels. */
    long compileNanos() {
        return compileNanos;
    }

    /** One run; runs of one plan take turns, since they share its device buffers. */
    synchronized Map<String, Tensor> run(Map<String, Tensor> inputs) {
        if (closed) {
            throw new SquallException("model '" + model.graph().name() + "' on the tornado backend is closed; "
                    + "compile it again to run it");
        }
        inputs.forEach((name, t) -> System.arraycopy(t.data(), 0, inputBuffers.get(name), 0, t.data().length));
        if (execution != null) {
            try {
                execution.execute();
            } catch (RuntimeException | Error e) {
                throw new SquallException("TornadoVM failed running model '" + model.graph().name() + "' (input shapes "
                        + inputShapes() + ", tasks " + tasks.stream().map(Task::id).toList() + "): " + e, e);
            }
        }
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (String name : model.graph().outputs()) {
            Shape shape = shapes.get(name);
            outputs.put(name, new Tensor(shape, Arrays.copyOf(array(name), shape.size())));
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
