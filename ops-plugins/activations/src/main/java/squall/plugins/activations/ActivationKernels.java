package squall.plugins.activations;

import squall.api.Parallel;

/**
 * Portable kernels of mish, gelu and hardtanh. Each function is a code so that one kernel serves
 * all (TornadoVM kernels take scalars, not objects); {@link #apply} is the reference definition of
 * each, evaluated in double and rounded once to float.
 */
public final class ActivationKernels {
    public static final int MISH = 0;
    /** gelu with approximate = "none": x Phi(x), Phi through erf. */
    public static final int GELU = 1;
    /** gelu with approximate = "tanh". */
    public static final int GELU_TANH = 2;
    public static final int HARDTANH = 3;

    private static final double SQRT_HALF = 0.7071067811865476;
    private static final double SQRT_TWO_OVER_PI = 0.7978845608028654;
    private static final double TWO_OVER_SQRT_PI = 1.1283791670955126;

    private ActivationKernels() {
    }

    /** {@code y = apply(function, x, p, q)}; p and q are hardtanh's min_val and max_val. */
    public static void activate(float[] x, float[] y, int size, int function, float p, float q) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = apply(function, x[i], p, q);
        }
    }

    /** The same as {@link #activate} on elements [from, to), for the CPU kernel's slices. */
    public static void activateRange(float[] x, float[] y, int from, int to, int function, float p, float q) {
        for (int i = from; i < to; i++) {
            y[i] = apply(function, x[i], p, q);
        }
    }

    public static float apply(int function, float x, float p, float q) {
        switch (function) {
            case MISH:
                return mish(x);
            case GELU:
                return gelu(x);
            case GELU_TANH:
                return geluTanh(x);
            case HARDTANH:
                return Math.min(Math.max(x, p), q);
            default:
                return x;
        }
    }

    /**
     * Mish (Misra 2019), x tanh(softplus(x)). With e = exp(x), tanh(log(1 + e)) is
     * n / (n + 2) for n = e (e + 2): one exp, no tanh or log1p, and no cancellation for negative x.
     * Above 20 the factor is 1 in float (and e^2 would overflow further up).
     */
    public static float mish(float x) {
        if (x > 20f) {
            return x;
        }
        double e = Math.exp(x);
        double n = e * (e + 2);
        return (float) (x * n / (n + 2));
    }

    /**
     * GELU (Hendrycks and Gimpel 2016), x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2. Below zero
     * erfc is used directly, where 1 + erf(x / sqrt 2) would cancel.
     */
    public static float gelu(float x) {
        double z = Math.abs(x) * SQRT_HALF;
        double phi = x >= 0 ? 0.5 * (1 + erfPositive(z)) : 0.5 * erfcPositive(z);
        return (float) (x * phi);
    }

    /**
     * The tanh approximation, x (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3), written
     * as x / (1 + exp(-2u)), the same function with one exp and no cancellation.
     */
    public static float geluTanh(float x) {
        double u = SQRT_TWO_OVER_PI * (x + 0.044715 * x * x * x);
        return (float) (x / (1 + Math.exp(-2 * u)));
    }

    /** The error function to float accuracy (relative error below 1.1e-7 everywhere). */
    public static float erf(float x) {
        double e = erfPositive(Math.abs(x));
        return (float) (x < 0 ? -e : e);
    }

    /**
     * erf(z) for z >= 0. Below 0.5 the Maclaurin series 2/sqrt(pi) sum (-1)^k z^(2k+1) / (k! (2k+1))
     * to k = 5 (relative error below 3e-8 there); above, 1 - erfc(z), where erfc is at most 0.48.
     */
    public static double erfPositive(double z) {
        if (z >= 0.5) {
            return 1 - erfcPositive(z);
        }
        double z2 = z * z;
        double series = 1 + z2 * (-1.0 / 3 + z2 * (1.0 / 10 + z2 * (-1.0 / 42 + z2 * (1.0 / 216 + z2 * (-1.0 / 1320)))));
        return TWO_OVER_SQRT_PI * z * series;
    }

    /**
     * erfc(z) for z >= 0: Press, Teukolsky, Vetterling and Flannery, Numerical Recipes in C, 2nd
     * ed. (1992), section 6.2, function erfcc, a Chebyshev fit of t exp(-z^2 + P(t)) with
     * t = 1 / (1 + z/2) whose fractional error is below 1.2e-7 for all z (1.05e-7 measured against
     * Python's math.erfc on [0, 10] in double). Abramowitz and Stegun 7.1.26 is only good to
     * 1.5e-7 absolute, which is far from float accuracy in the tail.
     */
    public static double erfcPositive(double z) {
        if (z < 0.5) {
            return 1 - erfPositive(z);
        }
        double t = 1 / (1 + 0.5 * z);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        return t * Math.exp(-z * z + p);
    }
}
