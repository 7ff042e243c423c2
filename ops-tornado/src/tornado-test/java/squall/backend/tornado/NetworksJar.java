package squall.backend.tornado;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.reflect.InvocationTargetException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Tensor;

/**
 * squall-networks, loaded from the local Maven repository: it cannot be a dependency of this module
 * (networks' tests depend on it), so the tests reach Networks, RandomWeights and the ONNX importer
 * through a class loader over its jar and protobuf-java's.
 */
final class NetworksJar {
    private static ClassLoader loader;

    private NetworksJar() {
    }

    /** The loader, or the test is skipped with how to install squall-networks. */
    static synchronized ClassLoader loader() {
        if (loader == null) {
            Path networks = Path.of(System.getProperty("squall.networks.jar", "none"));
            Path protobuf = Path.of(System.getProperty("squall.protobuf.jar", "none"));
            assumeTrue(Files.isRegularFile(networks) && Files.isRegularFile(protobuf), "squall-networks (" + networks
                    + ") or protobuf-java (" + protobuf + ") is not installed: mvn -pl networks install -DskipTests");
            try {
                loader = new URLClassLoader(new URL[] {networks.toUri().toURL(), protobuf.toUri().toURL()},
                        NetworksJar.class.getClassLoader());
            } catch (MalformedURLException e) {
                throw new IllegalStateException(e);
            }
        }
        return loader;
    }

    @SuppressWarnings("unchecked")
    static List<String> names() {
        return (List<String>) call("squall.networks.Networks", "names", new Class<?>[0]);
    }

    /** The network with its ImageNet head and RandomWeights. */
    @SuppressWarnings("unchecked")
    static Model randomModel(String name, long seed) {
        Graph graph = (Graph) call("squall.networks.Networks", "build", new Class<?>[] {String.class}, name);
        Map<String, Tensor> weights = (Map<String, Tensor>) call("squall.networks.RandomWeights", "generate",
                new Class<?>[] {Graph.class, long.class}, graph, seed);
        return Model.bind(graph, weights, "RandomWeights seed " + seed);
    }

    /** The network with the weights of a safetensors file (Weights.load), as PyTorchParityTest binds them. */
    @SuppressWarnings("unchecked")
    static Model loadedModel(String name, Path weightsFile) {
        Graph graph = (Graph) call("squall.networks.Networks", "build", new Class<?>[] {String.class}, name);
        Map<String, Tensor> weights = (Map<String, Tensor>) call("squall.networks.weights.Weights", "load",
                new Class<?>[] {Path.class}, weightsFile);
        return Model.bind(graph, weights, weightsFile.toString());
    }

    /** A float32 .npy file as a tensor (Npy.read). */
    static Tensor readNpy(Path file) {
        return (Tensor) call("squall.networks.Npy", "read", new Class<?>[] {Path.class}, file);
    }

    /** OnnxImporter.load; an {@code OnnxImporter.Unsupported} comes back as such (a RuntimeException). */
    static Model importOnnx(Path file, Operators operators) {
        return (Model) call("squall.networks.onnx.OnnxImporter", "load", new Class<?>[] {Path.class, Operators.class},
                file, operators);
    }

    /** ONNX test data: a TensorProto file as a float tensor. */
    static Tensor readTensor(Path file) {
        return (Tensor) call("squall.networks.onnx.OnnxTensors", "readTensorFile", new Class<?>[] {Path.class}, file);
    }

    /** Whether the TensorProto in {@code file} holds floating-point numbers. */
    static boolean isFloatTensor(Path file) {
        Object proto = call("squall.networks.onnx.OnnxReader", "readTensor", new Class<?>[] {Path.class}, file);
        try {
            int dataType = (int) proto.getClass().getMethod("dataType").invoke(proto);
            return (boolean) call("squall.networks.onnx.OnnxTensors", "isFloat", new Class<?>[] {int.class}, dataType);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("squall-networks' TensorProto has no dataType(): " + e, e);
        }
    }

    private static Object call(String className, String method, Class<?>[] types, Object... args) {
        try {
            return Class.forName(className, true, loader()).getMethod(method, types).invoke(null, args);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(className + "." + method + " failed: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("squall-networks has no " + className + "." + method + ": " + e, e);
        }
    }
}
