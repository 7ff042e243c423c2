package squall.networks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import squall.api.Graph;
import squall.api.Shape;
import squall.api.SquallException;

/** The registry of built-in networks, by torchvision's model names. */
public final class Networks {
    /** How to build one network; {@code widthMultiplier} is ignored unless {@code hasWidth}. */
    private interface Builder {
        Graph build(double widthMultiplier, int numClasses);
    }

    private record Entry(NetworkInfo info, boolean hasWidth, Builder builder) {
    }

    private static final String TORCHVISION = "https://download.pytorch.org/models/";
    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        // name, native resolution, then torchvision 0.14's IMAGENET1K_V1 transforms: resize, crop,
        // interpolation (ImageClassification's defaults: resize 256, bilinear), and checkpoint.
        // V1 has no torchvision weights: it gets ImageClassification's defaults.
        add("mobilenet_v1", 224, 256, 224, "bilinear", null, true, MobileNetV1::build);
        add("mobilenet_v2", 224, 256, 224, "bilinear", "mobilenet_v2-b0353104.pth", true, MobileNetV2::build);
        add("mobilenet_v3_large", 224, 256, 224, "bilinear", "mobilenet_v3_large-8738ca79.pth", false,
                (width, classes) -> MobileNetV3.large(classes));
        add("mobilenet_v3_small", 224, 256, 224, "bilinear", "mobilenet_v3_small-047dcff4.pth", false,
                (width, classes) -> MobileNetV3.small(classes));
        addEfficientNet("efficientnet_b0", 224, 256, 224, "bicubic", "efficientnet_b0_rwightman-3dd342df.pth");
        addEfficientNet("efficientnet_b1", 240, 256, 240, "bicubic", "efficientnet_b1_rwightman-533bc792.pth");
        // torchvision evaluates its B2 weights at 288, above the paper's 260.
        addEfficientNet("efficientnet_b2", 260, 288, 288, "bicubic", "efficientnet_b2_rwightman-bcdf34b7.pth");
        addEfficientNet("efficientnet_b3", 300, 320, 300, "bicubic", "efficientnet_b3_rwightman-cf984f9c.pth");
        addEfficientNet("efficientnet_b4", 380, 384, 380, "bicubic", "efficientnet_b4_rwightman-7eb33cd5.pth");
        addEfficientNet("efficientnet_b5", 456, 456, 456, "bicubic", "efficientnet_b5_lukemelas-b6417697.pth");
        addEfficientNet("efficientnet_b6", 528, 528, 528, "bicubic", "efficientnet_b6_lukemelas-c76e70fd.pth");
        addEfficientNet("efficientnet_b7", 600, 600, 600, "bicubic", "efficientnet_b7_lukemelas-dcc49843.pth");
        addEfficientNet("efficientnet_v2_s", 384, 384, 384, "bilinear", "efficientnet_v2_s-dd5fe13b.pth");
        addEfficientNet("efficientnet_v2_m", 480, 480, 480, "bilinear", "efficientnet_v2_m-dc08266a.pth");
        addEfficientNet("efficientnet_v2_l", 480, 480, 480, "bicubic", "efficientnet_v2_l-59c71312.pth");
    }

    private static void add(String name, int resolution, int resizeSize, int cropSize, String interpolation,
                            String checkpoint, boolean hasWidth, Builder builder) {
        // The V2-L weights were ported from TF with inputs scaled to [-1, 1], not ImageNet statistics.
        boolean tfInputs = name.equals("efficientnet_v2_l");
        float[] mean = tfInputs ? new float[] {0.5f, 0.5f, 0.5f} : NetworkInfo.IMAGENET_MEAN;
        float[] std = tfInputs ? new float[] {0.5f, 0.5f, 0.5f} : NetworkInfo.IMAGENET_STD;
        double epsilon = switch (name) {
            case "mobilenet_v1" -> MobileNetV1.BATCH_NORM_EPSILON;
            case "mobilenet_v2" -> MobileNetV2.BATCH_NORM_EPSILON;
            case "mobilenet_v3_large", "mobilenet_v3_small" -> MobileNetV3.BATCH_NORM_EPSILON;
            default -> EfficientNet.batchNormEpsilon(name);
        };
        NetworkInfo info = new NetworkInfo(name, resolution, resizeSize, cropSize, interpolation, mean, std, epsilon,
                Optional.ofNullable(checkpoint).map(file -> TORCHVISION + file));
        ENTRIES.put(name, new Entry(info, hasWidth, builder));
    }

    private static void addEfficientNet(String name, int resolution, int resizeSize, int cropSize,
                                        String interpolation, String checkpoint) {
        add(name, resolution, resizeSize, cropSize, interpolation, checkpoint, false,
                (width, classes) -> EfficientNet.build(name, classes));
    }

    private Networks() {
    }

    /** The 15 network names, MobileNets first. */
    public static List<String> names() {
        return List.copyOf(ENTRIES.keySet());
    }

    /** The network with its ImageNet head (1000 classes) and width 1.0. */
    public static Graph build(String name) {
        return build(name, 1.0, 1000);
    }

    /** {@code widthMultiplier} applies to mobilenet_v1 (alpha) and mobilenet_v2; others need 1.0. */
    public static Graph build(String name, double widthMultiplier, int numClasses) {
        Entry entry = entry(name);
        if (!entry.hasWidth() && widthMultiplier != 1.0) {
            throw new SquallException("network '" + name + "' has no width multiplier (got " + widthMultiplier
                    + "); only mobilenet_v1 and mobilenet_v2 take one: pass 1.0");
        }
        if (numClasses < 1) {
            throw new SquallException("network '" + name + "': numClasses must be at least 1, got " + numClasses);
        }
        return entry.builder().build(widthMultiplier, numClasses);
    }

    public static NetworkInfo info(String name) {
        return entry(name).info();
    }

    /**
     * The parameter count torchvision reports ({@code sum(p.numel() for p in model.parameters())}):
     * BatchNorm's running_mean and running_var are buffers, not parameters, so they are left out.
     */
    public static long trainableParameterCount(Graph graph) {
        long count = 0;
        for (Map.Entry<String, Shape> parameter : graph.parameters().entrySet()) {
            String name = parameter.getKey();
            if (!name.endsWith(".running_mean") && !name.endsWith(".running_var")) {
                count += parameter.getValue().elementCount();
            }
        }
        return count;
    }

    private static Entry entry(String name) {
        Entry entry = ENTRIES.get(name);
        if (entry == null) {
            throw new SquallException("unknown network '" + name + "'; known networks: " + String.join(", ", names()));
        }
        return entry;
    }
}
