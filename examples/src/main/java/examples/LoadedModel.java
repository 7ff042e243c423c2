package examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

import squall.api.Backend;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.RandomWeights;
import squall.networks.image.Interpolation;
import squall.networks.image.Preprocessing;
import squall.networks.onnx.OnnxImporter;
import squall.networks.weights.Weights;

/**
 * A network with its weights, the input size it was made for, the preprocessing its weights
 * expect, and its class names: what the tools need before they compile. Named networks come from
 * {@link Networks}, {@code .onnx} files from {@link OnnxImporter} (weights inside); with no name and
 * no weights, the small digits classifier bundled in this jar.
 *
 * @param onnxFile the ONNX file the model was imported from, null for a named or bundled network
 */
record LoadedModel(String description, Model model, int resolution, Preprocessing preprocessing,
                   List<String> labels, boolean randomWeights, Path onnxFile) {
    /** The seed of the stand-in weights, so a run without --weights is repeatable. */
    static final long RANDOM_SEED = 0;

    /** The input size of an ONNX model whose height and width are free: ImageNet's usual crop. */
    static final int ONNX_DEFAULT_RESOLUTION = 224;

    private static final String DIGITS = "/squall/digits/";
    private static final String IMAGENET_CLASSES = "/squall/imagenet_classes.txt";

    /** --model and the options that go with it; {@code name} null means the bundled digits model. */
    static LoadedModel load(String name, ModelOptions options, Tool tool) {
        if (name == null) {
            if (options.weights != null) {
                throw new SquallException("--weights " + options.weights + " needs --model NAME, the network the "
                        + "weights are for (one of: " + String.join(", ", Networks.names()) + ")");
            }
            return digits();
        }
        if (isOnnxFile(name)) {
            if (options.weights != null) {
                throw new SquallException("--weights " + options.weights + " cannot go with --model " + name
                        + ": an ONNX file carries its own weights (leave out --weights)");
            }
            if (options.width != 1.0 || options.classes != 1000) {
                throw new SquallException("--width and --classes describe a named network; " + name + " has its "
                        + "own (leave them out)");
            }
            return onnx(Path.of(name), tool);
        }
        refuseOtherFiles(name);
        Graph graph = Networks.build(name, options.width, options.classes);
        Preprocessing preprocessing = Preprocessing.of(Networks.info(name));
        int resolution = Networks.info(name).resolution();
        List<String> labels = labels(options.classes);
        if (options.weights == null) {
            tool.err.println("warning: no --weights given: " + name + " runs with random weights, so its "
                    + "predictions are meaningless");
            return new LoadedModel(name + " (random weights)",
                    Model.bind(graph, RandomWeights.generate(graph, RANDOM_SEED), "random weights"), resolution,
                    preprocessing, labels, true, null);
        }
        tool.progress("loading " + options.weights + sizeNote(options.weights));
        Map<String, Tensor> weights = Weights.load(options.weights);
        return new LoadedModel(name + " (" + options.weights.getFileName() + ")",
                Model.bind(graph, weights, options.weights.toString()), resolution, preprocessing, labels, false, null);
    }

    /** A file given as --model that is not .onnx gets a better answer than "unknown network". */
    static void refuseOtherFiles(String model) {
        if (!Networks.names().contains(model) && Files.isRegularFile(Path.of(model))) {
            throw new SquallException("--model " + model + " is a file but not an .onnx file; --model takes a network "
                    + "name (" + String.join(", ", Networks.names()) + ") or a FILE.onnx");
        }
    }

    /** True when --model names a file to import rather than a built-in network. */
    static boolean isOnnxFile(String model) {
        return model.toLowerCase(Locale.ROOT).endsWith(".onnx");
    }

    /**
     * An image classifier from an ONNX file: one [N,3,H,W] input. Its preprocessing is ImageNet's
     * (bilinear resize to 256/224 of the crop, mean/std) at the input size the file fixes, else at
     * {@value #ONNX_DEFAULT_RESOLUTION}; a 1000-way output gets ImageNet's class names.
     */
    static LoadedModel onnx(Path file, Tool tool) {
        tool.progress("importing " + file + sizeNote(file));
        Model model = OnnxImporter.load(file);
        Graph graph = model.graph();
        if (graph.inputs().size() != 1 || graph.outputs().size() != 1) {
            throw new SquallException("ONNX model " + file + " has inputs " + graph.inputs().keySet() + " and outputs "
                    + graph.outputs() + "; the tools run image classifiers with one input and one output");
        }
        Shape input = graph.inputs().values().iterator().next();
        if (input.rank() != 4 || (input.dim(1) >= 0 && input.dim(1) != 3)) {
            throw new SquallException("ONNX model " + file + " takes input '" + graph.inputs().keySet().iterator().next()
                    + "' of shape " + input + "; the tools run image classifiers with an [N,3,H,W] input (-1 = any)");
        }
        int height = input.dim(2);
        int width = input.dim(3);
        if (height != width) {
            throw new SquallException("ONNX model " + file + " takes input of shape " + input + "; the tools run square "
                    + "images: export it with equal height and width, or both free");
        }
        int resolution = height >= 0 ? height : ONNX_DEFAULT_RESOLUTION;
        Preprocessing preprocessing = Preprocessing.imagenet((int) Math.round(resolution * 256.0 / 224), resolution,
                Interpolation.BILINEAR);
        int batch = Math.max(input.dim(0), 1);
        Shape output = graph.inferShapes(Shape.of(batch, 3, resolution, resolution), Operators.discover())
                .get(graph.outputs().getFirst());
        int classes = (int) (output.elementCount() / batch);
        return new LoadedModel(file.getFileName() + " (ONNX)", model, resolution, preprocessing, labels(classes), false,
                file);
    }

    /** Refuses a batch size that an input with a fixed batch dimension cannot take, saying why. */
    void checkBatch(int batch, String what) {
        Shape input = graph().inputs().values().iterator().next();
        if (input.dim(0) >= 0 && input.dim(0) != batch) {
            throw new SquallException(description + " takes batches of exactly " + input.dim(0) + " (input shape "
                    + input + "), got " + what + " " + batch + "; export the model with a free batch dimension");
        }
    }

    /** The digits classifier trained for these examples, described by its model.properties. */
    static LoadedModel digits() {
        Properties properties = new Properties();
        try (InputStream in = resource(DIGITS + "model.properties")) {
            properties.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String network = property(properties, "network");
        int classes = Integer.parseInt(property(properties, "classes"));
        Graph graph = Networks.build(network, Double.parseDouble(property(properties, "width")), classes);
        Preprocessing preprocessing = new Preprocessing(Integer.parseInt(property(properties, "resize")),
                Integer.parseInt(property(properties, "crop")), Interpolation.of(property(properties, "interpolation")),
                floats(property(properties, "mean")), floats(property(properties, "std")));
        Path weightsFile = resourceFile(DIGITS + "model.safetensors");
        Model model = Model.bind(graph, Weights.load(weightsFile), "the bundled digits model");
        List<String> labels = readLines(DIGITS + "labels.txt");
        if (labels.size() != classes) {
            throw new SquallException("the bundled digits model has " + classes + " classes but labels.txt names "
                    + labels.size() + "; rebuild the examples jar");
        }
        return new LoadedModel("digits (" + network + ", bundled)", model, preprocessing.cropSize(), preprocessing,
                labels, false, null);
    }

    /** Compiles on the named backend (null: the default one) with the tools' options. */
    CompiledModel compile(ModelOptions options) {
        Backend backend = Backends.select(options.backend);
        Map<String, String> backendOptions = new HashMap<>();
        if (options.threads != null) {
            backendOptions.put("threads", options.threads.toString());
        }
        if (options.layout != null) {
            backendOptions.put("layout", options.layout);
        }
        return backend.compile(model, Operators.discover(), backendOptions);
    }

    Graph graph() {
        return model.graph();
    }

    /** ImageNet's names for a 1000-class head, else "class 0", "class 1", ... */
    static List<String> labels(int classes) {
        if (classes == 1000) {
            return readLines(IMAGENET_CLASSES);
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < classes; i++) {
            names.add("class " + i);
        }
        return names;
    }

    private static String sizeNote(Path file) {
        try {
            return " (" + Files.size(file) / (1 << 20) + " MiB)";
        } catch (IOException e) {
            return "";
        }
    }

    private static String property(Properties properties, String key) {
        String value = properties.getProperty(key);
        if (value == null) {
            throw new SquallException("the bundled digits model's model.properties lacks '" + key
                    + "'; rebuild the examples jar");
        }
        return value.trim();
    }

    private static float[] floats(String commaSeparated) {
        String[] parts = commaSeparated.split(",");
        float[] values = new float[parts.length];
        for (int i = 0; i < parts.length; i++) {
            values[i] = Float.parseFloat(parts[i].trim());
        }
        return values;
    }

    private static InputStream resource(String name) {
        InputStream in = LoadedModel.class.getResourceAsStream(name);
        if (in == null) {
            throw new SquallException("resource " + name + " is missing from the examples jar; rebuild it "
                    + "(mvn -pl examples install)");
        }
        return in;
    }

    private static List<String> readLines(String name) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(resource(name), StandardCharsets.UTF_8))) {
            return reader.lines().filter(line -> !line.isBlank()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A resource as a file: itself when on a directory classpath, else a temporary copy out of the jar. */
    private static Path resourceFile(String name) {
        URL url = LoadedModel.class.getResource(name);
        if (url == null) {
            throw new SquallException("resource " + name + " is missing from the examples jar; rebuild it "
                    + "(mvn -pl examples install)");
        }
        try {
            if (url.getProtocol().equals("file")) {
                return Path.of(url.toURI());
            }
            Path copy = Files.createTempFile("squall-", "-" + Path.of(name).getFileName());
            copy.toFile().deleteOnExit();
            try (InputStream in = url.openStream()) {
                Files.copy(in, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            return copy;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
