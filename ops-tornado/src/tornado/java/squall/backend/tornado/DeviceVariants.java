package squall.backend.tornado;

import squall.api.KernelCall;
import squall.ops.ConvKernels;
import squall.ops.PointwiseKernels;

/**
 * Picks the {@link DeviceKernels} variant of a portable kernel call where one fits: the call's own
 * arguments (buffers, window, shapes) say which. Other calls run as the operators gave them.
 */
final class DeviceVariants {
    private DeviceVariants() {
    }

    /**
     * The call to run on the device for {@code call}. {@code noResidual} stands in for the residual
     * of a conv that has none (never read, but a task's arrays must exist).
     */
    static KernelCall of(KernelCall call, float[] noResidual) {
        if (call.kernel().getDeclaringClass() == ConvKernels.class) {
            return conv(call, noResidual);
        }
        if (call.kernel().getDeclaringClass() == PointwiseKernels.class && call.kernel().getName().equals("broadcast")) {
            return broadcast(call);
        }
        return call;
    }

    /** ConvKernels.conv2d(input, weight, bias, [residual,] output, window, batch, inChannels, ...). */
    private static KernelCall conv(KernelCall call, float[] noResidual) {
        Object[] a = call.args();
        boolean hasResidual = call.kernel().getName().equals("conv2dResidual");
        int shift = hasResidual ? 1 : 0;
        float[] input = (float[]) a[0];
        float[] weight = (float[]) a[1];
        float[] bias = (float[]) a[2];
        float[] residual = hasResidual ? (float[]) a[3] : noResidual;
        float[] output = (float[]) a[3 + shift];
        int[] w = (int[]) a[4 + shift];
        int batch = (int) a[5 + shift];
        int inChannels = (int) a[6 + shift];
        int inHeight = (int) a[7 + shift];
        int inWidth = (int) a[8 + shift];
        int outChannels = (int) a[9 + shift];
        int outHeight = (int) a[10 + shift];
        int outWidth = (int) a[11 + shift];
        int groups = (int) a[12 + shift];
        int activation = (int) a[13 + shift];
        int residualFlag = hasResidual ? 1 : 0;
        int kernelH = w[0];
        int kernelW = w[1];
        boolean undilated = w[8] == 1 && w[9] == 1;
        boolean pointwise = kernelH == 1 && kernelW == 1 && w[2] == 1 && w[3] == 1 && w[4] == 0 && w[5] == 0
                && inHeight == outHeight && inWidth == outWidth;
        if (groups == 1 && pointwise) {
            return KernelCall.of(DeviceKernels.class, "pointwiseConv", input, weight, bias, residual, output, batch,
                    inChannels, inHeight * inWidth, outChannels, activation, residualFlag);
        }
        if (groups == 1 && undilated) {
            return KernelCall.of(DeviceKernels.class, "denseConv", input, weight, bias, residual, output, batch,
                    inChannels, inHeight, inWidth, outChannels, outHeight, outWidth, kernelH, kernelW, w[2], w[3],
                    w[4], w[5], activation, residualFlag);
        }
        if (groups == inChannels && outChannels == inChannels && undilated) {
            return KernelCall.of(DeviceKernels.class, "depthwiseConv", input, weight, bias, residual, output,
                    batch * inChannels, inChannels, inHeight, inWidth, outHeight, outWidth, kernelH, kernelW, w[2],
                    w[3], w[4], w[5], activation, residualFlag);
        }
        return call;
    }

    /** PointwiseKernels.broadcast(a, b, out, size, outDims, aStrides, bStrides, operation). */
    private static KernelCall broadcast(KernelCall call) {
        Object[] a = call.args();
        int size = (int) a[3];
        int[] dims = (int[]) a[4];
        int[] aStrides = (int[]) a[5];
        int[] bStrides = (int[]) a[6];
        int spatial = planeSize(dims, aStrides, bStrides);
        if (spatial > 0) {
            return KernelCall.of(DeviceKernels.class, "planeBroadcast", a[0], a[1], a[2], size, spatial, a[7]);
        }
        spatial = planeSize(dims, bStrides, aStrides);
        if (spatial > 0) { // add and mul commute
            return KernelCall.of(DeviceKernels.class, "planeBroadcast", a[1], a[0], a[2], size, spatial, a[7]);
        }
        return call;
    }

    /**
     * The number of trailing elements that share one value of {@code small}, when {@code big} is the
     * whole output in row-major order and {@code small} is contiguous over the leading axes and
     * broadcast over the trailing ones; -1 otherwise.
     */
    static int planeSize(int[] dims, int[] bigStrides, int[] smallStrides) {
        int stride = 1;
        for (int axis = dims.length - 1; axis >= 0; axis--) {
            if (dims[axis] > 1 && bigStrides[axis] != stride) {
                return -1;
            }
            stride *= dims[axis];
        }
        int axis = dims.length - 1;
        int spatial = 1;
        for (; axis >= 0 && (dims[axis] == 1 || smallStrides[axis] == 0); axis--) {
            spatial *= dims[axis];
        }
        stride = 1;
        for (; axis >= 0; axis--) {
            if (dims[axis] > 1 && smallStrides[axis] != stride) {
                return -1;
            }
            stride *= dims[axis];
        }
        return spatial;
    }
}
