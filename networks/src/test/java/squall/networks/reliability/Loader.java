package squall.networks.reliability;

import java.lang.management.ManagementFactory;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Locale;
import squall.api.Operators;
import squall.networks.image.ImageFiles;
import squall.networks.onnx.OnnxImporter;
import squall.networks.weights.Weights;

/** The entry points a user's file reaches, by the kind of file: what the hostile tests call. */
enum Loader {
    WEIGHTS {
        @Override
        Object load(Path file) {
            return Weights.load(file);
        }
    },
    ONNX {
        @Override
        Object load(Path file) {
            return OnnxImporter.load(file, OPERATORS);
        }
    },
    IMAGE {
        @Override
        Object load(Path file) {
            return ImageFiles.read(file);
        }
    };

    private static final Operators OPERATORS = Operators.discover();
    /** Where the marker would appear if a payload in the corpus ran; make_hostile_corpus.py names it. */
    static final Path MARKER = Path.of("/tmp/squall-hostile-marker");

    /** Reads the file as a user's command would; returns what it built or throws. */
    abstract Object load(Path file);

    /** By extension, as the command-line tools choose (the loaders themselves go by content). */
    static Loader forFile(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".safetensors") || name.endsWith(".pth")) {
            return WEIGHTS;
        }
        if (name.endsWith(".onnx")) {
            return ONNX;
        }
        return IMAGE;
    }

    /** The committed corpus folder, as test resources. */
    static Path corpus() {
        try {
            return Path.of(Loader.class.getResource("/hostile/corpus.tsv").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Bytes allocated by the calling thread so far (HotSpot's per-thread counter, exact to a TLAB). */
    static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    /**
     * What a loader may allocate for a file of {@code fileBytes}: a fixed allowance for parsers,
     * plus 16 bytes per file byte (float16 weights widen 2x, the ONNX reader holds the file and its
     * tensors). An image may also be decoded to its declared size up to {@link ImageFiles#MAX_PIXELS}
     * before its data turns out to be missing: ImageIO allocates the raster from the header, so
     * there the bound is the pixel limit, not the file (see the README's error catalogue).
     */
    long allocationBound(long fileBytes) {
        long parsers = (64L << 20) + 16 * fileBytes;
        return this == IMAGE ? parsers + 3 * ImageFiles.MAX_PIXELS : parsers;
    }
}
