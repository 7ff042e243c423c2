package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code squall} launcher puts SQUALL_CLASSPATH's entries on the classpath of the JVM it starts,
 * on the plain JVM route and both TornadoVM routes. The launcher and tornado-env.sh run as they are,
 * copied beside a stand-in build (an empty jar and classpath.txt) and stand-in {@code java} and
 * {@code tornado} commands that print their arguments, so nothing is built or started here.
 */
class LauncherTest {
    @TempDir
    Path dir;

    Path root;
    Path jdk;
    Path plugin;
    Path pluginClasses;

    @BeforeEach
    void standIns() throws IOException {
        root = Files.createDirectories(dir.resolve("squall"));
        Files.copy(Path.of("../squall"), root.resolve("squall"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.copy(Path.of("../tornado-env.sh"), root.resolve("tornado-env.sh"));
        Path target = Files.createDirectories(root.resolve("examples/target"));
        Files.createFile(target.resolve("squall-examples-0.1.0-SNAPSHOT.jar"));
        Files.writeString(target.resolve("classpath.txt"), "/deps/squall-api.jar:/deps/picocli.jar");
        jdk = dir.resolve("jdk");
        // tornado-env.sh asks java for its version; every other call prints the arguments, one per line.
        script(jdk.resolve("bin/java"), """
                [ "$1" = -XshowSettings:properties ] && { echo '    java.specification.version = 25' >&2; exit 0; }
                printf '%s\\n' "$@"
                """);
        script(jdk.resolve("bin/javac"), "exit 0\n");
        plugin = Files.createFile(dir.resolve("plugin.jar"));
        pluginClasses = Files.createDirectories(dir.resolve("plugin-classes"));
    }

    @Test
    void plainJvmRouteAppendsSquallClasspath() throws Exception {
        Result result = launch(Map.of("SQUALL_CLASSPATH", plugin + ":" + pluginClasses), "ops");
        assertEquals("", result.err(), "quiet on success");
        assertEquals("examples.Ops", result.args().get(result.args().size() - 1), result.toString());
        assertEquals(root.resolve("examples/target/squall-examples-0.1.0-SNAPSHOT.jar")
                + ":/deps/squall-api.jar:/deps/picocli.jar:" + plugin + ":" + pluginClasses, classpath(result, "-cp"));
    }

    @Test
    void withoutSquallClasspathTheClasspathIsTheBuildsAlone() throws Exception {
        Result result = launch(Map.of(), "ops");
        assertTrue(classpath(result, "-cp").endsWith(":/deps/picocli.jar"), result.toString());
    }

    @Test
    void tornadoRoutesAppendSquallClasspath() throws Exception {
        Path tornado = dir.resolve("tornado-sdk");
        script(tornado.resolve("bin/tornado"), "printf '%s\\n' \"$@\"\n");
        Map<String, String> env = Map.of("SQUALL_CLASSPATH", plugin.toString(), "TORNADOVM_HOME", tornado.toString());
        Result viaTornado = launch(env, "bench", "--backend", "tornado");
        assertEquals("", viaTornado.err(), viaTornado.toString());
        assertTrue(classpath(viaTornado, "--classpath").endsWith(":/deps/picocli.jar:" + plugin), viaTornado.toString());

        Files.writeString(tornado.resolve("tornado-argfile"), "--add-modules ALL-SYSTEM\n");
        Result viaArgfile = launch(env, "bench", "--backend=tornado");
        assertEquals("@" + tornado.toRealPath() + "/tornado-argfile", viaArgfile.args().getFirst(), viaArgfile.toString());
        assertTrue(classpath(viaArgfile, "-cp").endsWith(":/deps/picocli.jar:" + plugin), viaArgfile.toString());
    }

    @Test
    void aMissingEntryIsNamedButStillPassedOn() throws Exception {
        Path missing = dir.resolve("absent.jar");
        Result result = launch(Map.of("SQUALL_CLASSPATH", missing + "::" + plugin), "ops");
        assertEquals("squall: warning: SQUALL_CLASSPATH entry '" + missing + "' does not exist", result.err().strip());
        assertTrue(classpath(result, "-cp").endsWith(":/deps/picocli.jar:" + missing + ":" + plugin), result.toString());
    }

    record Result(List<String> args, String err) {
    }

    private Result launch(Map<String, String> env, String... args) throws Exception {
        ProcessBuilder builder = new ProcessBuilder(
                java.util.stream.Stream.concat(java.util.stream.Stream.of("bash", root.resolve("squall").toString()),
                        java.util.stream.Stream.of(args)).toList());
        builder.environment().keySet().removeIf(k -> k.startsWith("SQUALL_") || k.equals("TORNADOVM_HOME"));
        builder.environment().put("JAVA_HOME", jdk.toString());
        builder.environment().putAll(env);
        Process process = builder.start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the launcher finished");
        assertEquals(0, process.exitValue(), out + err);
        return new Result(out.lines().toList(), err);
    }

    private static String classpath(Result result, String option) {
        int at = result.args().indexOf(option);
        assertTrue(at >= 0 && at + 1 < result.args().size(), option + " in " + result);
        return result.args().get(at + 1);
    }

    private static void script(Path file, String body) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "#!/usr/bin/env bash\n" + body);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
}
