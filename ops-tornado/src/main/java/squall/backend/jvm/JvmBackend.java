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

    @Override
    public CompiledModel compile(Model model, Operators operators, Map<String, String> options) {
        return new JvmCompiledModel(model, operators, workers(threads(options)));
    }

    static Workers workers(int threads) {
        return SHARED_WORKERS.computeIfAbsent(threads, Workers::of);
    }

    private static int threads(Map<String, String> options) {
        String value = options == null ? null : options.get("threads");
        if (value == null) {
            return Runtime.getRuntime().availableProcessors();
        }
        try {
            int threads = Integer.parseInt(value.trim());
            if (threads >= 1) {
                return threads;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SquallException("jvm backend option threads=\"" + value + "\" should be a whole number >= 1");
    }
}
