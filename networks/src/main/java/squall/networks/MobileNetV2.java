package squall.networks;

import java.util.List;
import squall.api.Graph;
import squall.api.SquallException;

/**
 * MobileNet V2 (Sandler et al. 2018) as torchvision 0.14 builds it: a 3x3 stem, inverted
 * residual bottlenecks (1x1 expand, 3x3 depthwise, linear 1x1 project) and a 1x1 head conv, all
 * with ReLU6. Module names: {@code features.i.conv.k} inside the blocks.
 */
public final class MobileNetV2 {
    /** One row of the paper's Table 2: expansion t, output channels c, repeats n, first stride s. */
    private record Stage(int expandRatio, int outChannels, int repeats, int stride) {
    }

    private static final int STEM_CHANNELS = 32;
    private static final int LAST_CHANNELS = 1280;
    private static final List<Stage> STAGES = List.of(
            //        t    c   n  s
            new Stage(1, 16, 1, 1),
            new Stage(6, 24, 2, 2),
            new Stage(6, 32, 3, 2),
            new Stage(6, 64, 4, 2),
            new Stage(6, 96, 3, 1),
            new Stage(6, 160, 3, 2),
            new Stage(6, 320, 1, 1));

    public static final double BATCH_NORM_EPSILON = 1e-5;
    private static final double DROPOUT = 0.2;

    private MobileNetV2() {
    }

    /** Channels are {@code widthMultiplier * c} rounded to a multiple of 8; the head never narrows. */
    public static Graph build(double widthMultiplier, int numClasses) {
        if (!(widthMultiplier > 0)) {
            throw new SquallException("mobilenet_v2: width multiplier " + widthMultiplier
                    + " must be positive (torchvision uses 0.5, 0.75, 1.0, 1.4)");
        }
        Layers layers = new Layers("mobilenet_v2", BATCH_NORM_EPSILON);
        int channels = Layers.makeDivisible(STEM_CHANNELS * widthMultiplier, 8);
        int lastChannels = Layers.makeDivisible(LAST_CHANNELS * Math.max(1.0, widthMultiplier), 8);
        String x = layers.convNormActivation("features.0", layers.input(), 3, channels, 3, 2, 1, "relu6");
        int index = 1;
        for (Stage stage : STAGES) {
            int outChannels = Layers.makeDivisible(stage.outChannels() * widthMultiplier, 8);
            for (int i = 0; i < stage.repeats(); i++) {
                int stride = i == 0 ? stage.stride() : 1;
                x = invertedResidual(layers, "features." + index++, x, channels, outChannels, stride,
                        stage.expandRatio());
                channels = outChannels;
            }
        }
        x = layers.convNormActivation("features." + index, x, channels, lastChannels, 1, 1, 1, "relu6");
        x = layers.poolAndFlatten(x);
        x = layers.dropout("dropout", "classifier.0", x, DROPOUT);
        return layers.build(layers.linear("classifier.1", x, lastChannels, numClasses));
    }

    /** Expand (skipped when t = 1), depthwise, then a linear projection: no ReLU after it. */
    private static String invertedResidual(Layers layers, String module, String input, int inChannels,
                                           int outChannels, int stride, int expandRatio) {
        int hiddenChannels = inChannels * expandRatio;
        String x = input;
        int k = 0;
        if (expandRatio != 1) {
            x = layers.convNormActivation(module + ".conv." + k++, x, inChannels, hiddenChannels, 1, 1, 1, "relu6");
        }
        x = layers.convNormActivation(module + ".conv." + k++, x, hiddenChannels, hiddenChannels, 3, stride,
                hiddenChannels, "relu6");
        x = layers.conv2d(module + ".conv." + k++, x, hiddenChannels, outChannels, 1, 1, 1, false);
        x = layers.batchNorm(module + ".conv." + k, x, outChannels);
        return stride == 1 && inChannels == outChannels ? layers.add(module + ".add", x, input) : x;
    }
}
