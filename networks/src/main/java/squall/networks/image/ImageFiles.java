package squall.networks.image;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.ComponentSampleModel;
import java.awt.image.DataBufferByte;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.stream.ImageInputStream;

import squall.api.SquallException;

/**
 * Reads JPEG, PNG, BMP and GIF files (whatever {@link ImageIO} decodes) into {@link RgbImage}s the
 * way PIL's {@code Image.open(f).convert("RGB")} does: gray is repeated into three channels, a
 * palette is looked up, alpha is dropped, 16-bit samples keep their high byte, and no colour
 * management is applied. The size is checked from the header before any pixel is decoded, so a
 * hostile file cannot make Squall allocate gigabytes.
 */
public final class ImageFiles {
    /** Largest accepted side, in pixels. */
    public static final int MAX_SIDE = 16_384;
    /** Largest accepted image, in pixels (100 megapixels). */
    public static final long MAX_PIXELS = 100_000_000L;

    private ImageFiles() {
    }

    public static RgbImage read(Path file) {
        if (!Files.exists(file)) {
            throw new SquallException.BadFile("image file " + file + " does not exist");
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new SquallException.BadFile("image file " + file + " is not a readable file");
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) {
                throw new SquallException.BadFile("cannot open image file " + file);
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new SquallException.BadFile("image file " + file + " is not a JPEG, PNG, BMP or GIF image "
                        + "(the format is not recognised); convert it to PNG or JPEG");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                return decode(file, reader);
            } finally {
                reader.dispose();
            }
        } catch (NoSuchFileException e) {
            throw new SquallException.BadFile("image file " + file + " does not exist", e);
        } catch (IOException | RuntimeException e) {
            if (e instanceof SquallException s) {
                throw s;
            }
            throw new SquallException.BadFile("image file " + file + " is corrupt or truncated: " + e.getMessage()
                    + " (re-export it as PNG or JPEG)", e);
        }
    }

    private static RgbImage decode(Path file, ImageReader reader) throws IOException {
        String format = reader.getFormatName().toUpperCase(Locale.ROOT);
        int width = reader.getWidth(0);
        int height = reader.getHeight(0);
        if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE || (long) width * height > MAX_PIXELS) {
            throw new SquallException.BadFile("image file " + file + " is " + width + "x" + height + " pixels; Squall "
                    + "reads images up to " + MAX_SIDE + " pixels a side and " + MAX_PIXELS / 1_000_000
                    + " megapixels: shrink it first");
        }
        Iterator<ImageTypeSpecifier> types = reader.getImageTypes(0);
        if (types.hasNext() && isCmyk(types.next().getColorModel())) {
            throw cmyk(file, format);
        }
        List<String> warnings = new ArrayList<>();
        reader.addIIOReadWarningListener((source, warning) -> {
            // Stray bytes between JPEG segments lose no pixels; PIL ignores them too.
            if (!warning.contains("extraneous bytes")) {
                warnings.add(warning);
            }
        });
        BufferedImage image = reader.read(0);
        // ImageIO warns and fills with gray where PIL refuses ("image file is truncated"): refuse too.
        if (!warnings.isEmpty()) {
            throw new SquallException.BadFile("image file " + file + " is damaged: " + String.join("; ", warnings)
                    + " (re-export it as PNG or JPEG)");
        }
        if (isCmyk(image.getColorModel())) {
            throw cmyk(file, format);
        }
        return toRgb(image);
    }

    private static boolean isCmyk(ColorModel model) {
        int type = model.getColorSpace().getType();
        return type == ColorSpace.TYPE_CMYK || type == ColorSpace.TYPE_4CLR;
    }

    private static SquallException cmyk(Path file, String format) {
        return new SquallException.BadFile("image file " + file + " is a CMYK " + format + "; Squall reads RGB and "
                + "grayscale images only: convert it to RGB first (e.g. `convert in.jpg -colorspace sRGB out.jpg`)");
    }

    private static RgbImage toRgb(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        ColorModel model = image.getColorModel();
        Raster raster = image.getRaster();
        RgbImage out = RgbImage.blank(width, height);
        byte[] rgb = out.rgb();
        if (model instanceof IndexColorModel palette) {
            int[] indices = raster.getSamples(0, 0, width, height, 0, (int[]) null);
            for (int i = 0; i < indices.length; i++) {
                rgb[3 * i] = (byte) palette.getRed(indices[i]);
                rgb[3 * i + 1] = (byte) palette.getGreen(indices[i]);
                rgb[3 * i + 2] = (byte) palette.getBlue(indices[i]);
            }
        } else if (model instanceof ComponentColorModel && model.getNumColorComponents() == 1) {
            // Raw samples: getRGB would convert linear gray to sRGB and brighten every pixel, PIL does not.
            int shift = Math.max(0, model.getComponentSize(0) - 8);
            int[] gray = raster.getSamples(0, 0, width, height, 0, (int[]) null);
            for (int i = 0; i < gray.length; i++) {
                byte v = (byte) (gray[i] >>> shift);
                rgb[3 * i] = v;
                rgb[3 * i + 1] = v;
                rgb[3 * i + 2] = v;
            }
        } else if (model instanceof ComponentColorModel && model.getNumColorComponents() == 3) {
            // Raw samples, whatever ICC profile the file names: PIL applies none.
            if (!copyInterleavedBytes(raster, rgb)) {
                for (int band = 0; band < 3; band++) {
                    int shift = Math.max(0, model.getComponentSize(band) - 8);
                    int[] samples = raster.getSamples(0, 0, width, height, band, (int[]) null);
                    for (int i = 0; i < samples.length; i++) {
                        rgb[3 * i + band] = (byte) (samples[i] >>> shift);
                    }
                }
            }
        } else {
            // Packed pixels (BMP's 16- and 32-bit layouts): the model scales each field to 8 bits.
            int[] argb = image.getRGB(0, 0, width, height, null, 0, width);
            for (int i = 0; i < argb.length; i++) {
                rgb[3 * i] = (byte) (argb[i] >> 16);
                rgb[3 * i + 1] = (byte) (argb[i] >> 8);
                rgb[3 * i + 2] = (byte) argb[i];
            }
        }
        return out;
    }

    /**
     * The common case, 8-bit samples interleaved in one byte array (JPEG and PNG decode to it):
     * copied directly, since a call per sample costs more than the resize. False if not that layout.
     */
    private static boolean copyInterleavedBytes(Raster raster, byte[] rgb) {
        if (!(raster.getSampleModel() instanceof ComponentSampleModel layout)
                || !(raster.getDataBuffer() instanceof DataBufferByte bytes)
                || Arrays.stream(layout.getBankIndices()).anyMatch(bank -> bank != 0)) {
            return false;
        }
        byte[] data = bytes.getData();
        int[] bandOffsets = layout.getBandOffsets();
        int pixelStride = layout.getPixelStride();
        int scanlineStride = layout.getScanlineStride();
        int origin = bytes.getOffset() - raster.getSampleModelTranslateY() * scanlineStride
                - raster.getSampleModelTranslateX() * pixelStride;
        int width = raster.getWidth();
        for (int y = 0; y < raster.getHeight(); y++) {
            for (int x = 0; x < width; x++) {
                int pixel = origin + y * scanlineStride + x * pixelStride;
                int o = 3 * (y * width + x);
                rgb[o] = data[pixel + bandOffsets[0]];
                rgb[o + 1] = data[pixel + bandOffsets[1]];
                rgb[o + 2] = data[pixel + bandOffsets[2]];
            }
        }
        return true;
    }
}
