package examples;

import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * An ONNX file in ONNX Runtime's CPU execution provider, set up as a fair opponent for Squall's
 * jvm backend: {@code threads} intra-op threads (Squall's --threads), one inter-op thread (Squall
 * runs one node at a time), every graph optimisation on. The input tensor is made once, as Squall's
 * callers hold a {@link Tensor}; each {@link #run} copies the output out, as Squall's run returns it.
 */
final class OnnxRuntimeSession implements AutoCloseable {
    private final OrtSession session;
    private final OnnxTensor input;
    private final String inputName;

    private OnnxRuntimeSession(OrtSession session, OnnxTensor input, String inputName) {
        this.session = session;
        this.input = input;
        this.inputName = inputName;
    }

    static OnnxRuntimeSession open(Path file, int threads, Tensor input) {
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        OrtSession session = null;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            // Errors only: ORT's warnings about its own graph rewrites are not the user's business.
            options.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = environment.createSession(file.toString(), options);
            long[] shape = Arrays.stream(input.shape().dims()).asLongStream().toArray();
            OnnxTensor tensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(input.data()), shape);
            return new OnnxRuntimeSession(session, tensor, session.getInputNames().iterator().next());
        } catch (OrtException e) {
            closeQuietly(session);
            throw new SquallException("ONNX Runtime cannot run " + file + ": " + e.getMessage(), e);
        }
    }

    /** ONNX Runtime's version, e.g. "1.29.0". */
    static String version() {
        return OrtEnvironment.getEnvironment().getVersion();
    }

    /** One inference on the input given at {@link #open}; the first output. */
    Tensor run() {
        try (OrtSession.Result result = session.run(Map.of(inputName, input))) {
            OnnxTensor output = (OnnxTensor) result.get(0);
            FloatBuffer values = output.getFloatBuffer();
            float[] data = new float[values.remaining()];
            values.get(data);
            return new Tensor(Shape.of(output.getInfo().getShape()), data);
        } catch (OrtException e) {
            throw new SquallException("ONNX Runtime failed to run: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        input.close();
        closeQuietly(session);
    }

    private static void closeQuietly(OrtSession session) {
        if (session != null) {
            try {
                session.close();
            } catch (OrtException e) {
                // Nothing left to release that the process exit will not.
            }
        }
    }
}
