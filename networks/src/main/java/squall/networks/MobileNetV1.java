package squall.networks;

import java.util.List;
import squall.api.Graph;
import squall.api.SquallException;

/**
 * MobileNet V1 (Howard et al. 2017): a 3x3 stem and 13 depthwise-separable blocks. torchvision
 * has no V1; names follow {@code networks/src/test/python/mobilenet_v1.py}, the reference
 * definition, whose Sequential indices are 0 dw conv, 1 BN, 2 ReLU, 3 pw conv, 4 BN, 5 ReLU.
 */
public final class MobileNetV1 {
    /** One row of the paper's Table 1 after the stem: a depthwise-separable block. */
    private record Block(int outChannels, int stride) {
    }

    private static final int STEM_CHANNELS = 32;
    private static final List<Block> BLOCKS = List.of(
            new Block(64, 1),
            new Block(128, 2), new Block(128, 1),
            new Block(256, 2), new Block(256, 1),
            new Block(512, 2), new Block(512, 1), new Block(512, 1), new Block(512, 1), new Block(512, 1),
            new Block(512, 1),
            new Block(1024, 2), new Block(1024, 1));

    /** PyTorch's BatchNorm2d default; the reference definition does not change it. */
    public static final double BATCH_NORM_EPSILON = 1e-5;

    private MobileNetV1() {
    }

    /** {@code alpha} is the paper's width multiplier: channels are {@code int(c * alpha)}. */
    public static Graph build(double alpha, int numClasses) {
        if (!(alpha > 0) || (int) (STEM_CHANNELS * alpha) < 1) {
            throw new SquallException("mobilenet_v1: width multiplier alpha=" + alpha
                    + " leaves no channels in the stem; use a positive alpha of at least 1/32 (0.25, 0.5, 0.75, 1.0)");
        }
        Layers layers = new Layers("mobilenet_v1", BATCH_NORM_EPSILON);
        int channels = (int) (STEM_CHANNELS * alpha);
        String x = layers.convNormActivation("features.0", layers.input(), 3, channels, 3, 2, 1, "relu");
        for (int i = 0; i < BLOCKS.size(); i++) {
            Block block = BLOCKS.get(i);
            int outChannels = (int) (block.outChannels() * alpha);
            x = depthwiseSeparable(layers, "features." + (i + 1), x, channels, outChannels, block.stride());
            channels = outChannels;
        }
        x = layers.poolAndFlatten(x);
        return layers.build(layers.linear("classifier", x, channels, numClasses));
    }

    /** A 3x3 depthwise conv filters each channel; a 1x1 pointwise conv mixes them. */
    private static String depthwiseSeparable(Layers layers, String module, String x, int inChannels,
                                             int outChannels, int stride) {
        x = layers.conv2d(module + ".0", x, inChannels, inChannels, 3, stride, inChannels, false);
        x = layers.batchNorm(module + ".1", x, inChannels);
        x = layers.activation("relu", module + ".2", x);
        x = layers.conv2d(module + ".3", x, inChannels, outChannels, 1, 1, 1, false);
        x = layers.batchNorm(module + ".4", x, outChannels);
        return layers.activation("relu", module + ".5", x);
    }
}
