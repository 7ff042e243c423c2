package squall.ops.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import squall.ops.Activation;

/**
 * The vector shape every CPU kernel uses and the fused activations on vectors. The species is a
 * {@code static final} constant so C2 compiles each kernel to plain AVX (512-bit where the CPU has
 * it); the activations are {@link Activation#fused}'s formulas, lane by lane.
 */
public final class Vectors {
    public static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    public static final int LANES = SPECIES.length();

    private static final FloatVector ZERO = FloatVector.zero(SPECIES);
    private static final FloatVector ONE = FloatVector.broadcast(SPECIES, 1f);
    private static final FloatVector THREE = FloatVector.broadcast(SPECIES, 3f);
    private static final FloatVector SIX = FloatVector.broadcast(SPECIES, 6f);
    private static final FloatVector HALF = FloatVector.broadcast(SPECIES, Activation.HARDSIGMOID_BETA);
    private static final FloatVector HARDSIGMOID_ALPHA = FloatVector.broadcast(SPECIES, Activation.HARDSIGMOID_ALPHA);

    private Vectors() {
    }

    /** The fused activation {@code code} (an {@link Activation} code up to HARDSWISH) of every lane. */
    public static FloatVector activate(int code, FloatVector x) {
        switch (code) {
            case Activation.RELU:
                return x.max(ZERO);
            case Activation.RELU6:
                return x.max(ZERO).min(SIX);
            case Activation.SIGMOID:
                return ONE.div(x.neg().lanewise(VectorOperators.EXP).add(ONE));
            case Activation.SILU:
                return x.div(x.neg().lanewise(VectorOperators.EXP).add(ONE));
            case Activation.HARDSIGMOID:
                return x.fma(HARDSIGMOID_ALPHA, HALF).max(ZERO).min(ONE);
            case Activation.HARDSWISH:
                // x * relu6(x + 3) / 6 in the portable kernel's order: (x * r) / 6, not x * (r / 6).
                return x.mul(x.add(THREE).max(ZERO).min(SIX)).div(SIX);
            default:
                return x;
        }
    }

    /** Lanes [0, count) of a vector; count may exceed LANES. */
    public static VectorMask<Float> firstLanes(int count) {
        return SPECIES.indexInRange(0, count);
    }

}
