package squall.networks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import squall.api.Attributes;
import squall.api.Graph;
import squall.api.Node;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * Deterministic random weights for any graph, so a network runs without a checkpoint and its
 * activations stay near unit scale at every depth.
 *
 * <p>Convolutions and linear layers get He-normal weights (std sqrt(2 / fanIn), He et al. 2015)
 * and near-zero biases; BatchNorm gets gamma near 1 (0.3 where it ends a residual branch, see
 * {@link #RESIDUAL_GAMMA}) and beta near 0. He init alone does not hold
 * the scale: over a hundred SiLU or hardswish layers it shrinks, each residual add grows it, and
 * a conv over a positive (post-activation) input gives every channel its own offset. So, as
 * trained statistics would, each BatchNorm's running_mean and running_var are the mean and
 * variance its input channel has: the generator walks the graph once, carrying each value's
 * per-channel mean and variance for normalised photos (means exactly; activations as if each
 * channel were Gaussian; channels uncorrelated, neighbouring pixels correlated, see
 * {@link #IMAGE_CORRELATION}). Those statistics are then perturbed a little so that no BatchNorm
 * is an exact identity. A parameter no known op reads gets N(0, 1 / fanIn).
 *
 * <p>Checked against PyTorch (RandomWeightsTest): on smooth synthetic images, BatchNorm and block
 * outputs stay within 0.2-2 for the MobileNets and B0, and drift up to about 5-8 in B4, B7 and
 * V2-S and about 50 in V2-L, still far from float32's limits.
 */
public final class RandomWeights {
    /** He et al.'s gain for ReLU-like activations: weight variance 2 / fanIn. */
    private static final double HE_GAIN = 2.0;
    private static final double NOISE = 0.05;
    /**
     * gamma of the BatchNorm that ends a residual branch. The estimates above drift by a few
     * percent per block (activations on non-Gaussian channels), and a residual stream would carry
     * that drift through 20-50 blocks; a small gamma there, as in Goyal et al. 2017's zero-gamma
     * init, keeps each stream near the scale of its stage's first block.
     */
    private static final double RESIDUAL_GAMMA = 0.3;
    /** Ops that pass their first input through at inference. */
    private static final Set<String> IDENTITIES = Set.of("dropout", "stochastic_depth", "identity");

    private static final Map<String, DoubleUnaryOperator> ACTIVATIONS = Map.of(
            "relu", x -> Math.max(0, x),
            "relu6", x -> Math.min(6, Math.max(0, x)),
            "sigmoid", RandomWeights::sigmoid,
            "silu", x -> x * sigmoid(x),
            "hardswish", x -> x * Math.min(6, Math.max(0, x + 3)) / 6);

    /**
     * Neighbouring pixels of a photo are strongly correlated. A kxk kernel then responds to
     * (sum of its weights)^2 more than to the sum of their squares, and each channel of a
     * depthwise or stem conv, with only a few weights, is off by a factor of its own; so the
     * walk carries the correlation between neighbouring pixels, rho, starting from this.
     */
    private static final double IMAGE_CORRELATION = 0.9;

    /** Per-channel mean and variance of one value (channels on axis 1), and rho of its pixels. */
    private record Moments(double[] mean, double[] variance, double correlation) {
        int channels() {
            return mean.length;
        }

        static Moments standard(int channels) {
            double[] variance = new double[channels];
            Arrays.fill(variance, 1);
            return new Moments(new double[channels], variance, IMAGE_CORRELATION);
        }

        Moments with(double[] newMean, double[] newVariance) {
            return new Moments(newMean, newVariance, correlation);
        }
    }

    private final Graph graph;
    private final long seed;
    private final Map<String, Tensor> weights = new LinkedHashMap<>();
    private final Map<String, Moments> moments = new HashMap<>();
    private final Map<String, List<Node>> consumers = new HashMap<>();

    private RandomWeights(Graph graph, long seed) {
        this.graph = graph;
        this.seed = seed;
    }

    /** A value for every parameter of {@code graph}; the same seed gives the same values. */
    public static Map<String, Tensor> generate(Graph graph, long seed) {
        RandomWeights generator = new RandomWeights(graph, seed);
        for (Node node : graph.nodes()) {
            for (String input : node.inputs()) {
                generator.consumers.computeIfAbsent(input, k -> new ArrayList<>()).add(node);
            }
        }
        graph.inputs().forEach((name, shape) ->
                generator.moments.put(name, Moments.standard(shape.rank() > 1 ? Math.max(1, shape.dim(1)) : 1)));
        for (Node node : graph.nodes()) {
            Moments out = generator.visit(node);
            node.outputs().forEach(output -> generator.moments.put(output, out));
        }
        graph.parameters().forEach((name, shape) -> generator.normal(name, 0, Math.sqrt(1.0 / fanIn(shape))));
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        graph.parameters().keySet().forEach(name -> ordered.put(name, generator.weights.get(name)));
        return ordered;
    }

    /** Generates the parameters {@code node} reads; returns its output's moments. */
    private Moments visit(Node node) {
        Moments in = moments.get(node.input(0));
        if (in == null) {
            return null;
        }
        return switch (node.op()) {
            case "conv2d", "linear" -> linear(node, in);
            case "batch_norm" -> batchNorm(node, in);
            case "add" -> add(in, moments.get(node.input(1)));
            case "mul" -> multiply(in, moments.get(node.input(1)));
            case "hardsigmoid" -> {
                Attributes a = node.attributes();
                double alpha = a.getFloat("alpha", 1f / 6);
                double beta = a.getFloat("beta", 0.5f);
                yield activate(x -> Math.min(1, Math.max(0, alpha * x + beta)), in);
            }
            // The spatial mean of a map varies little from image to image compared with its pixels.
            case "global_avg_pool" -> new Moments(in.mean(), new double[in.channels()], 0);
            default -> ACTIVATIONS.containsKey(node.op()) ? activate(ACTIVATIONS.get(node.op()), in) : in;
        };
    }

    /**
     * conv2d or linear: out[o] = sum over its inputs i and taps k of w[o,i,k] x[i] + b[o], so the
     * mean is exactly sum w m[i] + b and the variance sum w^2 v[i] for uncorrelated inputs.
     */
    private Moments linear(Node node, Moments in) {
        Shape shape = graph.parameters().get(node.input(1));
        if (shape == null) {
            return in;
        }
        Tensor weight = normal(node.input(1), 0, Math.sqrt(HE_GAIN / fanIn(shape)));
        Tensor bias = normal(node.input(2), 0, NOISE);
        int outChannels = shape.dim(0);
        int inPerGroup = shape.dim(1);
        int taps = (int) (fanIn(shape) / inPerGroup);
        int groups = node.attributes().getInt("groups", 1);
        int outPerGroup = outChannels / groups;
        double[][] tapCorrelation = tapCorrelation(shape, in.correlation());
        double[] mean = new double[outChannels];
        double[] variance = new double[outChannels];
        double[] inMean = in.mean();
        double[] inVariance = in.variance();
        float[] w = weight.data();
        for (int o = 0; o < outChannels; o++) {
            int firstInput = o / outPerGroup * inPerGroup;
            for (int i = 0; i < inPerGroup; i++) {
                int first = (o * inPerGroup + i) * taps;
                double sum = 0;
                double kernelVariance = 0;
                for (int k = 0; k < taps; k++) {
                    sum += w[first + k];
                    for (int l = 0; l < taps; l++) {
                        kernelVariance += w[first + k] * w[first + l] * tapCorrelation[k][l];
                    }
                }
                int channel = Math.min(firstInput + i, inMean.length - 1);
                mean[o] += sum * inMean[channel];
                variance[o] += kernelVariance * inVariance[channel];
            }
            mean[o] += bias == null ? 0 : bias.data()[o];
        }
        // Pixels s apart in the input become neighbours in a stride-s output.
        int stride = node.attributes().getInts("stride", 2, 1)[0];
        double correlation = node.op().equals("linear") ? 0 : Math.pow(in.correlation(), stride);
        Moments out = new Moments(mean, variance, correlation);
        DoubleUnaryOperator fused = ACTIVATIONS.get(node.attributes().getString("activation", "none"));
        out = fused == null ? out : activate(fused, out);
        Moments residual = moments.get(node.input(3));
        return residual == null ? out : add(out, residual);
    }

    /** Running statistics are the input's, perturbed; gamma near 1, beta near 0. */
    private Moments batchNorm(Node node, Moments in) {
        Shape parameter = graph.parameters().get(node.input(1));
        if (parameter != null && parameter.dim(0) != in.channels()) {
            in = Moments.standard(parameter.dim(0)); // not a graph we can follow: assume unit scale
        }
        Moments input = in;
        int channels = in.channels();
        float epsilon = node.attributes().getFloat("epsilon", 1e-5f);
        double gammaMean = endsResidualBranch(node) ? RESIDUAL_GAMMA : 1;
        Tensor gamma = normal(node.input(1), gammaMean, NOISE * gammaMean);
        Tensor beta = normal(node.input(2), 0, NOISE);
        double averageVariance = Arrays.stream(in.variance()).average().orElse(1);
        double[] inputStd = new double[channels];
        double[] variance = new double[channels];
        for (int c = 0; c < channels; c++) {
            // A channel estimated as (nearly) constant must not be divided by (nearly) zero.
            variance[c] = Math.max(in.variance()[c], 1e-2 * averageVariance + 1e-6);
            inputStd[c] = Math.sqrt(variance[c]);
        }
        Tensor runningMean = fill(node.input(3),
                (c, random) -> input.mean()[c] + NOISE * inputStd[c] * random.nextGaussian());
        Tensor runningVar = fill(node.input(4), (c, random) -> variance[c] * Math.exp(NOISE * random.nextGaussian()));
        if (gamma == null || beta == null || runningMean == null || runningVar == null) {
            return in;
        }
        double[] mean = new double[channels];
        double[] outVariance = new double[channels];
        for (int c = 0; c < channels; c++) {
            double scale = gamma.data()[c] / Math.sqrt(runningVar.data()[c] + epsilon);
            mean[c] = (in.mean()[c] - runningMean.data()[c]) * scale + beta.data()[c];
            outVariance[c] = in.variance()[c] * scale * scale;
        }
        return in.with(mean, outVariance);
    }

    /** rho^distance between the taps of a kxk kernel (rank-4 weight [O, I, kH, kW]); identity otherwise. */
    private static double[][] tapCorrelation(Shape weight, double rho) {
        int height = weight.rank() == 4 ? weight.dim(2) : 1;
        int width = weight.rank() == 4 ? weight.dim(3) : 1;
        double[][] correlation = new double[height * width][height * width];
        for (int k = 0; k < height * width; k++) {
            for (int l = 0; l < height * width; l++) {
                double distance = Math.hypot(k / width - l / width, k % width - l % width);
                correlation[k][l] = Math.pow(rho, distance);
            }
        }
        return correlation;
    }

    /** True when the node's output, through identities only, is one operand of an add. */
    private boolean endsResidualBranch(Node node) {
        String value = node.output();
        while (true) {
            List<Node> readers = consumers.getOrDefault(value, List.of());
            if (readers.size() != 1) {
                return false;
            }
            Node reader = readers.getFirst();
            if (reader.op().equals("add")) {
                return true;
            }
            if (!IDENTITIES.contains(reader.op())) {
                return false;
            }
            value = reader.output();
        }
    }

    private static Moments add(Moments a, Moments b) {
        if (b == null) {
            return a;
        }
        int channels = Math.max(a.channels(), b.channels());
        double[] mean = new double[channels];
        double[] variance = new double[channels];
        for (int c = 0; c < channels; c++) {
            mean[c] = at(a.mean(), c) + at(b.mean(), c);
            variance[c] = at(a.variance(), c) + at(b.variance(), c);
        }
        return new Moments(mean, variance, Math.max(a.correlation(), b.correlation()));
    }

    /** Product of independent values: E[ab] = ma mb, Var = (va + ma^2)(vb + mb^2) - ma^2 mb^2. */
    private static Moments multiply(Moments a, Moments b) {
        if (b == null) {
            return a;
        }
        int channels = Math.max(a.channels(), b.channels());
        double[] mean = new double[channels];
        double[] variance = new double[channels];
        for (int c = 0; c < channels; c++) {
            double ma = at(a.mean(), c);
            double mb = at(b.mean(), c);
            mean[c] = ma * mb;
            variance[c] = (at(a.variance(), c) + ma * ma) * (at(b.variance(), c) + mb * mb) - ma * ma * mb * mb;
        }
        return new Moments(mean, variance, Math.max(a.correlation(), b.correlation()));
    }

    /** Broadcasting over channels: a value with one channel applies to all. */
    private static double at(double[] values, int c) {
        return values[values.length == 1 ? 0 : c];
    }

    /** Midpoint-rule nodes over +-7 standard deviations and their normal-density weights. */
    private static final double[] NODES = new double[112];
    private static final double[] DENSITY = new double[NODES.length];

    static {
        double step = 14.0 / NODES.length;
        double total = 0;
        for (int p = 0; p < NODES.length; p++) {
            NODES[p] = -7 + (p + 0.5) * step;
            DENSITY[p] = Math.exp(-NODES[p] * NODES[p] / 2);
            total += DENSITY[p];
        }
        for (int p = 0; p < NODES.length; p++) {
            DENSITY[p] /= total;
        }
    }

    /** Mean and variance of f(x) for x ~ N(mean, variance), per channel. */
    private static Moments activate(DoubleUnaryOperator f, Moments in) {
        int channels = in.channels();
        double[] mean = new double[channels];
        double[] variance = new double[channels];
        for (int c = 0; c < channels; c++) {
            double sigma = Math.sqrt(in.variance()[c]);
            double sum = 0;
            double sumSquares = 0;
            for (int p = 0; p < NODES.length; p++) {
                double y = f.applyAsDouble(in.mean()[c] + sigma * NODES[p]);
                sum += DENSITY[p] * y;
                sumSquares += DENSITY[p] * y * y;
            }
            mean[c] = sum;
            variance[c] = Math.max(0, sumSquares - sum * sum);
        }
        return in.with(mean, variance);
    }

    /** Fills a not-yet-generated parameter with N(mean, std^2); null when {@code name} is no parameter. */
    private Tensor normal(String name, double mean, double std) {
        return fill(name, (i, random) -> mean + std * random.nextGaussian());
    }

    /** One element's value from its index and the parameter's random stream. */
    private interface Element {
        double value(int index, SplittableRandom random);
    }

    private Tensor fill(String name, Element element) {
        Tensor existing = weights.get(name);
        Shape shape = graph.parameters().get(name);
        if (existing != null || shape == null) {
            return existing;
        }
        SplittableRandom random = random(name);
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) element.value(i, random);
        }
        Tensor tensor = new Tensor(shape, data);
        weights.put(name, tensor);
        return tensor;
    }

    /**
     * One stream per parameter, so its values do not depend on the other parameters. split() gives
     * the stream its own gamma: seeds that differ by a multiple of one gamma would share values.
     */
    private SplittableRandom random(String name) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode()).split();
    }

    /** Inputs feeding one output: every dimension but the first (conv: C/groups * kH * kW; linear: K). */
    private static long fanIn(Shape shape) {
        long fanIn = 1;
        for (int i = 1; i < shape.rank(); i++) {
            fanIn *= shape.dim(i);
        }
        return Math.max(1, fanIn);
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }
}
