package squall.ops;

import java.util.List;
import squall.api.Node;

/**
 * The activation functions as int codes, so a kernel can take one as a scalar and switch on it
 * (TornadoVM kernels take no objects). The codes are the only definition; the fused
 * {@code activation} attribute of conv2d and linear names one of the fusable ones.
 */
public final class Activation {
    public static final int NONE = 0;
    public static final int RELU = 1;
    public static final int RELU6 = 2;
    public static final int SIGMOID = 3;
    public static final int SILU = 4;
    public static final int HARDSIGMOID = 5;
    public static final int HARDSWISH = 6;
    /** Not fusable: clip's bounds are node attributes. */
    public static final int CLIP = 7;

    /** torch.nn.Hardsigmoid's slope and offset, used when hardsigmoid is fused. */
    public static final float HARDSIGMOID_ALPHA = 1f / 6f;
    public static final float HARDSIGMOID_BETA = 0.5f;

    /** Names of the fusable codes, indexed by code. */
    private static final List<String> FUSABLE = List.of("none", "relu", "relu6", "sigmoid", "silu", "hardsigmoid",
            "hardswish");

    private Activation() {
    }

    /**
     * The activation {@code code} of {@code x}. {@code p} and {@code q} are hardsigmoid's alpha and
     * beta, or clip's min and max; other codes ignore them.
     */
    public static float apply(int code, float x, float p, float q) {
        switch (code) {
            case RELU:
                return Math.max(x, 0f);
            case RELU6:
                return Math.min(Math.max(x, 0f), 6f);
            case SIGMOID:
                return 1f / (1f + (float) Math.exp(-x));
            case SILU:
                return x / (1f + (float) Math.exp(-x));
            case HARDSIGMOID:
                return Math.max(0f, Math.min(1f, p * x + q));
            case HARDSWISH:
                return x * Math.min(Math.max(x + 3f, 0f), 6f) / 6f;
            case CLIP:
                return Math.min(Math.max(x, p), q);
            default:
                return x;
        }
    }

    /** A fused activation (hardsigmoid with torch's constants). */
    public static float fused(int code, float x) {
        return apply(code, x, HARDSIGMOID_ALPHA, HARDSIGMOID_BETA);
    }

    /** The code of a node's {@code activation} attribute (default {@code none}). */
    static int fusedCode(Node node) {
        return fusedCode(node, "activation");
    }

    /** The code of a node's activation attribute {@code attribute} (default {@code none}). */
    static int fusedCode(Node node, String attribute) {
        String name = node.attributes().getString(attribute, "none");
        int code = FUSABLE.indexOf(name);
        if (code < 0) {
            throw Check.bad(node, "attribute '" + attribute + "' is \"" + name + "\"; expected one of " + FUSABLE);
        }
        return code;
    }

    /** The id of a fusable activation code, for messages and passes. */
    public static String name(int code) {
        return FUSABLE.get(code);
    }
}
