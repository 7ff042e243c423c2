package squall.api;

/** A dense float32 tensor in row-major order (NCHW for images). The array is shared, not copied. */
public record Tensor(Shape shape, float[] data) {
    public Tensor {
        if (data.length != shape.size()) {
            throw new SquallException.BadShape("tensor of shape " + shape + " needs " + shape.size()
                    + " floats, got " + data.length);
        }
    }

    public static Tensor zeros(Shape shape) {
        return new Tensor(shape, new float[shape.size()]);
    }

    public static Tensor of(Shape shape, float... data) {
        return new Tensor(shape, data);
    }

    public float get(int... index) {
        return data[offset(index)];
    }

    public void set(float value, int... index) {
        data[offset(index)] = value;
    }

    private int offset(int[] index) {
        if (index.length != shape.rank()) {
            throw new SquallException.BadShape("index of rank " + index.length + " for tensor " + shape);
        }
        int off = 0;
        for (int i = 0; i < index.length; i++) {
            int d = shape.dim(i);
            if (index[i] < 0 || index[i] >= d) {
                throw new IndexOutOfBoundsException("index " + index[i] + " on axis " + i + " of " + shape);
            }
            off = off * d + index[i];
        }
        return off;
    }

    @Override
    public String toString() {
        return "Tensor" + shape;
    }
}
