package squall.networks.image;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import squall.api.Shape;
import squall.api.SquallException;
import squall.api.Tensor;
import squall.networks.NetworkInfo;

/**
 * torchvision's evaluation transform for classifiers ({@code ImageClassification} in torchvision
 * 0.14, applied to a PIL image): resize the shorter side to {@code resizeSize} with PIL's filter,
 * crop the centre {@code cropSize} square, scale to [0, 1], subtract {@code mean} and divide by
 * {@code std} per channel. The arithmetic follows torchvision's step by step (float32 division by
 * 255, then by std), so a PNG yields the tensor torchvision yields, bit for bit.
 */
public record Preprocessing(int resizeSize, int cropSize, Interpolation interpolation, float[] mean, float[] std) {
    public Preprocessing {
        if (resizeSize < 1 || cropSize < 1) {
            throw new SquallException("preprocessing needs positive sizes, got resize " + resizeSize + ", crop "
                    + cropSize);
        }
        if (mean.length != 3 || std.length != 3) {
            throw new SquallException("preprocessing needs 3 means and 3 stds (R, G, B), got "
                    + Arrays.toString(mean) + " and " + Arrays.toString(std));
        }
        for (float s : std) {
            if (!(s > 0)) {
                throw new SquallException("preprocessing std must be positive, got " + Arrays.toString(std));
            }
        }
        mean = mean.clone();
        std = std.clone();
    }

    /** The evaluation transform published with a network's torchvision weights. */
    public static Preprocessing of(NetworkInfo info) {
        return new Preprocessing(info.resizeSize(), info.cropSize(), Interpolation.of(info.interpolation()),
                info.mean(), info.std());
    }

    /** ImageNet's mean and std, which every torchvision classifier uses. */
    public static Preprocessing imagenet(int resizeSize, int cropSize, Interpolation interpolation) {
        return new Preprocessing(resizeSize, cropSize, interpolation, new float[] {0.485f, 0.456f, 0.406f},
                new float[] {0.229f, 0.224f, 0.225f});
    }

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] std() {
        return std.clone();
    }

    /**
     * {width, height} after resizing the shorter side to {@code resizeSize}; the longer side is
     * truncated, as torchvision's {@code _compute_resized_output_size} does.
     */
    public int[] resizedSize(int width, int height) {
        int shortSide = Math.min(width, height);
        int longSide = Math.max(width, height);
        int newLong = (int) ((double) ((long) resizeSize * longSide) / shortSide);
        return width <= height ? new int[] {resizeSize, newLong} : new int[] {newLong, resizeSize};
    }

    /** The resized and centre-cropped image, still 8-bit, as torchvision has it before ToTensor. */
    public RgbImage resizeAndCrop(RgbImage image) {
        int[] size = resizedSize(image.width(), image.height());
        RgbImage resized = PilResample.resize(image, size[0], size[1], interpolation);
        return resized.crop(cropOffset(resized.width()), cropOffset(resized.height()), cropSize, cropSize);
    }

    /**
     * torchvision's center_crop offset along one side: round half to even of the centred start, or,
     * when the crop is larger than the side, minus the left/top padding it adds ((crop - side) // 2).
     */
    private int cropOffset(int side) {
        if (cropSize > side) {
            return -((cropSize - side) / 2);
        }
        return (int) Math.rint((side - cropSize) / 2.0);
    }

    /** One image as a [1, 3, cropSize, cropSize] tensor. */
    public Tensor apply(RgbImage image) {
        return batch(List.of(image));
    }

    /** Several images as one [N, 3, cropSize, cropSize] batch, in order. */
    public Tensor batch(List<RgbImage> images) {
        int plane = cropSize * cropSize;
        Tensor out = Tensor.zeros(Shape.of(images.size(), 3, cropSize, cropSize));
        float[] data = out.data();
        for (int n = 0; n < images.size(); n++) {
            byte[] rgb = resizeAndCrop(images.get(n)).rgb();
            for (int c = 0; c < 3; c++) {
                int base = (n * 3 + c) * plane;
                for (int i = 0; i < plane; i++) {
                    float unit = (rgb[3 * i + c] & 0xFF) / 255f;
                    data[base + i] = (unit - mean[c]) / std[c];
                }
            }
        }
        return out;
    }

    /** Reads and preprocesses image files into one batch; a bad file is an error naming it. */
    public Tensor load(List<Path> files) {
        List<RgbImage> images = new ArrayList<>();
        for (Path f : files) {
            images.add(ImageFiles.read(f));
        }
        return batch(images);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Preprocessing p && p.resizeSize == resizeSize && p.cropSize == cropSize
                && p.interpolation == interpolation && Arrays.equals(p.mean, mean) && Arrays.equals(p.std, std);
    }

    @Override
    public int hashCode() {
        return (resizeSize * 31 + cropSize) * 31 + interpolation.hashCode();
    }

    @Override
    public String toString() {
        return "Preprocessing[resize " + resizeSize + " " + interpolation.name().toLowerCase(java.util.Locale.ROOT)
                + ", crop " + cropSize + ", mean " + Arrays.toString(mean) + ", std " + Arrays.toString(std) + "]";
    }
}
