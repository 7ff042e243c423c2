package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.Npy;

/**
 * torchvision's networks as PyTorch's own exporter writes them ({@code torch.onnx.export}, opsets
 * 13 and 17), imported by {@link OnnxImporter} and run on the JVM backend, give PyTorch's logits
 * within {@value #RELATIVE} * max |logit| + {@value #ABSOLUTE}.
 *
 * <p>The files come from {@code src/test/python/export_torchvision_onnx.py} (torch 1.13,
 * torchvision 0.14; make_references.py's calibrated random weights) into
 * {@code target/torchvision-onnx/<name>/}, made on first use and again when a script changes.
 * Without torch the test is skipped, or fails where the environment variable {@code CI} is set.
 * By default the MobileNets, B0 and V2-S run (opset 17 too for V2, V3-small and B0: hardswish as
 * HardSigmoid * x before opset 14 and HardSwish after, SiLU as Sigmoid * x, squeeze-excite);
 * with {@code -Dsquall.test.large=true} all 15 at opset 13 as well. MobileNetV2 is also exported
 * with torchvision 0.3's head ({@code x.mean([2, 3])}, ReduceMean) and {@code x.view(x.size(0), -1)}
 * over a free batch size (Shape, Gather, Unsqueeze, Concat, Reshape), which the importer folds.
 */
class TorchExportTest {
    private static final double RELATIVE = 1e-3;
    private static final double ABSOLUTE = 1e-4;
    private static final double SIGNAL_IN_TOLERANCES = 50;

    private static final Path SCRIPTS = Path.of("src/test/python");
    private static final String SCRIPT = "export_torchvision_onnx.py";
    private static final Path EXPORTS = Path.of("target/torchvision-onnx");
    private static final long GENERATION_TIMEOUT_MINUTES = 30;
    private static final int NO_TORCH = 3;

    private static final boolean LARGE = Boolean.getBoolean("squall.test.large");
    private static final Operators OPERATORS = Operators.discover();
    private static final List<String> RAN = new ArrayList<>();

    /**
     * A network, its input size here (below native for the big ones) and the opsets it is exported
     * at; {@code legacyHead} adds an export with an older torchvision head (see the script).
     */
    private record Case(String name, int height, int width, List<Integer> opsets, boolean legacyHead,
                        boolean byDefault) {
        Case(String name, int height, int width, List<Integer> opsets, boolean byDefault) {
            this(name, height, width, opsets, false, byDefault);
        }

        String size() {
            return height + "x" + width;
        }

        String spec() {
            return name + ":" + size() + (legacyHead ? ":legacy_head" : "");
        }

        /** The files to import: opset{N}.onnx, then legacy_head.onnx. */
        List<String> files() {
            List<String> files = new ArrayList<>(opsets.stream().map(o -> "opset" + o + ".onnx").toList());
            if (legacyHead) {
                files.add(LEGACY_HEAD);
            }
            return files;
        }

        String stamp(String scriptsHash) {
            return opsets.stream().map(String::valueOf).collect(Collectors.joining(",")) + " " + spec() + " "
                    + scriptsHash;
        }
    }

    private static final String LEGACY_HEAD = "legacy_head.onnx";

    private static final List<Integer> BOTH = List.of(13, 17);
    private static final List<Integer> OPSET_13 = List.of(13);
    private static final List<Case> CASES = List.of(
            new Case("mobilenet_v1", 160, 160, OPSET_13, true),
            new Case("mobilenet_v2", 160, 160, BOTH, true, true),
            new Case("mobilenet_v3_large", 160, 160, OPSET_13, true),
            new Case("mobilenet_v3_small", 224, 224, BOTH, true),
            new Case("efficientnet_b0", 160, 160, BOTH, true),
            new Case("efficientnet_b1", 160, 144, OPSET_13, false),
            new Case("efficientnet_b2", 144, 144, OPSET_13, false),
            new Case("efficientnet_b3", 131, 117, OPSET_13, false),
            new Case("efficientnet_b4", 128, 128, OPSET_13, false),
            new Case("efficientnet_b5", 112, 112, OPSET_13, false),
            new Case("efficientnet_b6", 112, 112, OPSET_13, false),
            new Case("efficientnet_b7", 112, 112, OPSET_13, false),
            new Case("efficientnet_v2_s", 128, 128, OPSET_13, true),
            new Case("efficientnet_v2_m", 112, 112, OPSET_13, false),
            new Case("efficientnet_v2_l", 96, 96, OPSET_13, false));

    @TestFactory
    Stream<DynamicTest> torchExportsMatchTorch() throws IOException, InterruptedException {
        assertTrue(CASES.stream().map(Case::name).toList().containsAll(Networks.names()), "a case per network");
        List<Case> cases = CASES.stream().filter(c -> LARGE || c.byDefault()).toList();
        generateMissing(cases);
        return cases.stream().flatMap(c -> c.files().stream().map(file ->
                dynamicTest(c.name() + " " + c.size() + " " + file, () -> check(c, file))));
    }

    @AfterAll
    static void summary() {
        System.out.println("TorchExportTest ran " + RAN.size() + " export(s)" + (LARGE ? "" : " (all 15 networks "
                + "with -Dsquall.test.large=true)") + ": " + String.join(", ", RAN));
    }

    private static void check(Case c, String fileName) {
        Path directory = EXPORTS.resolve(c.name());
        Path file = directory.resolve(fileName);
        String export = fileName.replace(".onnx", "");
        Tensor input = Npy.read(directory.resolve("input.npy"));
        Tensor expected = Npy.read(directory.resolve("logits.npy"));

        long start = System.nanoTime();
        Model model = OnnxImporter.load(file, OPERATORS);
        long imported = System.nanoTime();
        Tensor actual;
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of())) {
            actual = compiled.run(input);
        }
        long ran = System.nanoTime();
        LogitError error = LogitError.of(expected, actual, RELATIVE, ABSOLUTE, c.name() + " " + export);
        Map<String, Long> ops = model.graph().nodes().stream()
                .collect(Collectors.groupingBy(Node::op, TreeMap::new, Collectors.counting()));
        System.out.printf("%-20s %-7s %-11s  max error %.3g (tolerance %.3g, max |logit| %.3g)  import %.1f s, "
                        + "run %.1f s  %s%n", c.name(), c.size(), export, error.maxError(), error.tolerance(),
                error.largest(), (imported - start) / 1e9, (ran - imported) / 1e9, ops);

        LogitError.assertHasSignal(expected, error.tolerance(), SIGNAL_IN_TOLERANCES, c.name() + " (PyTorch)");
        error.assertWithin(c.name() + " " + export + " imported from torch.onnx.export", "PyTorch");
        // PyTorch's decompositions become Squall's single ops, so the compiler passes can fuse them
        if (c.name().startsWith("mobilenet_v3")) {
            assertTrue(ops.containsKey("hardswish"), c.name() + " " + export + ": no hardswish in " + ops);
        } else if (c.name().startsWith("efficientnet")) {
            assertTrue(ops.containsKey("silu"), c.name() + " " + export + ": no silu in " + ops);
        }
        synchronized (RAN) {
            RAN.add(c.name() + " " + c.size() + " " + export);
        }
    }

    /** Runs the export script for the cases whose files are missing or stale, one run per set of opsets. */
    private static void generateMissing(List<Case> cases) throws IOException, InterruptedException {
        String hash = scriptsHash();
        Map<List<Integer>, List<Case>> missing = new LinkedHashMap<>();
        for (Case c : cases) {
            Path stamp = EXPORTS.resolve(c.name()).resolve("stamp");
            if (!Files.exists(stamp) || !Files.readString(stamp).strip().equals(c.stamp(hash))) {
                missing.computeIfAbsent(c.opsets(), k -> new ArrayList<>()).add(c);
            }
        }
        if (missing.isEmpty()) {
            return;
        }
        String python = System.getProperty("squall.python",
                Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3");
        Files.createDirectories(EXPORTS);
        for (var group : missing.entrySet()) {
            List<String> command = new ArrayList<>(List.of(python, SCRIPTS.resolve(SCRIPT).toString(),
                    EXPORTS.toString(), group.getKey().stream().map(String::valueOf).collect(Collectors.joining(","))));
            group.getValue().forEach(c -> command.add(c.spec()));
            System.out.println("exporting with PyTorch: " + String.join(" ", command));
            Result result = run(command);
            System.out.print(result.output());
            if (result.exitCode() == NO_TORCH) {
                String message = SCRIPT + " needs torch, torchvision and onnx for " + python + " (apt-get install "
                        + "python3-torch python3-torchvision python3-onnx, or -Dsquall.python=...): "
                        + result.output().strip();
                if (System.getenv("CI") != null) {
                    fail(message);
                }
                Assumptions.abort(message);
            }
            assertEquals(0, result.exitCode(), SCRIPT + " failed:\n" + result.output());
        }
    }

    private record Result(int exitCode, String output) {
    }

    private static Result run(List<String> command) throws IOException, InterruptedException {
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            return new Result(NO_TORCH, "cannot start " + command.getFirst() + ": " + e.getMessage());
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
        if (!process.waitFor(GENERATION_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            fail(command + " ran past " + GENERATION_TIMEOUT_MINUTES + " minutes");
        }
        return new Result(process.exitValue(), output.join());
    }

    /** The SHA-256 of the scripts, as export_torchvision_onnx.py writes it into each stamp. */
    private static String scriptsHash() throws IOException {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (String file : new String[] {SCRIPT, "make_references.py", "mobilenet_v1.py"}) {
                digest.update(Files.readAllBytes(SCRIPTS.resolve(file)));
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
