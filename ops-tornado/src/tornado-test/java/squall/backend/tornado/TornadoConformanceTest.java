package squall.backend.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.opentest4j.TestAbortedException;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Tensor;

/**
 * ONNX's own conformance data (Debian's libonnx-testdata: the node tests and the PyTorch-converted
 * tests) on the tornado backend: each case squall-networks' OnnxImporter can import is compiled
 * for the TornadoVM device (compiler passes, device kernels) and run on every test_data_set_*; its
 * outputs must match ONNX's expected ones within |actual - expected| <= 1e-4 + 1e-4 * |expected|,
 * the tolerance of networks' OnnxConformanceTest. Cases the importer refuses (1-D/3-D conv, integer
 * types, ...) or whose data is not float are skipped with the reason. About 100 cases, 4 minutes
 * of kernel compiles on PoCL: it runs with -Dsquall.test.large=true.
 */
class TornadoConformanceTest {
    static final Path DATA = Path.of("/usr/share/libonnx-testdata/data");
    static final List<String> SUITES = List.of("node", "pytorch-converted");
    static final double ABSOLUTE = 1e-4;
    static final double RELATIVE = 1e-4;
    private static final AtomicInteger PASSED = new AtomicInteger();
    private static final AtomicInteger SKIPPED = new AtomicInteger();

    @BeforeAll
    static void tornadoIsThere() {
        TornadoOperatorsTest.tornadoIsThere();
    }

    @TestFactory
    Stream<DynamicTest> conformance() throws IOException {
        Assumptions.assumeTrue(Boolean.getBoolean("squall.test.large"),
                "ONNX conformance on the tornado backend runs with -Dsquall.test.large=true");
        Assumptions.assumeTrue(Files.isDirectory(DATA.resolve("node")),
                "ONNX conformance data not found in " + DATA + ": apt-get install libonnx-testdata");
        NetworksJar.loader();
        List<DynamicTest> tests = new ArrayList<>();
        for (String suite : SUITES) {
            try (Stream<Path> dirs = Files.list(DATA.resolve(suite))) {
                for (Path dir : dirs.sorted().toList()) {
                    if (Files.isRegularFile(dir.resolve("model.onnx"))) {
                        tests.add(DynamicTest.dynamicTest(suite + "/" + dir.getFileName(), dir.toUri(), () -> check(dir)));
                    }
                }
            }
        }
        return tests.stream();
    }

    @AfterAll
    static void summary() {
        System.out.println("ONNX conformance on the tornado backend: " + PASSED + " cases passed, " + SKIPPED
                + " skipped (not importable or not float)");
    }

    private static void check(Path dir) throws IOException {
        Operators operators = TornadoOperatorsTest.BUILTIN;
        Model model;
        try {
            model = NetworksJar.importOnnx(dir.resolve("model.onnx"), operators);
        } catch (RuntimeException e) {
            if (e.getClass().getSimpleName().equals("Unsupported")) {
                SKIPPED.incrementAndGet();
                throw new TestAbortedException("not importable: " + e.getMessage());
            }
            throw e;
        }
        List<Path> dataSets;
        try (Stream<Path> s = Files.list(dir)) {
            dataSets = s.filter(p -> p.getFileName().toString().startsWith("test_data_set_")).sorted().toList();
        }
        assertTrue(!dataSets.isEmpty(), "no test_data_set_* in " + dir);
        List<String> inputNames = List.copyOf(model.graph().inputs().keySet());
        List<String> outputNames = model.graph().outputs();
        for (Path set : dataSets) {
            for (int i = 0; i < inputNames.size(); i++) {
                skipUnlessFloat(set.resolve("input_" + i + ".pb"));
            }
            for (int i = 0; i < outputNames.size(); i++) {
                skipUnlessFloat(set.resolve("output_" + i + ".pb"));
            }
        }
        try (CompiledModel tornado = new TornadoBackend().compile(model, operators, Map.of())) {
            for (Path set : dataSets) {
                Map<String, Tensor> inputs = new LinkedHashMap<>();
                for (int i = 0; i < inputNames.size(); i++) {
                    inputs.put(inputNames.get(i), NetworksJar.readTensor(set.resolve("input_" + i + ".pb")));
                }
                Map<String, Tensor> actual = tornado.run(inputs);
                for (int i = 0; i < outputNames.size(); i++) {
                    Tensor expected = NetworksJar.readTensor(set.resolve("output_" + i + ".pb"));
                    assertClose(expected, actual.get(outputNames.get(i)),
                            dir.getFileName() + "/" + set.getFileName() + " output '" + outputNames.get(i) + "'");
                }
            }
        }
        PASSED.incrementAndGet();
    }

    private static void skipUnlessFloat(Path file) {
        if (Files.isRegularFile(file) && !NetworksJar.isFloatTensor(file)) {
            SKIPPED.incrementAndGet();
            throw new TestAbortedException(file.getFileName() + " is not float; Squall computes in float32");
        }
    }

    static void assertClose(Tensor expected, Tensor actual, String where) {
        assertTrue(actual != null, where + ": no such output");
        assertEquals(expected.shape(), actual.shape(), where + ": shape");
        float[] e = expected.data();
        float[] a = actual.data();
        for (int i = 0; i < e.length; i++) {
            double allowed = ABSOLUTE + RELATIVE * Math.abs(e[i]);
            boolean sameInfinity = Float.isInfinite(e[i]) && e[i] == a[i];
            if (!sameInfinity && !(Math.abs((double) a[i] - e[i]) <= allowed)) {
                fail(where + ": element " + i + " is " + a[i] + " on tornado, ONNX expects " + e[i] + " (tolerance "
                        + ABSOLUTE + " + " + RELATIVE + " * |expected|, shape " + expected.shape() + ")");
            }
        }
    }
}
