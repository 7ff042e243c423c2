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
    /** One kernel launch: the values it reads and the values it writes. */
    public record Step(int[] reads, int[] writes) {
    }

    /**
     * Assigns buffers for values 0..sizes.length-1 written by {@code steps} (in execution order).
     * Values in {@code liveAtEnd} (graph outputs) keep their buffer to the end. A step's outputs
     * never share a buffer with its inputs, since a kernel reads its inputs while it writes.
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
            for (int v : step.writes()) {
                bufferOf[v] = take(free, bufferSizes, sizes[v]);
            }
            // Values read for the last time here, and outputs nobody reads, free their buffers now.
            for (int[] values : new int[][] {step.reads(), step.writes()}) {
                for (int v : values) {
                    if (bufferOf[v] >= 0 && lastRead[v] <= s && !free.contains(bufferOf[v])) {
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
