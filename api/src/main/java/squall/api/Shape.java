package squall.api;

import java.util.Arrays;

/**
 * The dimensions of a tensor, outermost first (NCHW for images). A dimension of -1 in a graph
 * input means "any batch size"; every shape a kernel sees is concrete.
 */
public final class Shape {
    private final int[] dims;

    private Shape(int[] dims) {
        this.dims = dims;
    }

    public static Shape of(int... dims) {
        for (int d : dims) {
            if (d < -1) {
                throw new SquallException.BadShape("negative dimension in " + Arrays.toString(dims));
            }
        }
        return new Shape(dims.clone());
    }

    public static Shape of(long... dims) {
        int[] d = new int[dims.length];
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < -1 || dims[i] > Integer.MAX_VALUE) {
                throw new SquallException.BadShape("dimension " + dims[i] + " out of range in " + Arrays.toString(dims));
            }
            d[i] = (int) dims[i];
        }
        return new Shape(d);
    }

    public int rank() {
        return dims.length;
    }

    public int dim(int axis) {
        return dims[axis < 0 ? dims.length + axis : axis];
    }

    public int[] dims() {
        return dims.clone();
    }

    /** True when no dimension is -1. */
    public boolean isConcrete() {
        for (int d : dims) {
            if (d < 0) {
                return false;
            }
        }
        return true;
    }

    /** Number of elements as a long; throws if any dimension is unknown. */
    public long elementCount() {
        long n = 1;
        for (int d : dims) {
            if (d < 0) {
                throw new SquallException.BadShape("shape " + this + " has an unknown dimension");
            }
            n = Math.multiplyExact(n, (long) d);
        }
        return n;
    }

    /** Number of elements as an int, for a float[]; throws a clear error past 2^31-1. */
    public int size() {
        long n;
        try {
            n = elementCount();
        } catch (ArithmeticException e) {
            throw new SquallException.BadShape("shape " + this + " has more elements than a long can count");
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new SquallException.BadShape("shape " + this + " has " + n
                    + " elements; a Squall tensor holds at most 2^31-9 (use a smaller batch or resolution)");
        }
        return (int) n;
    }

    /** This shape with the first dimension replaced (the batch size). */
    public Shape withBatch(int batch) {
        int[] d = dims.clone();
        d[0] = batch;
        return new Shape(d);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    @Override
    public String toString() {
        return Arrays.toString(dims);
    }
}
