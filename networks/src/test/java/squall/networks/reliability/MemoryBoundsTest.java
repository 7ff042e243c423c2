package squall.networks.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import squall.api.SquallException;
import squall.networks.weights.Weights;

/**
 * Memory limits that a user meets with a real file, not a forged one (forged sizes are the corpus'
 * job, where every load is held to an allocation bound): a weights file bigger than the heap is
 * refused with the sizes and the -Xmx to use, in a JVM started here with a small heap.
 */
class MemoryBoundsTest {
    @TempDir
    Path tmp;

    /** Loads the file named by args[0] and prints what happened; run in a JVM with a small heap. */
    public static final class LoadInSmallHeap {
        public static void main(String[] args) {
            try {
                System.out.println("loaded " + Weights.load(Path.of(args[0])).size() + " tensors");
            } catch (SquallException e) {
                System.out.println("SquallException: " + e.getMessage());
            } catch (Throwable t) {
                System.out.println("other: " + t);
            }
        }
    }

    /** A valid safetensors file of one float32 tensor of {@code floats} zeros (sparse on disk). */
    private Path bigSafetensors(long floats) throws IOException {
        String header = "{\"big.weight\":{\"dtype\":\"F32\",\"shape\":[" + floats + "],\"data_offsets\":[0,"
                + 4 * floats + "]}}";
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        Path file = tmp.resolve("big.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
            f.write(json);
            f.setLength(8 + json.length + 4 * floats);
        }
        return file;
    }

    @Test
    void weightsBiggerThanTheHeapAreRefusedWithTheSizes() throws Exception {
        Path file = bigSafetensors(48L << 20); // 192 MiB of float32 for a 64 MiB heap
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(List.of(java, "-Xmx64m", "-cp", System.getProperty("java.class.path"),
                LoadInSmallHeap.class.getName(), file.toString())).redirectErrorStream(true).start();
        assertTrue(p.waitFor(2, TimeUnit.MINUTES), "the small-heap JVM did not finish");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("SquallException: not enough Java heap to load " + file), out);
        assertTrue(out.contains("'big.weight' needs 192 MiB") && out.contains("-Xmx1g"), out);
    }

    @Test
    void theSameFileLoadsInTheTestHeap() throws IOException {
        // the positive control: the file is valid, only the heap was small
        Path file = bigSafetensors(48L << 20);
        assertEquals(48 << 20, Weights.load(file).get("big.weight").data().length);
        Files.delete(file);
    }
}
