package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * examples.Classify started by TornadoVM's {@code tornado} launcher prints the same top-5 for the
 * sample digits as on the JVM backend. Needs the examples built ({@code ./squall build} with
 * TORNADOVM_HOME set, which writes examples/target/classpath.txt); this module's own classes come
 * first on the class path, so the backend under test is the one just compiled.
 */
class TornadoClassifyTest {
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    /** "  99.97%     3  3": probability in percent, class index, label. */
    private static final Pattern PREDICTION = Pattern.compile("^\\s+(\\d+\\.\\d+)%\\s+(\\d+)\\s+(.*)$");

    record Prediction(double percent, int index, String label) {
    }

    @Test
    void tornadoLauncherPrintsTheJvmBackendsTopFive() throws Exception {
        Path classpathFile = ROOT.resolve("examples/target/classpath.txt");
        List<Path> jars;
        try (Stream<Path> files = Files.list(ROOT.resolve("examples/target"))) {
            jars = files.filter(f -> f.getFileName().toString().matches("squall-examples-.*(?<!-sources|-tests)\\.jar"))
                    .toList();
        } catch (IOException e) {
            jars = List.of();
        }
        assumeTrue(Files.isRegularFile(classpathFile) && jars.size() == 1,
                "examples are not built: run ./squall build (with TORNADOVM_HOME set) first");
        String tornadoHome = System.getenv("TORNADOVM_HOME");
        String classpath = Path.of("target/tornado/classes").toAbsolutePath() + ":" + jars.getFirst() + ":"
                + Files.readString(classpathFile).strip();
        List<String> samples;
        try (Stream<Path> files = Files.list(ROOT.resolve("examples/samples"))) {
            samples = files.filter(f -> f.toString().endsWith(".png")).sorted().map(Path::toString).toList();
        }
        assertTrue(samples.size() >= 10, "sample digits in examples/samples: " + samples);

        List<String> jvm = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", classpath, "examples.Classify", "--backend", "jvm"));
        jvm.addAll(samples);
        List<String> tornado = new ArrayList<>(List.of(Path.of(tornadoHome, "bin", "tornado").toString(), "-cp",
                classpath, "examples.Classify"));
        tornado.addAll(samples);
        String jvmOutput = run(jvm);
        String tornadoOutput = run(tornado);
        assertTrue(tornadoOutput.contains(" on tornado:"), "Classify under `tornado` chose another backend:\n"
                + tornadoOutput);

        List<List<Prediction>> expected = topFives(jvmOutput, samples);
        List<List<Prediction>> actual = topFives(tornadoOutput, samples);
        for (int image = 0; image < samples.size(); image++) {
            List<Prediction> e = expected.get(image);
            List<Prediction> a = actual.get(image);
            assertEquals(5, a.size(), samples.get(image) + ": top-5 on tornado:\n" + tornadoOutput);
            for (int k = 0; k < 5; k++) {
                String where = samples.get(image) + " rank " + (k + 1) + ": jvm " + e + ", tornado " + a;
                // A tie at the printed precision (two 0.00%) may come out in either order.
                boolean tie = e.get(k).percent() == a.get(k).percent() && e.get(k).percent() < 0.01;
                assertTrue(tie || e.get(k).index() == a.get(k).index(), where);
                assertTrue(Math.abs(e.get(k).percent() - a.get(k).percent()) <= 0.011, where);
            }
            assertEquals(e.getFirst(), a.getFirst(), samples.get(image) + ": top-1");
        }
    }

    /** Each image's predictions, in the order Classify prints them after the image's path. */
    private static List<List<Prediction>> topFives(String output, List<String> samples) {
        List<List<Prediction>> all = new ArrayList<>();
        List<Prediction> current = null;
        for (String line : output.lines().toList()) {
            Matcher m = PREDICTION.matcher(line);
            if (samples.contains(line.strip())) {
                current = new ArrayList<>();
                all.add(current);
            } else if (m.matches() && current != null) {
                current.add(new Prediction(Double.parseDouble(m.group(1)), Integer.parseInt(m.group(2)), m.group(3)));
            }
        }
        assertEquals(samples.size(), all.size(), "one block per image in:\n" + output);
        return all;
    }

    private static String run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(10, TimeUnit.MINUTES), "timed out: " + command);
        assertEquals(0, process.exitValue(), String.join(" ", command) + " failed:\n" + output);
        return output;
    }
}
