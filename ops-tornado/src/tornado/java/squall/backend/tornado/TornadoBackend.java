package squall.backend.tornado;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import squall.api.Backend;
import squall.api.CompiledModel;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Parallel;
import squall.api.SquallException;
import uk.ac.manchester.tornado.api.TornadoRuntime;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;

/**
 * Runs a whole network as one TornadoVM task graph on an OpenCL, PTX or SPIR-V device. Available
 * when the JVM was started with TornadoVM's runtime (the {@code tornado} launcher or its argfile)
 * and the runtime found a device.
 *
 * <p>Options: {@code device} (else system property {@code squall.tornado.device}), as
 * "backend:device" indices (the numbers {@code tornado --devices} prints), TornadoVM's default device
 * otherwise; {@code passes}, {@code all} (the default: the compiler passes the JVM backend runs) or
 * {@code none} (the graph as written, for debugging); {@code max_graph_tasks}, the most tasks in one
 * TornadoVM task graph (default: as many as TornadoVM's bytecode buffer holds); {@code kernels},
 * {@code device} (the default: convolutions as {@link DeviceKernels}) or {@code portable} (every
 * operator's own portable kernel, as the JVM backend's reference runs them).
 */
public final class TornadoBackend implements Backend {
    static final String DEVICE_PROPERTY = "squall.tornado.device";
    private static final String TORNADO_PARALLEL = "uk.ac.manchester.tornado.api.annotations.Parallel";

    private static volatile Boolean available;

    /**
     * TornadoVM reads both properties once, when it first loads the classes that use them, so they
     * are set before the probe touches any TornadoVM class.
     */
    private static void configureTornado() {
        // The launcher names TornadoVM's own @Parallel; Squall's kernels use squall.api.Parallel. A
        // user who named yet another annotation keeps it.
        String parallel = System.getProperty("tornado.load.annotation.parallel");
        if (parallel == null || parallel.equals(TORNADO_PARALLEL)) {
            System.setProperty("tornado.load.annotation.parallel", Parallel.class.getName());
        }
        // TornadoVM's default on a kernel it cannot compile is to run the Java code instead, quietly
        // and far slower: Squall wants the error. An explicit -Dtornado.recover.bailout wins.
        if (System.getProperty("tornado.recover.bailout") == null) {
            System.setProperty("tornado.recover.bailout", "False");
        }
        // TornadoVM's VM bytecode buffer (4 KiB by default) is sized for small task graphs; Squall's
        // hold up to a hundred tasks.
        if (System.getProperty("tornado.tvm.maxbytecodesize") == null) {
            System.setProperty("tornado.tvm.maxbytecodesize", String.valueOf(1 << 16));
        }
    }

    @Override
    public String id() {
        return "tornado";
    }

    @Override
    public boolean isAvailable() {
        Boolean known = available;
        if (known == null) {
            known = probe();
            available = known;
        }
        return known;
    }

    private static boolean probe() {
        configureTornado();
        try {
            Class.forName("uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider");
            TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
            if (runtime == null) {
                return false;
            }
            for (int b = 0; b < runtime.getNumBackends(); b++) {
                if (runtime.getBackend(b).getNumDevices() > 0) {
                    return true;
                }
            }
            return false;
        } catch (ClassNotFoundException | LinkageError | RuntimeException e) {
            // No TornadoVM on this JVM (a plain `java`), or a runtime that found no driver.
            return false;
        }
    }

    /** Above the JVM backend's 0: a device, when there is one, is why TornadoVM was started. */
    @Override
    public int priority() {
        return 100;
    }

    @Override
    public List<String> devices() {
        if (!isAvailable()) {
            return List.of();
        }
        List<String> devices = new ArrayList<>();
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        for (int b = 0; b < runtime.getNumBackends(); b++) {
            uk.ac.manchester.tornado.api.TornadoBackend backend = runtime.getBackend(b);
            for (int d = 0; d < backend.getNumDevices(); d++) {
                TornadoDevice device = backend.getDevice(d);
                devices.add(b + ":" + d + " " + backend.getBackendType() + " " + device.getPlatformName() + " -- "
                        + device.getDeviceName().strip());
            }
        }
        return devices;
    }

    @Override
    public CompiledModel compile(Model model, Operators operators, Map<String, String> options) {
        if (!isAvailable()) {
            throw new SquallException("the tornado backend is not available in this JVM: start it with TornadoVM's "
                    + "`tornado` launcher or `java @$TORNADOVM_HOME/tornado-argfile` (source tornado-env.sh with a "
                    + "TornadoVM SDK installed), and check that `tornado --devices` lists a device");
        }
        Map<String, String> given = options == null ? Map.of() : options;
        String choice = given.getOrDefault("device", System.getProperty(DEVICE_PROPERTY));
        boolean passes = switch (given.getOrDefault("passes", "all").strip()) {
            case "all" -> true;
            case "none" -> false;
            default -> throw new SquallException("tornado backend option passes=\"" + given.get("passes")
                    + "\" should be \"all\" or \"none\"");
        };
        boolean deviceKernels = switch (given.getOrDefault("kernels", "device").strip()) {
            case "device" -> true;
            case "portable" -> false;
            default -> throw new SquallException("tornado backend option kernels=\"" + given.get("kernels")
                    + "\" should be \"device\" or \"portable\"");
        };
        return new TornadoCompiledModel(model, operators, device(choice), passes,
                maxGraphTasks(given.get("max_graph_tasks")), deviceKernels);
    }

    private static int maxGraphTasks(String value) {
        if (value == null) {
            return 0;
        }
        try {
            int tasks = Integer.parseInt(value.strip());
            if (tasks >= 1) {
                return tasks;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SquallException("tornado backend option max_graph_tasks=\"" + value + "\" should be a whole number >= 1");
    }

    /** The device named "backend:device", or TornadoVM's default when {@code choice} is null or blank. */
    static TornadoDevice device(String choice) {
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        if (choice == null || choice.isBlank()) {
            return runtime.getDefaultDevice();
        }
        String[] parts = choice.strip().split(":");
        try {
            if (parts.length == 2) {
                int b = Integer.parseInt(parts[0]);
                int d = Integer.parseInt(parts[1]);
                if (b >= 0 && b < runtime.getNumBackends() && d >= 0 && d < runtime.getBackend(b).getNumDevices()) {
                    return runtime.getBackend(b).getDevice(d);
                }
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SquallException("tornado device \"" + choice + "\" (option device or -D" + DEVICE_PROPERTY
                + ") should be \"backend:device\", one of: " + new TornadoBackend().devices());
    }
}
