package examples;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import squall.api.Operators;

/** Lists the operators found on the classpath and the jar or directory each came from. */
@Command(name = "squall ops", mixinStandardHelpOptions = true, version = Tool.VERSION,
        description = "List every registered operator, its provider, and the jar or directory it was loaded from.")
public final class Ops extends Tool {
    @Option(names = "--json", description = "Print the list as JSON.")
    boolean json;

    record Entry(String id, String provider, String location) {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        return execute(new Ops(), args, out, err);
    }

    @Override
    public Integer call() {
        List<Entry> entries = new ArrayList<>();
        Operators.discover().entries().forEach((id, e) -> entries.add(new Entry(id, e.providerClass(), e.location())));
        if (json) {
            printJson(entries);
            return 0;
        }
        int idWidth = entries.stream().mapToInt(e -> e.id().length()).max().orElse(2);
        int providerWidth = entries.stream().mapToInt(e -> e.provider().length()).max().orElse(8);
        String row = "%-" + idWidth + "s  %-" + providerWidth + "s  %s%n";
        out.printf(row, "op", "provider", "from");
        entries.forEach(e -> out.printf(row, e.id(), e.provider(), e.location()));
        out.println(entries.size() + " operators");
        return 0;
    }
}
