package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import squall.api.SquallException;

/**
 * Seeded mutation fuzzing of every loader: valid seed files (resources/hostile/seeds) and the
 * hostile corpus, mutated by bit flips, byte inserts and deletes, tampered length fields, splices
 * and truncation. Inputs that once broke a loader are kept in resources/hostile/fuzz/ (named
 * {@code <target prefix>-fuzz-<what>}) and seed later runs. Every input must load or throw a {@link SquallException}, within
 * {@link #PER_INPUT_SECONDS} and the loader's allocation bound. Anything else fails the test and the
 * input is saved to {@code target/fuzz-failures/} with its seed.
 *
 * <p>Time per loader: {@code -Dsquall.fuzz.seconds} (default 20). The run is reproducible from
 * {@code -Dsquall.fuzz.seed} (default below); input {@code i} of a target is mutated with
 * {@code Random(inputSeed(seed, target, i))}, and a saved failure names that seed.
 */
class FuzzTest {
    static final long SECONDS = Long.getLong("squall.fuzz.seconds", 20);
    static final long SEED = Long.getLong("squall.fuzz.seed", 0x5EED_5EA11L);
    static final long PER_INPUT_SECONDS = 20;
    static final Path FAILURES = Path.of("target", "fuzz-failures");

    /** The formats fuzzed, each with the seeds and corpus files it starts from. */
    enum Target {
        SAFETENSORS(Loader.WEIGHTS, n -> n.endsWith(".safetensors")),
        PTH_ZIP(Loader.WEIGHTS, n -> n.startsWith("pz-") || n.startsWith("valid-zip")),
        PTH_LEGACY(Loader.WEIGHTS, n -> n.startsWith("pl-") || n.startsWith("valid-legacy")),
        ONNX(Loader.ONNX, n -> n.endsWith(".onnx")),
        IMAGE(Loader.IMAGE, n -> n.matches(".*\\.(png|jpg|bmp|gif)"));

        final Loader loader;
        final Predicate<String> takes;

        Target(Loader loader, Predicate<String> takes) {
            this.loader = loader;
            this.takes = takes;
        }
    }

    /** A starting point; {@code valid} for the seeds, which load. */
    record Input(String origin, byte[] bytes, boolean valid) {}

    /** One input that did not load or fail cleanly. */
    record Failure(long inputSeed, String what, String origin, byte[] bytes) {}

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(Target.class)
    void everyMutantLoadsOrFailsCleanly(Target target) throws Exception {
        List<Input> seeds = seeds(target);
        assertTrue(seeds.stream().filter(Input::valid).count() >= 1 && seeds.size() >= 5, target + " has few seeds");
        Map<String, Integer> outcomes = new LinkedHashMap<>();
        List<Failure> failures = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SECONDS);
        ExecutorService worker = Executors.newSingleThreadExecutor(daemon());
        long inputs = 0;
        try {
            for (long i = 0; System.nanoTime() < deadline && failures.size() < 20; i++, inputs++) {
                long inputSeed = inputSeed(SEED, target, i);
                Random random = new Random(inputSeed);
                // mostly valid seeds, so that mutants get past the first checks into the deeper ones
                List<Input> from = random.nextInt(3) > 0 ? seeds.stream().filter(Input::valid).toList() : seeds;
                Input seed = from.get(random.nextInt(from.size()));
                byte[] mutant = mutate(seed.bytes, seeds, random);
                // the name keeps the extension: the tools pick a loader by it, the loaders by content
                Path file = tmp.resolve("input-" + (i % 2) + extension(seed.origin));
                Files.write(file, mutant);
                Future<String> run = worker.submit(() -> loadOnce(target.loader, file, mutant.length));
                String outcome;
                try {
                    outcome = run.get(PER_INPUT_SECONDS, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    run.cancel(true);
                    worker.shutdownNow();
                    worker = Executors.newSingleThreadExecutor(daemon());
                    outcome = "FAIL hang: no result in " + PER_INPUT_SECONDS + " s";
                } catch (ExecutionException e) {
                    outcome = "FAIL " + stackTrace(e.getCause());
                }
                if (outcome.startsWith("FAIL ")) {
                    failures.add(new Failure(inputSeed, outcome.substring(5), seed.origin, mutant));
                    outcomes.merge("failed", 1, Integer::sum);
                } else {
                    outcomes.merge(outcome, 1, Integer::sum);
                }
            }
        } finally {
            worker.shutdownNow();
        }
        System.out.printf("fuzz %s: %d inputs in %d s from %d seeds (seed %d): %s%n", target, inputs, SECONDS,
                seeds.size(), SEED, outcomes);
        for (Failure f : failures) {
            save(target, f);
        }
        long count = inputs;
        assertTrue(failures.isEmpty(), () -> failures.size() + " of " + count + " " + target + " inputs did not load "
                + "or fail cleanly; saved in " + FAILURES.toAbsolutePath() + ". First: " + failures.getFirst().what);
    }

    /** "loaded" or "refused", or "FAIL ..." for anything else; runs on the worker thread. */
    private static String loadOnce(Loader loader, Path file, long size) {
        long before = Loader.allocatedBytes();
        String outcome;
        try {
            loader.load(file);
            outcome = "loaded";
        } catch (SquallException e) {
            if (!e.getMessage().contains(file.getFileName().toString())) {
                return "FAIL the message does not name the file: " + stackTrace(e);
            }
            outcome = "refused";
        } catch (Throwable t) {
            return "FAIL " + stackTrace(t);
        }
        long allocated = Loader.allocatedBytes() - before;
        if (allocated > loader.allocationBound(size)) {
            return "FAIL allocated " + allocated + " bytes for a file of " + size + " (bound "
                    + loader.allocationBound(size) + ")";
        }
        return outcome;
    }

    static long inputSeed(long seed, Target target, long i) {
        // SplitMix64 finaliser: neighbouring inputs get unrelated streams
        long z = seed + 0x9E3779B97F4A7C15L * (i + 1) + ((long) target.ordinal() << 56);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** One to four stacked mutations of {@code seed}, some splicing in another of {@code seeds}. */
    static byte[] mutate(byte[] seed, List<Input> seeds, Random random) {
        byte[] b = seed.clone();
        int rounds = random.nextInt(3) > 0 ? 1 : 2 + random.nextInt(3);
        for (int k = 0; k < rounds; k++) {
            b = switch (random.nextInt(8)) {
                case 0 -> flipBits(b, random);
                case 1 -> overwrite(b, random);
                case 2 -> insert(b, random);
                case 3 -> delete(b, random);
                case 4, 5 -> tamperLength(b, random);
                case 6 -> splice(b, seeds.get(random.nextInt(seeds.size())).bytes, random);
                default -> Arrays.copyOf(b, b.length == 0 ? 0 : random.nextInt(b.length));
            };
        }
        return b;
    }

    private static byte[] flipBits(byte[] b, Random random) {
        for (int n = 1 + random.nextInt(8); n > 0 && b.length > 0; n--) {
            b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
        }
        return b;
    }

    private static byte[] overwrite(byte[] b, Random random) {
        for (int n = 1 + random.nextInt(16); n > 0 && b.length > 0; n--) {
            b[random.nextInt(b.length)] = (byte) random.nextInt(256);
        }
        return b;
    }

    private static byte[] insert(byte[] b, Random random) {
        int at = random.nextInt(b.length + 1);
        byte[] chunk = new byte[1 + random.nextInt(64)];
        if (random.nextBoolean() && b.length > 0) {
            // a copy of nearby bytes: repeats a field or a chunk rather than adding noise
            for (int i = 0; i < chunk.length; i++) {
                chunk[i] = b[Math.min(b.length - 1, Math.max(0, at - chunk.length) + i)];
            }
        } else {
            random.nextBytes(chunk);
        }
        byte[] out = new byte[b.length + chunk.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(chunk, 0, out, at, chunk.length);
        System.arraycopy(b, at, out, at + chunk.length, b.length - at);
        return out;
    }

    private static byte[] delete(byte[] b, Random random) {
        if (b.length == 0) {
            return b;
        }
        int at = random.nextInt(b.length);
        int n = Math.min(b.length - at, 1 + random.nextInt(32));
        byte[] out = new byte[b.length - n];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(b, at + n, out, at, b.length - at - n);
        return out;
    }

    /** Writes a boundary value where a length, count, offset or dimension might be. */
    private static byte[] tamperLength(byte[] b, Random random) {
        int width = new int[] {1, 2, 4, 8}[random.nextInt(4)];
        if (b.length < width) {
            return b;
        }
        long[] values = {0, 1, -1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffffL, 0x80000000L, 0xffffffffL,
                Long.MAX_VALUE, Long.MIN_VALUE, b.length, b.length + 1, b.length - 1, 1L << 32, 1L << 40,
                random.nextLong()};
        long value = values[random.nextInt(values.length)];
        ByteBuffer buffer = ByteBuffer.wrap(b).order(random.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
        int at = random.nextInt(b.length - width + 1);
        switch (width) {
            case 1 -> buffer.put(at, (byte) value);
            case 2 -> buffer.putShort(at, (short) value);
            case 4 -> buffer.putInt(at, (int) value);
            default -> buffer.putLong(at, value);
        }
        return b;
    }

    private static byte[] splice(byte[] b, byte[] other, Random random) {
        int head = random.nextInt(b.length + 1);
        int tail = random.nextInt(other.length + 1);
        byte[] out = Arrays.copyOf(b, head + other.length - tail);
        System.arraycopy(other, tail, out, head, other.length - tail);
        return out;
    }

    /** The valid seeds, the corpus files and the kept fuzz finds of this target. */
    static List<Input> seeds(Target target) throws IOException {
        List<Input> inputs = new ArrayList<>();
        Path corpus = Loader.corpus();
        for (Path dir : List.of(corpus.resolve("seeds"), corpus, corpus.resolve("fuzz"))) {
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : files.filter(Files::isRegularFile).sorted().toList()) {
                    if (target.takes.test(p.getFileName().toString())) {
                        inputs.add(new Input(corpus.relativize(p).toString(), Files.readAllBytes(p),
                                dir.endsWith("seeds")));
                    }
                }
            }
        }
        return inputs;
    }

    private static String extension(String name) {
        int dot = name.lastIndexOf('.');
        return dot < 0 ? "" : name.substring(dot);
    }

    private static void save(Target target, Failure f) throws IOException {
        Files.createDirectories(FAILURES);
        String base = target.name().toLowerCase(java.util.Locale.ROOT) + "-" + Long.toHexString(f.inputSeed);
        Files.write(FAILURES.resolve(base + extension(f.origin)), f.bytes);
        Files.writeString(FAILURES.resolve(base + ".txt"), "target " + target + "\nrun seed " + SEED
                + " (-Dsquall.fuzz.seed=" + SEED + ")\ninput seed " + f.inputSeed + " (Random of FuzzTest.mutate)\n"
                + "mutated from " + f.origin + "\n\n" + f.what + "\n");
    }

    private static String stackTrace(Throwable t) {
        StringWriter s = new StringWriter();
        t.printStackTrace(new PrintWriter(s));
        return s.toString();
    }

    private static java.util.concurrent.ThreadFactory daemon() {
        return r -> {
            Thread t = new Thread(r, "fuzz-loader");
            t.setDaemon(true);
            return t;
        };
    }
}
