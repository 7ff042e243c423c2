package squall.networks.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.zip.CRC32;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import squall.api.SquallException;

/** Bad files are refused with a message naming the file; good ones decode as PIL's convert("RGB"). */
class ImageFilesTest {
    @TempDir
    Path dir;

    @Test
    void grayPngIsRepeatedWithoutGammaConversion() throws IOException {
        BufferedImage gray = new BufferedImage(3, 2, BufferedImage.TYPE_BYTE_GRAY);
        gray.getRaster().setSample(1, 0, 0, 139);
        Path file = dir.resolve("gray.png");
        ImageIO.write(gray, "png", file.toFile());
        RgbImage rgb = ImageFiles.read(file);
        // BufferedImage.getRGB would report 195 here (it treats gray as linear light); PIL reports 139.
        assertEquals(139, rgb.sample(1, 0, 0));
        assertEquals(139, rgb.sample(1, 0, 1));
        assertEquals(139, rgb.sample(1, 0, 2));
        assertEquals(0, rgb.sample(0, 0, 0));
    }

    @Test
    void missingFileIsNamed() {
        Path file = dir.resolve("nope.jpg");
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("does not exist"), e.getMessage());
    }

    @Test
    void unknownFormatIsNamed() throws IOException {
        Path file = Files.writeString(dir.resolve("notes.png"), "this is text, not a picture\n");
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("not a JPEG, PNG"),
                e.getMessage());
    }

    @Test
    void truncatedJpegIsRefusedNotGrayFilled() throws IOException {
        byte[] jpeg = encode(noise(64, 48), "jpg");
        Path file = Files.write(dir.resolve("cut.jpg"), Arrays.copyOf(jpeg, jpeg.length / 2));
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void truncatedPngIsRefused() throws IOException {
        byte[] png = encode(noise(64, 48), "png");
        Path file = Files.write(dir.resolve("cut.png"), Arrays.copyOf(png, png.length - 200));
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void cmykJpegIsRefusedClearly() throws IOException {
        // cmyk.jpg: 8x8 random CMYK pixels saved by Pillow 9.4 (Image.fromarray(a, "CMYK").save).
        Path file = dir.resolve("cmyk.jpg");
        try (InputStream in = getClass().getResourceAsStream("cmyk.jpg")) {
            Files.write(file, in.readAllBytes());
        }
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains("CMYK") && e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void absurdDimensionsAreRefusedBeforeDecoding() throws IOException {
        // A 1x1 PNG whose header claims 60000x60000 pixels: 10 GiB of RGB if anyone decoded it.
        Path file = Files.write(dir.resolve("huge.png"), withPngSize(encode(noise(1, 1), "png"), 60_000, 60_000));
        var e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file)));
        assertTrue(e.getMessage().contains("60000x60000") && e.getMessage().contains(file.toString()),
                e.getMessage());
    }

    @Test
    void tooManyMegapixelsAreRefused() throws IOException {
        Path file = Files.write(dir.resolve("wide.png"), withPngSize(encode(noise(1, 1), "png"), 16_000, 7_000));
        var e = assertThrows(SquallException.BadFile.class, () -> ImageFiles.read(file));
        assertTrue(e.getMessage().contains("megapixels"), e.getMessage());
    }

    private static BufferedImage noise(int width, int height) {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        java.util.Random random = new java.util.Random(7);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        return image;
    }

    private static byte[] encode(BufferedImage image, String format) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(image, format, out);
        return out.toByteArray();
    }

    /** Rewrites the width and height in a PNG's IHDR chunk (bytes 16..23) and fixes its CRC. */
    private static byte[] withPngSize(byte[] png, int width, int height) {
        ByteBuffer b = ByteBuffer.wrap(png.clone());
        b.putInt(16, width).putInt(20, height);
        CRC32 crc = new CRC32();
        crc.update(b.array(), 12, 17); // chunk type "IHDR" and its 13 data bytes
        b.putInt(29, (int) crc.getValue());
        return b.array();
    }
}
