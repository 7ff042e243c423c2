package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.opentest4j.TestAbortedException;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Tensor;
import squall.networks.onnx.OnnxProto.ModelProto;
import squall.networks.onnx.OnnxProto.NodeProto;
import squall.networks.onnx.OnnxProto.TensorProto;

/**
 * ONNX's own conformance data (Debian's libonnx-testdata: the node tests and the PyTorch-converted
 * tests) for the operator families Squall imports. Each case's model.onnx is imported and run on
 * every test_data_set_* twice: through the JVM backend (compiler passes, CPU kernels) and by
 * calling each node's portable kernels directly; both must match ONNX's expected outputs within
 * |actual - expected| <= 1e-4 + 1e-4 * |expected|.
 *
 * <p>A case is listed when its model has a node of one of the families, except the "_expanded"
 * function tests of other ops (layer normalization, NLL loss, ...) that merely use Add or Mul.
 * A listed case that Squall cannot import (1-D/3-D conv and pooling, integer types, training-mode
 * BatchNormalization, bounds computed at run time, ...) is skipped with the importer's reason.
 */
class OnnxConformanceTest {
    static final Path DATA = Path.of("/usr/share/libonnx-testdata/data");
    static final List<String> SUITES = List.of("node", "pytorch-converted");
    static final List<String> FAMILIES = List.of("Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid",
            "HardSigmoid", "HardSwish", "Add", "Mul", "GlobalAveragePool", "AveragePool", "MaxPool", "Gemm", "MatMul",
            "Flatten", "Softmax");
    static final double ABSOLUTE = 1e-4;
    static final double RELATIVE = 1e-4;

    /** Ops the importer takes as glue around the families (so an _expanded case made of them is listed). */
    static final Set<String> IMPORTABLE = Set.of("Constant", "Identity", "Dropout", "Reshape", "Transpose");

    private record Case(String suite, Path dir, Set<String> families) {
        String name() {
            return suite + "/" + dir.getFileName();
        }
    }

    private static final class Tally {
        int ran;
        int passed;
        int skipped;
        int failed;
    }

    private final Map<String, Tally> tallies = new LinkedHashMap<>();
    private final Map<String, String> skips = new TreeMap<>();
    private final Map<String, String> failures = new TreeMap<>();

    @TestFactory
    Stream<DynamicNode> conformance() throws IOException {
        if (!Files.isDirectory(DATA.resolve("node"))) {
            String message = "ONNX conformance data not found in " + DATA + ": apt-get install libonnx-testdata";
            if (System.getenv("CI") != null) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        FAMILIES.forEach(f -> tallies.put(f, new Tally()));
        Operators operators = Operators.discover();
        List<DynamicNode> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.name() + " " + c.families(), c.dir().toUri(),
                    () -> runCase(c, operators)));
        }
        tests.add(DynamicTest.dynamicTest("summary: every family has a passing case", this::summary));
        return tests.stream();
    }

    private static List<Case> cases() throws IOException {
        List<Case> cases = new ArrayList<>();
        for (String suite : SUITES) {
            try (Stream<Path> dirs = Files.list(DATA.resolve(suite))) {
                for (Path dir : dirs.sorted().toList()) {
                    Path model = dir.resolve("model.onnx");
                    if (!Files.isRegularFile(model)) {
                        continue;
                    }
                    Set<String> ops = new LinkedHashSet<>();
                    for (NodeProto n : OnnxReader.readModel(model).graph().nodes()) {
                        ops.add(n.opType());
                    }
                    Set<String> families = new LinkedHashSet<>(FAMILIES);
                    families.retainAll(ops);
                    boolean otherFunction = dir.getFileName().toString().endsWith("_expanded")
                            && !ops.stream().allMatch(op -> FAMILIES.contains(op) || IMPORTABLE.contains(op));
                    if (!families.isEmpty() && !otherFunction) {
                        cases.add(new Case(suite, dir, families));
                    }
                }
            }
        }
        return cases;
    }

    private void runCase(Case c, Operators operators) throws IOException {
        c.families().forEach(f -> tallies.get(f).ran++);
        try {
            check(c, operators);
            c.families().forEach(f -> tallies.get(f).passed++);
        } catch (TestAbortedException e) {
            c.families().forEach(f -> tallies.get(f).skipped++);
            skips.put(c.name(), e.getMessage());
            throw e;
        } catch (AssertionError | RuntimeException e) {
            c.families().forEach(f -> tallies.get(f).failed++);
            failures.put(c.name(), String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
            throw e;
        }
    }

    private static void check(Case c, Operators operators) throws IOException {
        Model model;
        try {
            model = OnnxImporter.load(c.dir().resolve("model.onnx"), operators);
        } catch (OnnxImporter.Unsupported e) {
            throw new TestAbortedException(String.join("; ", e.problems()));
        }
        List<Path> dataSets;
        try (Stream<Path> s = Files.list(c.dir())) {
            dataSets = s.filter(p -> p.getFileName().toString().startsWith("test_data_set_")).sorted().toList();
        }
        assertTrue(!dataSets.isEmpty(), "no test_data_set_* in " + c.dir());
        List<String> inputNames = List.copyOf(model.graph().inputs().keySet());
        List<String> outputNames = model.graph().outputs();
        try (CompiledModel jvm = Backends.select("jvm").compile(model, operators, Map.of())) {
            for (Path set : dataSets) {
                Map<String, Tensor> inputs = new LinkedHashMap<>();
                for (int i = 0; i < inputNames.size(); i++) {
                    inputs.put(inputNames.get(i), readFloats(set.resolve("input_" + i + ".pb")));
                }
                Map<String, Tensor> viaBackend = jvm.run(inputs);
                Map<String, Tensor> viaKernels = PortableRunner.run(model, operators, inputs);
                for (int i = 0; i < outputNames.size(); i++) {
                    Tensor expected = readFloats(set.resolve("output_" + i + ".pb"));
                    String where = c.name() + "/" + set.getFileName() + " output '" + outputNames.get(i) + "'";
                    assertClose(expected, viaBackend.get(outputNames.get(i)), where + " (jvm backend)");
                    assertClose(expected, viaKernels.get(outputNames.get(i)), where + " (portable kernels)");
                }
            }
        }
    }

    private static Tensor readFloats(Path file) {
        TensorProto t = OnnxReader.readTensor(file);
        if (!OnnxTensors.isFloat(t.dataType())) {
            throw new TestAbortedException(file.getFileName() + " is " + OnnxProto.DataType.describe(t.dataType())
                    + "; Squall computes in float32");
        }
        return OnnxTensors.toTensor(t, file.getParent(), file.toString());
    }

    static void assertClose(Tensor expected, Tensor actual, String where) {
        assertTrue(actual != null, where + ": no such output");
        assertEquals(expected.shape(), actual.shape(), where + ": shape");
        float[] e = expected.data();
        float[] a = actual.data();
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < e.length; i++) {
            double diff = Math.abs((double) a[i] - e[i]);
            double allowed = ABSOLUTE + RELATIVE * Math.abs(e[i]);
            boolean bothInfinite = Float.isInfinite(e[i]) && e[i] == a[i];
            if (!bothInfinite && !(diff <= allowed) && (worst < 0 || diff - allowed > worstExcess)) {
                worst = i;
                worstExcess = diff - allowed;
            }
        }
        if (worst >= 0) {
            fail(where + ": element " + worst + " is " + a[worst] + ", expected " + e[worst] + " (tolerance "
                    + ABSOLUTE + " + " + RELATIVE + "*|expected|; shape " + expected.shape() + ")");
        }
    }

    private void summary() {
        StringBuilder sb = new StringBuilder("\nONNX conformance (libonnx-testdata " + SUITES + "), tolerance "
                + ABSOLUTE + " + " + RELATIVE + "*|expected|\n");
        sb.append(String.format("%-20s %5s %7s %8s %7s%n", "family", "ran", "passed", "skipped", "failed"));
        List<String> noPass = new ArrayList<>();
        for (var e : tallies.entrySet()) {
            Tally t = e.getValue();
            sb.append(String.format("%-20s %5d %7d %8d %7d%n", e.getKey(), t.ran, t.passed, t.skipped, t.failed));
            if (t.passed == 0) {
                noPass.add(e.getKey());
            }
        }
        sb.append("\nskipped (").append(skips.size()).append("):\n");
        skips.forEach((name, why) -> sb.append("  ").append(name).append(": ").append(why).append('\n'));
        if (!failures.isEmpty()) {
            sb.append("\nfailed (").append(failures.size()).append("):\n");
            failures.forEach((name, why) -> sb.append("  ").append(name).append(": ").append(why).append('\n'));
        }
        System.out.println(sb);
        assertTrue(noPass.isEmpty(), "families with no passing conformance case: " + noPass);
    }
}
