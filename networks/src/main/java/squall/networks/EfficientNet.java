package squall.networks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import squall.api.Graph;
import squall.api.SquallException;

/**
 * EfficientNet B0-B7 (Tan and Le 2019) and EfficientNetV2 S/M/L (Tan and Le 2021) as torchvision
 * 0.14 builds them: a SiLU stem, stages of MBConv blocks (1x1 expand, depthwise, squeeze-excite
 * with a sigmoid gate, linear 1x1 project) or, early in V2, Fused-MBConv blocks (one kxk conv in
 * place of expand + depthwise, no SE), then a 1x1 head conv and a linear classifier. Module names:
 * {@code features.<stage>.<block>.block.<layer>}.
 */
public final class EfficientNet {
    /** One stage row of B0's Table 1 or V2's Table 4, before compound scaling. */
    private record Stage(boolean fused, int expandRatio, int kernelSize, int stride, int inChannels, int outChannels,
                         int repeats) {
    }

    private static Stage mbConv(int expandRatio, int kernelSize, int stride, int inChannels, int outChannels,
                                int repeats) {
        return new Stage(false, expandRatio, kernelSize, stride, inChannels, outChannels, repeats);
    }

    private static Stage fusedMbConv(int expandRatio, int kernelSize, int stride, int inChannels, int outChannels,
                                     int repeats) {
        return new Stage(true, expandRatio, kernelSize, stride, inChannels, outChannels, repeats);
    }

    private static final List<Stage> B0 = List.of(
            //     t  k  s   in  out  n
            mbConv(1, 3, 1, 32, 16, 1),
            mbConv(6, 3, 2, 16, 24, 2),
            mbConv(6, 5, 2, 24, 40, 2),
            mbConv(6, 3, 2, 40, 80, 3),
            mbConv(6, 5, 1, 80, 112, 3),
            mbConv(6, 5, 2, 112, 192, 4),
            mbConv(6, 3, 1, 192, 320, 1));

    private static final List<Stage> V2_S = List.of(
            //          t  k  s   in  out  n
            fusedMbConv(1, 3, 1, 24, 24, 2),
            fusedMbConv(4, 3, 2, 24, 48, 4),
            fusedMbConv(4, 3, 2, 48, 64, 4),
            mbConv(4, 3, 2, 64, 128, 6),
            mbConv(6, 3, 1, 128, 160, 9),
            mbConv(6, 3, 2, 160, 256, 15));

    private static final List<Stage> V2_M = List.of(
            fusedMbConv(1, 3, 1, 24, 24, 3),
            fusedMbConv(4, 3, 2, 24, 48, 5),
            fusedMbConv(4, 3, 2, 48, 80, 5),
            mbConv(4, 3, 2, 80, 160, 7),
            mbConv(6, 3, 1, 160, 176, 14),
            mbConv(6, 3, 2, 176, 304, 18),
            mbConv(6, 3, 1, 304, 512, 5));

    private static final List<Stage> V2_L = List.of(
            fusedMbConv(1, 3, 1, 32, 32, 4),
            fusedMbConv(4, 3, 2, 32, 64, 7),
            fusedMbConv(4, 3, 2, 64, 96, 7),
            mbConv(4, 3, 2, 96, 192, 10),
            mbConv(6, 3, 1, 192, 224, 19),
            mbConv(6, 3, 2, 224, 384, 25),
            mbConv(6, 3, 1, 384, 640, 7));

    /**
     * A model: its stage table, the compound-scaling coefficients (width scales channels, depth
     * scales repeats), the head width (0: 4x the last stage), BatchNorm epsilon and dropout.
     */
    private record Variant(List<Stage> stages, double width, double depth, int headChannels, double batchNormEpsilon,
                           double dropout) {
    }

    // torchvision 0.14 uses PyTorch's BN epsilon for B0-B4 (ported from rwightman's weights) and
    // TF's 1e-3 for B5-B7 (ported from lukemelas') and V2.
    private static final Map<String, Variant> VARIANTS = new LinkedHashMap<>();

    static {
        //                                               width depth head  eps   dropout
        VARIANTS.put("efficientnet_b0", new Variant(B0, 1.0, 1.0, 0, 1e-5, 0.2));
        VARIANTS.put("efficientnet_b1", new Variant(B0, 1.0, 1.1, 0, 1e-5, 0.2));
        VARIANTS.put("efficientnet_b2", new Variant(B0, 1.1, 1.2, 0, 1e-5, 0.3));
        VARIANTS.put("efficientnet_b3", new Variant(B0, 1.2, 1.4, 0, 1e-5, 0.3));
        VARIANTS.put("efficientnet_b4", new Variant(B0, 1.4, 1.8, 0, 1e-5, 0.4));
        VARIANTS.put("efficientnet_b5", new Variant(B0, 1.6, 2.2, 0, 1e-3, 0.4));
        VARIANTS.put("efficientnet_b6", new Variant(B0, 1.8, 2.6, 0, 1e-3, 0.5));
        VARIANTS.put("efficientnet_b7", new Variant(B0, 2.0, 3.1, 0, 1e-3, 0.5));
        VARIANTS.put("efficientnet_v2_s", new Variant(V2_S, 1.0, 1.0, 1280, 1e-3, 0.2));
        VARIANTS.put("efficientnet_v2_m", new Variant(V2_M, 1.0, 1.0, 1280, 1e-3, 0.3));
        VARIANTS.put("efficientnet_v2_l", new Variant(V2_L, 1.0, 1.0, 1280, 1e-3, 0.4));
    }

    /** The final block drops its residual branch with this probability in training (scaled linearly by depth). */
    private static final double STOCHASTIC_DEPTH = 0.2;

    private EfficientNet() {
    }

    /** efficientnet_b0 .. efficientnet_b7, efficientnet_v2_s, efficientnet_v2_m, efficientnet_v2_l. */
    public static List<String> names() {
        return List.copyOf(VARIANTS.keySet());
    }

    public static double batchNormEpsilon(String name) {
        return variant(name).batchNormEpsilon();
    }

    public static Graph build(String name, int numClasses) {
        Variant variant = variant(name);
        List<Stage> stages = variant.stages().stream().map(s -> scale(s, variant)).toList();
        Layers layers = new Layers(name, variant.batchNormEpsilon());
        int channels = stages.getFirst().inChannels();
        String x = layers.convNormActivation("features.0", layers.input(), 3, channels, 3, 2, 1, "silu");
        int totalBlocks = stages.stream().mapToInt(Stage::repeats).sum();
        int blockId = 0;
        for (int s = 0; s < stages.size(); s++) {
            Stage stage = stages.get(s);
            for (int i = 0; i < stage.repeats(); i++) {
                int stride = i == 0 ? stage.stride() : 1;
                double dropProbability = STOCHASTIC_DEPTH * blockId++ / totalBlocks;
                String module = "features." + (s + 1) + "." + i;
                x = stage.fused()
                        ? fusedMbConv(layers, module, x, channels, stage.outChannels(), stage.expandRatio(),
                                stage.kernelSize(), stride, dropProbability)
                        : mbConv(layers, module, x, channels, stage.outChannels(), stage.expandRatio(),
                                stage.kernelSize(), stride, dropProbability);
                channels = stage.outChannels();
            }
        }
        int headChannels = variant.headChannels() > 0 ? variant.headChannels() : 4 * channels;
        x = layers.convNormActivation("features." + (stages.size() + 1), x, channels, headChannels, 1, 1, 1, "silu");
        x = layers.poolAndFlatten(x);
        x = layers.dropout("dropout", "classifier.0", x, variant.dropout());
        return layers.build(layers.linear("classifier.1", x, headChannels, numClasses));
    }

    private static Variant variant(String name) {
        Variant variant = VARIANTS.get(name);
        if (variant == null) {
            throw new SquallException("unknown EfficientNet '" + name + "'; known: " + String.join(", ", names()));
        }
        return variant;
    }

    /** Compound scaling: channels times width rounded to a multiple of 8, repeats times depth rounded up. */
    private static Stage scale(Stage stage, Variant variant) {
        return new Stage(stage.fused(), stage.expandRatio(), stage.kernelSize(), stage.stride(),
                Layers.makeDivisible(stage.inChannels() * variant.width(), 8),
                Layers.makeDivisible(stage.outChannels() * variant.width(), 8),
                (int) Math.ceil(stage.repeats() * variant.depth()));
    }

    /** Expand (skipped when t = 1), depthwise, squeeze-excite to a quarter of the input width, project. */
    private static String mbConv(Layers layers, String module, String input, int inChannels, int outChannels,
                                 int expandRatio, int kernelSize, int stride, double dropProbability) {
        String block = module + ".block.";
        int expanded = Layers.makeDivisible(inChannels * (double) expandRatio, 8);
        String x = input;
        int k = 0;
        if (expanded != inChannels) {
            x = layers.convNormActivation(block + k++, x, inChannels, expanded, 1, 1, 1, "silu");
        }
        x = layers.convNormActivation(block + k++, x, expanded, expanded, kernelSize, stride, expanded, "silu");
        x = layers.squeezeExcitation(block + k++, x, expanded, Math.max(1, inChannels / 4), "silu", "sigmoid");
        x = layers.convNormActivation(block + k, x, expanded, outChannels, 1, 1, 1, null);
        return residual(layers, module, x, input, inChannels, outChannels, stride, dropProbability);
    }

    /** One kxk conv does the expansion and the spatial filtering; a 1x1 projects unless t = 1. */
    private static String fusedMbConv(Layers layers, String module, String input, int inChannels, int outChannels,
                                      int expandRatio, int kernelSize, int stride, double dropProbability) {
        String block = module + ".block.";
        int expanded = Layers.makeDivisible(inChannels * (double) expandRatio, 8);
        String x;
        if (expanded != inChannels) {
            x = layers.convNormActivation(block + 0, input, inChannels, expanded, kernelSize, stride, 1, "silu");
            x = layers.convNormActivation(block + 1, x, expanded, outChannels, 1, 1, 1, null);
        } else {
            x = layers.convNormActivation(block + 0, input, inChannels, outChannels, kernelSize, stride, 1, "silu");
        }
        return residual(layers, module, x, input, inChannels, outChannels, stride, dropProbability);
    }

    private static String residual(Layers layers, String module, String x, String input, int inChannels,
                                   int outChannels, int stride, double dropProbability) {
        if (stride != 1 || inChannels != outChannels) {
            return x;
        }
        x = layers.dropout("stochastic_depth", module + ".stochastic_depth", x, dropProbability);
        return layers.add(module + ".add", x, input);
    }
}
