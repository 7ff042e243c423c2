package squall.networks.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import squall.api.Tensor;
import squall.networks.Npy;

/**
 * Squall's preprocessing against torchvision 0.14's ImageClassification transform on PIL images
 * (src/test/python/preprocess_reference.py, run with Debian's python3). Images of odd sizes and
 * every pixel layout ImageIO produces (RGB, gray, palette, alpha, BMP, GIF, JPEG) are written here,
 * and both implementations read the same files.
 *
 * <p>Tolerance: none. Squall reproduces Pillow's fixed-point resampling and torchvision's float32
 * arithmetic, so the tensors must be equal to the bit; a one-level difference in one pixel (about
 * 0.017 after normalisation) would fail the test. JPEG decoding agrees too (ImageIO's libjpeg 6b
 * and Debian's libjpeg-turbo share the integer IDCT and the fancy upsampler).
 */
class PreprocessingTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final Path SCRIPT = Path.of("src/test/python/preprocess_reference.py");

    @TempDir
    static Path dir;
    private static List<Path> images;

    @BeforeAll
    static void writeImages() throws IOException {
        Random random = new Random(2024);
        images = new ArrayList<>();
        // Odd sizes: shrink by large and small factors, enlarge, one side already at the target, tiny.
        int[][] sizes = {{37, 53}, {333, 500}, {640, 427}, {1001, 97}, {120, 121}, {256, 300}, {5, 3}};
        for (int[] size : sizes) {
            BufferedImage image = new BufferedImage(size[0], size[1], BufferedImage.TYPE_3BYTE_BGR);
            for (int y = 0; y < size[1]; y++) {
                for (int x = 0; x < size[0]; x++) {
                    // Gradients keep the filters' smooth behaviour honest; noise checks every tap's weight.
                    int red = random.nextInt(8) == 0 ? random.nextInt(256) : x * 255 / size[0];
                    image.setRGB(x, y, red << 16 | (y * 255 / size[1]) << 8 | random.nextInt(256));
                }
            }
            String name = "rgb-" + size[0] + "x" + size[1];
            images.add(write(image, name + ".png", "png"));
            images.add(write(image, name + ".jpg", "jpg"));
        }
        images.add(write(randomImage(71, 45, BufferedImage.TYPE_BYTE_GRAY, random), "gray.png", "png"));
        images.add(write(randomImage(71, 45, BufferedImage.TYPE_BYTE_GRAY, random), "gray.jpg", "jpg"));
        images.add(write(randomImage(90, 61, BufferedImage.TYPE_INT_ARGB, random), "rgba.png", "png"));
        BufferedImage palette = randomImage(77, 66, BufferedImage.TYPE_BYTE_INDEXED, random);
        images.add(write(palette, "palette.png", "png"));
        images.add(write(palette, "palette.gif", "gif"));
        images.add(write(randomImage(43, 29, BufferedImage.TYPE_3BYTE_BGR, random), "rgb.bmp", "bmp"));
    }

    @Test
    void bilinearLikeMobileNet() throws Exception {
        compare(Preprocessing.imagenet(232, 224, Interpolation.BILINEAR), "bilinear");
    }

    @Test
    void bicubicLikeEfficientNetB1() throws Exception {
        compare(Preprocessing.imagenet(255, 240, Interpolation.BICUBIC), "bicubic");
    }

    @Test
    void cropLargerThanResizedImageIsPaddedWithBlack() throws Exception {
        compare(Preprocessing.imagenet(200, 224, Interpolation.BILINEAR), "bilinear");
    }

    @Test
    void batchStacksImagesInOrder() {
        Preprocessing pre = Preprocessing.imagenet(64, 56, Interpolation.BICUBIC);
        RgbImage a = ImageFiles.read(images.get(0));
        RgbImage b = ImageFiles.read(images.get(3));
        Tensor batch = pre.batch(List.of(a, b));
        assertArrayEquals(new int[] {2, 3, 56, 56}, batch.shape().dims());
        float[] second = java.util.Arrays.copyOfRange(batch.data(), 3 * 56 * 56, 6 * 56 * 56);
        assertArrayEquals(pre.apply(b).data(), second);
    }

    private static void compare(Preprocessing pre, String interpolation) throws Exception {
        Path out = Files.createTempDirectory(dir, interpolation);
        List<String> command = new ArrayList<>(List.of(PYTHON.toString(), SCRIPT.toString(),
                Integer.toString(pre.resizeSize()), Integer.toString(pre.cropSize()), interpolation, out.toString()));
        images.forEach(p -> command.add(p.toString()));
        requireReference();
        Process python = new ProcessBuilder(command).redirectErrorStream(true).start();
        String log = new String(python.getInputStream().readAllBytes());
        assertTrue(python.waitFor(120, TimeUnit.SECONDS) && python.exitValue() == 0, "reference script failed:\n" + log);
        for (Path image : images) {
            Tensor expected = Npy.read(out.resolve(image.getFileName() + ".npy"));
            Tensor actual = pre.apply(ImageFiles.read(image));
            assertEquals(expected.shape(), actual.shape(), image.getFileName().toString());
            float[] e = expected.data();
            float[] a = actual.data();
            for (int i = 0; i < e.length; i++) {
                if (e[i] != a[i]) {
                    fail(image.getFileName() + " " + pre + ": element " + i + " is " + a[i] + ", torchvision has "
                            + e[i]);
                }
            }
        }
    }

    /** Skips (on a developer's machine) or fails (under CI) when the reference cannot run. */
    private static void requireReference() throws Exception {
        String problem = null;
        if (!Files.isExecutable(PYTHON)) {
            problem = PYTHON + " is missing";
        } else {
            Process p = new ProcessBuilder(PYTHON.toString(), "-c", "import torch, torchvision, PIL, numpy")
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                problem = "torch/torchvision/PIL cannot be imported: " + log.strip();
            }
        }
        if (problem != null) {
            String message = "the torchvision reference is unavailable (" + problem + "); install it with "
                    + "`apt-get install python3-torch python3-torchvision python3-pil python3-numpy`";
            if (System.getenv("CI") != null) {
                fail(message);
            }
            Assumptions.abort(message);
        }
    }

    private static BufferedImage randomImage(int width, int height, int type, Random random) {
        BufferedImage image = new BufferedImage(width, height, type);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        return image;
    }

    private static Path write(BufferedImage image, String name, String format) throws IOException {
        File file = dir.resolve(name).toFile();
        if (!ImageIO.write(image, format, file)) {
            throw new IOException("ImageIO has no " + format + " writer");
        }
        return file.toPath();
    }
}
