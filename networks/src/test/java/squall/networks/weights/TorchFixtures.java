package squall.networks.weights;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Assumptions;
import squall.api.Shape;
import squall.api.Tensor;

/**
 * The files {@code src/test/python/weights_fixtures.py} writes with Debian's torch, made once into
 * {@code target/weights-fixtures/}, and the numpy {@code .npz} references that come with them.
 */
final class TorchFixtures {
    /** Debian's python, which has torch; {@code -Dsquall.test.python=...} points elsewhere. */
    static final String PYTHON = System.getProperty("squall.test.python", "/usr/bin/python3");
    static final String INSTALL = "sudo apt-get install python3-torch python3-torchvision python3-numpy";
    private static final Path BASE = Path.of(System.getProperty("basedir", "."));
    private static final Path SCRIPT = BASE.resolve("src/test/python/weights_fixtures.py");
    private static final Path DIR = BASE.resolve("target/weights-fixtures");
    private static final String STAMP = "script.sha256";

    private TorchFixtures() {}

    /** The fixture directory, written now if it is missing or was made by an older script. */
    static synchronized Path dir() throws Exception {
        String stamp = HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(Files.readAllBytes(SCRIPT)));
        if (Files.exists(DIR.resolve(STAMP)) && Files.readString(DIR.resolve(STAMP)).equals(stamp)) {
            return DIR;
        }
        requireTorch();
        Path tmp = Files.createTempDirectory(DIR.getParent(), "weights-fixtures-");
        Process p = new ProcessBuilder(PYTHON, SCRIPT.toString(), tmp.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            fail(SCRIPT + " failed:\n" + output);
        }
        Files.writeString(tmp.resolve(STAMP), stamp);
        deleteTree(DIR);
        Files.move(tmp, DIR, StandardCopyOption.ATOMIC_MOVE);
        return DIR;
    }

    private static void requireTorch() throws IOException, InterruptedException {
        int rc = -1;
        if (Files.isExecutable(Path.of(PYTHON))) {
            Process p = new ProcessBuilder(PYTHON, "-c", "import torch, torchvision, numpy")
                    .redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            rc = p.waitFor();
        }
        if (rc != 0) {
            String why = PYTHON + " with torch, torchvision and numpy is needed to write the weights fixtures; "
                    + "install them with: " + INSTALL;
            if (System.getenv("CI") != null) {
                fail(why);
            }
            Assumptions.abort(why);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        }
    }

    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order':\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    /** The arrays of an uncompressed {@code np.savez} file, in the order they were saved. */
    static Map<String, Tensor> readNpz(Path npz) throws IOException {
        Map<String, Tensor> arrays = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(npz.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                try (InputStream in = zip.getInputStream(e)) {
                    arrays.put(e.getName().replaceFirst("\\.npy$", ""), readNpy(in.readAllBytes(), e.getName()));
                }
            }
        }
        return arrays;
    }

    /** The .npy format: magic, version, header length, a Python dict literal, then the data. */
    private static Tensor readNpy(byte[] bytes, String name) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int major = bytes[6];
        int headerLength = major == 1 ? Short.toUnsignedInt(b.getShort(8)) : b.getInt(8);
        int headerStart = major == 1 ? 10 : 12;
        String header = new String(bytes, headerStart, headerLength, StandardCharsets.ISO_8859_1);
        String descr = group(DESCR, header, name);
        if (!descr.equals("<f4") || !group(FORTRAN, header, name).equals("False")) {
            throw new IllegalArgumentException(name + ": expected little-endian float32 in C order, got " + header);
        }
        String dims = group(SHAPE, header, name).replace(" ", "");
        long[] shape = dims.isEmpty() ? new long[0]
                : Stream.of(dims.split(",")).filter(s -> !s.isEmpty()).mapToLong(Long::parseLong).toArray();
        Shape s = Shape.of(shape);
        float[] data = new float[s.size()];
        b.position(headerStart + headerLength).asFloatBuffer().get(data);
        return new Tensor(s, data);
    }

    private static String group(Pattern p, String header, String name) {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new IllegalArgumentException(name + ": no " + p + " in npy header " + header);
        }
        return m.group(1);
    }
}
