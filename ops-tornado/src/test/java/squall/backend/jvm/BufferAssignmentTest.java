package squall.backend.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

/** Liveness-based buffer assignment: reuse once the last reader has run, never while a value is live. */
class BufferAssignmentTest {
    private static BufferAssignment.Step step(int[] reads, int... writes) {
        return new BufferAssignment.Step(reads, writes);
    }

    @Test
    void aChainNeedsTwoBuffersNotOnePerLayer() {
        // value 0 is the graph input (no step writes it); layer i reads i and writes i + 1.
        int layers = 10;
        int[] sizes = new int[layers + 1];
        List<BufferAssignment.Step> steps = new ArrayList<>();
        for (int i = 0; i <= layers; i++) {
            sizes[i] = 100;
        }
        for (int i = 0; i < layers; i++) {
            steps.add(step(new int[] {i}, i + 1));
        }
        var assignment = BufferAssignment.assign(sizes, steps, Set.of(layers));
        assertEquals(-1, assignment.bufferOfValue()[0], "the graph input gets no activation buffer");
        assertEquals(2, assignment.bufferSizes().length);
        assertEquals(200, assignment.totalFloats(), "the widest cut: one layer's input and output");
        checkNoLiveOverlap(sizes, steps, Set.of(layers), assignment);
    }

    @Test
    void aResidualBranchKeepsItsShortcutAlive() {
        // 1 = stem(0); 2 = a(1); 3 = b(2); 4 = add(3, 1); 5 = head(4)
        int[] sizes = {50, 50, 80, 50, 50, 10};
        var steps = List.of(step(new int[] {0}, 1), step(new int[] {1}, 2), step(new int[] {2}, 3),
                step(new int[] {3, 1}, 4), step(new int[] {4}, 5));
        var assignment = BufferAssignment.assign(sizes, steps, Set.of(5));
        int[] bufferOf = assignment.bufferOfValue();
        assertNotEquals(bufferOf[1], bufferOf[3], "the shortcut lives across the branch");
        assertEquals(3, assignment.bufferSizes().length);
        checkNoLiveOverlap(sizes, steps, Set.of(5), assignment);
        // Widest cut: at step b, values 1 (50), 2 (80) and 3 (50) are live.
        assertEquals(180, assignment.totalFloats());
    }

    @Test
    void outputsStayAliveAndUnreadOutputsAreFreed() {
        // 1 = f(0) is a graph output also read by 2 = g(1); 3 = unread side output of g.
        int[] sizes = {4, 4, 4, 4, 4};
        var steps = List.of(step(new int[] {0}, 1), step(new int[] {1}, 2, 3), step(new int[] {2}, 4));
        var assignment = BufferAssignment.assign(sizes, steps, Set.of(1, 4));
        checkNoLiveOverlap(sizes, steps, Set.of(1, 4), assignment);
        assertEquals(assignment.bufferOfValue()[3], assignment.bufferOfValue()[4], "the dead output's buffer is reused");
    }

    @Test
    void aStepInPlaceTakesItsInputsBufferOnlyWhereNothingReadsTheInputLater() {
        // 1 = stem(0); 2 = depthwise(1) in place; 3 = conv(2); 4 = depthwise(3) in place, but 3
        // is read again by 5 = add(4, 3); 6 = depthwise(5, 5) in place, reading 5 twice.
        int[] sizes = {4, 4, 4, 4, 4, 4, 4, 4};
        var steps = List.of(step(new int[] {0}, 1), inPlace(new int[] {1}, 2), step(new int[] {2}, 3),
                inPlace(new int[] {3}, 4), step(new int[] {4, 3}, 5), inPlace(new int[] {5, 5}, 6),
                inPlace(new int[] {6}, 7));
        var assignment = BufferAssignment.assign(sizes, steps, Set.of(6, 7));
        int[] bufferOf = assignment.bufferOfValue();
        checkNoLiveOverlap(sizes, steps, Set.of(6, 7), assignment);
        assertEquals(bufferOf[1], bufferOf[2], "the depthwise output over its input");
        assertNotEquals(bufferOf[3], bufferOf[4], "3 is read after the depthwise");
        assertNotEquals(bufferOf[5], bufferOf[6], "5 is read twice by the step");
        assertNotEquals(bufferOf[6], bufferOf[7], "6 is a graph output");
        var fromInput = BufferAssignment.assign(new int[] {4, 4}, List.of(inPlace(new int[] {0}, 1)), Set.of(1));
        assertEquals(0, fromInput.bufferOfValue()[1], "a graph input has no buffer to take");
    }

    @Test
    void aValueWrittenInPlaceKeepsTheBufferUntilItsOwnLastReader() {
        // 1 = a(0); 2 = b(1) in place; 3 = c(2); 4 = d(3); 5 = add(4, 2): the buffer 1 handed to 2
        // must not be given to 3 or 4.
        int[] sizes = {4, 4, 4, 4, 4, 4};
        var steps = List.of(step(new int[] {0}, 1), inPlace(new int[] {1}, 2), step(new int[] {2}, 3),
                step(new int[] {3}, 4), step(new int[] {4, 2}, 5));
        var assignment = BufferAssignment.assign(sizes, steps, Set.of(5));
        checkNoLiveOverlap(sizes, steps, Set.of(5), assignment);
        assertEquals(assignment.bufferOfValue()[1], assignment.bufferOfValue()[2]);
        // Grown in place: a larger output takes the input's buffer and the buffer grows.
        var grown = BufferAssignment.assign(new int[] {4, 4, 9}, List.of(step(new int[] {0}, 1),
                inPlace(new int[] {1}, 2)), Set.of(2));
        assertEquals(grown.bufferOfValue()[1], grown.bufferOfValue()[2]);
        assertEquals(9, grown.bufferSizes()[grown.bufferOfValue()[2]]);
    }

    private static BufferAssignment.Step inPlace(int[] reads, int... writes) {
        return new BufferAssignment.Step(reads, writes, true);
    }

    /** Random DAGs: every value fits its buffer and no two values live at once share one. */
    @RepeatedTest(20)
    void randomGraphsNeverShareALiveBuffer(org.junit.jupiter.api.RepetitionInfo info) {
        Random random = new Random(info.getCurrentRepetition());
        int count = 30;
        int[] sizes = new int[count + 1];
        List<BufferAssignment.Step> steps = new ArrayList<>();
        for (int v = 0; v <= count; v++) {
            sizes[v] = 1 + random.nextInt(1000);
        }
        for (int v = 1; v <= count; v++) {
            int[] reads = random.ints(1 + random.nextInt(3), 0, v).distinct().toArray();
            steps.add(new BufferAssignment.Step(reads, new int[] {v}, random.nextBoolean()));
        }
        Set<Integer> outputs = Set.of(count, 1 + random.nextInt(count - 1));
        var assignment = BufferAssignment.assign(sizes, steps, outputs);
        checkNoLiveOverlap(sizes, steps, outputs, assignment);
        long sum = 0;
        for (int v = 1; v <= count; v++) {
            sum += sizes[v];
        }
        assertTrue(assignment.totalFloats() <= sum, "never more than one buffer per value");
    }

    /**
     * Value v is live from the step that writes it to its last reader (or the end, for outputs).
     * A step in place may write its first output over its first input when that step is the
     * input's last reader, and reads it once.
     */
    private static void checkNoLiveOverlap(int[] sizes, List<BufferAssignment.Step> steps, Set<Integer> outputs,
                                           BufferAssignment assignment) {
        int[] born = new int[sizes.length];
        int[] dies = new int[sizes.length];
        java.util.Arrays.fill(born, -1);
        for (int s = 0; s < steps.size(); s++) {
            for (int v : steps.get(s).writes()) {
                born[v] = s;
                dies[v] = Math.max(dies[v], s);
            }
            for (int v : steps.get(s).reads()) {
                dies[v] = Math.max(dies[v], s);
            }
        }
        outputs.forEach(v -> dies[v] = steps.size());
        int[] bufferOf = assignment.bufferOfValue();
        for (int v = 0; v < sizes.length; v++) {
            if (born[v] < 0) {
                continue;
            }
            assertTrue(assignment.bufferSizes()[bufferOf[v]] >= sizes[v], "value " + v + " fits its buffer");
            for (int u = v + 1; u < sizes.length; u++) {
                boolean overlap = born[u] >= 0 && born[u] <= dies[v] && born[v] <= dies[u];
                BufferAssignment.Step by = born[u] >= 0 ? steps.get(born[u]) : null;
                int value = v;
                boolean inPlace = by != null && by.inPlace() && by.reads()[0] == v && by.writes()[0] == u
                        && dies[v] == born[u] && java.util.Arrays.stream(by.reads()).filter(r -> r == value).count() == 1;
                if (overlap && !inPlace) {
                    assertNotEquals(bufferOf[u], bufferOf[v], "values " + u + " and " + v + " are live together");
                }
            }
        }
    }
}
