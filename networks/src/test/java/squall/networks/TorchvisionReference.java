package squall.networks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import squall.api.Shape;

/**
 * torchvision 0.14's own description of each network, written by
 * {@code src/test/python/dump_state_dicts.py} into {@code target/} (run here on first use with
 * Debian's /usr/bin/python3). The lines are that script's fixed JSON layout, so a few patterns read
 * them.
 */
record TorchvisionReference(String model, double width, long numParams, double batchNormEpsilon,
                            Weights weights, Map<String, Shape> params) {
    /** Metadata of torchvision's IMAGENET1K_V1 weights; null for MobileNet V1. */
    record Weights(String url, int cropSize, int resizeSize, String interpolation, float[] mean, float[] std) {
    }

    private static List<TorchvisionReference> all;
    private static Throwable loadFailure;

    /** Loaded once; a failure or skip is remembered so python is not run again for every test. */
    static synchronized List<TorchvisionReference> all() {
        if (loadFailure instanceof RuntimeException e) {
            throw e;
        }
        if (loadFailure instanceof AssertionError e) {
            throw e;
        }
        if (all == null) {
            try {
                all = load();
            } catch (RuntimeException | AssertionError e) {
                loadFailure = e;
                throw e;
            }
        }
        return all;
    }

    static TorchvisionReference of(String model, double width) {
        return all().stream().filter(r -> r.model().equals(model) && r.width() == width).findFirst()
                .orElseThrow(() -> new AssertionError("no torchvision reference for " + model + " width " + width));
    }

    private static List<TorchvisionReference> load() {
        Path file = Python.moduleDir().resolve("target/torchvision-state-dicts.jsonl");
        if (!Files.exists(file)) {
            Python.run("dump_state_dicts.py", file.toString());
        }
        try {
            List<TorchvisionReference> references = new ArrayList<>();
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (!line.isBlank()) {
                    references.add(parse(line));
                }
            }
            return references;
        } catch (IOException e) {
            throw new AssertionError("cannot read " + file + ": " + e, e);
        }
    }

    private static TorchvisionReference parse(String line) {
        int paramsAt = line.indexOf("\"params\": {");
        String head = line.substring(0, paramsAt);
        Map<String, Shape> params = new LinkedHashMap<>();
        Matcher m = Pattern.compile("\"([^\"]+)\": \\[([0-9, ]*)]").matcher(line.substring(paramsAt));
        while (m.find()) {
            params.put(m.group(1), Shape.of(ints(m.group(2))));
        }
        Weights weights = head.contains("\"weights\"") ? new Weights(string(head, "url"),
                Integer.parseInt(number(head, "crop_size")), Integer.parseInt(number(head, "resize_size")),
                string(head, "interpolation"), floats(head, "mean"), floats(head, "std")) : null;
        return new TorchvisionReference(string(head, "model"), Double.parseDouble(number(head, "width")),
                Long.parseLong(number(head, "num_params")), Double.parseDouble(number(head, "bn_eps")), weights,
                params);
    }

    private static String string(String json, String key) {
        return find(json, "\"" + key + "\": \"([^\"]*)\"");
    }

    private static String number(String json, String key) {
        return find(json, "\"" + key + "\": ([-+0-9.eE]+)");
    }

    private static float[] floats(String json, String key) {
        String[] items = find(json, "\"" + key + "\": \\[([^]]*)]").split(",");
        float[] values = new float[items.length];
        for (int i = 0; i < items.length; i++) {
            values[i] = Float.parseFloat(items[i].strip());
        }
        return values;
    }

    private static int[] ints(String csv) {
        return csv.isBlank() ? new int[0] : Arrays.stream(csv.split(",")).mapToInt(s -> Integer.parseInt(s.strip())).toArray();
    }

    private static String find(String json, String regex) {
        Matcher m = Pattern.compile(regex).matcher(json);
        if (!m.find()) {
            throw new AssertionError("torchvision reference line lacks " + regex + ": "
                    + json.substring(0, Math.min(200, json.length())) + " (delete target/torchvision-state-dicts.jsonl"
                    + " to regenerate it)");
        }
        return m.group(1);
    }
}
