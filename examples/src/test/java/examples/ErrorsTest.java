package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import squall.api.Graph;
import squall.networks.Networks;
import squall.networks.RandomWeights;
import squall.networks.weights.Safetensors;

/** Every user mistake ends in one line on stderr naming it and exit code 1 (2 for a bad command line). */
class ErrorsTest {
    @TempDir
    Path dir;

    @Test
    void corruptImage() throws IOException {
        Path image = Files.write(dir.resolve("broken.png"), new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0});
        Run run = Run.of(Classify::run, "--model", "mobilenet_v3_small", image.toString());
        assertOneLine(run, 1, image.toString());
    }

    @Test
    void missingImage() {
        Path image = dir.resolve("absent.jpg");
        Run run = Run.of(Classify::run, "--model", "mobilenet_v3_small", image.toString());
        assertOneLine(run, 1, image.toString());
    }

    @Test
    void missingInputTensor() {
        Path input = dir.resolve("absent.npy");
        Run run = Run.of(Infer::run, "--model", "mobilenet_v3_small", "--input", input.toString(), "--output",
                dir.resolve("out.npy").toString());
        assertOneLine(run, 1, "absent.npy");
    }

    @Test
    void unknownModel() {
        Run run = Run.of(Summary::run, "--model", "resnet50");
        assertOneLine(run, 1, "resnet50");
        assertTrue(run.err().contains("mobilenet_v2"), "the message lists the known networks: " + run);
    }

    @Test
    void weightsOfAnotherNetwork() throws IOException {
        Graph small = Networks.build("mobilenet_v3_small");
        Path weights = dir.resolve("mobilenet_v3_small.safetensors");
        Safetensors.write(weights, RandomWeights.generate(small, 1));
        Path image = ClassifyTest.png(dir.resolve("image.png"), 32, 32);
        Run run = Run.of(Classify::run, "--model", "mobilenet_v2", "--weights", weights.toString(), image.toString());
        assertOneLine(run, 1, "mobilenet_v2");
        assertTrue(run.err().contains(weights.toString()), run.toString());
    }

    @Test
    void usageErrorsExitWithTwo() {
        Run run = Run.of(Summary::run, "--model", "mobilenet_v2", "--resolution", "big");
        assertOneLine(run, 2, "--resolution");
        assertEquals(2, Run.of(Classify::run).exitCode(), "no image given");
    }

    @Test
    void verboseShowsTheStackTrace() {
        Run run = Run.of(Summary::run, "--model", "resnet50", "--verbose");
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("at squall.networks.Networks"), run.toString());
    }

    private static void assertOneLine(Run run, int exitCode, String mention) {
        assertEquals(exitCode, run.exitCode(), run.toString());
        assertEquals("", run.out(), run.toString());
        // A random-weights warning may precede the error; the error itself is one line.
        var errors = run.errLines().stream().filter(line -> !line.startsWith("warning:")).toList();
        assertEquals(1, errors.size(), run.toString());
        assertTrue(errors.getFirst().startsWith("error: ") && errors.getFirst().contains(mention), run.toString());
        assertTrue(!run.err().contains("\tat "), "no stack trace without --verbose: " + run);
    }
}
