package examples;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import squall.api.Graph;
import squall.api.Node;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.networks.Networks;

/** A network's layers: output shapes, parameters and multiply-adds per node, and totals. */
@Command(name = "squall summary", mixinStandardHelpOptions = true, version = Tool.VERSION, sortOptions = false,
        description = "Print one row per node (name, op, output shape, parameters, multiply-adds) and totals.")
public final class Summary extends Tool {
    @Option(names = "--model", paramLabel = "NAME|FILE.onnx", required = true, completionCandidates = NetworkNames.class,
            description = "A network (${COMPLETION-CANDIDATES}) or an ONNX file.")
    String model;

    @Option(names = "--resolution", paramLabel = "R",
            description = "Input height and width (default: the network's native resolution, an ONNX model's input "
                    + "size, else 224).")
    Integer resolution;

    @Option(names = "--width", paramLabel = "W", defaultValue = "1.0",
            description = "Width multiplier of mobilenet_v1/mobilenet_v2 (default: ${DEFAULT-VALUE}).")
    double width;

    @Option(names = "--classes", paramLabel = "N", defaultValue = "1000",
            description = "Classes of the network's head (default: ${DEFAULT-VALUE}).")
    int classes;

    @Option(names = "--json", description = "Print the summary as JSON.")
    boolean json;

    /** One node; parameters count what torchvision's parameters() counts (no BatchNorm running statistics). */
    record Row(String name, String op, List<Integer> outputShape, long parameters, long multiplyAdds) {
    }

    /** {@code batch} is 1 unless an ONNX model fixes its batch size; the totals are for one batch. */
    record Report(String network, int resolution, int batch, List<Row> nodes, long totalParameters,
                  long totalMultiplyAdds) {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Summary(), args, out, err);
    }

    @Override
    public Integer call() {
        Report report;
        if (LoadedModel.isOnnxFile(model)) {
            if (width != 1.0 || classes != 1000) {
                throw new SquallException("--width and --classes describe a named network; " + model + " has its "
                        + "own (leave them out)");
            }
            LoadedModel loaded = LoadedModel.onnx(Path.of(model), this);
            int fixedBatch = loaded.graph().inputs().values().iterator().next().dim(0);
            report = summarize(loaded.graph(), Math.max(fixedBatch, 1),
                    resolution != null ? resolution : loaded.resolution(), Operators.discover());
        } else {
            LoadedModel.refuseOtherFiles(model);
            int r = resolution != null ? resolution : Networks.info(model).resolution();
            report = summarize(Networks.build(model, width, classes), r, Operators.discover());
        }
        if (json) {
            printJson(report);
        } else {
            print(report);
        }
        return 0;
    }

    /** Rows for a batch of one {@code resolution} x {@code resolution} image. */
    static Report summarize(Graph graph, int resolution, Operators operators) {
        return summarize(graph, 1, resolution, operators);
    }

    /** Rows for a batch of {@code batch} images (a model with a fixed batch size can take no other). */
    static Report summarize(Graph graph, int batch, int resolution, Operators operators) {
        Map<String, Shape> shapes = graph.inferShapes(Shape.of(batch, 3, resolution, resolution), operators);
        Set<String> buffers = runningStatistics(graph);
        Set<String> counted = new HashSet<>();
        List<Row> rows = new ArrayList<>();
        long totalParameters = 0;
        long totalMultiplyAdds = 0;
        for (Node node : graph.nodes()) {
            long parameters = 0;
            List<Shape> inputShapes = new ArrayList<>();
            for (String input : node.inputs()) {
                inputShapes.add(input.isEmpty() ? null : shapes.get(input));
                // A parameter shared by two nodes is counted once, as torchvision counts a tensor once.
                if (graph.parameters().containsKey(input) && !buffers.contains(input) && counted.add(input)) {
                    parameters += graph.parameters().get(input).elementCount();
                }
            }
            List<Shape> outputShapes = node.outputs().stream().map(shapes::get).toList();
            long multiplyAdds = operators.get(node.op()).multiplyAdds(node, inputShapes, outputShapes);
            List<Integer> shape = java.util.Arrays.stream(outputShapes.getFirst().dims()).boxed().toList();
            rows.add(new Row(node.name(), node.op(), shape, parameters, multiplyAdds));
            totalParameters += parameters;
            totalMultiplyAdds += multiplyAdds;
        }
        return new Report(graph.name(), resolution, batch, rows, totalParameters, totalMultiplyAdds);
    }

    /** BatchNorm's running mean and variance (inputs 3 and 4): buffers in torchvision, not parameters. */
    private static Set<String> runningStatistics(Graph graph) {
        Set<String> buffers = new HashSet<>();
        for (Node node : graph.nodes()) {
            if (node.op().equals("batch_norm")) {
                buffers.add(node.input(3));
                buffers.add(node.input(4));
            }
        }
        return buffers;
    }

    private void print(Report report) {
        int nameWidth = Math.max(4, report.nodes().stream().mapToInt(r -> r.name().length()).max().orElse(4));
        int opWidth = Math.max(2, report.nodes().stream().mapToInt(r -> r.op().length()).max().orElse(2));
        String format = "%-" + nameWidth + "s  %-" + opWidth + "s  %-20s %12s %15s%n";
        out.printf(format, "node", "op", "output", "parameters", "multiply-adds");
        for (Row row : report.nodes()) {
            out.printf(format, row.name(), row.op(), row.outputShape(), String.format("%,d", row.parameters()),
                    String.format("%,d", row.multiplyAdds()));
        }
        out.printf("%s at %dx%d: %,d parameters, %,d multiply-adds (%.2f GMAC) per %s, %d nodes%n",
                report.network(), report.resolution(), report.resolution(), report.totalParameters(),
                report.totalMultiplyAdds(), report.totalMultiplyAdds() / 1e9,
                report.batch() == 1 ? "image" : "batch of " + report.batch() + " (the model's fixed batch size)",
                report.nodes().size());
    }
}
