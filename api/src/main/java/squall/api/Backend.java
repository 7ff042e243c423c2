package squall.api;

import java.util.List;

/**
 * A place to run models, registered in {@code META-INF/services/squall.api.Backend}. The JVM
 * backend is always available; others (TornadoVM) only when their runtime is present.
 */
public interface Backend {
    /** Stable id: "jvm", "tornado". */
    String id();

    /** Whether this backend can run here (its runtime and at least one device found). */
    boolean isAvailable();

    /** Higher wins when no backend is named. */
    int priority();

    /** Human-readable descriptions of the devices this backend can use. */
    List<String> devices();

    /** Compiles a model with these options (backend-specific keys such as "threads", "device"). */
    CompiledModel compile(Model model, Operators operators, java.util.Map<String, String> options);
}
