package squall.backend.jvm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Activation buffers assigned by liveness: a value gets a buffer when its step runs and gives it
 * back once its last reader has run, so peak memory follows the widest cut of the network rather
 * than the sum of its layers. A buffer may be larger than a value it holds.
 *
 * @param bufferOfValue the buffer index of each value, -1 for values no step writes (inputs, parameters)
 * @param bufferSizes   the size in floats of each buffer
 */
public record BufferAssignment(int[] bufferOfValue, int[] bufferSizes) {
    /**
     * One kernel launch: the values it reads and the values it writes; with {@code inPlace}, its
     * first write may take the buffer of its first read, if nothing reads that value later.
     */
    public record Step(int[] reads, int[] writes, boolean inPlace) {
        public Step(int[] reads, int[] writes) {
            this(reads, writes, false);
        }
    }

    /**
     * Assigns buffers for values 0..sizes.length-1 written by {@code steps} (in execution order).
     * Values in {@code liveAtEnd} (graph outputs) keep their buffer to the end. A step's outputs
     * share a buffer with its inputs only in place: a kernel reads its inputs while it writes.
     */
    public static BufferAssignment assign(int[] sizes, List<Step> steps, Set<Integer> liveAtEnd) {
        int[] lastRead = new int[sizes.length];
        Arrays.fill(lastRead, -1);
        for (int s = 0; s < steps.size(); s++) {
            for (int v : steps.get(s).reads()) {
                lastRead[v] = s;
            }
        }
        for (int v : liveAtEnd) {
            lastRead[v] = steps.size();
        }
        int[] bufferOf = new int[sizes.length];
        Arrays.fill(bufferOf, -1);
        List<Integer> bufferSizes = new ArrayList<>();
        List<Integer> free = new ArrayList<>();
        for (int s = 0; s < steps.size(); s++) {
            Step step = steps.get(s);
            int taken = -1;
            if (step.inPlace() && step.reads().length > 0 && step.writes().length > 0) {
                int in = step.reads()[0];
                // Read once by this step and by none after it (nor a graph output).
                if (bufferOf[in] >= 0 && lastRead[in] == s
                        && Arrays.stream(step.reads()).filter(r -> r == in).count() == 1) {
                    taken = bufferOf[in];
                    bufferOf[step.writes()[0]] = taken;
                    bufferSizes.set(taken, Math.max(bufferSizes.get(taken), sizes[step.writes()[0]]));
                }
            }
            for (int v : step.writes()) {
                if (bufferOf[v] < 0) {
                    bufferOf[v] = take(free, bufferSizes, sizes[v]);
                }
            }
            // Values read for the last time here, and outputs nobody reads, free their buffers now.
            for (int[] values : new int[][] {step.reads(), step.writes()}) {
                for (int v : values) {
                    // The input whose buffer this step's output took in place does not free it.
                    boolean handedOn = taken >= 0 && bufferOf[v] == taken && v != step.writes()[0];
                    if (bufferOf[v] >= 0 && lastRead[v] <= s && !handedOn && !free.contains(bufferOf[v])) {
                        free.add(bufferOf[v]);
                    }
                }
            }
        }
        return new BufferAssignment(bufferOf, bufferSizes.stream().mapToInt(Integer::intValue).toArray());
    }

    /** The smallest free buffer that fits, else the largest free one grown to fit, else a new one. */
    private static int take(List<Integer> free, List<Integer> bufferSizes, int size) {
        int bestFit = -1;
        int largest = -1;
        for (int b : free) {
            int capacity = bufferSizes.get(b);
            if (capacity >= size && (bestFit < 0 || capacity < bufferSizes.get(bestFit))) {
                bestFit = b;
            }
            if (largest < 0 || capacity > bufferSizes.get(largest)) {
                largest = b;
            }
        }
        int chosen = bestFit >= 0 ? bestFit : largest;
        if (chosen < 0) {
            bufferSizes.add(size);
            return bufferSizes.size() - 1;
        }
        free.remove(Integer.valueOf(chosen));
        bufferSizes.set(chosen, Math.max(bufferSizes.get(chosen), size));
        return chosen;
    }

    /** Floats held by all buffers together. */
    public long totalFloats() {
        long total = 0;
        for (int size : bufferSizes) {
            total += size;
        }
        return total;
    }
}
