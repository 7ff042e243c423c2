package squall.networks;

import java.util.List;
import squall.api.Graph;

/**
 * MobileNet V3 Large and Small (Howard et al. 2019) as torchvision 0.14 builds them: a hardswish
 * stem, the bneck rows of the paper's Tables 1 and 2 (expand, depthwise, optional
 * squeeze-excite with a hardsigmoid gate, linear project), a 1x1 head conv to 6x the last
 * bottleneck width, and a two-layer classifier. BatchNorm epsilon is 1e-3 (the TF reference's).
 */
public final class MobileNetV3 {
    private static final String RE = "relu";
    private static final String HS = "hardswish";

    /** One bneck row: input, kernel, expanded ("exp size"), output, SE, nonlinearity, stride. */
    private record Bneck(int inChannels, int kernelSize, int expandedChannels, int outChannels, boolean squeezeExcite,
                         String activation, int stride) {
    }

    /** The rows of one variant and the width of the classifier's hidden layer. */
    private record Config(String name, List<Bneck> rows, int lastChannels) {
    }

    private static final Config LARGE = new Config("mobilenet_v3_large", List.of(
            //        in  k  exp  out  SE     NL  s
            new Bneck(16, 3, 16, 16, false, RE, 1),
            new Bneck(16, 3, 64, 24, false, RE, 2),
            new Bneck(24, 3, 72, 24, false, RE, 1),
            new Bneck(24, 5, 72, 40, true, RE, 2),
            new Bneck(40, 5, 120, 40, true, RE, 1),
            new Bneck(40, 5, 120, 40, true, RE, 1),
            new Bneck(40, 3, 240, 80, false, HS, 2),
            new Bneck(80, 3, 200, 80, false, HS, 1),
            new Bneck(80, 3, 184, 80, false, HS, 1),
            new Bneck(80, 3, 184, 80, false, HS, 1),
            new Bneck(80, 3, 480, 112, true, HS, 1),
            new Bneck(112, 3, 672, 112, true, HS, 1),
            new Bneck(112, 5, 672, 160, true, HS, 2),
            new Bneck(160, 5, 960, 160, true, HS, 1),
            new Bneck(160, 5, 960, 160, true, HS, 1)), 1280);

    private static final Config SMALL = new Config("mobilenet_v3_small", List.of(
            //        in  k  exp  out  SE     NL  s
            new Bneck(16, 3, 16, 16, true, RE, 2),
            new Bneck(16, 3, 72, 24, false, RE, 2),
            new Bneck(24, 3, 88, 24, false, RE, 1),
            new Bneck(24, 5, 96, 40, true, HS, 2),
            new Bneck(40, 5, 240, 40, true, HS, 1),
            new Bneck(40, 5, 240, 40, true, HS, 1),
            new Bneck(40, 5, 120, 48, true, HS, 1),
            new Bneck(48, 5, 144, 48, true, HS, 1),
            new Bneck(48, 5, 288, 96, true, HS, 2),
            new Bneck(96, 5, 576, 96, true, HS, 1),
            new Bneck(96, 5, 576, 96, true, HS, 1)), 1024);

    public static final double BATCH_NORM_EPSILON = 1e-3;
    private static final double DROPOUT = 0.2;

    private MobileNetV3() {
    }

    public static Graph large(int numClasses) {
        return build(LARGE, numClasses);
    }

    public static Graph small(int numClasses) {
        return build(SMALL, numClasses);
    }

    private static Graph build(Config config, int numClasses) {
        Layers layers = new Layers(config.name(), BATCH_NORM_EPSILON);
        List<Bneck> rows = config.rows();
        String x = layers.convNormActivation("features.0", layers.input(), 3, rows.getFirst().inChannels(), 3, 2, 1,
                HS);
        for (int i = 0; i < rows.size(); i++) {
            x = bneck(layers, "features." + (i + 1), x, rows.get(i));
        }
        int lastConvIn = rows.getLast().outChannels();
        int lastConvOut = 6 * lastConvIn;
        x = layers.convNormActivation("features." + (rows.size() + 1), x, lastConvIn, lastConvOut, 1, 1, 1, HS);
        x = layers.poolAndFlatten(x);
        x = layers.linear("classifier.0", x, lastConvOut, config.lastChannels());
        x = layers.activation(HS, "classifier.1", x);
        x = layers.dropout("dropout", "classifier.2", x, DROPOUT);
        return layers.build(layers.linear("classifier.3", x, config.lastChannels(), numClasses));
    }

    /** Section 5 of the paper; the squeeze width is a quarter of the expanded width, rounded to 8. */
    private static String bneck(Layers layers, String module, String input, Bneck row) {
        String block = module + ".block.";
        int expanded = row.expandedChannels();
        String x = input;
        int k = 0;
        if (expanded != row.inChannels()) {
            x = layers.convNormActivation(block + k++, x, row.inChannels(), expanded, 1, 1, 1, row.activation());
        }
        x = layers.convNormActivation(block + k++, x, expanded, expanded, row.kernelSize(), row.stride(), expanded,
                row.activation());
        if (row.squeezeExcite()) {
            int squeezeChannels = Layers.makeDivisible(expanded / 4, 8);
            x = layers.squeezeExcitation(block + k++, x, expanded, squeezeChannels, RE, "hardsigmoid");
        }
        x = layers.convNormActivation(block + k, x, expanded, row.outChannels(), 1, 1, 1, null);
        boolean residual = row.stride() == 1 && row.inChannels() == row.outChannels();
        return residual ? layers.add(module + ".add", x, input) : x;
    }
}
