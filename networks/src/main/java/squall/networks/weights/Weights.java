package squall.networks.weights;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * Loads a weights file into tensors named by their state_dict keys, in file order. The format is
 * recognised from the first bytes, never the extension: checkpoints are routinely renamed
 * ({@code .pt}, {@code .bin}, {@code .ckpt}).
 */
public final class Weights {
    private static final Logger LOG = LoggerFactory.getLogger(Weights.class);
    static final String SUPPORTED = "safetensors (F32/F16/BF16), PyTorch .pth zip format (torch.save, torch >= 1.6) "
            + "and PyTorch legacy .pth format (torch < 1.6 or _use_new_zipfile_serialization=False)";

    private Weights() {}

    /** The layouts {@link #load} recognises. */
    public enum Format { SAFETENSORS, PTH_ZIP, PTH_LEGACY }

    /**
     * Reads every float tensor of a weights file as float32. BatchNorm {@code num_batches_tracked}
     * counters are dropped; NaN or infinite values are logged as a warning, not refused, since a
     * checkpoint may legitimately hold them in unused buffers.
     */
    public static Map<String, Tensor> load(Path file) {
        Map<String, Tensor> tensors = switch (format(file)) {
            case SAFETENSORS -> Safetensors.read(file);
            case PTH_ZIP -> TorchCheckpoint.readZip(file);
            case PTH_LEGACY -> TorchCheckpoint.readLegacy(file);
        };
        warnNonFinite(file, tensors);
        return tensors;
    }

    /** Which layout a file has, from its first bytes. */
    public static Format format(Path file) {
        if (!Files.exists(file)) {
            throw new SquallException.BadFile("weights file " + file.toAbsolutePath() + " does not exist; Squall reads "
                    + SUPPORTED);
        }
        if (!Files.isRegularFile(file)) {
            throw new SquallException.BadFile("weights file " + file + " is not a regular file; Squall reads "
                    + SUPPORTED);
        }
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(32);
        } catch (IOException e) {
            throw new SquallException.BadFile("cannot read weights file " + file + ": " + e.getMessage(), e);
        }
        if (head.length >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] == 3 || head[2] == 5)) {
            return Format.PTH_ZIP; // a local file header, or the end record of an empty zip
        }
        if (startsWithLegacyMagic(head)) {
            return Format.PTH_LEGACY;
        }
        if (head.length >= 9 && head[8] == '{'
                && ByteBuffer.wrap(head, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong() > 0) {
            return Format.SAFETENSORS;
        }
        boolean pickle = head.length >= 2 && (head[0] & 0xff) == 0x80;
        throw new SquallException.BadFile("weights file " + file + " is in no format Squall reads (it starts with "
                + HexFormat.ofDelimiter(" ").formatHex(head, 0, Math.min(head.length, 16))
                + (pickle ? ", a Python pickle that is not a torch.save checkpoint" : "") + "). Squall reads "
                + SUPPORTED + "; the format is told by content, not by the file extension");
    }

    /**
     * The legacy format opens with the pickle of torch's magic number: PROTO n, an optional FRAME
     * (protocol 4+), then LONG1 of 10 bytes holding 0x1950a86a20f9469cfc6c.
     */
    private static boolean startsWithLegacyMagic(byte[] head) {
        if (head.length < 2 || (head[0] & 0xff) != 0x80) {
            return false;
        }
        int at = head.length > 2 && (head[2] & 0xff) == 0x95 ? 11 : 2;
        byte[] magic = TorchCheckpoint.LEGACY_MAGIC.toByteArray(); // big-endian; the pickle holds it little-endian
        if (head.length < at + 2 + magic.length || (head[at] & 0xff) != 0x8a || head[at + 1] != magic.length) {
            return false;
        }
        for (int i = 0; i < magic.length; i++) {
            if (head[at + 2 + i] != magic[magic.length - 1 - i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * The float32 array for one tensor of {@code file}. A file too big for the heap is a common
     * mistake (the default heap is a quarter of RAM), so running out is reported with the sizes
     * and the fix, not as an OutOfMemoryError; a failed array allocation leaves the heap usable.
     */
    static float[] floats(Path file, String tensor, int count) {
        try {
            return new float[count];
        } catch (OutOfMemoryError e) {
            throw outOfHeap(file, "tensor '" + tensor + "'", 4L * count);
        }
    }

    /** The error for a file whose {@code what} of {@code bytes} did not fit in the heap. */
    static SquallException outOfHeap(Path file, String what, long bytes) {
        long fileBytes = file.toFile().length();
        return new SquallException("not enough Java heap to load " + file + ": " + what + " needs " + mib(bytes)
                + " and the whole file about " + mib(fileBytes) + " as float32 (twice that for a float16 file), but "
                + "the heap is at most " + mib(Runtime.getRuntime().maxMemory()) + ". Start java with a larger heap, "
                + "e.g. -Xmx" + (3 * fileBytes / (1 << 30) + 1) + "g");
    }

    private static String mib(long bytes) {
        return (bytes + (1 << 20) - 1) / (1 << 20) + " MiB";
    }

    private static void warnNonFinite(Path file, Map<String, Tensor> tensors) {
        for (var e : tensors.entrySet()) {
            int nonFinite = 0;
            for (float v : e.getValue().data()) {
                if (!Float.isFinite(v)) {
                    nonFinite++;
                }
            }
            if (nonFinite > 0) {
                LOG.warn("{}: tensor '{}' {} has {} NaN or infinite values of {}", file, e.getKey(),
                        e.getValue().shape(), nonFinite, e.getValue().data().length);
            }
        }
    }
}
