package squall.plugins.guide;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Tensor;
import squall.networks.onnx.OnnxTensors;

/**
 * docs/writing-a-plugin.md's example plugin, taken from the page (every fenced block whose info
 * string names a file: {@code ```java src/main/java/...}), is built as its own Maven project with
 * {@code mvn -o -q package} (its own tests run too) and its jar is loaded with a URLClassLoader, as
 * a third party's jar is: the op runs in a graph on the JVM backend and matches ONNX's Softsign
 * conformance data. Runs only where mvn is on the PATH.
 */
class WritingAPluginGuideTest {
    /** An opening fence with a language and a path: ```java src/main/java/Example.java */
    private static final Pattern FILE_FENCE = Pattern.compile("^```(\\w+) +(\\S+)\\s*$");
    private static final Path SOFTSIGN_DATA = Path.of("/usr/share/libonnx-testdata/data/node/test_softsign");

    @Test
    void theGuidesPluginBuildsAndItsJarRunsItsOp(@TempDir Path project) throws Exception {
        Path mvn = onPath("mvn");
        Assumptions.assumeTrue(mvn != null, "mvn is not on the PATH; the guide's plugin is built with Maven");
        Map<String, String> files = exampleFiles(Path.of(System.getProperty("squall.guide",
                "../../docs/writing-a-plugin.md")));
        assertTrue(files.containsKey("pom.xml") && files.keySet().stream().anyMatch(f -> f.startsWith("src/main/java/"))
                && files.keySet().stream().anyMatch(f -> f.startsWith("src/test/java/")),
                "the guide should give a pom, main and test sources; it gives " + files.keySet());
        for (var file : files.entrySet()) {
            Path target = project.resolve(file.getKey());
            Files.createDirectories(target.getParent());
            Files.writeString(target, file.getValue());
        }

        build(mvn, project);
        Path jar;
        try (var built = Files.list(project.resolve("target"))) {
            jar = built.filter(p -> p.toString().endsWith(".jar")).findFirst()
                    .orElseThrow(() -> new AssertionError("mvn package made no jar in " + project.resolve("target")));
        }

        assertFalse(Operators.discover().has("softsign"), "softsign must come from the guide's jar only");
        try (var loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, getClass().getClassLoader())) {
            Operators operators = Operators.discover(loader);
            Operators.Entry entry = operators.entries().get("softsign");
            assertTrue(entry != null, "the jar registers softsign; found " + operators.entries().keySet());
            assertEquals(jar.toRealPath(), Path.of(entry.location()).toRealPath());
            runOnnxConformanceCase(operators);
        }
    }

    /** The guide's op on ONNX's Softsign test data, in a graph on the JVM backend. */
    private static void runOnnxConformanceCase(Operators operators) {
        Path data = SOFTSIGN_DATA.resolve("test_data_set_0");
        Assumptions.assumeTrue(Files.isDirectory(data), "ONNX conformance data missing: apt-get install "
                + "libonnx-testdata");
        Tensor x = OnnxTensors.readTensorFile(data.resolve("input_0.pb"));
        Tensor expected = OnnxTensors.readTensorFile(data.resolve("output_0.pb"));
        var b = Graph.builder("guide");
        Graph graph = b.output(b.op("softsign", "softsign", Attributes.EMPTY, b.input("x", x.shape()))).build();
        try (CompiledModel model = Backends.select("jvm").compile(new Model(graph, Map.of()), operators, Map.of())) {
            float[] y = model.run(x).data();
            for (int i = 0; i < y.length; i++) {
                float e = expected.data()[i];
                if (!(Math.abs(y[i] - e) <= 1e-6 * Math.abs(e) + 1e-7)) {
                    fail("softsign(" + x.data()[i] + ") is " + y[i] + ", ONNX expects " + e);
                }
            }
        }
    }

    /** The blocks of the page whose opening fence names a file, by path, in page order. */
    static Map<String, String> exampleFiles(Path guide) throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        String path = null;
        StringBuilder content = new StringBuilder();
        for (String line : Files.readAllLines(guide, StandardCharsets.UTF_8)) {
            Matcher open = FILE_FENCE.matcher(line);
            if (path == null && open.matches()) {
                path = open.group(2);
                content.setLength(0);
            } else if (path != null && line.startsWith("```")) {
                if (files.put(path, content.toString()) != null) {
                    fail(guide + " gives " + path + " twice");
                }
                path = null;
            } else if (path != null) {
                content.append(line).append('\n');
            }
        }
        assertTrue(path == null, guide + ": the block of " + path + " is not closed");
        return files;
    }

    /** {@code mvn -o -q package} in the project, with this JVM's JAVA_HOME and local repository. */
    private static void build(Path mvn, Path project) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(mvn.toString(), "-o", "-q", "-B", "package"));
        String repository = System.getProperty("squall.localRepository");
        if (repository != null && !repository.isBlank()) {
            command.add("-Dmaven.repo.local=" + repository);
        }
        var builder = new ProcessBuilder(command).directory(project.toFile()).redirectErrorStream(true);
        if (System.getenv("JAVA_HOME") == null) {
            builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
        }
        Path log = project.resolve("build.log");
        builder.redirectOutput(log.toFile());
        Process process = builder.start();
        if (!process.waitFor(5, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            fail("mvn package of the guide's plugin took over 5 minutes:\n" + Files.readString(log));
        }
        assertEquals(0, process.exitValue(), "mvn -o -q package of the guide's plugin failed:\n"
                + Files.readString(log));
    }

    private static Path onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, program);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return null;
    }
}
