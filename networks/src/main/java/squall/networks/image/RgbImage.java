package squall.networks.image;

import squall.api.SquallException;

/**
 * An 8-bit RGB image, rows top to bottom, pixels interleaved {@code r, g, b} (the layout of a PIL
 * image in mode "RGB"). Samples are unsigned: read them with {@code & 0xFF}.
 */
public record RgbImage(int width, int height, byte[] rgb) {
    public RgbImage {
        if (width < 1 || height < 1 || rgb.length != 3L * width * height) {
            throw new SquallException.BadShape("an RGB image of " + width + "x" + height + " needs "
                    + 3L * width * height + " bytes, got " + rgb.length);
        }
    }

    public static RgbImage blank(int width, int height) {
        return new RgbImage(width, height, new byte[Math.multiplyExact(3, Math.multiplyExact(width, height))]);
    }

    /** Sample {@code channel} (0 = red) of pixel (x, y), 0..255. */
    public int sample(int x, int y, int channel) {
        return rgb[3 * (y * width + x) + channel] & 0xFF;
    }

    /**
     * The {@code cropWidth} x {@code cropHeight} window whose top-left corner is (left, top); pixels
     * outside this image are black, as torchvision pads before a center crop larger than the image.
     */
    public RgbImage crop(int left, int top, int cropWidth, int cropHeight) {
        RgbImage out = blank(cropWidth, cropHeight);
        for (int y = 0; y < cropHeight; y++) {
            int sourceY = top + y;
            if (sourceY < 0 || sourceY >= height) {
                continue;
            }
            int from = Math.max(0, -left);
            int to = Math.min(cropWidth, width - left);
            if (from < to) {
                System.arraycopy(rgb, 3 * (sourceY * width + left + from), out.rgb, 3 * (y * cropWidth + from),
                        3 * (to - from));
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "RgbImage[" + width + "x" + height + "]";
    }
}
