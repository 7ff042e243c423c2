package squall.networks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.weights.Weights;

/**
 * Every network, built by {@link Networks}, with weights loaded by {@link Weights} and run on the
 * JVM backend, gives PyTorch's logits for the same weights and inputs.
 *
 * <p>The references come from {@code src/test/python/make_references.py} (torch 1.13,
 * torchvision 0.14; random weights calibrated so that the logits depend clearly on the input). They
 * are made on first use into {@code target/pytorch-references/<name>/}, and made again when the
 * script changes (each network's {@code stamp} holds the scripts' SHA-256). Without torch the test
 * is skipped, or fails where the environment variable {@code CI} is set. The Python interpreter is
 * {@code /usr/bin/python3} (Debian's, which has torch), or the system property {@code squall.python}.
 */
class PyTorchParityTest {
    /** Passes when max |squall - torch| <= RELATIVE * max |torch| + ABSOLUTE over all logits. */
    private static final double RELATIVE = 1e-3;
    private static final double ABSOLUTE = 1e-4;
    /** The two batch items' reference logits must differ by this many tolerances somewhere. */
    private static final double SIGNAL_IN_TOLERANCES = 50;

    private static final Path SCRIPTS = Path.of("src/test/python");
    private static final Path REFERENCES = Path.of("target/pytorch-references");
    private static final long GENERATION_TIMEOUT_MINUTES = 20;

    @TestFactory
    Stream<DynamicTest> matchesPyTorch() throws IOException, InterruptedException {
        List<String> missing = new ArrayList<>();
        String stamp = scriptsHash();
        for (String name : Networks.names()) {
            Path stampFile = REFERENCES.resolve(name).resolve("stamp");
            if (!Files.exists(stampFile) || !Files.readString(stampFile).strip().equals(stamp)) {
                missing.add(name);
            }
        }
        String skipReason = missing.isEmpty() ? null : generate(missing);
        // Each network skips on its own, so that the report counts them as skipped, with the reason.
        return Networks.names().stream().map(name -> dynamicTest(name, () -> {
            assumeTrue(skipReason == null, skipReason);
            check(name);
        }));
    }

    private static void check(String name) {
        Path directory = REFERENCES.resolve(name);
        Path weightsFile = directory.resolve("weights.safetensors");
        Tensor input = Npy.read(directory.resolve("input.npy"));
        Tensor expected = Npy.read(directory.resolve("logits.npy"));

        long start = System.nanoTime();
        Graph graph = Networks.build(name);
        Model model = Model.bind(graph, Weights.load(weightsFile), weightsFile.toString());
        long loaded = System.nanoTime();
        Tensor actual;
        Tensor alone;
        long compiled;
        try (CompiledModel compiledModel = Backends.select("jvm").compile(model, Operators.discover(), Map.of())) {
            compiled = System.nanoTime();
            actual = compiledModel.run(input);
            // The first item alone too: a batch of one runs every step on all threads, where a
            // batch runs its large-map steps image by image, one thread each (other fusions, other splits).
            int imageSize = input.shape().size() / input.shape().dim(0);
            Shape one = Shape.of(1, input.shape().dim(1), input.shape().dim(2), input.shape().dim(3));
            alone = compiledModel.run(new Tensor(one, java.util.Arrays.copyOf(input.data(), imageSize)));
        }
        long ran = System.nanoTime();

        assertEquals(expected.shape(), actual.shape(), name + ": shape of the logits");
        float[] want = expected.data();
        int classes = expected.shape().dim(1);
        double largest = 0;
        for (float w : want) {
            largest = Math.max(largest, Math.abs(w));
        }
        double tolerance = RELATIVE * largest + ABSOLUTE;
        double error = assertClose(name + " (batch " + input.shape().dim(0) + ")", want, actual.data(), classes,
                tolerance, largest);
        double aloneError = assertClose(name + " (first item alone)", want, alone.data(), classes, tolerance, largest);
        System.out.printf("%-20s input %s  max error %.3g, first item alone %.3g (tolerance %.3g, max |logit| %.3g)  "
                        + "load %.1f s, compile %.1f s, run %.1f s%n", name, input.shape(), error, aloneError, tolerance,
                largest, seconds(loaded - start), seconds(compiled - loaded), seconds(ran - compiled));

        // A golden that gives both items the same logits cannot catch a network that ignores its input.
        double itemDifference = 0;
        for (int k = 0; k < classes; k++) {
            itemDifference = Math.max(itemDifference, Math.abs(want[k] - want[classes + k]));
        }
        assertTrue(itemDifference >= SIGNAL_IN_TOLERANCES * tolerance, name + ": the reference logits of the two "
                + "inputs differ by at most " + itemDifference + ", under " + SIGNAL_IN_TOLERANCES + " tolerances: "
                + "make_references.py should have refused these weights");
    }

    /** The largest |got - want| over got's logits (a prefix of want's items); fails over {@code tolerance}. */
    private static double assertClose(String what, float[] want, float[] got, int classes, double tolerance,
                                      double largest) {
        double error = 0;
        int worst = 0;
        for (int i = 0; i < got.length; i++) {
            double e = Math.abs((double) got[i] - want[i]);
            if (!(e <= error)) { // NaN counts as the worst error
                error = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                worst = i;
            }
        }
        assertTrue(error <= tolerance, what + ": logit " + worst % classes + " of item " + worst / classes
                + " is " + got[worst] + ", PyTorch says " + want[worst] + "; max error " + error
                + " > tolerance " + tolerance + " (" + RELATIVE + " * max |logit| " + largest + " + " + ABSOLUTE + ")");
        return error;
    }

    private static double seconds(long nanos) {
        return nanos / 1e9;
    }

    /**
     * Runs make_references.py for these networks. Without torch it fails where {@code CI} is set
     * and otherwise returns why the tests skip; null when the references are made.
     */
    private static String generate(List<String> names) throws IOException, InterruptedException {
        String python = System.getProperty("squall.python",
                Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3");
        Result probe = run(List.of(python, "-c", "import torch, torchvision"), 2);
        if (probe.exitCode() != 0) {
            String message = "PyTorch references need torch and torchvision for " + python
                    + " (apt-get install python3-torch python3-torchvision, or -Dsquall.python=...): "
                    + probe.output().strip();
            if (System.getenv("CI") != null) {
                fail(message);
            }
            System.out.println("skipping: " + message);
            return message;
        }
        Files.createDirectories(REFERENCES);
        List<String> command = new ArrayList<>(List.of(python, SCRIPTS.resolve("make_references.py").toString(),
                REFERENCES.toString()));
        command.addAll(names);
        System.out.println("making PyTorch references: " + String.join(" ", command));
        Result result = run(command, GENERATION_TIMEOUT_MINUTES);
        System.out.print(result.output());
        assertEquals(0, result.exitCode(), "make_references.py failed:\n" + result.output());
        return null;
    }

    private record Result(int exitCode, String output) {
    }

    private static Result run(List<String> command, long timeoutMinutes) throws IOException, InterruptedException {
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            return new Result(-1, "cannot start " + command.getFirst() + ": " + e.getMessage());
        }
        // Read on another thread so that a full pipe cannot stall the script past the timeout.
        var output = new CompletableFuture<String>();
        Thread.ofVirtual().start(() -> {
            try {
                output.complete(new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                output.complete("(output lost: " + e + ")");
            }
        });
        if (!process.waitFor(timeoutMinutes, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            fail(command + " ran past " + timeoutMinutes + " minutes");
        }
        return new Result(process.exitValue(), output.join());
    }

    /** The SHA-256 of the scripts, as make_references.py writes it into each stamp. */
    private static String scriptsHash() throws IOException {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (String file : new String[] {"make_references.py", "mobilenet_v1.py"}) {
                digest.update(Files.readAllBytes(SCRIPTS.resolve(file)));
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
