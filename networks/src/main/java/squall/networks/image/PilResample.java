package squall.networks.image;

import java.util.Arrays;

/**
 * Pillow's resize of an 8-bit image ({@code ImagingResample} in Pillow 9's
 * {@code src/libImaging/Resample.c}), reproduced so that Squall feeds a network the pixels that
 * torchvision's PIL pipeline fed it in training and evaluation.
 *
 * <p>Two separable passes, horizontal then vertical. For each output pixel the filter is centred on
 * the output pixel's centre mapped into the source and, when shrinking, stretched by the scale
 * factor so that every source pixel contributes (antialiasing). Weights are normalised to sum to 1,
 * converted to 22-bit fixed point, and each pass rounds and clamps to 8 bits: the intermediate
 * image is uint8, as in Pillow, so the result agrees with Pillow's to the last bit.
 */
public final class PilResample {
    /** Pillow's PRECISION_BITS: 8 bits of pixel, 2 bits of headroom for negative lobes and overshoot. */
    private static final int PRECISION_BITS = 32 - 8 - 2;

    private PilResample() {
    }

    /** The weights of one pass: output pixel i reads {@code count[i]} source pixels from {@code first[i]}. */
    private record Weights(int[] first, int[] count, int[] fixedPoint, int kernelSize) {
    }

    public static RgbImage resize(RgbImage image, int width, int height, Interpolation filter) {
        RgbImage out = image;
        // Pillow skips a pass whose size does not change; an identity pass would not change pixels anyway.
        if (width != image.width()) {
            out = horizontal(out, weights(image.width(), width, filter));
        }
        if (height != image.height()) {
            out = vertical(out, weights(image.height(), height, filter));
        }
        return out;
    }

    /** Pillow's precompute_coeffs and normalize_coeffs_8bpc, in the same double arithmetic. */
    private static Weights weights(int inSize, int outSize, Interpolation filter) {
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = filterScale * filter.support();
        int kernelSize = (int) Math.ceil(support) * 2 + 1;
        int[] first = new int[outSize];
        int[] count = new int[outSize];
        int[] fixedPoint = new int[outSize * kernelSize];
        double[] kernel = new double[kernelSize];
        // Multiplying by the reciprocal, not dividing, as Pillow does: the last bit of a weight matters.
        double inverseScale = 1.0 / filterScale;
        for (int i = 0; i < outSize; i++) {
            double center = (i + 0.5) * scale;
            int min = Math.max(0, (int) (center - support + 0.5));
            int n = Math.min(inSize, (int) (center + support + 0.5)) - min;
            double sum = 0.0;
            for (int x = 0; x < n; x++) {
                kernel[x] = filter.weight((x + min - center + 0.5) * inverseScale);
                sum += kernel[x];
            }
            for (int x = 0; x < n; x++) {
                double w = sum != 0.0 ? kernel[x] / sum : kernel[x];
                fixedPoint[i * kernelSize + x] = w < 0 ? (int) (-0.5 + w * (1 << PRECISION_BITS))
                        : (int) (0.5 + w * (1 << PRECISION_BITS));
            }
            first[i] = min;
            count[i] = n;
        }
        return new Weights(first, count, fixedPoint, kernelSize);
    }

    private static RgbImage horizontal(RgbImage in, Weights w) {
        int outWidth = w.first().length;
        RgbImage out = RgbImage.blank(outWidth, in.height());
        byte[] src = in.rgb();
        byte[] dst = out.rgb();
        for (int y = 0; y < in.height(); y++) {
            int row = y * in.width();
            for (int x = 0; x < outWidth; x++) {
                int k = x * w.kernelSize();
                int start = 3 * (row + w.first()[x]);
                int r = 1 << (PRECISION_BITS - 1);
                int g = r;
                int b = r;
                for (int i = 0; i < w.count()[x]; i++) {
                    int weight = w.fixedPoint()[k + i];
                    r += (src[start + 3 * i] & 0xFF) * weight;
                    g += (src[start + 3 * i + 1] & 0xFF) * weight;
                    b += (src[start + 3 * i + 2] & 0xFF) * weight;
                }
                int o = 3 * (y * outWidth + x);
                dst[o] = clip8(r);
                dst[o + 1] = clip8(g);
                dst[o + 2] = clip8(b);
            }
        }
        return out;
    }

    private static RgbImage vertical(RgbImage in, Weights w) {
        int outHeight = w.first().length;
        int stride = 3 * in.width();
        RgbImage out = RgbImage.blank(in.width(), outHeight);
        byte[] src = in.rgb();
        byte[] dst = out.rgb();
        int[] sums = new int[stride];
        for (int y = 0; y < outHeight; y++) {
            Arrays.fill(sums, 1 << (PRECISION_BITS - 1));
            int k = y * w.kernelSize();
            // Row by row so the inner loop runs along memory; the sums are those of Pillow's loop order.
            for (int i = 0; i < w.count()[y]; i++) {
                int weight = w.fixedPoint()[k + i];
                int start = (w.first()[y] + i) * stride;
                for (int s = 0; s < stride; s++) {
                    sums[s] += (src[start + s] & 0xFF) * weight;
                }
            }
            for (int s = 0; s < stride; s++) {
                dst[y * stride + s] = clip8(sums[s]);
            }
        }
        return out;
    }

    /** Pillow's clip8: drop the fraction bits, clamp to 0..255. */
    private static byte clip8(int fixedPoint) {
        int v = fixedPoint >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }
}
