package squall.backend.jvm;

import com.google.auto.service.AutoService;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import squall.api.Backend;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.SquallException;
import squall.api.Workers;

/**
 * Runs models on the JVM: operators' CPU kernels where they have one, their portable kernels
 * otherwise. Option {@code threads} (default: all cores) sets the worker count.
 */
@AutoService(Backend.class)
public final class JvmBackend implements Backend {
    /** One pool per thread count for the whole process, so models run side by side do not oversubscribe. */
    private static final Map<Integer, Workers> SHARED_WORKERS = new ConcurrentHashMap<>();

    @Override
    public String id() {
        return "jvm";
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public List<String> devices() {
        return List.of("cpu: " + Runtime.getRuntime().availableProcessors() + " cores, "
                + System.getProperty("os.arch"));
    }

    /**
     * Options: {@code threads}; {@code passes} ({@code all}, the default, or {@code none} to run the
     * graph as written, for debugging); {@code warmup} (milliseconds of runs on a small input at
     * compile so the JIT has compiled the kernels before the first real run; default
     * {@value #DEFAULT_WARMUP_MS}, 0 for none); {@code layout} ({@code auto}, the default: islands
     * of convs in the blocked layout NCHWc where {@code Layouts.blockChannels} finds them, or
     * {@code nchw} to compute every layer in NCHW).
     */
    @Override
    public CompiledModel compile(Model model, Operators operators, Map<String, String> options) {
        Map<String, String> given = options == null ? Map.of() : options;
        boolean passes = switch (given.getOrDefault("passes", "all").trim()) {
            case "all" -> true;
            case "none" -> false;
            default -> throw new SquallException("jvm backend option passes=\"" + given.get("passes")
                    + "\" should be \"all\" or \"none\"");
        };
        boolean blocked = switch (given.getOrDefault("layout", "auto").trim()) {
            case "auto" -> true;
            case "nchw" -> false;
            default -> throw new SquallException("jvm backend option layout=\"" + given.get("layout")
                    + "\" should be \"auto\" or \"nchw\"");
        };
        var compiled = new JvmCompiledModel(model, operators, workers(threads(given)), passes, blocked);
        compiled.warmUp(wholeNumber(given, "warmup", DEFAULT_WARMUP_MS, 0));
        return compiled;
    }

    /** Enough for C2 to compile the hot kernels (about half a second of runs is needed from cold). */
    static final int DEFAULT_WARMUP_MS = 500;

    static Workers workers(int threads) {
        return SHARED_WORKERS.computeIfAbsent(threads, Workers::of);
    }

    private static int threads(Map<String, String> options) {
        return wholeNumber(options, "threads", Runtime.getRuntime().availableProcessors(), 1);
    }

    private static int wholeNumber(Map<String, String> options, String key, int fallback, int minimum) {
        String value = options.get(key);
        if (value == null) {
            return fallback;
        }
        try {
            int number = Integer.parseInt(value.trim());
            if (number >= minimum) {
                return number;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SquallException("jvm backend option " + key + "=\"" + value + "\" should be a whole number >= "
                + minimum);
    }
}
