package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

class ClassifyTest {
    /** "   12.34%   417  balloon": probability, class index, name. */
    private static final Pattern ROW = Pattern.compile("^\\s+\\d+\\.\\d\\d%\\s+\\d+\\s+\\S.*$");

    @TempDir
    Path dir;

    @Test
    void namedNetworkWithRandomWeightsPrintsTopKPerImage() throws IOException {
        Path first = png(dir.resolve("first.png"), 97, 61);
        Path second = png(dir.resolve("second.png"), 40, 50);
        Run run = Run.of(Classify::run, "--model", "mobilenet_v3_small", "--top", "4", first.toString(),
                second.toString());
        assertEquals(0, run.exitCode(), run.toString());
        List<String> lines = run.outLines();
        assertEquals(first.toString(), lines.get(0), run.toString());
        assertEquals(4, lines.subList(1, 5).stream().filter(line -> ROW.matcher(line).matches()).count(), run.toString());
        assertEquals(second.toString(), lines.get(5), run.toString());
        assertEquals(4, lines.subList(6, 10).stream().filter(line -> ROW.matcher(line).matches()).count(), run.toString());
        assertTrue(lines.get(10).contains("inference") && lines.get(10).contains("2 images in one batch"), run.toString());
        // Exactly one line warns that random weights make the answer meaningless.
        assertEquals(1, run.errLines().size(), run.toString());
        assertTrue(run.errLines().getFirst().contains("random weights"), run.toString());
    }

    @Test
    void jsonHasTopKSortedProbabilitiesWithImageNetNames() throws IOException {
        Path image = png(dir.resolve("image.png"), 64, 64);
        Run run = Run.of(Classify::run, "--model", "mobilenet_v3_small", "--top", "3", "--json", image.toString());
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode report = new ObjectMapper().readTree(run.out());
        JsonNode top = report.get("images").get(0).get("top");
        assertEquals(3, top.size());
        List<String> imagenet = LoadedModel.labels(1000);
        for (int i = 0; i < 3; i++) {
            JsonNode p = top.get(i);
            assertEquals(imagenet.get(p.get("index").asInt()), p.get("label").asText());
            if (i > 0) {
                assertTrue(p.get("probability").asDouble() <= top.get(i - 1).get("probability").asDouble());
            }
        }
        assertTrue(report.get("randomWeights").asBoolean());
        assertTrue(report.get("timings").get("inferenceMs").asDouble() > 0);
    }

    @Test
    void imagenetNamesAreTorchvisionsInOrder() {
        List<String> names = LoadedModel.labels(1000);
        assertEquals(1000, names.size());
        // Spot checks against torchvision.models._meta._IMAGENET_CATEGORIES.
        assertEquals("tench", names.get(0));
        assertEquals("goldfish", names.get(1));
        assertEquals("toilet tissue", names.get(999));
    }

    /** The bundled digits model reads the sample digits it ships with (samples/digit-<label>-<index>.png). */
    @Test
    void bundledDigitsModelReadsItsSamples() throws IOException {
        Path samples = Path.of("samples");
        Assumptions.assumeTrue(LoadedModel.class.getResource("/squall/digits/model.safetensors") != null
                && Files.isDirectory(samples), "the bundled digits model is not built yet");
        List<Path> digits;
        try (Stream<Path> files = Files.list(samples)) {
            digits = files.filter(p -> p.getFileName().toString().matches("digit-\\d-.*\\.png")).sorted().toList();
        }
        assertTrue(digits.size() >= 5, "samples/ holds " + digits);
        String[] args = Stream.concat(Stream.of("--top", "1"), digits.stream().map(Path::toString)).toArray(String[]::new);
        Run run = Run.of(Classify::run, args);
        assertEquals(0, run.exitCode(), run.toString());
        assertEquals(List.of(), run.errLines(), "a bundled model needs no warning");
        List<String> lines = run.outLines();
        int correct = 0;
        for (int i = 0; i < digits.size(); i++) {
            String expected = digits.get(i).getFileName().toString().substring(6, 7);
            String classIndex = lines.get(2 * i + 1).trim().split("\\s+")[1];
            correct += classIndex.equals(expected) ? 1 : 0;
        }
        assertEquals(digits.size(), correct, run.toString());
    }

    static Path png(Path file, int width, int height) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        Random random = new Random(width * 31L + height);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        ImageIO.write(image, "png", file.toFile());
        return file;
    }
}
