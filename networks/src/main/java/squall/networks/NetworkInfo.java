package squall.networks;

import java.util.Optional;

/**
 * What a caller needs besides the graph: the resolution the network was designed for, the
 * evaluation preprocessing of torchvision 0.14's IMAGENET1K_V1 weights ({@code ImageClassification}:
 * resize the short side to {@code resizeSize} with {@code interpolation}, center-crop
 * {@code cropSize}, scale to [0, 1], subtract {@code mean}, divide by {@code std}, per RGB
 * channel), the BatchNorm epsilon, and where torchvision publishes those weights (never downloaded
 * by Squall; empty for MobileNet V1, which torchvision does not ship).
 *
 * @param interpolation "bilinear" or "bicubic"
 */
public record NetworkInfo(String name, int resolution, int resizeSize, int cropSize, String interpolation,
                          float[] mean, float[] std, double batchNormEpsilon, Optional<String> checkpointUrl) {
    public static final float[] IMAGENET_MEAN = {0.485f, 0.456f, 0.406f};
    public static final float[] IMAGENET_STD = {0.229f, 0.224f, 0.225f};

    public NetworkInfo {
        mean = mean.clone();
        std = std.clone();
    }

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] std() {
        return std.clone();
    }

    /** The checkpoint's file name, e.g. {@code mobilenet_v2-b0353104.pth}. */
    public Optional<String> checkpointFile() {
        return checkpointUrl.map(url -> url.substring(url.lastIndexOf('/') + 1));
    }
}
