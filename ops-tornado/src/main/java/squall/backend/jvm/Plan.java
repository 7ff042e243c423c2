package squall.backend.jvm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
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
import squall.ops.passes.Layouts;
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
    /** The steps this plan runs itself: [first, last). */
    private final int first;
    private final int last;
    /** For a batch, the one-image plan that runs steps [0, first) image by image; else null. */
    private final Plan head;
    /** The values the head writes for the steps from {@link #first} on (by storage). */
    private final List<String> crossing;
    /**
     * The graph inputs this plan's own steps [first, last) read, or the graph returns: copied whole
     * at the start of a run. With a head nothing else is: it copies each image straight from the
     * caller's tensor. That is one copy of the batch less per run (4.8 MB at batch 8 and 224x224,
     * 0.2 ms on this machine): in-process A/B, medians, mobilenet_v3_small at batch 8 10.07 ->
     * 9.81 ms.
     */
    private final Set<String> inputsCopied;
    private final ConcurrentLinkedQueue<Execution> idle = new ConcurrentLinkedQueue<>();
    /** {@link #estimateBytes()}, checked against the heap before each new set of buffers. */
    private final long runBytes;

    /**
     * With {@code fuse}, same-shape adds are fused into the convs before them and channel scales
     * (squeeze-and-excitation gates) into the 1x1 convs after them, and 1x1 expansions into the
     * depthwise convs that read them on large maps (shapes are known here). A batch
     * of images runs its first, large-map steps image by image ({@link #DEPTH_FIRST_PIXELS}). With
     * {@code blocked} too, islands of convs run in the blocked layout ({@link Layouts#blockChannels}).
     */
    Plan(Model model, Operators operators, Map<String, Shape> inputShapes, boolean fuse, boolean blocked) {
        this(model, operators, inputShapes, fuse, blocked, true, -1);
    }

    /**
     * {@code depthFirst}: whether a batch may run its head image by image. {@code stepLimit} >= 0
     * makes the head of such a plan: one image, only steps [0, stepLimit), keeping the values
     * later steps read.
     */
    Plan(Model model, Operators operators, Map<String, Shape> inputShapes, boolean fuse, boolean blocked,
         boolean depthFirst, int stepLimit) {
        Map<String, Shape> given = model.graph().inferShapes(inputShapes, operators);
        // Islands of blocked convs first: the expansions and squeeze pools fuse into the others.
        Model fused = fuse ? Passes.fuseChannelScales(Passes.fuseResiduals(model, given), given) : model;
        Model laidOut = fuse && blocked ? Layouts.blockChannels(fused, given) : fused;
        this.model = fuse ? Passes.fuseSqueezePools(Passes.fuseExpandDepthwise(laidOut, given), given) : model;
        // The reorders' outputs are new values.
        this.shapes = laidOut == fused ? given : this.model.graph().inferShapes(inputShapes, operators);
        Graph graph = this.model.graph();
        for (Node node : graph.nodes()) {
            Operator op = operators.get(node.op());
            if (isAlias(op, node)) {
                storage.put(node.output(), storageOf(node.input(0)));
                continue;
            }
            steps.add(node);
            stepOperators.add(op);
        }
        this.last = stepLimit >= 0 ? stepLimit : steps.size();
        Plan headPlan = null;
        int cut = stepLimit < 0 && depthFirst ? depthFirstCut() : 0;
        if (cut > 0) {
            try {
                headPlan = new Plan(model, operators, oneImage(inputShapes), fuse, blocked, false, cut);
            } catch (SquallException.BadShape e) {
                // Not runnable one image at a time (a reshape to a fixed batch inside): run it whole.
                headPlan = null;
            }
            if (headPlan == null || !headPlan.fits(this, cut)) {
                headPlan = null;
                cut = 0;
            }
        }
        this.head = headPlan;
        this.first = cut;
        this.crossing = cut > 0 ? crossing(cut) : List.of();
        Set<String> readHere = readFrom(cut);
        this.inputsCopied = graph.inputs().keySet().stream().filter(v -> head == null || readHere.contains(v))
                .collect(Collectors.toUnmodifiableSet());

        List<BufferAssignment.Step> liveness = new ArrayList<>();
        if (head != null) {
            // The values the head hands over are written before the first step of this plan.
            liveness.add(new BufferAssignment.Step(new int[0], ids(crossing)));
        }
        for (int s = first; s < last; s++) {
            Node node = steps.get(s);
            List<Shape> inShapes = inputShapes(node);
            boolean inPlace = !node.inputs().isEmpty() && !node.inputs().get(0).isEmpty()
                    && stepOperators.get(s).writesInPlace(node, inShapes);
            liveness.add(new BufferAssignment.Step(ids(node.inputs()), ids(node.outputs()), inPlace));
        }
        Set<Integer> liveAtEnd = new HashSet<>();
        for (String out : stepLimit >= 0 ? crossing(stepLimit) : graph.outputs()) {
            liveAtEnd.add(id(storageOf(out)));
        }
        int[] sizes = new int[valueIds.size()];
        valueIds.forEach((name, id) -> sizes[id] = shapes.get(name).size());
        this.buffers = BufferAssignment.assign(sizes, liveness, liveAtEnd);
        this.runBytes = estimateBytes() + (head == null ? 0 : head.runBytes);
        checkHeap(runBytes);
    }

    /**
     * The first step of a batch that runs as a batch: the steps before it run image by image, so
     * each image's large maps stay in cache from one layer to the next. Batched, the first stages
     * of MobileNetV2 at 224 ran 5-60% slower per image than at batch 1 (8 images' 112x112 and 56x56
     * maps do not fit in L2, nor 8 MB of L3 per batch), while the 14x14 and 7x7 layers gain from
     * the batch (the GEMM's strips and panels reused across images); the best cut by per-layer
     * profiles was at the 14x14 stage for mobilenet_v2, efficientnet_b0 and mobilenet_v3_small.
     * Since the 14x14 layers run in blocks (NCHWc islands, round 20) they too gain from staying in
     * cache: with the cut at 7x7, in-process medians at batch 8 mobilenet_v3_small 10.47 -> 9.64
     * ms, mobilenet_v3_large 32.1 -> 30.0, mobilenet_v2 32.0 -> 30.9; at batch 2
     * mobilenet_v3_small 3.16 -> 2.70; efficientnet_b0, efficientnet_v2_s and mobilenet_v1 level.
     * Cutting before the 7x7 layers as well, or at 28x28, was slower (CPU-KERNELS.md round 22).
     * 0 when the batch runs whole: batch 1, a graph whose batch is fixed, several inputs, or no
     * step past the large maps.
     */
    private int depthFirstCut() {
        Map<String, Shape> inputs = model.graph().inputs();
        if (inputs.size() != 1) {
            return 0;
        }
        Shape input = shapes.get(inputs.keySet().iterator().next());
        Shape declared = inputs.values().iterator().next();
        // A graph that fixes its batch (an ONNX file exported for batch 2) has no one-image plan.
        if (input.rank() != 4 || input.dim(0) <= 1 || declared.rank() != 4 || declared.dim(0) >= 0) {
            return 0;
        }
        int cut = steps.size();
        while (cut > 0 && smallMaps(steps.get(cut - 1))) {
            cut--;
        }
        return cut == steps.size() ? 0 : cut;
    }

    /** Maps per image from which a batch runs as one: MobileNets' 7x7 stage at 224x224. */
    static final int DEPTH_FIRST_PIXELS = 7 * 7;

    private boolean smallMaps(Node node) {
        for (String out : node.outputs()) {
            Shape shape = shapes.get(out);
            if (shape.rank() == 4 && (long) shape.dim(2) * shape.dim(3) > DEPTH_FIRST_PIXELS) {
                return false;
            }
        }
        return true;
    }

    /** The input shapes with a batch of one. */
    private static Map<String, Shape> oneImage(Map<String, Shape> inputShapes) {
        Map<String, Shape> one = new HashMap<>();
        inputShapes.forEach((name, shape) -> {
            int[] dims = shape.dims();
            dims[0] = 1;
            one.put(name, Shape.of(dims));
        });
        return one;
    }

    /**
     * The values (by storage) that steps [0, cut) write and later steps or the graph's outputs
     * read: what a head hands over.
     */
    private List<String> crossing(int cut) {
        Set<String> written = new HashSet<>();
        for (int s = 0; s < cut; s++) {
            steps.get(s).outputs().forEach(v -> written.add(storageOf(v)));
        }
        Set<String> read = readFrom(cut);
        read.retainAll(written);
        return List.copyOf(read);
    }

    /** The values (by storage) that steps from {@code cut} on read, and the graph's outputs, in order. */
    private Set<String> readFrom(int cut) {
        Set<String> read = new java.util.LinkedHashSet<>();
        for (int s = cut; s < steps.size(); s++) {
            steps.get(s).inputs().stream().filter(v -> !v.isEmpty()).forEach(v -> read.add(storageOf(v)));
        }
        model.graph().outputs().forEach(v -> read.add(storageOf(v)));
        return read;
    }

    /**
     * Whether this one-image plan can be {@code batched}'s head: the same first steps, and each
     * value it hands over one image of the batch's (batch the first dimension, the rest equal).
     */
    private boolean fits(Plan batched, int cut) {
        for (int s = 0; s < cut; s++) {
            if (!steps.get(s).equals(batched.steps.get(s))) {
                return false;
            }
        }
        List<String> handedOver = crossing(cut);
        if (!handedOver.equals(batched.crossing(cut))) {
            return false;
        }
        int batch = batched.shapes.get(batched.model.graph().inputs().keySet().iterator().next()).dim(0);
        for (String v : handedOver) {
            int[] one = shapes.get(v).dims();
            int[] all = batched.shapes.get(v).dims();
            if (one.length == 0 || one[0] != 1 || all[0] != batch) {
                return false;
            }
            all[0] = 1;
            if (!java.util.Arrays.equals(one, all)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Bytes one run of this plan allocates: activation buffers by liveness, input copies, output
     * tensors, and the im2col scratch of dense convs with a window (each such node keeps its own).
     */
    long estimateBytes() {
        long floats = buffers.totalFloats();
        for (String input : inputsCopied) {
            floats += shapes.get(input).size();
        }
        for (String output : model.graph().outputs()) {
            floats += shapes.get(output).size();
        }
        for (Node node : steps.subList(first, last)) {
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

    /** The activation buffer a value of this plan is held in, -1 for inputs and parameters. */
    int bufferOf(String value) {
        Integer id = valueIds.get(storageOf(value));
        return id == null ? -1 : buffers.bufferOfValue()[id];
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

    /** Each step's multiply-adds ({@link Operator#multiplyAdds}) at this plan's shapes, the whole batch. */
    long[] stepMultiplyAdds() {
        long[] multiplyAdds = new long[steps.size()];
        for (int s = 0; s < steps.size(); s++) {
            Node node = steps.get(s);
            multiplyAdds[s] = stepOperators.get(s).multiplyAdds(node, inputShapes(node), outputShapes(node));
        }
        return multiplyAdds;
    }

    /** A node's input shapes at this plan's sizes, null for an absent optional input. */
    private List<Shape> inputShapes(Node node) {
        return node.inputs().stream().map(v -> v.isEmpty() ? null : shapes.get(v)).toList();
    }

    private List<Shape> outputShapes(Node node) {
        return node.outputs().stream().map(shapes::get).toList();
    }

    /** One set of buffers and the kernels bound to them; used by one run at a time. */
    private final class Execution {
        private final Map<String, float[]> inputBuffers = new HashMap<>();
        private final float[][] activationBuffers = new float[buffers.bufferSizes().length][];
        /** The kernels of steps [first, last). */
        private final List<CpuKernel> work = new ArrayList<>();
        /** The head's buffers and kernels, one set per thread that runs it. */
        private final List<Execution> headExecutions = new ArrayList<>();

        Execution() {
            for (int b = 0; b < activationBuffers.length; b++) {
                activationBuffers[b] = new float[buffers.bufferSizes()[b]];
            }
            for (String input : inputsCopied) {
                inputBuffers.put(input, new float[shapes.get(input).size()]);
            }
            for (int s = first; s < last; s++) {
                work.add(bind(steps.get(s), stepOperators.get(s)));
            }
            if (head != null) {
                headExecutions.add(head.new Execution());
            }
        }

        /** The operator's CPU kernel over this execution's buffers, else its portable kernels. */
        private CpuKernel bind(Node node, Operator op) {
            float[][] in = new float[node.inputs().size()][];
            boolean[] constant = new boolean[in.length];
            for (int i = 0; i < in.length; i++) {
                String v = node.inputs().get(i);
                in[i] = v.isEmpty() ? null : array(v);
                constant[i] = !v.isEmpty() && model.weights().containsKey(storageOf(v));
            }
            float[][] out = node.outputs().stream().map(this::array).toArray(float[][]::new);
            var context = new JvmKernelContext(node, inputShapes(node), outputShapes(node), in, out, constant);
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
            for (String name : inputsCopied) {
                float[] data = inputs.get(name).data();
                System.arraycopy(data, 0, inputBuffers.get(name), 0, data.length);
            }
            if (head != null) {
                runHead(inputs, workers, stepNanos);
            }
            runSteps(workers, stepNanos);
            Map<String, Tensor> outputs = new LinkedHashMap<>();
            for (String name : model.graph().outputs()) {
                Shape shape = shapes.get(name);
                float[] data = new float[shape.size()];
                System.arraycopy(array(name), 0, data, 0, data.length);
                outputs.put(name, new Tensor(shape, data));
            }
            return outputs;
        }

        /**
         * Image by image: the head's steps on its slice of the input, then its slice of each value
         * handed over. With several threads, each runs whole images on its own set of the head's
         * buffers: no barrier between the head's many short steps. Against both threads on each
         * image in turn (batch 8, minimum of 3 alternating runs): mobilenet_v3_small 18.4 -> 16.6 ms,
         * mobilenet_v1 63.1 -> 60.9 ms, mobilenet_v2, v3_large and efficientnet_b0 within noise.
         */
        private void runHead(Map<String, Tensor> inputs, Workers workers, long[] stepNanos) {
            int images = shapes.get(model.graph().inputs().keySet().iterator().next()).dim(0);
            int wanted = Math.min(workers.count(), images);
            while (headExecutions.size() < wanted && headFits()) {
                headExecutions.add(head.new Execution());
            }
            // Without the heap for another set of the head's buffers, fewer threads take images.
            int threads = headExecutions.size();
            if (threads == 1) {
                for (int n = 0; n < images; n++) {
                    runHeadImage(headExecutions.getFirst(), inputs, n, workers, stepNanos);
                }
                return;
            }
            // Whole images side by side while every thread has one; the rest (3 images on 2 threads:
            // the third) one at a time on all threads, not one thread taking two while the other
            // waits: with the head down to 7x7, batch 3 took 6-8% longer that way (mobilenet_v3_small
            // 4.23 against 3.97 ms with the cut at 14x14); with the rest on all threads 4.86
            // against 5.16 (CPU-KERNELS.md round 22).
            int sideBySide = images - images % threads;
            var next = new AtomicInteger();
            long[][] nanos = new long[threads][];
            long start = System.nanoTime();
            workers.forEach(threads, t -> {
                nanos[t] = stepNanos == null ? null : new long[stepNanos.length];
                for (int n = next.getAndIncrement(); n < sideBySide; n = next.getAndIncrement()) {
                    runHeadImage(headExecutions.get(t), inputs, n, Workers.sequential(), nanos[t]);
                }
            });
            if (stepNanos != null) {
                addShares(stepNanos, nanos, System.nanoTime() - start);
            }
            for (int n = sideBySide; n < images; n++) {
                runHeadImage(headExecutions.getFirst(), inputs, n, workers, stepNanos);
            }
        }

        /** Whether the heap has room for another set of the head's buffers (checked before making one). */
        private boolean headFits() {
            try {
                head.checkHeap(head.runBytes);
                return true;
            } catch (SquallException e) {
                return false;
            }
        }

        /**
         * The head's wall time shared among its steps in proportion to the threads' time in each,
         * so that a profile's steps still add up to the run.
         */
        private static void addShares(long[] stepNanos, long[][] threadNanos, long wall) {
            long[] sums = new long[stepNanos.length];
            long total = 0;
            for (long[] own : threadNanos) {
                for (int s = 0; own != null && s < own.length; s++) {
                    sums[s] += own[s];
                    total += own[s];
                }
            }
            for (int s = 0; s < sums.length && total > 0; s++) {
                stepNanos[s] += Math.round((double) wall * sums[s] / total);
            }
        }

        /** Image n through the head on {@code one}'s buffers, its input copied from the caller's tensor. */
        private void runHeadImage(Execution one, Map<String, Tensor> inputs, int n, Workers workers, long[] stepNanos) {
            for (var input : one.inputBuffers.entrySet()) {
                int size = input.getValue().length;
                System.arraycopy(inputs.get(input.getKey()).data(), n * size, input.getValue(), 0, size);
            }
            one.runSteps(workers, stepNanos);
            for (String v : crossing) {
                float[] data = one.array(v);
                int size = head.shapes.get(v).size();
                System.arraycopy(data, 0, array(v), n * size, size);
            }
        }

        /** Steps [first, last), adding each one's nanoseconds to {@code stepNanos} when it is not null. */
        private void runSteps(Workers workers, long[] stepNanos) {
            for (int s = first; s < last; s++) {
                try {
                    long start = stepNanos == null ? 0 : System.nanoTime();
                    work.get(s - first).run(workers);
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
        }
    }

    /** How many steps a batch runs image by image (0: none). */
    int headSteps() {
        return first;
    }
}
