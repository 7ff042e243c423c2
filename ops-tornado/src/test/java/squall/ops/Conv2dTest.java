package squall.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static squall.ops.OpHarness.activation;
import static squall.ops.OpHarness.assertClose;
import static squall.ops.OpHarness.random;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import squall.api.Attributes;
import squall.api.Shape;

/** conv2d against a direct convolution in double precision, on awkward shapes. */
class Conv2dTest {
    /** padding is (top, left, bottom, right). */
    record Case(String name, int batch, int inChannels, int height, int width, int outChannels, int kernelH,
                int kernelW, int strideH, int strideW, int[] padding, int dilationH, int dilationW, int groups,
                boolean bias, String activation, boolean residual) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("3x3 same, batch 2, odd sizes", 2, 3, 7, 5, 5, 3, 3, 1, 1, new int[] {1, 1, 1, 1}, 1, 1, 1,
                        true, "none", false),
                new Case("stride 2 on odd input, relu6", 1, 4, 9, 11, 6, 3, 3, 2, 2, new int[] {1, 1, 1, 1}, 1, 1, 1,
                        false, "relu6", false),
                new Case("asymmetric padding, 3x2 kernel, stride (2,1)", 2, 3, 6, 7, 4, 3, 2, 2, 1,
                        new int[] {0, 1, 2, 1}, 1, 1, 1, true, "relu", false),
                new Case("dilation 2", 1, 5, 9, 8, 3, 3, 3, 1, 1, new int[] {2, 2, 2, 2}, 2, 2, 1, true, "none", false),
                new Case("dilation (2,3), stride 2", 2, 2, 11, 13, 3, 3, 3, 2, 2, new int[] {1, 2, 3, 0}, 2, 3, 1,
                        false, "sigmoid", false),
                new Case("depthwise stride 2, silu", 2, 7, 9, 9, 7, 3, 3, 2, 2, new int[] {1, 1, 1, 1}, 1, 1, 7, true,
                        "silu", false),
                new Case("depthwise 5x5 with channel multiplier 2", 1, 5, 8, 7, 10, 5, 5, 1, 1, new int[] {2, 2, 2, 2},
                        1, 1, 5, true, "hardswish", false),
                new Case("grouped 3 groups", 2, 6, 5, 6, 9, 3, 3, 1, 1, new int[] {1, 1, 1, 1}, 1, 1, 3, true,
                        "hardsigmoid", false),
                new Case("pointwise on 1x1 maps with residual", 3, 13, 1, 1, 17, 1, 1, 1, 1, new int[] {0, 0, 0, 0}, 1,
                        1, 1, true, "hardswish", true),
                new Case("3x3 on a 1x1 map", 2, 9, 1, 1, 11, 3, 3, 1, 1, new int[] {1, 1, 1, 1}, 1, 1, 1, true, "relu",
                        false),
                new Case("pointwise residual, no bias, 19 channels", 2, 19, 5, 3, 19, 1, 1, 1, 1,
                        new int[] {0, 0, 0, 0}, 1, 1, 1, false, "none", true),
                new Case("residual after relu with stride 2", 1, 3, 7, 7, 5, 3, 3, 2, 2, new int[] {1, 1, 1, 1}, 1, 1,
                        1, true, "relu", true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesDirectConvolution(Case c) {
        Random random = new Random(c.name().hashCode());
        int outH = (c.height() + c.padding()[0] + c.padding()[2] - c.dilationH() * (c.kernelH() - 1) - 1)
                / c.strideH() + 1;
        int outW = (c.width() + c.padding()[1] + c.padding()[3] - c.dilationW() * (c.kernelW() - 1) - 1)
                / c.strideW() + 1;
        Shape xShape = Shape.of(c.batch(), c.inChannels(), c.height(), c.width());
        Shape wShape = Shape.of(c.outChannels(), c.inChannels() / c.groups(), c.kernelH(), c.kernelW());
        Shape outShape = Shape.of(c.batch(), c.outChannels(), outH, outW);
        float[] x = random(random, xShape.size(), 2);
        float[] w = random(random, wShape.size(), 1);
        float[] bias = c.bias() ? random(random, c.outChannels(), 1) : null;
        float[] residual = c.residual() ? random(random, outShape.size(), 1) : null;
        Attributes attributes = Attributes.of("stride", new int[] {c.strideH(), c.strideW()}, "padding", c.padding(),
                "dilation", new int[] {c.dilationH(), c.dilationW()}, "groups", c.groups(),
                "activation", c.activation());
        var shapes = Arrays.asList(xShape, wShape, c.bias() ? Shape.of(c.outChannels()) : null,
                c.residual() ? outShape : null);

        assertEquals(outShape, OpHarness.outputShape("conv2d", attributes, shapes));
        float[] actual = OpHarness.run("conv2d", attributes, shapes, x, w, bias, residual);

        double[] expected = new double[outShape.size()];
        int groupIn = c.inChannels() / c.groups();
        int groupOut = c.outChannels() / c.groups();
        for (int n = 0; n < c.batch(); n++) {
            for (int o = 0; o < c.outChannels(); o++) {
                for (int oy = 0; oy < outH; oy++) {
                    for (int ox = 0; ox < outW; ox++) {
                        double sum = bias == null ? 0 : bias[o];
                        for (int ci = 0; ci < groupIn; ci++) {
                            int channel = o / groupOut * groupIn + ci;
                            for (int ky = 0; ky < c.kernelH(); ky++) {
                                for (int kx = 0; kx < c.kernelW(); kx++) {
                                    int y = oy * c.strideH() - c.padding()[0] + ky * c.dilationH();
                                    int xx = ox * c.strideW() - c.padding()[1] + kx * c.dilationW();
                                    if (y >= 0 && y < c.height() && xx >= 0 && xx < c.width()) {
                                        sum += (double) x[((n * c.inChannels() + channel) * c.height() + y) * c.width()
                                                + xx] * w[((o * groupIn + ci) * c.kernelH() + ky) * c.kernelW() + kx];
                                    }
                                }
                            }
                        }
                        int at = ((n * c.outChannels() + o) * outH + oy) * outW + ox;
                        expected[at] = activation(c.activation(), sum) + (residual == null ? 0 : residual[at]);
                    }
                }
            }
        }
        assertClose(expected, actual, groupIn * c.kernelH() * c.kernelW(), c.name());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void countsMultiplyAdds(Case c) {
        var shapes = Arrays.asList(Shape.of(c.batch(), c.inChannels(), c.height(), c.width()),
                Shape.of(c.outChannels(), c.inChannels() / c.groups(), c.kernelH(), c.kernelW()));
        Attributes attributes = Attributes.of("stride", new int[] {c.strideH(), c.strideW()}, "padding", c.padding(),
                "dilation", new int[] {c.dilationH(), c.dilationW()}, "groups", c.groups());
        var node = OpHarness.node("conv2d", attributes, shapes);
        var op = OpHarness.BUILTIN.get("conv2d");
        Shape out = op.outputShapes(node, shapes).getFirst();
        long perOutput = (long) c.inChannels() / c.groups() * c.kernelH() * c.kernelW();
        assertEquals(out.elementCount() * perOutput, op.multiplyAdds(node, shapes, java.util.List.of(out)));
    }
}
