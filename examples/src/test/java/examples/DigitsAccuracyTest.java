package examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.Npy;
import squall.networks.image.ImageFiles;
import squall.networks.image.Interpolation;
import squall.networks.image.Preprocessing;
import squall.networks.image.RgbImage;
import squall.networks.weights.Weights;

/**
 * The bundled digits model (examples/train/train_digits.py) run by Squall on the JVM backend,
 * against what PyTorch computed for the same held-out images when it was trained
 * (heldout-pytorch.npy), and the sample PNGs against the held-out arrays they were cut from.
 */
class DigitsAccuracyTest {
    private static final String DIGITS = "/squall/digits/";
    private static final Pattern SAMPLE = Pattern.compile("digit-(\\d)-(\\d+)\\.png");
    /** BatchNorm folding and another summation order move logits by float rounding, no more. */
    private static final double LOGIT_TOLERANCE = 1e-4;
    /** A top-2 margin below this is a tie that float rounding may break either way. */
    private static final double TIE_MARGIN = 1e-4;
    private static final int BATCH = 60;

    private static Properties properties;
    private static Preprocessing preprocessing;
    private static CompiledModel model;
    /** uint8 [M, R, R] gray images, the inputs PyTorch was given. */
    private static Tensor heldoutImages;
    private static long[] heldoutLabels;
    /** [M, 10] logits PyTorch computed in eval mode. */
    private static Tensor pytorchLogits;
    private static Tensor squallLogits;

    @BeforeAll
    static void runHeldOutSet() throws IOException {
        properties = new Properties();
        try (InputStream in = DigitsAccuracyTest.class.getResourceAsStream(DIGITS + "model.properties")) {
            assertTrue(in != null, "model.properties is not on the classpath; run examples/train/train_digits.py");
            properties.load(in);
        }
        preprocessing = new Preprocessing(intProperty("resize"), intProperty("crop"),
                Interpolation.of(properties.getProperty("interpolation").trim()), floats("mean"), floats("std"));
        Graph graph = Networks.build(properties.getProperty("network").trim(),
                Double.parseDouble(properties.getProperty("width").trim()), intProperty("classes"));
        Path weights = resource("model.safetensors");
        model = Backends.select("jvm").compile(Model.bind(graph, Weights.load(weights), weights.toString()),
                Operators.discover(), Map.of());

        heldoutImages = Npy.read(resource("heldout-images.npy"));
        heldoutLabels = Npy.readLongs(resource("heldout-labels.npy")).data();
        pytorchLogits = Npy.read(resource("heldout-pytorch.npy"));
        int count = heldoutImages.shape().dim(0);
        int classes = intProperty("classes");
        assertEquals(Shape.of(count, preprocessing.cropSize(), preprocessing.cropSize()), heldoutImages.shape());
        assertEquals(count, heldoutLabels.length);
        assertEquals(Shape.of(count, classes), pytorchLogits.shape());

        float[] logits = new float[count * classes];
        for (int start = 0; start < count; start += BATCH) {
            int n = Math.min(BATCH, count - start);
            Tensor out = model.run(pytorchInput(start, n));
            assertEquals(Shape.of(n, classes), out.shape());
            System.arraycopy(out.data(), 0, logits, start * classes, n * classes);
        }
        squallLogits = Tensor.of(Shape.of(count, classes), logits);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void squallPredictsWhatPyTorchPredicts() {
        int count = heldoutLabels.length;
        List<Integer> disagreements = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            if (argmax(squallLogits, i) != argmax(pytorchLogits, i)) {
                disagreements.add(i);
            }
        }
        String report = disagreements.stream().map(i -> "image " + i + ": Squall " + argmax(squallLogits, i)
                + ", PyTorch " + argmax(pytorchLogits, i) + " (PyTorch's top-2 margin "
                + topTwoMargin(pytorchLogits, i) + ")").toList().toString();
        if (!disagreements.isEmpty()) {
            System.out.println("held-out predictions that differ from PyTorch's: " + report);
        }
        boolean oneTie = disagreements.size() == 1 && topTwoMargin(pytorchLogits, disagreements.getFirst()) < TIE_MARGIN;
        assertTrue(disagreements.isEmpty() || oneTie, report);
    }

    @Test
    void squallAccuracyEqualsPyTorchAccuracy() {
        int count = heldoutLabels.length;
        int squallCorrect = 0;
        int pytorchCorrect = 0;
        for (int i = 0; i < count; i++) {
            squallCorrect += argmax(squallLogits, i) == heldoutLabels[i] ? 1 : 0;
            pytorchCorrect += argmax(pytorchLogits, i) == heldoutLabels[i] ? 1 : 0;
        }
        System.out.printf("held-out accuracy: Squall %d/%d, PyTorch %d/%d%n", squallCorrect, count, pytorchCorrect,
                count);
        assertEquals(pytorchCorrect, squallCorrect);
        // The script promises a model worth bundling; a stale or half-trained file would fail here.
        assertTrue(pytorchCorrect >= 0.95 * count, "PyTorch's accuracy is " + pytorchCorrect + "/" + count);
    }

    @Test
    void logitsAgreeWithPyTorch() {
        int count = heldoutLabels.length;
        int classes = pytorchLogits.shape().dim(1);
        double worst = 0;
        for (int i = 0; i < count; i++) {
            // Relative to the image's largest logit: small logits near zero carry no relative precision.
            double scale = 1.0;
            for (int c = 0; c < classes; c++) {
                scale = Math.max(scale, Math.abs(pytorchLogits.get(i, c)));
            }
            for (int c = 0; c < classes; c++) {
                double error = Math.abs(squallLogits.get(i, c) - pytorchLogits.get(i, c)) / scale;
                worst = Math.max(worst, error);
                if (error > LOGIT_TOLERANCE) {
                    fail("image " + i + " class " + c + ": Squall " + squallLogits.get(i, c) + ", PyTorch "
                            + pytorchLogits.get(i, c) + " (relative error " + error + ")");
                }
            }
        }
        System.out.println("largest relative logit error against PyTorch: " + worst);
    }

    /** Each sample PNG decodes to its held-out row, preprocesses to PyTorch's input, and is read as its label. */
    @Test
    void samplesAreHeldOutImagesAndClassifiedAsTheirLabels() throws IOException {
        List<Path> samples;
        try (Stream<Path> files = Files.list(Path.of("samples"))) {
            samples = files.filter(p -> SAMPLE.matcher(p.getFileName().toString()).matches()).sorted().toList();
        }
        assertEquals(10, samples.size(), "one sample per digit in samples/: " + samples);
        int side = preprocessing.cropSize();
        for (Path sample : samples) {
            Matcher name = SAMPLE.matcher(sample.getFileName().toString());
            assertTrue(name.matches());
            int label = Integer.parseInt(name.group(1));
            int index = Integer.parseInt(name.group(2));
            assertEquals(label, heldoutLabels[index], sample + " is held-out image " + index);

            RgbImage image = ImageFiles.read(sample);
            byte[] expected = new byte[side * side * 3];
            float[] gray = heldoutImages.data();
            for (int p = 0; p < side * side; p++) {
                Arrays.fill(expected, 3 * p, 3 * p + 3, (byte) gray[index * side * side + p]);
            }
            assertEquals(side, image.width(), sample.toString());
            assertEquals(side, image.height(), sample.toString());
            assertArrayEquals(expected, image.rgb(), sample + " decodes to held-out image " + index);

            Tensor input = preprocessing.apply(image);
            assertArrayEquals(pytorchInput(index, 1).data(), input.data(), 0f,
                    sample + " preprocesses to the tensor PyTorch was given");
            Tensor logits = model.run(input);
            assertEquals(label, argmax(logits, 0), sample + ": " + Arrays.toString(logits.data()));
        }
    }

    /**
     * Held-out rows as train_digits.py's to_input made them, in float32 as PyTorch computes:
     * gray / 255 repeated into R, G and B, then (x - mean) / std per channel.
     */
    private static Tensor pytorchInput(int first, int n) {
        int side = heldoutImages.shape().dim(1);
        int plane = side * side;
        float[] mean = floats("mean");
        float[] std = floats("std");
        float[] gray = heldoutImages.data();
        float[] input = new float[n * 3 * plane];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < 3; c++) {
                for (int p = 0; p < plane; p++) {
                    float unit = gray[(first + i) * plane + p] / 255f;
                    input[(i * 3 + c) * plane + p] = (unit - mean[c]) / std[c];
                }
            }
        }
        return Tensor.of(Shape.of(n, 3, side, side), input);
    }

    private static int argmax(Tensor logits, int row) {
        int best = 0;
        for (int c = 1; c < logits.shape().dim(1); c++) {
            if (logits.get(row, c) > logits.get(row, best)) {
                best = c;
            }
        }
        return best;
    }

    private static double topTwoMargin(Tensor logits, int row) {
        float[] values = new float[logits.shape().dim(1)];
        for (int c = 0; c < values.length; c++) {
            values[c] = logits.get(row, c);
        }
        Arrays.sort(values);
        return values[values.length - 1] - values[values.length - 2];
    }

    private static int intProperty(String key) {
        return Integer.parseInt(properties.getProperty(key).trim());
    }

    private static float[] floats(String key) {
        String[] parts = properties.getProperty(key).split(",");
        float[] values = new float[parts.length];
        for (int i = 0; i < parts.length; i++) {
            values[i] = Float.parseFloat(parts[i].trim());
        }
        return values;
    }

    private static Path resource(String name) {
        try {
            return Path.of(DigitsAccuracyTest.class.getResource(DIGITS + name).toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new AssertionError(DIGITS + name + " is not on the test classpath; run examples/train/train_digits.py",
                    e);
        }
    }
}
