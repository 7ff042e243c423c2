package squall.plugins.mbconv;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import squall.api.Tensor;
import squall.networks.Npy;

/**
 * The references src/test/python/references.py writes with Debian's /usr/bin/python3 and PyTorch,
 * made once into target/torch-references. Without PyTorch the tests that need them are skipped,
 * or fail when the environment variable CI is set.
 */
final class TorchReference {
    private static final String PYTHON = "/usr/bin/python3";
    private static Path directory;

    private TorchReference() {
    }

    static synchronized Path directory() {
        Path module = Path.of(System.getProperty("basedir", "")).toAbsolutePath();
        Path dir = module.resolve("target/torch-references");
        if (directory == null && !Files.exists(dir.resolve("done"))) {
            generate(module.resolve("src/test/python/references.py"), dir);
        }
        directory = dir;
        return dir;
    }

    static Tensor read(String file) {
        return Npy.read(directory().resolve(file));
    }

    private static void generate(Path script, Path dir) {
        String output;
        int status;
        try {
            Process process = new ProcessBuilder(PYTHON, script.toString(), dir.toString()).redirectErrorStream(true)
                    .start();
            output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            status = process.waitFor();
        } catch (IOException e) {
            output = e.toString();
            status = 3;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while running " + script, e);
        }
        if (status == 3) {
            String message = "the references need PyTorch and torchvision: " + PYTHON + " could not import them ("
                    + output.strip() + "); apt-get install python3-torch python3-torchvision";
            if (System.getenv("CI") != null) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        if (status != 0) {
            fail(PYTHON + " " + script + " failed with status " + status + ":\n" + output);
        }
    }
}
