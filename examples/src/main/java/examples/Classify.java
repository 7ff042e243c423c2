package examples;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import squall.api.CompiledModel;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.image.ImageFiles;
import squall.networks.image.Preprocessing;
import squall.networks.image.RgbImage;

/**
 * Classifies images: the top classes of each, with softmax probabilities and names, and where the
 * time went. All images go through the network as one batch.
 */
@Command(name = "squall classify", mixinStandardHelpOptions = true, version = Tool.VERSION, sortOptions = false,
        description = {"Classify images with a network or an ONNX model (default: the bundled digits model).",
                "Without --weights a named network runs with random weights."})
public final class Classify extends Tool {
    @Option(names = "--model", paramLabel = "NAME|FILE.onnx", completionCandidates = NetworkNames.class,
            description = {"A network (${COMPLETION-CANDIDATES}) or an ONNX file with its weights inside",
                    "(default: the bundled digits model)."})
    String model;

    @Mixin
    ModelOptions options;

    @Option(names = {"--crop", "--resolution"}, paramLabel = "R",
            description = "Side of the centre crop the network sees (default: the model's input size).")
    Integer crop;

    @Option(names = "--resize", paramLabel = "S",
            description = "Shorter side after resizing, before the crop (default: the model's, scaled with --crop).")
    Integer resize;

    @Option(names = "--top", paramLabel = "K", defaultValue = "5", description = "Classes shown per image (default: ${DEFAULT-VALUE}).")
    int top;

    @Option(names = "--labels", paramLabel = "FILE", description = "Class names, one per line (default: ImageNet's for 1000 classes).")
    Path labelsFile;

    @Option(names = "--json", description = "Print the results as JSON.")
    boolean json;

    @Parameters(paramLabel = "IMAGE", arity = "1..*", description = "JPEG, PNG, BMP or GIF files.")
    List<Path> images;

    record Prediction(int index, String label, double probability) {
    }

    record ImageResult(String file, List<Prediction> top) {
    }

    record Timings(double loadMs, double preprocessMs, double inferenceMs) {
    }

    record Report(String model, String backend, boolean randomWeights, List<ImageResult> images, Timings timings) {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Classify(), args, out, err);
    }

    @Override
    public Integer call() throws IOException {
        if (top < 1) {
            throw new SquallException("--top must be at least 1, got " + top);
        }
        // Decoding first: a bad image fails in milliseconds, not after a large model has loaded.
        long start = System.nanoTime();
        List<RgbImage> decoded = new ArrayList<>();
        for (Path image : images) {
            decoded.add(ImageFiles.read(image));
        }
        long decodedAt = System.nanoTime();
        LoadedModel loaded = LoadedModel.load(model, options, this);
        List<String> labels = labelsFile == null ? loaded.labels() : readLabels(labelsFile, loaded.labels().size());
        loaded.checkBatch(images.size(), "images:");
        Preprocessing preprocessing = preprocessing(loaded.preprocessing());
        try (CompiledModel compiled = loaded.compile(options)) {
            long loadedAt = System.nanoTime();
            Tensor batch = preprocessing.batch(decoded);
            long preprocessedAt = System.nanoTime();
            Tensor logits = compiled.run(batch);
            long inferredAt = System.nanoTime();

            int classes = logits.shape().dim(1);
            List<ImageResult> results = new ArrayList<>();
            for (int n = 0; n < images.size(); n++) {
                double[] probabilities = softmax(logits.data(), n * classes, classes);
                List<Prediction> best = new ArrayList<>();
                for (int index : topK(probabilities, Math.min(top, classes))) {
                    best.add(new Prediction(index, index < labels.size() ? labels.get(index) : "class " + index,
                            probabilities[index]));
                }
                results.add(new ImageResult(images.get(n).toString(), best));
            }
            Report report = new Report(loaded.description(), compiled.backend(), loaded.randomWeights(), results,
                    new Timings(millis(loadedAt - decodedAt), millis(decodedAt - start + preprocessedAt - loadedAt),
                            millis(inferredAt - preprocessedAt)));
            if (json) {
                printJson(report);
            } else {
                print(report);
            }
        }
        return 0;
    }

    /** The model's preprocessing with --crop and --resize applied; a new crop alone keeps the resize/crop ratio. */
    private Preprocessing preprocessing(Preprocessing model) {
        if (crop == null && resize == null) {
            return model;
        }
        int cropSize = crop != null ? crop : model.cropSize();
        int resizeSize = resize != null ? resize
                : (int) Math.round((double) cropSize * model.resizeSize() / model.cropSize());
        if (cropSize < 1 || resizeSize < 1) {
            throw new SquallException("--crop and --resize must be at least 1; got crop " + cropSize + ", resize "
                    + resizeSize);
        }
        return new Preprocessing(resizeSize, cropSize, model.interpolation(), model.mean(), model.std());
    }

    private void print(Report report) {
        for (ImageResult image : report.images()) {
            out.println(image.file());
            for (Prediction p : image.top()) {
                out.printf("  %6.2f%%  %4d  %s%n", 100 * p.probability(), p.index(), p.label());
            }
        }
        Timings t = report.timings();
        out.printf("%s on %s: load %.0f ms, preprocess %.0f ms, inference %.0f ms (%d image%s in one batch)%n",
                report.model(), report.backend(), t.loadMs(), t.preprocessMs(), t.inferenceMs(), report.images().size(),
                report.images().size() == 1 ? "" : "s");
    }

    /** Softmax of one row of logits, in double and shifted by the maximum so large logits do not overflow. */
    static double[] softmax(float[] logits, int offset, int length) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < length; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double[] p = new double[length];
        double sum = 0;
        for (int i = 0; i < length; i++) {
            p[i] = Math.exp(logits[offset + i] - max);
            sum += p[i];
        }
        for (int i = 0; i < length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Indices of the k largest values, largest first; ties keep the lower index first. */
    static int[] topK(double[] values, int k) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < values.length; i++) {
            order.add(i);
        }
        order.sort((a, b) -> Double.compare(values[b], values[a]));
        return order.subList(0, k).stream().mapToInt(Integer::intValue).toArray();
    }

    private static List<String> readLabels(Path file, int classes) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new SquallException.BadFile("labels file " + file + " does not exist");
        }
        List<String> labels = Files.readAllLines(file).stream().filter(line -> !line.isBlank()).toList();
        if (labels.size() != classes) {
            throw new SquallException.BadFile("labels file " + file + " names " + labels.size()
                    + " classes, the network has " + classes + " (one name per line)");
        }
        return labels;
    }
}
