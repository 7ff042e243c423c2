package squall.plugins.activations;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import squall.api.Attributes;
import squall.api.Backends;
import squall.api.Graph;
import squall.api.Model;
import squall.api.OperatorProvider;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;

/**
 * The plugin as users get it: a jar on the classpath (this module's tests run against its jar, see
 * the pom). Its ops are discovered with the jar they came from; without the jar, a graph using
 * mish fails saying so; a second jar claiming mish, or a jar built for another SPI version, is
 * refused at discovery. The other jars are compiled here from source, as third parties' would be.
 */
class ActivationsDiscoveryTest {
    private static final String PLUGIN_JAR = "squall-plugin-activations-";

    @Test
    void opsAreDiscoveredWithTheJarTheyCameFrom() {
        var entries = Operators.discover().entries();
        for (String id : List.of("mish", "gelu", "hardtanh")) {
            Operators.Entry entry = entries.get(id);
            assertNotNull(entry, id + " is discovered; found " + entries.keySet());
            assertEquals(ActivationOperators.class.getName(), entry.providerClass());
            String jar = Path.of(entry.location()).getFileName().toString();
            assertTrue(jar.startsWith(PLUGIN_JAR) && jar.endsWith(".jar"), id + " comes from " + entry.location());
        }
        assertTrue(entries.get("conv2d").location().contains("squall-ops-tornado"), entries.get("conv2d").location());
    }

    @Test
    void mishWithoutThePluginFailsNamingTheOpTheKnownOpsAndHowPluginsAreFound() throws Exception {
        List<URL> withoutPlugin = new ArrayList<>();
        for (Path entry : testClasspath()) {
            if (!entry.getFileName().toString().startsWith(PLUGIN_JAR)) {
                withoutPlugin.add(entry.toUri().toURL());
            }
        }
        String message;
        try (var loader = new URLClassLoader(withoutPlugin.toArray(URL[]::new), ClassLoader.getPlatformClassLoader())) {
            @SuppressWarnings("unchecked")
            var attempt = (Callable<String>) loader.loadClass(CompileMish.class.getName()).getConstructor()
                    .newInstance();
            // Backends are found through the context class loader, as a launcher that sets it would.
            Thread thread = Thread.currentThread();
            ClassLoader previous = thread.getContextClassLoader();
            thread.setContextClassLoader(loader);
            try {
                message = attempt.call();
            } finally {
                thread.setContextClassLoader(previous);
            }
        }
        assertTrue(message.contains("unknown op 'mish'"), message);
        assertTrue(message.contains("conv2d") && message.contains("hardswish") && !message.contains("gelu"), message);
        assertTrue(message.contains("ServiceLoader") && message.contains("classpath")
                && message.contains("META-INF/services"), message);
    }

    /** Compiles x -> mish on the JVM backend with the ops its own class loader finds; returns the error. */
    public static final class CompileMish implements Callable<String> {
        @Override
        public String call() {
            var b = Graph.builder("uses_mish");
            Graph graph = b.output(b.op("mish", "mish", Attributes.EMPTY, b.input("x", Shape.of(-1, 4)))).build();
            Operators operators = Operators.discover(CompileMish.class.getClassLoader());
            try (var model = Backends.select("jvm").compile(new Model(graph, Map.of()), operators, Map.of())) {
                return "compiled without an error";
            } catch (SquallException e) {
                return e.getMessage();
            }
        }
    }

    @Test
    void twoJarsClaimingOneOpFailAtDiscoveryNamingBoth(@TempDir Path dir) throws Exception {
        Path rival = providerJar(dir, "RivalMish", "OperatorProvider.SPI_VERSION", "mish");
        try (var loader = new URLClassLoader(new URL[] {rival.toUri().toURL()}, getClass().getClassLoader())) {
            var error = assertThrows(SquallException.class, () -> Operators.discover(loader));
            String message = error.getMessage();
            assertTrue(message.contains("'mish'"), message);
            assertTrue(message.contains(ActivationOperators.class.getName()) && message.contains(PLUGIN_JAR), message);
            assertTrue(message.contains("rival.RivalMish") && message.contains(rival.toString()), message);
            assertTrue(message.contains("remove one of the jars"), message);
        }
    }

    @Test
    void aProviderBuiltForAnotherSpiVersionIsRefused(@TempDir Path dir) throws Exception {
        Path stale = providerJar(dir, "StaleProvider", "0", "softsign");
        try (var loader = new URLClassLoader(new URL[] {stale.toUri().toURL()}, getClass().getClassLoader())) {
            var error = assertThrows(SquallException.class, () -> Operators.discover(loader));
            String message = error.getMessage();
            assertTrue(message.contains("rival.StaleProvider") && message.contains(stale.toString()), message);
            assertTrue(message.contains("SPI version 0") && message.contains("version " + OperatorProvider.SPI_VERSION),
                    message);
            assertTrue(message.contains("rebuild the plugin"), message);
        }
    }

    /**
     * A plugin jar compiled here: provider {@code rival.<className>} reporting {@code spiVersion}
     * (a Java expression) and offering one op {@code opId}, registered in META-INF/services.
     */
    private static Path providerJar(Path dir, String className, String spiVersion, String opId) throws IOException {
        String source = """
                package rival;

                import java.util.List;
                import squall.api.*;

                public final class %1$s implements OperatorProvider {
                    public int spiVersion() {
                        return %2$s;
                    }

                    public List<Operator> operators() {
                        return List.of(new Operator() {
                            public String id() {
                                return "%3$s";
                            }

                            public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
                                return inputShapes;
                            }

                            public List<KernelCall> kernels(KernelContext context) {
                                return List.of();
                            }
                        });
                    }
                }
                """.formatted(className, spiVersion, opId);
        Path sources = Files.createDirectories(dir.resolve("src/rival"));
        Path classes = Files.createDirectories(dir.resolve("classes"));
        Path file = Files.writeString(sources.resolve(className + ".java"), source);
        String classpath = String.join(File.pathSeparator, testClasspath().stream().map(Path::toString).toList());
        var errors = new java.io.ByteArrayOutputStream();
        int status = ToolProvider.getSystemJavaCompiler().run(null, null, errors, "-d", classes.toString(), "-cp",
                classpath, file.toString());
        assertEquals(0, status, "javac: " + errors.toString(StandardCharsets.UTF_8));
        Path jar = dir.resolve(className.toLowerCase() + ".jar");
        try (var out = new JarOutputStream(Files.newOutputStream(jar)); Stream<Path> files = Files.walk(classes)) {
            for (Path c : files.filter(Files::isRegularFile).toList()) {
                put(out, classes.relativize(c).toString().replace(File.separatorChar, '/'), Files.readAllBytes(c));
            }
            put(out, "META-INF/services/" + OperatorProvider.class.getName(),
                    ("rival." + className + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return jar;
    }

    private static void put(JarOutputStream jar, String name, byte[] bytes) throws IOException {
        jar.putNextEntry(new JarEntry(name));
        OutputStream out = jar;
        out.write(bytes);
        jar.closeEntry();
    }

    /** The test classpath as surefire gives it (java.class.path may be only its booter jar). */
    static List<Path> testClasspath() throws MalformedURLException {
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        return Stream.of(classpath.split(File.pathSeparator)).filter(s -> !s.isBlank()).map(Path::of).toList();
    }
}
