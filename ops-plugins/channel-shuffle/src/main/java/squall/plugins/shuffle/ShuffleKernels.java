package squall.plugins.shuffle;

import squall.api.Parallel;

/** The portable kernel of channel_shuffle. */
public final class ShuffleKernels {
    private ShuffleKernels() {
    }

    /**
     * ShuffleNet's channel shuffle (Zhang et al. 2018): view the channels of [batch, channels,
     * spatial] as [groups, channels / groups] and transpose to [channels / groups, groups], so that
     * the next grouped convolution sees channels from every group. Output channel
     * {@code c = i * groups + g} is input channel {@code g * (channels / groups) + i}.
     */
    public static void channelShuffle(float[] x, float[] y, int batch, int channels, int spatial, int groups) {
        for (@Parallel int n = 0; n < batch; n++) {
            for (@Parallel int c = 0; c < channels; c++) {
                copyPlane(x, y, n, c, channels, spatial, groups);
            }
        }
    }

    /** One output channel's plane: the CPU kernel's unit of work too. */
    public static void copyPlane(float[] x, float[] y, int n, int c, int channels, int spatial, int groups) {
        int source = (c % groups) * (channels / groups) + c / groups;
        int from = (n * channels + source) * spatial;
        int to = (n * channels + c) * spatial;
        for (int i = 0; i < spatial; i++) {
            y[to + i] = x[from + i];
        }
    }
}
