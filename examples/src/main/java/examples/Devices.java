package examples;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import squall.api.Backend;
import squall.api.Backends;

/** Lists the backends on the classpath, whether each can run here, and their devices. */
@Command(name = "squall devices", mixinStandardHelpOptions = true, version = Tool.VERSION,
        description = "List the backends, whether each is available here, and the devices each can use.")
public final class Devices extends Tool {
    @Option(names = "--json", description = "Print the list as JSON.")
    boolean json;

    record Entry(String id, int priority, boolean available, List<String> devices, String problem) {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Devices(), args, out, err);
    }

    @Override
    public Integer call() {
        List<Entry> entries = new ArrayList<>();
        for (Backend backend : Backends.all()) {
            entries.add(describe(backend));
        }
        if (json) {
            printJson(entries);
            return 0;
        }
        for (Entry e : entries) {
            out.printf("%s (priority %d): %s%n", e.id(), e.priority(), e.available() ? "available"
                    : "not available" + (e.problem() == null ? "" : ": " + e.problem()));
            e.devices().forEach(device -> out.println("  " + device));
        }
        if (entries.stream().noneMatch(e -> e.id().equals("tornado"))) {
            out.println("tornado: not on the classpath (build with a TornadoVM SDK and run through `squall ... "
                    + "--backend tornado` with TORNADOVM_HOME set)");
        }
        return 0;
    }

    /** A backend that fails while probing its devices is reported, not fatal: the others still list. */
    private static Entry describe(Backend backend) {
        boolean available;
        List<String> devices = List.of();
        String problem = null;
        try {
            available = backend.isAvailable();
            if (available) {
                devices = backend.devices();
            }
        } catch (RuntimeException | LinkageError e) {
            available = false;
            problem = e.getMessage() == null ? e.toString() : e.getMessage();
        }
        return new Entry(backend.id(), backend.priority(), available, devices, problem);
    }
}
