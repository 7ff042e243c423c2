package squall.ops;

import squall.api.Attributes;
import squall.api.Node;

/**
 * The sliding window of a convolution or pooling: kernel size, stride, padding (top, left, bottom,
 * right) and dilation. Kernels take it as {@link #asArray()}, in the order of the record's fields.
 */
public record Window(int kernelH, int kernelW, int strideH, int strideW, int padTop, int padLeft, int padBottom,
                     int padRight, int dilationH, int dilationW) {

    /** Reads stride, padding and dilation for a kernel of kernelH x kernelW; stride defaults to {@code defaultStride}. */
    public static Window of(Node node, int kernelH, int kernelW, int[] defaultStride) {
        Attributes a = node.attributes();
        int[] stride = a.has("stride") ? pair(node, "stride") : defaultStride;
        int[] dilation = a.has("dilation") ? pair(node, "dilation") : new int[] {1, 1};
        int[] padding = padding(node);
        Window w = new Window(kernelH, kernelW, stride[0], stride[1], padding[0], padding[1], padding[2], padding[3],
                dilation[0], dilation[1]);
        if (w.strideH < 1 || w.strideW < 1 || w.dilationH < 1 || w.dilationW < 1 || kernelH < 1 || kernelW < 1) {
            throw Check.bad(node, "kernel size, stride and dilation must be >= 1, got " + w);
        }
        if (w.padTop < 0 || w.padLeft < 0 || w.padBottom < 0 || w.padRight < 0) {
            throw Check.bad(node, "padding must be >= 0, got " + w);
        }
        return w;
    }

    /** An int or int[2] attribute as (h, w). */
    static int[] pair(Node node, String name) {
        Object v = node.attributes().asMap().get(name);
        if (v instanceof Integer i) {
            return new int[] {i, i};
        }
        if (v instanceof int[] a && a.length == 2) {
            return a.clone();
        }
        if (v instanceof int[] a && a.length == 1) {
            return new int[] {a[0], a[0]};
        }
        throw Check.bad(node, "attribute '" + name + "' should be an int or int[2] (h, w), got "
                + (v instanceof int[] a ? java.util.Arrays.toString(a) : v));
    }

    /** padding: int (all sides), int[2] (h, w) or int[4] (top, left, bottom, right). */
    private static int[] padding(Node node) {
        Object v = node.attributes().asMap().getOrDefault("padding", 0);
        if (v instanceof Integer p) {
            return new int[] {p, p, p, p};
        }
        if (v instanceof int[] a && a.length == 1) {
            return new int[] {a[0], a[0], a[0], a[0]};
        }
        if (v instanceof int[] a && a.length == 2) {
            return new int[] {a[0], a[1], a[0], a[1]};
        }
        if (v instanceof int[] a && a.length == 4) {
            return a.clone();
        }
        throw Check.bad(node, "attribute 'padding' should be an int, int[2] (h, w) or int[4] (top, left, bottom, "
                + "right), got " + (v instanceof int[] a ? java.util.Arrays.toString(a) : v));
    }

    public int outHeight(int inHeight, boolean ceilMode) {
        return outSize(inHeight, kernelH, strideH, padTop, padBottom, dilationH, ceilMode);
    }

    public int outWidth(int inWidth, boolean ceilMode) {
        return outSize(inWidth, kernelW, strideW, padLeft, padRight, dilationW, ceilMode);
    }

    /**
     * floor (or ceil) of (in + pads - extent) / stride + 1; in ceil mode the last window must start
     * inside the input or its leading padding (PyTorch's and ONNX's rule).
     */
    private static int outSize(int in, int kernel, int stride, int padBefore, int padAfter, int dilation,
                               boolean ceilMode) {
        int span = in + padBefore + padAfter - dilation * (kernel - 1) - 1;
        if (span < 0) {
            return 0;
        }
        int out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1;
        if (ceilMode && (out - 1) * stride >= in + padBefore) {
            out--;
        }
        return out;
    }

    public int[] asArray() {
        return new int[] {kernelH, kernelW, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH,
                dilationW};
    }

    @Override
    public String toString() {
        return "kernel " + kernelH + "x" + kernelW + ", stride " + strideH + "x" + strideW + ", padding (top "
                + padTop + ", left " + padLeft + ", bottom " + padBottom + ", right " + padRight + "), dilation "
                + dilationH + "x" + dilationW;
    }
}
