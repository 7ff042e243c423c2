package squall.networks;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs a reference script from {@code src/test/python} with Debian's /usr/bin/python3, which has
 * torch and torchvision. Scripts exit with status 3 when they cannot import them: the test is then
 * skipped, or failed when the environment variable CI is set.
 */
final class Python {
    private static final String PYTHON = "/usr/bin/python3";
    static final int NO_TORCH = 3;

    private Python() {
    }

    static Path moduleDir() {
        return Path.of(System.getProperty("basedir", "")).toAbsolutePath();
    }

    /**
     * Runs {@code src/test/python/<script>} with {@code args}; scripts write their results to a file
     * named in the arguments, so stdout and stderr together are only for the failure message.
     */
    static void run(String script, String... args) {
        Path path = moduleDir().resolve("src/test/python").resolve(script);
        List<String> command = new ArrayList<>(List.of(PYTHON, path.toString()));
        command.addAll(List.of(args));
        String output;
        int status;
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            status = process.waitFor();
        } catch (IOException e) {
            output = e.toString();
            status = NO_TORCH;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while running " + path, e);
        }
        if (status == NO_TORCH) {
            String message = path.getFileName() + " needs PyTorch: " + PYTHON + " could not import torch/torchvision ("
                    + output.strip() + "); apt-get install python3-torch python3-torchvision";
            if (System.getenv("CI") != null) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        if (status != 0) {
            fail(String.join(" ", command) + " failed with status " + status + ":\n" + output);
        }
    }
}
