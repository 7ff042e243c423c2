package squall.networks.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import squall.api.SquallException;
import squall.api.Tensor;

/** Files written by PyTorch load to exactly the values numpy wrote beside them. */
class WeightsTest {

    private static void assertSameTensors(Map<String, Tensor> expected, Map<String, Tensor> actual, String what) {
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(actual.keySet()), what + ": keys in file order");
        for (var e : expected.entrySet()) {
            Tensor t = actual.get(e.getKey());
            assertEquals(e.getValue().shape(), t.shape(), what + ": shape of " + e.getKey());
            assertArrayEquals(e.getValue().data(), t.data(), what + ": values of " + e.getKey());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"small_zip.pth", "small_legacy.pth", "small.safetensors",
            "small_wrapped_zip.pth", "small_wrapped_legacy.pth", "small_protocol4_zip.pth",
            "small_protocol4_legacy.pth", "small_parameters_zip.pth"})
    void smallStateDictMatchesNumpy(String file) throws Exception {
        Path dir = TorchFixtures.dir();
        Map<String, Tensor> expected = TorchFixtures.readNpz(dir.resolve("small_expected.npz"));
        Map<String, Tensor> loaded = Weights.load(dir.resolve(file));
        assertSameTensors(expected, loaded, file);
        assertFalse(loaded.containsKey("bn.num_batches_tracked"), "the BatchNorm counter is dropped");
        assertEquals(0, loaded.get("scale").shape().rank(), "a 0-d tensor stays 0-d");
    }

    @ParameterizedTest
    @ValueSource(strings = {"mobilenet_v2_zip.pth", "mobilenet_v2_legacy.pth", "mobilenet_v2.safetensors"})
    void torchvisionMobileNetV2MatchesNumpy(String file) throws Exception {
        Path dir = TorchFixtures.dir();
        Map<String, Tensor> expected = TorchFixtures.readNpz(dir.resolve("mobilenet_v2_expected.npz"));
        Map<String, Tensor> loaded = Weights.load(dir.resolve(file));
        assertSameTensors(expected, loaded, file);
        assertTrue(loaded.containsKey("features.0.0.weight") && loaded.containsKey("classifier.1.weight"));
    }

    @Test
    void formatIsToldByContentNotExtension(@TempDir Path tmp) throws Exception {
        Path dir = TorchFixtures.dir();
        assertEquals(Weights.Format.PTH_ZIP, Weights.format(dir.resolve("small_zip.pth")));
        assertEquals(Weights.Format.PTH_LEGACY, Weights.format(dir.resolve("small_legacy.pth")));
        assertEquals(Weights.Format.PTH_LEGACY, Weights.format(dir.resolve("small_protocol4_legacy.pth")));
        assertEquals(Weights.Format.SAFETENSORS, Weights.format(dir.resolve("small.safetensors")));
        Path renamed = Files.copy(dir.resolve("small.safetensors"), tmp.resolve("small.pth"));
        assertSameTensors(Weights.load(dir.resolve("small_zip.pth")), Weights.load(renamed), "renamed safetensors");
    }

    @Test
    void nonContiguousViewIsRefused() throws Exception {
        Path file = TorchFixtures.dir().resolve("noncontiguous.pth");
        var e = assertThrows(SquallException.BadFile.class, () -> Weights.load(file));
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("non-contiguous")
                && e.getMessage().contains("contiguous()"), e.getMessage());
    }

    @Test
    void integerTensorIsRefusedByName() throws Exception {
        Path file = TorchFixtures.dir().resolve("int_tensor.pth");
        var e = assertThrows(SquallException.BadFile.class, () -> Weights.load(file));
        assertTrue(e.getMessage().contains("'index'") && e.getMessage().contains("I64"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"nonfinite_zip.pth", "nonfinite.safetensors"})
    void nonFiniteValuesLoadWithAWarning(String file) throws Exception {
        float[] w = Weights.load(TorchFixtures.dir().resolve(file)).get("w").data();
        assertArrayEquals(new float[] {1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}, w);
    }

    @ParameterizedTest
    @ValueSource(strings = {"evil_zip.pth", "evil_legacy.pth"})
    void torchSavedPayloadIsRefusedAndNotRun(String file) throws Exception {
        Path dir = TorchFixtures.dir();
        var e = assertThrows(SquallException.BadFile.class, () -> Weights.load(dir.resolve(file)));
        assertTrue(e.getMessage().contains("posix.system") && e.getMessage().contains(file), e.getMessage());
        assertFalse(Files.exists(dir.resolve("pwned")), "the payload's command must not have run");
    }

    @Test
    void missingFileNamesTheFileAndTheFormats(@TempDir Path tmp) {
        Path missing = tmp.resolve("nope.pth");
        var e = assertThrows(SquallException.BadFile.class, () -> Weights.load(missing));
        assertTrue(e.getMessage().contains("nope.pth") && e.getMessage().contains("does not exist")
                && e.getMessage().contains("safetensors"), e.getMessage());
    }

    @Test
    void unknownFormatNamesTheFileAndTheFormats(@TempDir Path tmp) throws Exception {
        Path onnx = Files.write(tmp.resolve("model.onnx"), new byte[] {0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't'});
        var e = assertThrows(SquallException.BadFile.class, () -> Weights.load(onnx));
        assertTrue(e.getMessage().contains("model.onnx") && e.getMessage().contains("safetensors")
                && e.getMessage().contains("legacy"), e.getMessage());
        Path pickle = Files.write(tmp.resolve("numbers.pth"), new byte[] {(byte) 0x80, 2, 'K', 1, '.'});
        var p = assertThrows(SquallException.BadFile.class, () -> Weights.load(pickle));
        assertTrue(p.getMessage().contains("numbers.pth") && p.getMessage().contains("not a torch.save checkpoint"),
                p.getMessage());
        Path empty = Files.write(tmp.resolve("empty.safetensors"), new byte[0]);
        assertThrows(SquallException.BadFile.class, () -> Weights.load(empty));
    }
}
