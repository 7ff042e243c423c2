package examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.Npy;
import squall.networks.RandomWeights;
import squall.networks.image.ImageFiles;
import squall.networks.image.Interpolation;
import squall.networks.image.Preprocessing;
import squall.networks.onnx.OnnxExporter;
import squall.networks.onnx.OnnxTensors;

/**
 * The tools with {@code --model FILE.onnx}: PyTorch's exports of networks' tiny test model (its
 * logits are PyTorch's, in tiny_output.pb) and a Squall MobileNet V3 small exported by
 * OnnxExporter, whose outputs ONNX Runtime computes from the same file.
 */
class OnnxModelTest {
    static final Path FIXTURES = Path.of("../networks/src/test/resources/onnx");
    /** [batch, 3, 20, 20] in, [batch, 6] out; opset 17 has a free batch size, opset 13 a fixed one of 2. */
    static final Path TINY_FREE_BATCH = FIXTURES.resolve("tiny_opset17.onnx");
    static final Path TINY_BATCH_OF_2 = FIXTURES.resolve("tiny_opset13.onnx");
    /** sum(p.numel() for p in torchvision.models.mobilenet_v3_small().parameters()), torchvision 0.14. */
    static final long MOBILENET_V3_SMALL_PARAMETERS = 2_542_856;

    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    /** mobilenet_v3_small with random weights, as OnnxExporter writes it: input [-1,3,-1,-1]. */
    static Path exported;

    @BeforeAll
    static void export() {
        Graph graph = Networks.build("mobilenet_v3_small");
        exported = shared.resolve("mobilenet_v3_small.onnx");
        OnnxExporter.write(Model.bind(graph, RandomWeights.generate(graph, 7), "random"), exported);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_opset17.onnx", "tiny_opset13.onnx"})
    void inferGivesPyTorchsLogits(String file) {
        Path in = dir.resolve("in.npy");
        Path out = dir.resolve("out.npy");
        Npy.write(in, OnnxTensors.readTensorFile(FIXTURES.resolve("tiny_input.pb")));
        Run run = Run.of(Infer::run, "--model", FIXTURES.resolve(file).toString(), "--input", in.toString(),
                "--output", out.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertEquals("", run.err(), "an ONNX model needs no warning");
        assertClose(OnnxTensors.readTensorFile(FIXTURES.resolve("tiny_output.pb")), Npy.read(out), 1e-4, file);
    }

    /** Input size from the file (20), resize round(20 * 256 / 224) = 23, six classes named by index. */
    @Test
    void classifyTakesPreprocessingFromTheInputShape() throws IOException, OrtException {
        Path image = ClassifyTest.png(dir.resolve("image.png"), 57, 41);
        Run run = Run.of(Classify::run, "--model", TINY_FREE_BATCH.toString(), "--top", "6", "--json",
                image.toString());
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertTrue(!report.get("randomWeights").asBoolean());
        Tensor input = Preprocessing.imagenet(23, 20, Interpolation.BILINEAR).apply(ImageFiles.read(image));
        JsonNode top = report.get("images").get(0).get("top");
        assertProbabilities(ortLogits(TINY_FREE_BATCH, input), top, 6);
        for (JsonNode p : top) {
            assertEquals("class " + p.get("index").asInt(), p.get("label").asText());
        }
    }

    /** A free input size means 224 (resize 256) unless --crop says otherwise; 1000 classes get ImageNet's names. */
    @Test
    void classifyExportedSquallModelWithCropOverride() throws IOException, OrtException {
        Path image = ClassifyTest.png(dir.resolve("image.png"), 300, 260);
        for (int crop : new int[] {224, 160}) {
            Run run = Run.of(Classify::run, "--model", exported.toString(), "--crop", Integer.toString(crop), "--top",
                    "3", "--json", image.toString());
            assertEquals(0, run.exitCode(), run.toString());
            JsonNode top = new ObjectMapper().readTree(run.out()).get("images").get(0).get("top");
            // 160 * 256 / 224 = 182.86: the resize keeps ImageNet's ratio.
            int resize = crop == 224 ? 256 : 183;
            Tensor input = Preprocessing.imagenet(resize, crop, Interpolation.BILINEAR).apply(ImageFiles.read(image));
            assertProbabilities(ortLogits(exported, input), top, 3);
            for (JsonNode p : top) {
                assertEquals(LoadedModel.labels(1000).get(p.get("index").asInt()), p.get("label").asText());
            }
        }
    }

    @Test
    void summaryOfExportedModelCountsTorchvisionsParameters() throws IOException {
        Run run = Run.of(Summary::run, "--model", exported.toString(), "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertEquals(MOBILENET_V3_SMALL_PARAMETERS, report.get("totalParameters").asLong());
        assertEquals(224, report.get("resolution").asInt(), "a free input size is summarised at 224");
        JsonNode nodes = report.get("nodes");
        assertEquals("[1,1000]", nodes.get(nodes.size() - 1).get("outputShape").toString());
        // The named network and its export are the same computation.
        Run named = Run.of(Summary::run, "--model", "mobilenet_v3_small", "--json");
        assertEquals(new ObjectMapper().readTree(named.out()).get("totalMultiplyAdds"), report.get("totalMultiplyAdds"));
    }

    @Test
    void summaryOfFixedBatchModelSaysSo() {
        Run run = Run.of(Summary::run, "--model", TINY_BATCH_OF_2.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains("at 20x20") && run.out().contains("per batch of 2"), run.toString());
        assertTrue(run.outLines().stream().anyMatch(line -> line.contains("[2, 6]") || line.contains("[2,6]")),
                run.toString());
    }

    @Test
    void weightsCannotGoWithAnOnnxFile() throws IOException {
        Path image = ClassifyTest.png(dir.resolve("image.png"), 32, 32);
        Run run = Run.of(Classify::run, "--model", TINY_FREE_BATCH.toString(), "--weights", "w.safetensors",
                image.toString());
        assertOneError(run, "--weights");
        assertTrue(run.err().contains("its own weights"), run.toString());
    }

    @Test
    void aFixedBatchSizeIsEnforcedByName() throws IOException {
        Path image = ClassifyTest.png(dir.resolve("image.png"), 32, 32);
        Run classify = Run.of(Classify::run, "--model", TINY_BATCH_OF_2.toString(), image.toString());
        assertOneError(classify, "batches of exactly 2");
        Run bench = Run.of(Benchmark::run, "--model", TINY_BATCH_OF_2.toString(), "--batch", "3");
        assertOneError(bench, "batches of exactly 2");
    }

    @Test
    void aFileThatIsNotOnnxIsNamed() throws IOException {
        Path file = Files.writeString(dir.resolve("model.bin"), "not a model");
        Run run = Run.of(Summary::run, "--model", file.toString());
        assertOneError(run, "not an .onnx file");
    }

    private static void assertOneError(Run run, String mention) {
        assertEquals(1, run.exitCode(), run.toString());
        assertEquals(1, run.errLines().size(), run.toString());
        assertTrue(run.errLines().getFirst().startsWith("error: ") && run.err().contains(mention), run.toString());
    }

    /** Classify's top-k probabilities against softmax(ONNX Runtime's logits) on the same preprocessed image. */
    private static void assertProbabilities(float[] logits, JsonNode top, int k) {
        double[] expected = Classify.softmax(logits, 0, logits.length);
        assertEquals(k, top.size());
        for (JsonNode p : top) {
            assertEquals(expected[p.get("index").asInt()], p.get("probability").asDouble(), 1e-4, top.toString());
        }
        double best = Arrays.stream(expected).max().orElseThrow();
        assertEquals(best, top.get(0).get("probability").asDouble(), 1e-4, "the first is the most likely");
    }

    static float[] ortLogits(Path file, Tensor input) throws OrtException {
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        long[] shape = Arrays.stream(input.shape().dims()).asLongStream().toArray();
        try (OrtSession session = environment.createSession(file.toString(), new OrtSession.SessionOptions());
             OnnxTensor tensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(input.data()), shape);
             OrtSession.Result result = session.run(Map.of(session.getInputNames().iterator().next(), tensor))) {
            FloatBuffer values = ((OnnxTensor) result.get(0)).getFloatBuffer();
            float[] logits = new float[values.remaining()];
            values.get(logits);
            return logits;
        }
    }

    private static void assertClose(Tensor expected, Tensor actual, double tolerance, String where) {
        assertEquals(expected.shape(), actual.shape(), where);
        float[] e = expected.data();
        float[] a = actual.data();
        for (int i = 0; i < e.length; i++) {
            assertEquals(e[i], a[i], tolerance * (1 + Math.abs(e[i])), where + " at " + i);
        }
    }
}
