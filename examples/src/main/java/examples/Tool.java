package examples;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import picocli.CommandLine;
import picocli.CommandLine.Option;
import squall.api.SquallException;

/**
 * What every command shares: its output streams, {@code --verbose}, and the exit-code contract of
 * the tools: 0 on success, 1 when the work failed (one line on stderr saying why), 2 for a command
 * line picocli cannot parse. {@code main} methods delegate to {@link #execute} so tests run the
 * tools in-process with their own streams.
 */
abstract class Tool implements Callable<Integer> {
    static final String VERSION = "Squall 0.1.0-SNAPSHOT";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Option(names = "--verbose", description = "On an error, print the whole message and the stack trace.")
    boolean verbose;

    PrintStream out = System.out;
    PrintStream err = System.err;

    static int execute(Tool tool, String[] args, PrintStream out, PrintStream err) {
        tool.out = out;
        tool.err = err;
        CommandLine commandLine = new CommandLine(tool)
                .setOut(new PrintWriter(out, true))
                .setErr(new PrintWriter(err, true))
                .setParameterExceptionHandler((e, args2) -> {
                    err.println("error: " + e.getMessage() + " (see --help)");
                    return CommandLine.ExitCode.USAGE;
                })
                .setExecutionExceptionHandler((e, line, parsed) -> tool.report(e));
        int code = commandLine.execute(args);
        out.flush();
        return code;
    }

    /** One line for the user; the full story with --verbose. */
    private int report(Exception e) {
        if (verbose) {
            e.printStackTrace(err);
            return 1;
        }
        String message = switch (e) {
            case SquallException s -> firstLine(s.getMessage());
            case NoSuchFileException n -> "file not found: " + n.getFile();
            case UncheckedIOException u when u.getCause() instanceof NoSuchFileException n ->
                    "file not found: " + n.getFile();
            case java.io.IOException io -> io.toString();
            default -> e + " (a bug in Squall? --verbose shows where)";
        };
        err.println("error: " + message);
        return 1;
    }

    /** The first line of a message, and the first item when the message goes on to list several. */
    private static String firstLine(String message) {
        if (message == null) {
            return "(no message)";
        }
        List<String> lines = message.lines().filter(line -> !line.isBlank()).toList();
        if (lines.size() <= 1) {
            return message.strip();
        }
        String first = lines.getFirst().stripTrailing();
        return (first.endsWith(":") ? first + " " : first + "; ") + lines.get(1).strip()
                + (lines.size() > 2 ? ", ... (--verbose lists all)" : "");
    }

    /** A progress note on stderr, only for a person watching a terminal. */
    void progress(String message) {
        if (System.console() != null) {
            err.println(message);
        }
    }

    void printJson(Object value) {
        try {
            out.println(JSON.writeValueAsString(value));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON for " + value.getClass().getSimpleName(), e);
        }
    }

    static double millis(long nanos) {
        return nanos / 1e6;
    }
}
