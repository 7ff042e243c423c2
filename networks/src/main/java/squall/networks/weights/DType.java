package squall.networks.weights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The element types a weights file may declare, with their safetensors names and the PyTorch
 * storage classes that hold them. Only the floating ones become {@link squall.api.Tensor}s; the
 * integer ones are named so that a file using them is reported precisely instead of as garbage.
 */
public enum DType {
    F64(8, "F64", "DoubleStorage", "float64"),
    F32(4, "F32", "FloatStorage", "float32"),
    F16(2, "F16", "HalfStorage", "float16"),
    BF16(2, "BF16", "BFloat16Storage", "bfloat16"),
    I64(8, "I64", "LongStorage", "int64"),
    I32(4, "I32", "IntStorage", "int32");

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int byteSize;
    private final String safetensorsName;
    private final String torchStorage;
    private final String torchDtype;

    DType(int byteSize, String safetensorsName, String torchStorage, String torchDtype) {
        this.byteSize = byteSize;
        this.safetensorsName = safetensorsName;
        this.torchStorage = torchStorage;
        this.torchDtype = torchDtype;
    }

    public int byteSize() {
        return byteSize;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    public boolean isFloating() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** The dtype of a {@code torch.XxxStorage} class name, or null. */
    static DType fromTorchStorage(String className) {
        for (DType t : values()) {
            if (t.torchStorage.equals(className)) {
                return t;
            }
        }
        return null;
    }

    /** The dtype of a {@code torch.float32}-style dtype object name, or null. */
    static DType fromTorchDtype(String name) {
        for (DType t : values()) {
            if (t.torchDtype.equals(name)) {
                return t;
            }
        }
        return null;
    }

    /**
     * Converts {@code count} little-endian elements starting at byte {@code offset} of
     * {@code source} to float32. Only for floating types; F16 and BF16 widen exactly, F64 rounds.
     */
    void toFloats(MemorySegment source, long offset, float[] target, int count) {
        switch (this) {
            case F32 -> MemorySegment.copy(source, F32_LE, offset, target, 0, count);
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    target[i] = Float.float16ToFloat(source.get(I16_LE, offset + 2L * i));
                }
            }
            case BF16 -> {
                // bfloat16 is the upper half of a float32, so widening is a shift.
                for (int i = 0; i < count; i++) {
                    target[i] = Float.intBitsToFloat((source.get(I16_LE, offset + 2L * i) & 0xffff) << 16);
                }
            }
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    target[i] = (float) source.get(F64_LE, offset + 8L * i);
                }
            }
            default -> throw new IllegalStateException(this + " is not a floating type");
        }
    }
}
