package squall.api;

import java.util.Map;

/**
 * A model ready to run on one backend. {@link #run} is thread-safe; {@link #close} releases the
 * backend's resources, after which {@code run} throws.
 */
public interface CompiledModel extends AutoCloseable {
    /** Runs a single-input, single-output model. The input is NCHW; any batch size is accepted. */
    Tensor run(Tensor input);

    /** Runs with named inputs, returning every graph output by name. */
    Map<String, Tensor> run(Map<String, Tensor> inputs);

    /** The backend that compiled this model, e.g. "jvm". */
    String backend();

    @Override
    void close();
}
