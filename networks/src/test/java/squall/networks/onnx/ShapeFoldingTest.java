package squall.networks.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.onnx.OnnxProto.AttributeProto;
import squall.networks.onnx.OnnxProto.AttributeType;
import squall.networks.onnx.OnnxProto.DataType;
import squall.networks.onnx.OnnxProto.Dimension;
import squall.networks.onnx.OnnxProto.GraphProto;
import squall.networks.onnx.OnnxProto.ModelProto;
import squall.networks.onnx.OnnxProto.NodeProto;
import squall.networks.onnx.OnnxProto.OperatorSetId;
import squall.networks.onnx.OnnxProto.TensorProto;
import squall.networks.onnx.OnnxProto.ValueInfoProto;

/**
 * The shape arithmetic PyTorch writes for {@code x.view(x.size(0), -1)} (Shape, Gather, Unsqueeze,
 * Concat, Reshape), built node by node as torch 1.13 emits it at opset 13, and what cannot fold.
 * TorchExportTest runs the same pattern in a whole exported MobileNetV2.
 */
class ShapeFoldingTest {
    private static final Operators OPERATORS = Operators.discover();

    @Test
    void viewOverAFreeBatchFoldsAndRuns() {
        // mean over H, W (ReduceMean keepdims=0 would be the other head); then view(size(0), -1)
        Model model = convert(viewHead("batch", "-1"), List.of(-1L, 3L, 4L, 5L));
        List<String> ops = model.graph().nodes().stream().map(Node::op).toList();
        assertEquals(List.of("global_avg_pool", "reshape"), ops, "shape arithmetic leaves no nodes");

        for (int batch : new int[] {1, 3}) {
            Random random = new Random(batch);
            float[] x = new float[batch * 3 * 20];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextGaussian();
            }
            Tensor out;
            try (CompiledModel compiled = Backends.select("jvm").compile(model, OPERATORS, Map.of())) {
                out = compiled.run(new Tensor(Shape.of(batch, 3, 4, 5), x));
            }
            assertEquals(Shape.of(batch, 3), out.shape());
            for (int plane = 0; plane < batch * 3; plane++) {
                double mean = 0;
                for (int i = 0; i < 20; i++) {
                    mean += x[plane * 20 + i] / 20.0;
                }
                assertEquals(mean, out.data()[plane], 1e-5, "plane " + plane + " with batch " + batch);
            }
        }
    }

    @Test
    void theFreeBatchOnAnotherAxisIsRefused() {
        OnnxImporter.Unsupported e = assertThrows(OnnxImporter.Unsupported.class,
                () -> convert(viewHead("-1", "batch"), List.of(-1L, 3L, 4L, 5L)));
        assertTrue(e.getMessage().contains("free batch size goes to axis 1"), e.getMessage());
    }

    @Test
    void aShapeOfAFreeSpatialSizeIsRefused() {
        OnnxImporter.Unsupported e = assertThrows(OnnxImporter.Unsupported.class,
                () -> convert(viewHead("batch", "-1"), List.of(-1L, 3L, -1L, -1L)));
        assertTrue(e.getMessage().contains("Shape of 'pooled'"), e.getMessage());
    }

    @Test
    void aGatherOfActivationsIsRefusedNotFolded() {
        List<NodeProto> nodes = List.of(node("Gather", List.of("input", "index"), "picked"));
        GraphProto graph = graph(nodes, List.of(longs("index", new long[0], 1)), List.of(-1L, 3L, 4L, 5L), "picked");
        OnnxImporter.Unsupported e = assertThrows(OnnxImporter.Unsupported.class, () -> convert(graph));
        assertTrue(e.getMessage().contains("Gather of 'input', which is computed at run time"), e.getMessage());
    }

    /**
     * GlobalAveragePool, then Reshape to [a, b] where "batch" is Gather(Shape(pooled), 0) unsqueezed
     * and "-1" a constant, joined by Concat in the given order.
     */
    private static GraphProto viewHead(String first, String second) {
        List<NodeProto> nodes = new ArrayList<>();
        nodes.add(node("GlobalAveragePool", List.of("input"), "pooled"));
        nodes.add(node("Shape", List.of("pooled"), "shape"));
        nodes.add(node("Gather", List.of("shape", "zero"), "batch0", new AttributeProto("axis", AttributeType.INT, 0,
                0, ByteString.EMPTY, null, null, new float[0], new long[0], List.of(), List.of(), List.of(), "")));
        nodes.add(node("Unsqueeze", List.of("batch0", "axes"), "batch"));
        nodes.add(node("Concat", List.of(first, second), "target", new AttributeProto("axis", AttributeType.INT, 0, 0,
                ByteString.EMPTY, null, null, new float[0], new long[0], List.of(), List.of(), List.of(), "")));
        nodes.add(node("Reshape", List.of("pooled", "target"), "logits"));
        List<TensorProto> constants = List.of(longs("zero", new long[0], 0),
                longs("axes", new long[] {1}, 0), longs("-1", new long[] {1}, -1));
        return graph(nodes, constants, null, "logits");
    }

    private static NodeProto node(String op, List<String> inputs, String output, AttributeProto... attributes) {
        return new NodeProto(output + "_node", op, "", inputs, List.of(output), List.of(attributes), "");
    }

    private static TensorProto longs(String name, long[] dims, long... values) {
        return TensorProto.ofLongs(name, dims, values);
    }

    private static GraphProto graph(List<NodeProto> nodes, List<TensorProto> constants, List<Long> inputDims,
                                    String output) {
        return new GraphProto("folding", nodes, constants, inputDims == null ? List.of() : List.of(input(inputDims)),
                List.of(new ValueInfoProto(output, DataType.FLOAT.code, null, "")), List.of(), "");
    }

    private static ValueInfoProto input(List<Long> dims) {
        return new ValueInfoProto("input", DataType.FLOAT.code,
                dims.stream().map(d -> new Dimension(d, d < 0 ? "n" : "")).toList(), "");
    }

    private static Model convert(GraphProto graph, List<Long> inputDims) {
        GraphProto withInput = new GraphProto(graph.name(), graph.nodes(), graph.initializers(),
                List.of(input(inputDims)), graph.outputs(), graph.valueInfo(), graph.docString());
        return convert(withInput);
    }

    private static Model convert(GraphProto graph) {
        ModelProto model = new ModelProto(7, List.of(new OperatorSetId("", 13)), "test", "", "", 0, "", graph);
        return OnnxImporter.convert(model, null, "folding.onnx", OPERATORS);
    }
}
