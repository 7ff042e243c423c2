package squall.networks;

import squall.api.Attributes;
import squall.api.Graph;
import squall.api.GraphBuilder;
import squall.api.Shape;

/**
 * torchvision's building blocks ({@code Conv2dNormActivation}, {@code SqueezeExcitation}, the
 * pooled classifier head) as graph nodes. Every node and parameter is named after the torchvision
 * module it stands for, so parameter names are the {@code state_dict} keys and a node name says
 * where in the PyTorch model it comes from.
 */
final class Layers {
    private final GraphBuilder graph;
    private final float batchNormEpsilon;

    Layers(String networkName, double batchNormEpsilon) {
        this.graph = Graph.builder(networkName);
        this.batchNormEpsilon = (float) batchNormEpsilon;
    }

    /** Any batch size and any resolution: the networks end in a global pool. */
    String input() {
        return graph.input("input", Shape.of(-1, 3, -1, -1));
    }

    /** nn.Conv2d with torchvision's "same" padding for odd kernels, (kernelSize - 1) / 2. */
    String conv2d(String module, String x, int inChannels, int outChannels, int kernelSize, int stride, int groups,
                  boolean bias) {
        String weight = graph.parameter(module + ".weight", outChannels, inChannels / groups, kernelSize, kernelSize);
        String biasName = bias ? graph.parameter(module + ".bias", outChannels) : "";
        Attributes attributes = Attributes.of("stride", stride, "padding", (kernelSize - 1) / 2, "groups", groups);
        return bias ? graph.op("conv2d", module, attributes, x, weight, biasName)
                : graph.op("conv2d", module, attributes, x, weight);
    }

    String batchNorm(String module, String x, int channels) {
        return graph.op("batch_norm", module, Attributes.of("epsilon", batchNormEpsilon), x,
                graph.parameter(module + ".weight", channels),
                graph.parameter(module + ".bias", channels),
                graph.parameter(module + ".running_mean", channels),
                graph.parameter(module + ".running_var", channels));
    }

    /** An activation node ({@code relu}, {@code relu6}, {@code hardswish}, {@code silu}, ...). */
    String activation(String op, String module, String x) {
        return graph.op(op, module, Attributes.EMPTY, x);
    }

    /**
     * torchvision's Conv2dNormActivation: {@code <module>.0} conv without bias, {@code <module>.1}
     * BatchNorm, {@code <module>.2} the activation (none when {@code activation} is null).
     */
    String convNormActivation(String module, String x, int inChannels, int outChannels, int kernelSize, int stride,
                              int groups, String activation) {
        x = conv2d(module + ".0", x, inChannels, outChannels, kernelSize, stride, groups, false);
        x = batchNorm(module + ".1", x, outChannels);
        return activation == null ? x : activation(activation, module + ".2", x);
    }

    /**
     * Squeeze-and-excitation (Hu et al. 2018) as torchvision's SqueezeExcitation: pool, 1x1 conv
     * {@code fc1}, activation, 1x1 conv {@code fc2}, scale activation, and the channel-wise product.
     */
    String squeezeExcitation(String module, String x, int channels, int squeezeChannels, String activation,
                             String scaleActivation) {
        String scale = graph.op("global_avg_pool", module + ".avgpool", Attributes.EMPTY, x);
        scale = conv2d(module + ".fc1", scale, channels, squeezeChannels, 1, 1, 1, true);
        scale = activation(activation, module + ".activation", scale);
        scale = conv2d(module + ".fc2", scale, squeezeChannels, channels, 1, 1, 1, true);
        scale = activation(scaleActivation, module + ".scale_activation", scale);
        return graph.op("mul", module + ".mul", Attributes.EMPTY, scale, x);
    }

    /** The residual connection of an inverted-residual block: {@code block(x) + x}. */
    String add(String name, String blockOutput, String shortcut) {
        return graph.op("add", name, Attributes.EMPTY, blockOutput, shortcut);
    }

    /** Dropout or stochastic depth: identity at inference, kept so the graph mirrors the model. */
    String dropout(String op, String module, String x, double p) {
        return graph.op(op, module, Attributes.of("p", p), x);
    }

    /** Global average pooling then flatten to [N, C], as every classifier here starts. */
    String poolAndFlatten(String x) {
        x = graph.op("global_avg_pool", "avgpool", Attributes.EMPTY, x);
        return graph.op("flatten", "flatten", Attributes.of("axis", 1), x);
    }

    String linear(String module, String x, int inFeatures, int outFeatures) {
        return graph.op("linear", module, Attributes.EMPTY, x,
                graph.parameter(module + ".weight", outFeatures, inFeatures),
                graph.parameter(module + ".bias", outFeatures));
    }

    Graph build(String logits) {
        return graph.output(logits).build();
    }

    /**
     * torchvision's {@code _make_divisible} (from the TensorFlow MobileNet code): round
     * {@code value} to the nearest multiple of {@code divisor}, at least {@code divisor}, and never
     * more than 10% below {@code value}.
     */
    static int makeDivisible(double value, int divisor) {
        int rounded = Math.max(divisor, (int) (value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }
}
