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

    /*
     * Every activation below is a loop of its own with the formula written out in the loop body:
     * a vector passed to a method that C2 does not inline is boxed (~100x slower), and C2 does not
     * reliably inline a vector helper into a big kernel. So kernels apply clamps (none, relu,
     * relu6) in their registers and hand other activations to these loops over what they wrote.
     *
     * sigmoid of inputs below about -87 is a subnormal float. x86 takes a microcode assist of ~100
     * cycles for every multiply with a subnormal operand, and an EfficientNet's squeeze-excite
     * gates hand thousands of them to the next 1x1 conv (measured: 30x slower layers). Native
     * runtimes set the CPU's flush-to-zero mode; Java cannot, so sigmoid's results are flushed to
     * zero: a change of less than 1.2e-38 in absolute value. silu needs no flush: with e^-x
     * clamped to at most e^88, x / (1 + e^-x) is subnormal only where x itself is.
     */

    /**
     * Whether an activation is a clamp to [{@link #lowerBound}, {@link #upperBound}] (none, relu,
     * relu6), which kernels apply in their register epilogue.
     */
    public static boolean isClamp(int code) {
        return code == Activation.NONE || code == Activation.RELU || code == Activation.RELU6;
    }

    public static float lowerBound(int code) {
        return code == Activation.RELU || code == Activation.RELU6 ? 0f : Float.NEGATIVE_INFINITY;
    }

    public static float upperBound(int code) {
        return code == Activation.RELU6 ? 6f : Float.POSITIVE_INFINITY;
    }

    /** values[from, to) = act(values) + residual[from, to) in place; residual may be null. */
    public static void finish(int code, float[] values, int from, int to, float[] residual) {
        activate(code, values, from, values, from, to - from, residual);
    }

    /** y[yAt + i] = act(x[xAt + i]) + residual[yAt + i] for i in [0, count); residual may be null. */
    public static void activate(int code, float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        switch (code) {
            case Activation.SIGMOID -> sigmoid(x, xAt, y, yAt, count, residual);
            case Activation.SILU -> silu(x, xAt, y, yAt, count, residual);
            case Activation.HARDSIGMOID -> hardsigmoid(x, xAt, y, yAt, count, residual);
            case Activation.HARDSWISH -> hardswish(x, xAt, y, yAt, count, residual);
            default -> clamp(lowerBound(code), upperBound(code), x, xAt, y, yAt, count, residual);
        }
    }

    private static void clamp(float lower, float upper, float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        int i = 0;
        for (; i + LANES <= count; i += LANES) {
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i);
            v = v.max(lower).min(upper);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i));
            }
            v.intoArray(y, yAt + i);
        }
        if (i < count) {
            VectorMask<Float> valid = firstLanes(count - i);
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i, valid);
            v = v.max(lower).min(upper);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i, valid));
            }
            v.intoArray(y, yAt + i, valid);
        }
    }

    /*
     * sigmoid and silu call exp (~20 vector operations) from one loop body each, and run the last
     * partial step on a padded copy instead of a one-vector loop and a masked tail: C2 inlined exp
     * into two call sites of silu and then stopped (NodeCountInliningCutoff), so the other two were
     * compiled as calls, and a vector passed to a call is boxed. efficientnet_b0 allocated 220 MB/s
     * of boxed vectors in silu after warm-up (JFR's allocation samples, -XX:+PrintInlining). Alone
     * on long spans the old loop was faster (0.31 against 0.41 ns a float; the arrays here change
     * per step), yet in efficientnet_b0 this one is (CPU-KERNELS.md, round 13, with two others tried).
     */

    private static void sigmoid(float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        float[] pad = null;
        for (int i = 0; i < count; i += LANES) {
            float[] from = x;
            float[] to = y;
            float[] add = residual;
            int at = xAt + i;
            int toAt = yAt + i;
            int addAt = yAt + i;
            boolean partial = count - i < LANES;
            if (partial) {
                pad = padded(x, xAt + i, residual, yAt + i, count - i);
                from = pad;
                to = pad;
                add = residual == null ? null : pad;
                at = 0;
                toAt = 0;
                addAt = PAD;
            }
            FloatVector v = FloatVector.fromArray(SPECIES, from, at);
            v = ONE.div(expNegative(v).add(ONE));
            v = v.blend(ZERO, v.abs().lt(Float.MIN_NORMAL));
            if (add != null) {
                v = v.add(FloatVector.fromArray(SPECIES, add, addAt));
            }
            v.intoArray(to, toAt);
            if (partial) {
                System.arraycopy(pad, 0, y, yAt + i, count - i);
            }
        }
    }

    private static void silu(float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        float[] pad = null;
        // Two vectors a step: exp's chain of ~20 dependent operations leaves the core idle unless
        // two run side by side.
        for (int i = 0; i < count; i += 2 * LANES) {
            float[] from = x;
            float[] to = y;
            float[] add = residual;
            int at = xAt + i;
            int toAt = yAt + i;
            int addAt = yAt + i;
            boolean partial = count - i < 2 * LANES;
            if (partial) {
                pad = padded(x, xAt + i, residual, yAt + i, count - i);
                from = pad;
                to = pad;
                add = residual == null ? null : pad;
                at = 0;
                toAt = 0;
                addAt = PAD;
            }
            FloatVector v = FloatVector.fromArray(SPECIES, from, at);
            FloatVector u = FloatVector.fromArray(SPECIES, from, at + LANES);
            v = v.div(expNegative(v).add(ONE));
            u = u.div(expNegative(u).add(ONE));
            if (add != null) {
                v = v.add(FloatVector.fromArray(SPECIES, add, addAt));
                u = u.add(FloatVector.fromArray(SPECIES, add, addAt + LANES));
            }
            v.intoArray(to, toAt);
            u.intoArray(to, toAt + LANES);
            if (partial) {
                System.arraycopy(pad, 0, y, yAt + i, count - i);
            }
        }
    }

    /** Floats of a padded step: two vectors of input, then two of residual. */
    private static final int PAD = 2 * LANES;
    private static final ThreadLocal<float[]> PADS = ThreadLocal.withInitial(() -> new float[2 * PAD]);

    /**
     * This thread's pad holding x[xAt, xAt + count) from 0 and residual[rAt, rAt + count) from
     * {@link #PAD} (when residual is not null), zeros after each: the last step of a loop, so that
     * it runs the loop's own vector code.
     */
    private static float[] padded(float[] x, int xAt, float[] residual, int rAt, int count) {
        float[] pad = PADS.get();
        System.arraycopy(x, xAt, pad, 0, count);
        java.util.Arrays.fill(pad, count, PAD, 0f);
        if (residual != null) {
            System.arraycopy(residual, rAt, pad, PAD, count);
            java.util.Arrays.fill(pad, PAD + count, 2 * PAD, 0f);
        }
        return pad;
    }

    private static void hardsigmoid(float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        int i = 0;
        for (; i + LANES <= count; i += LANES) {
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i);
            v = v.fma(HARDSIGMOID_ALPHA, HALF).max(ZERO).min(ONE);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i));
            }
            v.intoArray(y, yAt + i);
        }
        if (i < count) {
            VectorMask<Float> valid = firstLanes(count - i);
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i, valid);
            v = v.fma(HARDSIGMOID_ALPHA, HALF).max(ZERO).min(ONE);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i, valid));
            }
            v.intoArray(y, yAt + i, valid);
        }
    }

    /**
     * x * relu6(x + 3) / 6 in the portable kernel's order: (x * r) / 6, not x * (r / 6). The clamp
     * is two compares and blends, which give max/min's results (NaN stays, −0 becomes +0) for less.
     */
    private static void hardswish(float[] x, int xAt, float[] y, int yAt, int count, float[] residual) {
        int i = 0;
        for (; i + LANES <= count; i += LANES) {
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i);
            FloatVector r = v.add(THREE);
            r = r.blend(ZERO, r.compare(VectorOperators.LE, ZERO));
            v = v.mul(r.blend(SIX, r.compare(VectorOperators.GE, SIX))).div(SIX);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i));
            }
            v.intoArray(y, yAt + i);
        }
        if (i < count) {
            VectorMask<Float> valid = firstLanes(count - i);
            FloatVector v = FloatVector.fromArray(SPECIES, x, xAt + i, valid);
            FloatVector r = v.add(THREE);
            r = r.blend(ZERO, r.compare(VectorOperators.LE, ZERO));
            v = v.mul(r.blend(SIX, r.compare(VectorOperators.GE, SIX))).div(SIX);
            if (residual != null) {
                v = v.add(FloatVector.fromArray(SPECIES, residual, yAt + i, valid));
            }
            v.intoArray(y, yAt + i, valid);
        }
    }

    /** 1.5·2^23: adding it rounds a float below 2^22 to an integer, which then sits in the low mantissa bits. */
    private static final float ROUNDER = 12582912f;
    private static final FloatVector NEG_LOG2_E = FloatVector.broadcast(SPECIES, -1.44269504f);
    private static final FloatVector NEG_EXP_LOWEST = FloatVector.broadcast(SPECIES, 87f);
    private static final FloatVector NEG_EXP_HIGHEST = FloatVector.broadcast(SPECIES, -88f);

    /**
     * e^-v for v clamped to [-88, 87] (so 2^n stays a normal float), from adds, multiplies and fmas
     * only: Cody and Waite's range reduction -v = n·ln 2 + r, then Cephes' degree-6 polynomial for
     * e^r (about 1 ulp), with the negation folded into the constants (the polynomial's odd terms
     * change sign): for sigmoid 1 / (1 + e^-v) and silu v / (1 + e^-v). Unlike {@code
     * lanewise(EXP)}, which C2 compiles to Intel's SVML while cold code calls Math.exp, these are
     * correctly rounded IEEE operations in compiled and interpreted code alike, so a model gives
     * the same bits on its first run as on its 1000th. With e^-v at most e^88, silu's result is
     * subnormal only where v is, so silu needs no flush to zero (sigmoid does: 1 / (1 + e^88) is
     * subnormal). Against e^x of a negated v, one negation and silu's flush fewer: silu 0.75 ->
     * 0.62 ns per float.
     */
    static FloatVector expNegative(FloatVector v) {
        // Compares and blends, not max/min: those follow Math.max/min's NaN and -0.0 rules and cost
        // here as much as the polynomial (silu 1.11 -> 0.89 ns per float; a NaN stays NaN either way).
        v = v.blend(NEG_EXP_HIGHEST, v.lt(NEG_EXP_HIGHEST));
        v = v.blend(NEG_EXP_LOWEST, v.compare(VectorOperators.GT, NEG_EXP_LOWEST));
        FloatVector rounded = v.fma(NEG_LOG2_E, FloatVector.broadcast(SPECIES, ROUNDER));
        FloatVector n = rounded.sub(ROUNDER);
        // s = -r = v + n·ln 2 in two parts (Cody and Waite), each an fma: exact products, fewer operations.
        FloatVector s = n.fma(FloatVector.broadcast(SPECIES, 0.693359375f), v);
        s = n.fma(FloatVector.broadcast(SPECIES, -2.12194440e-4f), s);
        FloatVector p = s.fma(-1.9875691500e-4f, 1.3981999507e-3f);
        p = p.fma(s, FloatVector.broadcast(SPECIES, -8.3334519073e-3f));
        p = p.fma(s, FloatVector.broadcast(SPECIES, 4.1665795894e-2f));
        p = p.fma(s, FloatVector.broadcast(SPECIES, -1.6666665459e-1f));
        p = p.fma(s, FloatVector.broadcast(SPECIES, 5.0000001201e-1f));
        p = p.fma(s.mul(s), ONE.sub(s));
        // 2^n: the integer n (in rounded's low bits) moved into the exponent field.
        FloatVector twoToN = rounded.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUNDER) - 127)
                .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(twoToN);
    }

    /** The lanes of lanes[at, at + LANES) summed first to last: a fixed order, unlike reduceLanes(ADD). */
    public static float sumLanes(float[] lanes, int at) {
        float sum = 0f;
        for (int i = 0; i < LANES; i++) {
            sum += lanes[at + i];
        }
        return sum;
    }

    /** A subnormal value becomes zero (see above). */
    public static float flushSubnormal(float x) {
        return Math.abs(x) < Float.MIN_NORMAL ? 0f : x;
    }

    /**
     * to[toAt + j] = from[fromAt + j·stride] for j in [0, count): a vector copy for stride 1, the
     * even lanes of vector pairs (one vpermi2ps per vector) for stride 2, scalar otherwise and for
     * the tail.
     */
    public static void copyStrided(float[] from, int fromAt, int stride, float[] to, int toAt, int count) {
        int j = 0;
        if (stride == 1) {
            for (; j + LANES <= count; j += LANES) {
                FloatVector.fromArray(SPECIES, from, fromAt + j).intoArray(to, toAt + j);
            }
        } else if (stride == 2) {
            for (; j + LANES <= count && fromAt + 2 * j + 2 * LANES <= from.length; j += LANES) {
                int at = fromAt + 2 * j;
                EVEN_LANES.selectFrom(FloatVector.fromArray(SPECIES, from, at),
                        FloatVector.fromArray(SPECIES, from, at + LANES)).intoArray(to, toAt + j);
            }
        }
        for (; j < count; j++) {
            to[toAt + j] = from[fromAt + j * stride];
        }
    }

    /** Lane indexes 0, 2, 4, ... into two concatenated vectors. */
    private static final FloatVector EVEN_LANES = FloatVector.fromArray(SPECIES, laneIndexes(0), 0);
    /** Lane indexes 1, 3, 5, ... into two concatenated vectors. */
    private static final FloatVector ODD_LANES = FloatVector.fromArray(SPECIES, laneIndexes(1), 0);

    private static float[] laneIndexes(int first) {
        float[] indexes = new float[LANES];
        for (int i = 0; i < LANES; i++) {
            indexes[i] = 2 * i + first;
        }
        return indexes;
    }

    /** Lanes 0, 2, 4, ... of the concatenation (low, high): one two-vector permute. */
    static FloatVector evenLanes(FloatVector low, FloatVector high) {
        return EVEN_LANES.selectFrom(low, high);
    }

    /** Lanes 1, 3, 5, ... of the concatenation (low, high). */
    static FloatVector oddLanes(FloatVector low, FloatVector high) {
        return ODD_LANES.selectFrom(low, high);
    }

    /**
     * Transposes the LANES x LANES block a[at, at + LANES²) in place (row r from at + r·LANES). One
     * stage per bit d of the row and lane indexes: rows i and i + d (bit d of i clear) trade the
     * lanes of i with bit d set for the lanes of i + d with it clear, by two two-vector permutes
     * (vpermt2ps); log2(LANES) stages of LANES permutes, every vector in a local.
     */
    public static void transpose(float[] a, int at) {
        if (LANES == 16) {
            transpose16(a, at);
        } else {
            transposeByStages(a, at);
        }
    }

    /** {@link #transpose} for any number of lanes, one stage at a time through memory. */
    static void transposeByStages(float[] a, int at) {
        for (int d = LANES / 2, stage = 0; d > 0; d /= 2, stage++) {
            FloatVector low = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 2 * stage * LANES);
            FloatVector high = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, (2 * stage + 1) * LANES);
            for (int i = 0; i < LANES; i++) {
                if ((i & d) != 0) {
                    continue;
                }
                FloatVector x = FloatVector.fromArray(SPECIES, a, at + i * LANES);
                FloatVector y = FloatVector.fromArray(SPECIES, a, at + (i + d) * LANES);
                low.selectFrom(x, y).intoArray(a, at + i * LANES);
                high.selectFrom(x, y).intoArray(a, at + (i + d) * LANES);
            }
        }
    }

    /**
     * {@link #transpose} for 16 lanes (AVX-512) with the block in 16 registers: 16 loads, 64
     * permutes and 16 stores, where the stage loop stores and reloads every row at each of its four
     * stages. Channels-in-lanes 5x5 on 7x7, 2 threads: 576@7 0.044-0.050 -> 0.039 ms, 1152@7
     * 0.121-0.127 -> 0.097-0.101 (the gather/scatter it replaced, compiled well: 0.035-0.043, 0.088-0.100).
     */
    private static void transpose16(float[] a, int at) {
        FloatVector r0 = FloatVector.fromArray(SPECIES, a, at + 0 * 16);
        FloatVector r1 = FloatVector.fromArray(SPECIES, a, at + 1 * 16);
        FloatVector r2 = FloatVector.fromArray(SPECIES, a, at + 2 * 16);
        FloatVector r3 = FloatVector.fromArray(SPECIES, a, at + 3 * 16);
        FloatVector r4 = FloatVector.fromArray(SPECIES, a, at + 4 * 16);
        FloatVector r5 = FloatVector.fromArray(SPECIES, a, at + 5 * 16);
        FloatVector r6 = FloatVector.fromArray(SPECIES, a, at + 6 * 16);
        FloatVector r7 = FloatVector.fromArray(SPECIES, a, at + 7 * 16);
        FloatVector r8 = FloatVector.fromArray(SPECIES, a, at + 8 * 16);
        FloatVector r9 = FloatVector.fromArray(SPECIES, a, at + 9 * 16);
        FloatVector r10 = FloatVector.fromArray(SPECIES, a, at + 10 * 16);
        FloatVector r11 = FloatVector.fromArray(SPECIES, a, at + 11 * 16);
        FloatVector r12 = FloatVector.fromArray(SPECIES, a, at + 12 * 16);
        FloatVector r13 = FloatVector.fromArray(SPECIES, a, at + 13 * 16);
        FloatVector r14 = FloatVector.fromArray(SPECIES, a, at + 14 * 16);
        FloatVector r15 = FloatVector.fromArray(SPECIES, a, at + 15 * 16);
        FloatVector t;
        FloatVector low8 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 0 * 16);
        FloatVector high8 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 1 * 16);
        t = low8.selectFrom(r0, r8);
        r8 = high8.selectFrom(r0, r8);
        r0 = t;
        t = low8.selectFrom(r1, r9);
        r9 = high8.selectFrom(r1, r9);
        r1 = t;
        t = low8.selectFrom(r2, r10);
        r10 = high8.selectFrom(r2, r10);
        r2 = t;
        t = low8.selectFrom(r3, r11);
        r11 = high8.selectFrom(r3, r11);
        r3 = t;
        t = low8.selectFrom(r4, r12);
        r12 = high8.selectFrom(r4, r12);
        r4 = t;
        t = low8.selectFrom(r5, r13);
        r13 = high8.selectFrom(r5, r13);
        r5 = t;
        t = low8.selectFrom(r6, r14);
        r14 = high8.selectFrom(r6, r14);
        r6 = t;
        t = low8.selectFrom(r7, r15);
        r15 = high8.selectFrom(r7, r15);
        r7 = t;
        FloatVector low4 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 2 * 16);
        FloatVector high4 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 3 * 16);
        t = low4.selectFrom(r0, r4);
        r4 = high4.selectFrom(r0, r4);
        r0 = t;
        t = low4.selectFrom(r1, r5);
        r5 = high4.selectFrom(r1, r5);
        r1 = t;
        t = low4.selectFrom(r2, r6);
        r6 = high4.selectFrom(r2, r6);
        r2 = t;
        t = low4.selectFrom(r3, r7);
        r7 = high4.selectFrom(r3, r7);
        r3 = t;
        t = low4.selectFrom(r8, r12);
        r12 = high4.selectFrom(r8, r12);
        r8 = t;
        t = low4.selectFrom(r9, r13);
        r13 = high4.selectFrom(r9, r13);
        r9 = t;
        t = low4.selectFrom(r10, r14);
        r14 = high4.selectFrom(r10, r14);
        r10 = t;
        t = low4.selectFrom(r11, r15);
        r15 = high4.selectFrom(r11, r15);
        r11 = t;
        FloatVector low2 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 4 * 16);
        FloatVector high2 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 5 * 16);
        t = low2.selectFrom(r0, r2);
        r2 = high2.selectFrom(r0, r2);
        r0 = t;
        t = low2.selectFrom(r1, r3);
        r3 = high2.selectFrom(r1, r3);
        r1 = t;
        t = low2.selectFrom(r4, r6);
        r6 = high2.selectFrom(r4, r6);
        r4 = t;
        t = low2.selectFrom(r5, r7);
        r7 = high2.selectFrom(r5, r7);
        r5 = t;
        t = low2.selectFrom(r8, r10);
        r10 = high2.selectFrom(r8, r10);
        r8 = t;
        t = low2.selectFrom(r9, r11);
        r11 = high2.selectFrom(r9, r11);
        r9 = t;
        t = low2.selectFrom(r12, r14);
        r14 = high2.selectFrom(r12, r14);
        r12 = t;
        t = low2.selectFrom(r13, r15);
        r15 = high2.selectFrom(r13, r15);
        r13 = t;
        FloatVector low1 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 6 * 16);
        FloatVector high1 = FloatVector.fromArray(SPECIES, TRANSPOSE_STAGES, 7 * 16);
        t = low1.selectFrom(r0, r1);
        r1 = high1.selectFrom(r0, r1);
        r0 = t;
        t = low1.selectFrom(r2, r3);
        r3 = high1.selectFrom(r2, r3);
        r2 = t;
        t = low1.selectFrom(r4, r5);
        r5 = high1.selectFrom(r4, r5);
        r4 = t;
        t = low1.selectFrom(r6, r7);
        r7 = high1.selectFrom(r6, r7);
        r6 = t;
        t = low1.selectFrom(r8, r9);
        r9 = high1.selectFrom(r8, r9);
        r8 = t;
        t = low1.selectFrom(r10, r11);
        r11 = high1.selectFrom(r10, r11);
        r10 = t;
        t = low1.selectFrom(r12, r13);
        r13 = high1.selectFrom(r12, r13);
        r12 = t;
        t = low1.selectFrom(r14, r15);
        r15 = high1.selectFrom(r14, r15);
        r14 = t;
        r0.intoArray(a, at + 0 * 16);
        r1.intoArray(a, at + 1 * 16);
        r2.intoArray(a, at + 2 * 16);
        r3.intoArray(a, at + 3 * 16);
        r4.intoArray(a, at + 4 * 16);
        r5.intoArray(a, at + 5 * 16);
        r6.intoArray(a, at + 6 * 16);
        r7.intoArray(a, at + 7 * 16);
        r8.intoArray(a, at + 8 * 16);
        r9.intoArray(a, at + 9 * 16);
        r10.intoArray(a, at + 10 * 16);
        r11.intoArray(a, at + 11 * 16);
        r12.intoArray(a, at + 12 * 16);
        r13.intoArray(a, at + 13 * 16);
        r14.intoArray(a, at + 14 * 16);
        r15.intoArray(a, at + 15 * 16);
    }

    /** Per stage of {@link #transpose}, the lane indexes into (x, y) of its new rows i and i + d. */
    private static final float[] TRANSPOSE_STAGES = transposeStages();

    private static float[] transposeStages() {
        int stages = Integer.numberOfTrailingZeros(LANES);
        float[] indexes = new float[2 * stages * LANES];
        for (int d = LANES / 2, stage = 0; d > 0; d /= 2, stage++) {
            for (int j = 0; j < LANES; j++) {
                boolean set = (j & d) != 0;
                indexes[2 * stage * LANES + j] = set ? LANES + j - d : j;
                indexes[(2 * stage + 1) * LANES + j] = set ? LANES + j : j + d;
            }
        }
        return indexes;
    }

    /**
     * Lanes [0, count) of a vector; count may exceed LANES. Taken from a table made once: building
     * a mask with indexInRange in a kernel is not reliably intrinsified and then costs more than the
     * masked operation it serves.
     */
    public static VectorMask<Float> firstLanes(int count) {
        return PREFIXES[Math.min(count, LANES)];
    }

    @SuppressWarnings("unchecked")
    private static final VectorMask<Float>[] PREFIXES = new VectorMask[LANES + 1];

    static {
        for (int count = 0; count <= LANES; count++) {
            PREFIXES[count] = SPECIES.indexInRange(0, count);
        }
    }

}
