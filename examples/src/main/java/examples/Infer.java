package examples;

import java.io.PrintStream;
import java.nio.file.Path;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import squall.api.CompiledModel;
import squall.api.Tensor;
import squall.networks.Npy;

/** Runs a network on a preprocessed input tensor from a .npy file and writes the output as .npy. */
@Command(name = "squall infer", mixinStandardHelpOptions = true, version = Tool.VERSION, sortOptions = false,
        description = {"Run a network or an ONNX model on a float32 [N,3,H,W] .npy tensor and save its output "
                + "(logits) as .npy.",
                "Without --weights the network runs with random weights."})
public final class Infer extends Tool {
    @Option(names = "--model", paramLabel = "NAME|FILE.onnx", required = true, completionCandidates = NetworkNames.class,
            description = "A network (${COMPLETION-CANDIDATES}) or an ONNX file with its weights inside.")
    String model;

    @Mixin
    ModelOptions options;

    @Option(names = "--input", paramLabel = "IN.npy", required = true, description = "The input tensor.")
    Path input;

    @Option(names = "--output", paramLabel = "OUT.npy", required = true, description = "Where to write the output.")
    Path output;

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Infer(), args, out, err);
    }

    @Override
    public Integer call() {
        Tensor tensor = Npy.read(input);
        LoadedModel loaded = LoadedModel.load(model, options, this);
        loaded.checkBatch(tensor.shape().rank() > 0 ? tensor.shape().dim(0) : 0, "an input of batch size");
        try (CompiledModel compiled = loaded.compile(options)) {
            long start = System.nanoTime();
            Tensor result = compiled.run(tensor);
            long end = System.nanoTime();
            Npy.write(output, result);
            out.printf("%s %s -> %s %s (%s on %s, %.0f ms)%n", input, tensor.shape(), output, result.shape(),
                    loaded.description(), compiled.backend(), millis(end - start));
        }
        return 0;
    }
}
