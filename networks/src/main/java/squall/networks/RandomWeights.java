package squall.networks;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
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
 * and near-zero biases; BatchNorm gets gamma near 1, beta and running_mean near 0. He init alone
 * does not hold the scale over a hundred SiLU or hardswish layers (they shrink it) nor over long
 * residual stages (each add grows it), so the generator walks the graph once, tracking an estimate
 * of each value's mean square, and gives every BatchNorm a running_var equal to the estimate at its
 * input (about 1 after He-initialised convs, more on residual streams): each BatchNorm then
 * restores unit scale, as it does with trained statistics.
 */
public final class RandomWeights {
    /** He et al.'s gain for ReLU-like activations: weight variance 2 / fanIn. */
    private static final double HE_GAIN = 2.0;
    private static final double NOISE = 0.02;

    private static final Map<String, DoubleUnaryOperator> ACTIVATIONS = Map.of(
            "relu", x -> Math.max(0, x),
            "relu6", x -> Math.min(6, Math.max(0, x)),
            "sigmoid", RandomWeights::sigmoid,
            "silu", x -> x * sigmoid(x),
            "hardswish", x -> x * Math.min(6, Math.max(0, x + 3)) / 6,
            "hardsigmoid", x -> Math.min(1, Math.max(0, x / 6 + 0.5)));

    private final Graph graph;
    private final long seed;
    private final Map<String, Tensor> weights = new LinkedHashMap<>();
    private final Map<String, Double> meanSquare = new HashMap<>();

    private RandomWeights(Graph graph, long seed) {
        this.graph = graph;
        this.seed = seed;
    }

    /** A value for every parameter of {@code graph}; the same seed gives the same values. */
    public static Map<String, Tensor> generate(Graph graph, long seed) {
        RandomWeights generator = new RandomWeights(graph, seed);
        // Inputs are normalised images: unit variance.
        graph.inputs().keySet().forEach(input -> generator.meanSquare.put(input, 1.0));
        for (Node node : graph.nodes()) {
            double out = generator.visit(node);
            node.outputs().forEach(output -> generator.meanSquare.put(output, out));
        }
        // Parameters no known op consumed still need values: scaled by their fan-in.
        graph.parameters().forEach((name, shape) -> generator.normal(name, 0, Math.sqrt(1.0 / fanIn(shape))));
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        graph.parameters().keySet().forEach(name -> ordered.put(name, generator.weights.get(name)));
        return ordered;
    }

    /** Generates the parameters {@code node} reads and returns the estimated mean square of its output. */
    private double visit(Node node) {
        double in = meanSquare(node.input(0));
        return switch (node.op()) {
            case "conv2d", "linear" -> {
                Shape weight = graph.parameters().get(node.input(1));
                normal(node.input(1), 0, weight == null ? 0 : Math.sqrt(HE_GAIN / fanIn(weight)));
                normal(node.input(2), 0, NOISE);
                double out = activate(node.attributes().getString("activation", "none"), HE_GAIN * in);
                yield out + meanSquare(node.input(3));
            }
            case "batch_norm" -> batchNorm(node, in);
            case "hardsigmoid" -> activate(node, in);
            case "add" -> in + meanSquare(node.input(1));
            case "mul" -> in * meanSquare(node.input(1));
            default -> ACTIVATIONS.containsKey(node.op()) ? activate(node.op(), in) : in;
        };
    }

    private double batchNorm(Node node, double in) {
        Tensor gamma = normal(node.input(1), 1, NOISE);
        Tensor beta = normal(node.input(2), 0, NOISE);
        normal(node.input(3), 0, NOISE);
        Tensor runningVar = logNormal(node.input(4), in);
        if (gamma == null || beta == null || runningVar == null) {
            return 1;
        }
        double sum = 0;
        int channels = gamma.data().length;
        for (int c = 0; c < channels; c++) {
            double g = gamma.data()[c];
            double b = beta.data()[c];
            sum += g * g * in / runningVar.data()[c] + b * b;
        }
        return sum / channels;
    }

    private double activate(Node node, double in) {
        Attributes a = node.attributes();
        double alpha = a.getFloat("alpha", 1f / 6);
        double beta = a.getFloat("beta", 0.5f);
        return meanSquareAfter(x -> Math.min(1, Math.max(0, alpha * x + beta)), in);
    }

    private static double activate(String activation, double in) {
        DoubleUnaryOperator f = ACTIVATIONS.get(activation);
        return f == null ? in : meanSquareAfter(f, in);
    }

    /** E[f(x)^2] for x ~ N(0, meanSquare), by the midpoint rule over +-8 standard deviations. */
    private static double meanSquareAfter(DoubleUnaryOperator f, double meanSquare) {
        double sigma = Math.sqrt(meanSquare);
        double step = 0.01;
        double sum = 0;
        for (double z = -8 + step / 2; z < 8; z += step) {
            double y = f.applyAsDouble(sigma * z);
            sum += y * y * Math.exp(-z * z / 2);
        }
        return sum * step / Math.sqrt(2 * Math.PI);
    }

    private double meanSquare(String value) {
        return value.isEmpty() ? 0 : meanSquare.getOrDefault(value, 1.0);
    }

    /** Fills a not-yet-generated parameter with N(mean, std^2); null when {@code name} is no parameter. */
    private Tensor normal(String name, double mean, double std) {
        Tensor existing = weights.get(name);
        Shape shape = graph.parameters().get(name);
        if (existing != null || shape == null) {
            return existing;
        }
        SplittableRandom random = random(name);
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (mean + std * random.nextGaussian());
        }
        Tensor tensor = new Tensor(shape, data);
        weights.put(name, tensor);
        return tensor;
    }

    /** Positive values around {@code median}, a few percent apart, for running variances. */
    private Tensor logNormal(String name, double median) {
        Tensor existing = weights.get(name);
        Shape shape = graph.parameters().get(name);
        if (existing != null || shape == null) {
            return existing;
        }
        SplittableRandom random = random(name);
        float[] data = new float[shape.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (median * Math.exp(NOISE * random.nextGaussian()));
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
