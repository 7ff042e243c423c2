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
import java.util.Map;
import java.util.Properties;

import squall.api.Backend;
import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.RandomWeights;
import squall.networks.image.Interpolation;
import squall.networks.image.Preprocessing;
import squall.networks.weights.Weights;

/**
 * A network with its weights, the preprocessing its weights expect, and its class names: what the
 * tools need before they compile. Named networks come from {@link Networks}; with no name and no
 * weights, the small digits classifier bundled in this jar.
 */
record LoadedModel(String description, Model model, Preprocessing preprocessing, List<String> labels,
                   boolean randomWeights) {
    /** The seed of the stand-in weights, so a run without --weights is repeatable. */
    static final long RANDOM_SEED = 0;

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
        Graph graph = Networks.build(name, options.width, options.classes);
        Preprocessing preprocessing = Preprocessing.of(Networks.info(name));
        List<String> labels = labels(options.classes);
        if (options.weights == null) {
            tool.err.println("warning: no --weights given: " + name + " runs with random weights, so its "
                    + "predictions are meaningless");
            return new LoadedModel(name + " (random weights)",
                    Model.bind(graph, RandomWeights.generate(graph, RANDOM_SEED), "random weights"), preprocessing,
                    labels, true);
        }
        tool.progress("loading " + options.weights + sizeNote(options.weights));
        Map<String, Tensor> weights = Weights.load(options.weights);
        return new LoadedModel(name + " (" + options.weights.getFileName() + ")",
                Model.bind(graph, weights, options.weights.toString()), preprocessing, labels, false);
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
        return new LoadedModel("digits (" + network + ", bundled)", model, preprocessing, labels, false);
    }

    /** Compiles on the named backend (null: the default one) with the tools' options. */
    CompiledModel compile(ModelOptions options) {
        Backend backend = Backends.select(options.backend);
        Map<String, String> backendOptions = new HashMap<>();
        if (options.threads != null) {
            backendOptions.put("threads", options.threads.toString());
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
