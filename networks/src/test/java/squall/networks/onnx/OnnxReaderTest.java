package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.onnx.OnnxProto.ModelProto;
import squall.networks.onnx.OnnxProto.NodeProto;
import squall.networks.onnx.OnnxProto.TensorProto;

/**
 * The reader against files written by onnx's Python package (make_onnx_fixtures.py), with values
 * from onnx's own numpy_helper; and against truncated and corrupt files.
 */
class OnnxReaderTest {
    static Path resource(String name) {
        try {
            return Path.of(OnnxReaderTest.class.getResource("/onnx/" + name).toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalStateException("missing test resource onnx/" + name
                    + " (run networks/src/test/python/make_onnx_fixtures.py)", e);
        }
    }

    @Test
    void readsEveryTensorEncodingAsNumpyHelperDoes() throws IOException {
        Path file = resource("tensors.onnx");
        ModelProto model = OnnxReader.readModel(file);
        Map<String, TensorProto> byName = new HashMap<>();
        model.graph().initializers().forEach(t -> byName.put(t.name(), t));
        List<String> lines = Files.readAllLines(resource("tensors_expected.txt"));
        int checked = 0;
        for (String line : lines) {
            if (line.startsWith("#")) {
                continue;
            }
            String[] parts = line.split(" : ");
            String[] head = parts[0].split(" ");
            TensorProto t = byName.get(head[0]);
            long[] dims = head[1].equals("[]") ? new long[0]
                    : Arrays.stream(head[1].replaceAll("[\\[\\]]", "").split(",")).mapToLong(Long::parseLong).toArray();
            assertArrayEquals(dims, t.dims(), head[0]);
            String[] values = parts[1].trim().split(" ");
            if (OnnxTensors.isInteger(t.dataType())) {
                assertArrayEquals(Arrays.stream(values).mapToLong(Long::parseLong).toArray(),
                        OnnxTensors.toLongs(t, file.getParent(), file.toString()), head[0]);
            } else {
                Tensor tensor = OnnxTensors.toTensor(t, file.getParent(), file.toString());
                assertEquals(Shape.of(dims), tensor.shape(), head[0]);
                float[] expected = new float[values.length];
                for (int i = 0; i < values.length; i++) {
                    expected[i] = Float.intBitsToFloat(Integer.parseUnsignedInt(values[i], 16));
                }
                assertArrayEquals(expected, tensor.data(), head[0]);
            }
            checked++;
        }
        assertEquals(byName.size(), checked, "every initializer of tensors.onnx has an expected line");
    }

    @Test
    void readsGraphStructure() {
        ModelProto model = OnnxReader.readModel(resource("tiny_opset13.onnx"));
        assertEquals(13, model.defaultOpset());
        assertEquals("pytorch", model.producerName());
        assertEquals("input", model.graph().inputs().getFirst().name());
        assertEquals(List.of(2L, 3L, 20L, 20L), model.graph().inputs().getFirst().shape().stream()
                .map(OnnxProto.Dimension::value).toList());
        assertEquals("logits", model.graph().outputs().getFirst().name());
        NodeProto conv = model.graph().nodes().getFirst();
        assertEquals("Conv", conv.opType());
        assertArrayEquals(new long[] {2, 2}, conv.attribute("strides").ints());
        assertArrayEquals(new long[] {1, 1, 1, 1}, conv.attribute("pads").ints());
    }

    @Test
    void symbolicBatchDimension() {
        ModelProto model = OnnxReader.readModel(resource("tiny_opset17.onnx"));
        OnnxProto.Dimension batch = model.graph().inputs().getFirst().shape().getFirst();
        assertEquals("batch", batch.param());
        assertTrue(!batch.isFixed());
    }

    @Test
    void truncatedFilesAreBadFilesNamingTheFile(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        byte[] bytes = Files.readAllBytes(resource("tiny_opset13.onnx"));
        for (int cut = 1; cut < bytes.length; cut += Math.max(1, bytes.length / 97)) {
            Path file = dir.resolve("cut" + cut + ".onnx");
            Files.write(file, Arrays.copyOf(bytes, cut));
            SquallException e = assertThrows(SquallException.BadFile.class, () -> OnnxReader.readModel(file),
                    "cut at " + cut);
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        }
    }

    @Test
    void lengthPastTheEndIsReported(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        // field 7 (graph), length-delimited, claiming 1000 bytes where 2 follow
        Path file = dir.resolve("overlong.onnx");
        Files.write(file, new byte[] {0x3a, (byte) 0xe8, 0x07, 0x0a, 0x00});
        SquallException e = assertThrows(SquallException.BadFile.class, () -> OnnxReader.readModel(file));
        assertTrue(e.getMessage().contains("ModelProto > graph") && e.getMessage().contains("1000 bytes"),
                e.getMessage());
    }

    @Test
    void notAModelIsReported(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path file = dir.resolve("text.onnx");
        Files.writeString(file, "this is not a protobuf file at all");
        assertThrows(SquallException.BadFile.class, () -> OnnxReader.readModel(file));
        Path empty = dir.resolve("empty.onnx");
        Files.write(empty, new byte[0]);
        SquallException e = assertThrows(SquallException.BadFile.class, () -> OnnxReader.readModel(empty));
        assertTrue(e.getMessage().contains("no graph"), e.getMessage());
    }

    @Test
    void tensorWithTooFewBytesIsReported(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        // dims [4], data_type FLOAT, raw_data of 8 bytes: two floats where four are declared
        byte[] proto = {0x08, 0x04, 0x10, 0x01, 0x4a, 0x08, 0, 0, (byte) 0x80, 0x3f, 0, 0, 0, 0x40};
        Path file = dir.resolve("short.pb");
        Files.write(file, proto);
        SquallException e = assertThrows(SquallException.BadFile.class, () -> OnnxTensors.readTensorFile(file));
        assertTrue(e.getMessage().contains("16 bytes") && e.getMessage().contains("found 8"), e.getMessage());
        Files.write(file, Arrays.copyOf(proto, 10));
        assertThrows(SquallException.BadFile.class, () -> OnnxTensors.readTensorFile(file));
    }
}
