package squall.api;

/**
 * A CPU-tuned implementation of one node for the JVM backend (Vector API, blocking, threads). It
 * captures its buffers from the {@link KernelContext} it was made with and must produce what the
 * operator's portable kernels produce.
 */
@FunctionalInterface
public interface CpuKernel {
    void run(Workers workers);
}
