package squall.networks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;

/**
 * Reads files that numpy 1.24 wrote (src/test/resources/squall/networks/npy), and has numpy read
 * what {@link Npy#write} writes. The fixtures were made with:
 * <pre>
 * a = (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)
 * np.save('f4_2x3.npy', a); np.save('f4_big_endian.npy', a.astype('>f4'))
 * np.lib.format.write_array(open('f4_version2.npy', 'wb'), a, version=(2, 0))
 * np.save('f4_scalar.npy', np.float32(3.25))
 * np.save('f4_vector.npy', np.array([1.5, -2.0, 1e-8], dtype=np.float32))
 * np.save('u1_image.npy', (np.arange(12) * 20).astype(np.uint8).reshape(1, 2, 2, 3))
 * np.save('i8.npy', np.array([-3, 0, 2**40], dtype=np.int64))
 * np.save('f4_fortran.npy', np.asfortranarray(a)); np.save('f8.npy', a.astype(np.float64))
 * </pre>
 */
class NpyTest {
    private static final float[] ARANGE_2X3 = {-1f, -0.5f, 0f, 0.5f, 1f, 1.5f};

    @TempDir
    Path temp;

    private static Path fixture(String name) {
        try {
            return Path.of(NpyTest.class.getResource("npy/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void readsFloat32InBothByteOrdersAndEveryHeaderVersion() {
        for (String name : new String[] {"f4_2x3.npy", "f4_big_endian.npy", "f4_version2.npy"}) {
            Tensor t = Npy.read(fixture(name));
            assertEquals(Shape.of(2, 3), t.shape(), name);
            assertArrayEquals(ARANGE_2X3, t.data(), name);
        }
    }

    @Test
    void readsScalarsAndVectors() {
        Tensor scalar = Npy.read(fixture("f4_scalar.npy"));
        assertEquals(0, scalar.shape().rank());
        assertArrayEquals(new float[] {3.25f}, scalar.data());
        Tensor vector = Npy.read(fixture("f4_vector.npy"));
        assertEquals(Shape.of(3), vector.shape());
        assertArrayEquals(new float[] {1.5f, -2.0f, 1e-8f}, vector.data());
    }

    @Test
    void widensUint8ToFloat() {
        Tensor image = Npy.read(fixture("u1_image.npy"));
        assertEquals(Shape.of(1, 2, 2, 3), image.shape());
        for (int i = 0; i < 12; i++) {
            assertEquals(i * 20, image.data()[i]);
        }
    }

    @Test
    void readsInt64() {
        Npy.Longs longs = Npy.readLongs(fixture("i8.npy"));
        assertEquals(Shape.of(3), longs.shape());
        assertArrayEquals(new long[] {-3, 0, 1L << 40}, longs.data());
    }

    @Test
    void refusesFortranOrderAndOtherDtypesSayingWhatToDo() {
        var fortran = assertThrows(SquallException.BadFile.class, () -> Npy.read(fixture("f4_fortran.npy")));
        assertTrue(fortran.getMessage().contains("Fortran") && fortran.getMessage().contains("ascontiguousarray"),
                fortran.getMessage());
        var f8 = assertThrows(SquallException.BadFile.class, () -> Npy.read(fixture("f8.npy")));
        assertTrue(f8.getMessage().contains("'<f8'") && f8.getMessage().contains("f8.npy"), f8.getMessage());
        var notLongs = assertThrows(SquallException.BadFile.class, () -> Npy.readLongs(fixture("f4_2x3.npy")));
        assertTrue(notLongs.getMessage().contains("int64"), notLongs.getMessage());
    }

    @Test
    void refusesTruncatedAndForeignFiles() throws IOException {
        byte[] good = Files.readAllBytes(fixture("f4_2x3.npy"));

        Path truncated = temp.resolve("truncated.npy");
        Files.write(truncated, Arrays.copyOf(good, good.length - 4));
        var shortData = assertThrows(SquallException.BadFile.class, () -> Npy.read(truncated));
        assertTrue(shortData.getMessage().contains("needs 24 data bytes, the file has 20"), shortData.getMessage());

        Path headerCut = temp.resolve("header-cut.npy");
        Files.write(headerCut, Arrays.copyOf(good, 40));
        assertThrows(SquallException.BadFile.class, () -> Npy.read(headerCut));

        Path text = temp.resolve("text.npy");
        Files.writeString(text, "a,b,c\n1,2,3\n");
        var magic = assertThrows(SquallException.BadFile.class, () -> Npy.read(text));
        assertTrue(magic.getMessage().contains("not a .npy file"), magic.getMessage());

        Path noShape = temp.resolve("no-shape.npy");
        String header = new String(good, 10, good[8], StandardCharsets.ISO_8859_1).replace("'shape'", "'shapes'");
        byte[] broken = good.clone();
        System.arraycopy(header.getBytes(StandardCharsets.ISO_8859_1), 0, broken, 10, header.length());
        Files.write(noShape, broken);
        var shape = assertThrows(SquallException.BadFile.class, () -> Npy.read(noShape));
        assertTrue(shape.getMessage().contains("'shape' is missing"), shape.getMessage());
    }

    @Test
    void writesWhatItReads() {
        for (Shape shape : new Shape[] {Shape.of(2, 3), Shape.of(5), Shape.of(), Shape.of(1, 3, 7, 2)}) {
            float[] values = new float[shape.size()];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) Math.sin(i) * 100;
            }
            Path file = temp.resolve("roundtrip.npy");
            Npy.write(file, new Tensor(shape, values));
            Tensor back = Npy.read(file);
            assertEquals(shape, back.shape());
            assertArrayEquals(values, back.data());
        }
    }

    /** numpy is the reference for the writer: it must load our file as the same array. */
    @Test
    void numpyReadsWhatItWrites() throws Exception {
        Path file = temp.resolve("written.npy");
        Npy.write(file, new Tensor(Shape.of(2, 1, 3), new float[] {1.5f, -2f, 0.25f, 1e-8f, 3e8f, -0f}));
        Path vector = temp.resolve("vector.npy");
        Npy.write(vector, new Tensor(Shape.of(4), new float[] {1, 2, 3, 4}));
        String script = "import numpy, sys\n"
                + "a = numpy.load(sys.argv[1]); v = numpy.load(sys.argv[2])\n"
                + "print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'], a.ravel().tolist())\n"
                + "print(v.dtype, v.shape, v.tolist())\n";
        String python = Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
        Process process;
        try {
            process = new ProcessBuilder(python, "-c", script, file.toString(), vector.toString())
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            assumeTrue(System.getenv("CI") == null, "no python3 in CI: " + e);
            assumeTrue(false, "no python3 to check the writer against numpy: " + e);
            return;
        }
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS));
        if (process.exitValue() != 0 && output.contains("No module named 'numpy'")) {
            assertTrue(System.getenv("CI") == null, "numpy is missing in CI: apt-get install python3-numpy");
            assumeTrue(false, "numpy is missing: apt-get install python3-numpy");
        }
        assertEquals(0, process.exitValue(), output);
        assertEquals("float32 (2, 1, 3) True [1.5, -2.0, 0.25, 9.99999993922529e-09, 300000000.0, -0.0]\n"
                + "float32 (4,) [1.0, 2.0, 3.0, 4.0]\n", output);
    }

    @Test
    void headerKeepsTheDataAligned() throws IOException {
        Path file = temp.resolve("aligned.npy");
        Npy.write(file, Tensor.zeros(Shape.of(2, 3, 224, 224)));
        long size = Files.size(file);
        long dataStart = size - 2L * 3 * 224 * 224 * Float.BYTES;
        assertEquals(0, dataStart % 64, "numpy's format asks for the data to start on a 64-byte boundary");
    }
}
