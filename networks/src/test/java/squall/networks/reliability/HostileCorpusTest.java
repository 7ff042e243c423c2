package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Model;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * Every file of the hostile corpus (resources/hostile, written by make_hostile_corpus.py) through
 * the loader a user would reach: refused with a SquallException naming the file, or for NaN/Inf
 * weights loaded as they are; never another exception, never a hang, never an allocation the file
 * cannot justify, and nothing a payload asks for is run.
 */
class HostileCorpusTest {
    record Case(String file, String expect, String what) {
        @Override
        public String toString() {
            return file + " (" + what + ")";
        }
    }

    static List<Case> corpus() throws IOException {
        try (Stream<String> lines = Files.lines(Loader.corpus().resolve("corpus.tsv"))) {
            return lines.filter(l -> !l.startsWith("#") && !l.isBlank()).map(l -> l.split("\t", 3))
                    .map(f -> new Case(f[0], f[1], f[2])).toList();
        }
    }

    @BeforeAll
    @AfterAll
    static void noPayloadHasRun() {
        assertFalse(Files.exists(Loader.MARKER), Loader.MARKER + " exists: a payload ran (or a stale file: delete it)");
    }

    @Test
    void corpusIsListedCompleteAndSmall() throws IOException {
        List<Case> cases = corpus();
        Set<String> listed = cases.stream().map(Case::file).collect(Collectors.toCollection(TreeSet::new));
        Set<String> present;
        long bytes;
        try (Stream<Path> files = Files.list(Loader.corpus())) {
            List<Path> all = files.filter(Files::isRegularFile).filter(p -> !p.endsWith("corpus.tsv")).toList();
            present = all.stream().map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
            bytes = all.stream().mapToLong(p -> p.toFile().length()).sum();
        }
        assertEquals(listed, present, "corpus.tsv and the folder disagree: rerun make_hostile_corpus.py (and mvn clean if files were removed)");
        assertEquals(cases.size(), listed.size(), "a file is listed twice");
        assertTrue(cases.size() >= 50, cases.size() + " files");
        assertTrue(bytes < 1 << 20, "the corpus is " + bytes + " bytes; keep it under 1 MB");
        for (Loader kind : Loader.values()) {
            assertTrue(cases.stream().filter(c -> c.expect.equals("refuse"))
                    .filter(c -> Loader.forFile(Path.of(c.file)) == kind).count() >= 10, kind + " has few cases");
        }
    }

    /** What one load did: the object built or the throwable, and the bytes its thread allocated. */
    private record Attempt(Object outcome, long allocated, long bound) {}

    /** Loads {@code file} as a user would, guarded against hangs and measured. */
    private static Attempt attempt(Path file) {
        Loader loader = Loader.forFile(file);
        Attempt[] attempt = new Attempt[1];
        // a hang guard, not a speed target: every file here is refused in milliseconds
        assertTimeoutPreemptively(Duration.ofSeconds(15), () -> {
            long before = Loader.allocatedBytes();
            Object outcome;
            try {
                outcome = loader.load(file);
            } catch (Throwable t) {
                outcome = t;
            }
            attempt[0] = new Attempt(outcome, Loader.allocatedBytes() - before,
                    loader.allocationBound(file.toFile().length()));
        }, file.getFileName() + " did not finish");
        assertFalse(Files.exists(Loader.MARKER), file.getFileName() + " ran its payload");
        return attempt[0];
    }

    @ParameterizedTest
    @MethodSource("corpus")
    void hostileFileIsRefusedCleanly(Case c) {
        Attempt a = attempt(Loader.corpus().resolve(c.file));
        if (c.expect.equals("load")) {
            if (a.outcome instanceof Throwable t) {
                fail(c + " should load (non-finite weights are reported, not refused)", t);
            }
            assertNonFiniteKept(c, a.outcome);
        } else {
            assertRefusedNamingFile(c.toString(), c.file, a.outcome);
        }
        assertTrue(a.allocated <= a.bound, c + ": allocated " + a.allocated + " bytes (bound " + a.bound + ")");
    }

    static List<String> fuzzFinds() throws IOException {
        try (Stream<Path> files = Files.list(Loader.corpus().resolve("fuzz"))) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** Inputs FuzzTest once broke a loader with: now each is refused cleanly. */
    @ParameterizedTest
    @MethodSource("fuzzFinds")
    void fuzzFindIsRefusedCleanly(String name) {
        Attempt a = attempt(Loader.corpus().resolve("fuzz").resolve(name));
        assertRefusedNamingFile(name, name, a.outcome);
        assertTrue(a.allocated <= a.bound, name + ": allocated " + a.allocated + " bytes (bound " + a.bound + ")");
    }

    private static void assertRefusedNamingFile(String what, String fileName, Object outcome) {
        if (outcome instanceof SquallException e) {
            assertTrue(e.getMessage().contains(fileName), what + ": the message does not name the file: "
                    + e.getMessage());
        } else if (outcome instanceof Throwable t) {
            fail(what + ": " + t.getClass().getName() + " instead of a SquallException", t);
        } else {
            fail(what + " was accepted: " + outcome);
        }
    }

    /** The weights come back with their NaN and infinities, not silently replaced. */
    private static void assertNonFiniteKept(Case c, Object loaded) {
        @SuppressWarnings("unchecked")
        Map<String, Tensor> weights = loaded instanceof Model m ? m.weights() : (Map<String, Tensor>) loaded;
        int nan = 0;
        int infinite = 0;
        for (Tensor t : weights.values()) {
            for (float v : t.data()) {
                nan += Float.isNaN(v) ? 1 : 0;
                infinite += Float.isInfinite(v) ? 1 : 0;
            }
        }
        assertTrue(nan >= 1 && infinite >= 1, c + ": " + nan + " NaN and " + infinite + " infinite values loaded");
    }
}
