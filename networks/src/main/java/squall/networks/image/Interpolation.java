package squall.networks.image;

import java.util.Locale;

import squall.api.SquallException;

/**
 * PIL's resampling filters as torchvision uses them for PIL images: each is a kernel on the
 * distance between an output pixel's center and a source pixel's center, measured in source pixels
 * at scale 1 (the filter is stretched when downscaling, which is PIL's antialiasing).
 */
public enum Interpolation {
    /** The triangle filter, support 1. */
    BILINEAR(1.0),
    /** Keys' cubic convolution with a = -0.5, support 2 (PIL's BICUBIC). */
    BICUBIC(2.0);

    private final double support;

    Interpolation(double support) {
        this.support = support;
    }

    public double support() {
        return support;
    }

    /** The filter's weight at distance {@code x}; written as PIL writes it so rounding agrees. */
    public double weight(double x) {
        if (x < 0.0) {
            x = -x;
        }
        return switch (this) {
            case BILINEAR -> x < 1.0 ? 1.0 - x : 0.0;
            case BICUBIC -> {
                double a = -0.5;
                if (x < 1.0) {
                    yield ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
                }
                yield x < 2.0 ? (((x - 5) * x + 8) * x - 4) * a : 0.0;
            }
        };
    }

    /** "bilinear" or "bicubic", as network metadata names them. */
    public static Interpolation of(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "bilinear" -> BILINEAR;
            case "bicubic" -> BICUBIC;
            default -> throw new SquallException("unknown interpolation '" + name
                    + "'; Squall resizes with 'bilinear' or 'bicubic' (PIL's filters)");
        };
    }
}
