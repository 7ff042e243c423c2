package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.RandomWeights;

/**
 * ONNX Runtime as the oracle for {@link OnnxExporter}: every network, with {@link RandomWeights},
 * is exported to a file that ONNX Runtime (2 threads) runs, and its logits must be Squall's JVM
 * backend's on the same input, within {@value #RELATIVE} * max |logit| + {@value #ABSOLUTE}.
 * The same file imported back by {@link OnnxImporter} must give Squall's logits again, within
 * {@value #ROUND_TRIP_RELATIVE} * max |logit| plus twice what a one-ulp change of the input does to
 * them: after the compiler passes it is the same network, but the JVM backend's first run in a JVM
 * can differ from later ones in the last bits (seen: 5e-6 of max |logit| on B7), and a deep network
 * carries that to its logits as it would a one-ulp input change. Most networks come back
 * bit-identical; the output says which.
 *
 * <p>The big networks run below their native resolution so that the suite stays quick; by default
 * the MobileNets, B0 and V2-S run, with {@code -Dsquall.test.large=true} all 15.
 */
class OrtOracleTest {
    private static final double RELATIVE = 1e-3;
    private static final double ABSOLUTE = 1e-4;
    private static final double ROUND_TRIP_RELATIVE = 1e-6;
    /** The two inputs' logits must differ by this many tolerances somewhere (see LogitError.assertHasSignal). */
    private static final double SIGNAL_IN_TOLERANCES = 50;
    private static final int ORT_THREADS = 2;
    /**
     * A one-ulp change of the input must move Squall's logits by at most 1/this of the tolerance:
     * random weights can make a deep network chaotic at a small input size (B7 at 96x96 turns
     * one ulp into 2% of its largest logit), and there no comparison means anything.
     */
    private static final double CONDITIONING = 10;

    private static final boolean LARGE = Boolean.getBoolean("squall.test.large");
    private static final Operators OPERATORS = Operators.discover();
    private static final List<String> RAN = new ArrayList<>();

    /** A network and the input size it runs at here: below native for the big ones, non-square for some. */
    private record Case(String name, int height, int width, boolean byDefault) {
    }

    private static final List<Case> CASES = List.of(
            new Case("mobilenet_v1", 160, 160, true),
            new Case("mobilenet_v2", 160, 160, true),
            new Case("mobilenet_v3_large", 160, 160, true),
            new Case("mobilenet_v3_small", 224, 224, true),
            new Case("efficientnet_b0", 160, 160, true),
            new Case("efficientnet_b1", 160, 144, false),
            new Case("efficientnet_b2", 144, 144, false),
            new Case("efficientnet_b3", 131, 117, false),
            new Case("efficientnet_b4", 128, 128, false),
            new Case("efficientnet_b5", 112, 112, false),
            new Case("efficientnet_b6", 128, 128, false),
            new Case("efficientnet_b7", 160, 160, false),
            new Case("efficientnet_v2_s", 128, 128, true),
            new Case("efficientnet_v2_m", 144, 144, false),
            new Case("efficientnet_v2_l", 96, 96, false));

    @TempDir
    static Path temp;

    @TestFactory
    Stream<DynamicTest> exportedNetworksRunInOnnxRuntime() {
        assertTrue(CASES.stream().map(Case::name).toList().containsAll(Networks.names()), "a case per network");
        return CASES.stream().filter(c -> LARGE || c.byDefault())
                .map(c -> dynamicTest(c.name() + " " + c.height() + "x" + c.width(), () -> check(c)));
    }

    @AfterAll
    static void summary() {
        System.out.println("OrtOracleTest ran " + RAN.size() + " network(s)" + (LARGE ? "" : " (all 15 with "
                + "-Dsquall.test.large=true)") + ": " + String.join(", ", RAN));
    }

    private static void check(Case c) throws IOException, OrtException {
        long start = System.nanoTime();
        Graph graph = Networks.build(c.name());
        Model model = Model.bind(graph, RandomWeights.generate(graph, seed(c.name())), "RandomWeights");
        Tensor input = syntheticImages(2, c.height(), c.width(), seed(c.name()));
        Tensor squall;
        Tensor nudged;
        try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of())) {
            squall = compiled.run(input);
            nudged = compiled.run(nudge(input));
        }
        double sensitivity = LogitError.of(squall, nudged, 0, 0, c.name() + " nudged").maxError();

        Path file = temp.resolve(c.name() + ".onnx");
        OnnxExporter.write(model, file, OPERATORS);
        long bytes = Files.size(file);
        long exported = System.nanoTime();
        Tensor ort = runOrt(file, input);
        long ortDone = System.nanoTime();
        LogitError error = LogitError.of(ort, squall, RELATIVE, ABSOLUTE, c.name());

        Tensor again;
        try (CompiledModel compiled = Backends.select("jvm").compile(OnnxImporter.load(file, OPERATORS), OPERATORS,
                Map.of())) {
            again = compiled.run(input);
        }
        LogitError roundTrip = LogitError.of(squall, again, ROUND_TRIP_RELATIVE, 2 * sensitivity,
                c.name() + " imported back");
        Files.delete(file);

        System.out.printf("%-20s %3dx%-3d %4d MiB  vs ORT max error %.3g (tolerance %.3g, max |logit| %.3g)  "
                        + "round trip %s  one-ulp input change %.3g  squall+export %.1f s, ORT %.1f s, "
                        + "import+run %.1f s%n",
                c.name(), c.height(), c.width(), bytes >> 20, error.maxError(), error.tolerance(), error.largest(),
                roundTrip.maxError() == 0 ? "bit-identical" : String.format("max error %.3g", roundTrip.maxError()),
                sensitivity, seconds(exported - start), seconds(ortDone - exported),
                seconds(System.nanoTime() - ortDone));
        assertTrue(sensitivity <= error.tolerance() / CONDITIONING, c.name() + " at " + c.height() + "x" + c.width()
                + ": a one-ulp change of the input moves Squall's logits by " + sensitivity + ", over 1/"
                + CONDITIONING + " of the tolerance " + error.tolerance() + "; with these weights the network is too "
                + "ill-conditioned at this size for a comparison to mean anything: run it larger");
        LogitError.assertHasSignal(ort, error.tolerance(), SIGNAL_IN_TOLERANCES, c.name() + " (ONNX Runtime)");
        error.assertWithin(c.name() + " (Squall's JVM backend)", "ONNX Runtime");
        roundTrip.assertWithin(c.name() + " (exported, then imported)", "Squall before export");
        synchronized (RAN) {
            RAN.add(c.name() + " " + c.height() + "x" + c.width());
        }
    }

    /** Every input value moved up by one ulp. */
    private static Tensor nudge(Tensor input) {
        float[] data = input.data().clone();
        for (int i = 0; i < data.length; i++) {
            data[i] = Math.nextUp(data[i]);
        }
        return new Tensor(input.shape(), data);
    }

    private static Tensor runOrt(Path file, Tensor input) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        long[] shape = Arrays.stream(input.shape().dims()).asLongStream().toArray();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(ORT_THREADS);
            options.setInterOpNumThreads(1);
            try (OrtSession session = env.createSession(file.toString(), options);
                 OnnxTensor tensor = OnnxTensor.createTensor(env, FloatBuffer.wrap(input.data()), shape);
                 OrtSession.Result result = session.run(Map.of(session.getInputNames().iterator().next(), tensor))) {
                OnnxTensor logits = (OnnxTensor) result.get(0);
                FloatBuffer values = logits.getFloatBuffer();
                float[] data = new float[values.remaining()];
                values.get(data);
                return new Tensor(Shape.of(logits.getInfo().getShape()), data);
            }
        }
    }

    private static long seed(String name) {
        CRC32 crc = new CRC32();
        crc.update(name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return crc.getValue();
    }

    /**
     * Smooth random colour fields at a few scales plus fine noise, normalised per image, as
     * make_references.py makes them: white noise alone looks alike to every network after global
     * pooling, so two noise images would give nearly the same logits.
     */
    static Tensor syntheticImages(int count, int height, int width, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int plane = height * width;
        float[] data = new float[count * 3 * plane];
        for (int image = 0; image < count; image++) {
            for (int channel = 0; channel < 3; channel++) {
                int offset = (image * 3 + channel) * plane;
                for (int cells : new int[] {2, 5, 13}) {
                    addUpsampledNoise(data, offset, height, width, cells, random);
                }
                for (int i = 0; i < plane; i++) {
                    data[offset + i] += (float) (0.3 * random.nextGaussian());
                }
            }
            normalize(data, image * 3 * plane, 3 * plane);
            for (int channel = 0; channel < 3; channel++) {
                // each image its own brightness and contrast per channel, as photos have
                double scale = 0.6 + 0.8 * random.nextDouble();
                double shift = 0.5 * random.nextGaussian();
                int offset = (image * 3 + channel) * plane;
                for (int i = 0; i < plane; i++) {
                    data[offset + i] = (float) (data[offset + i] * scale + shift);
                }
            }
        }
        return new Tensor(Shape.of(count, 3, height, width), data);
    }

    /** A cells x cells grid of N(0, 1) values, bilinearly interpolated over the plane. */
    private static void addUpsampledNoise(float[] data, int offset, int height, int width, int cells,
                                          SplittableRandom random) {
        double[] grid = new double[cells * cells];
        for (int i = 0; i < grid.length; i++) {
            grid[i] = random.nextGaussian();
        }
        for (int y = 0; y < height; y++) {
            double gy = (y + 0.5) * cells / height - 0.5;
            int y0 = Math.clamp((int) Math.floor(gy), 0, cells - 1);
            int y1 = Math.min(y0 + 1, cells - 1);
            double fy = Math.clamp(gy - y0, 0, 1);
            for (int x = 0; x < width; x++) {
                double gx = (x + 0.5) * cells / width - 0.5;
                int x0 = Math.clamp((int) Math.floor(gx), 0, cells - 1);
                int x1 = Math.min(x0 + 1, cells - 1);
                double fx = Math.clamp(gx - x0, 0, 1);
                double top = grid[y0 * cells + x0] * (1 - fx) + grid[y0 * cells + x1] * fx;
                double bottom = grid[y1 * cells + x0] * (1 - fx) + grid[y1 * cells + x1] * fx;
                data[offset + y * width + x] += (float) (top * (1 - fy) + bottom * fy);
            }
        }
    }

    private static void normalize(float[] data, int offset, int length) {
        double sum = 0;
        double sumSquares = 0;
        for (int i = offset; i < offset + length; i++) {
            sum += data[i];
            sumSquares += (double) data[i] * data[i];
        }
        double mean = sum / length;
        double std = Math.sqrt(Math.max(sumSquares / length - mean * mean, 1e-12));
        for (int i = offset; i < offset + length; i++) {
            data[i] = (float) ((data[i] - mean) / std);
        }
    }

    private static double seconds(long nanos) {
        return nanos / 1e9;
    }
}
