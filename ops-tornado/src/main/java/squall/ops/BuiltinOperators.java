package squall.ops;

import com.google.auto.service.AutoService;
import java.util.List;
import squall.api.Operator;
import squall.api.OperatorProvider;

/** Squall's built-in operators (docs/operators.md). */
@AutoService(OperatorProvider.class)
public final class BuiltinOperators implements OperatorProvider {
    @Override
    public int spiVersion() {
        return OperatorProvider.SPI_VERSION;
    }

    @Override
    public List<Operator> operators() {
        return List.of(
                new Conv2d(),
                new ExpandDepthwiseConv(),
                new Reorder(),
                new BatchNorm(),
                new Unary("relu", Activation.RELU),
                new Unary("relu6", Activation.RELU6),
                new Unary("sigmoid", Activation.SIGMOID),
                new Unary("silu", Activation.SILU),
                new Unary("hardsigmoid", Activation.HARDSIGMOID),
                new Unary("hardswish", Activation.HARDSWISH),
                new Unary("clip", Activation.CLIP),
                new Broadcast("add", PointwiseKernels.ADD),
                new Broadcast("mul", PointwiseKernels.MUL),
                new GlobalAvgPool(),
                new Pool2d(false),
                new Pool2d(true),
                new Linear(),
                new Gemm(),
                new Flatten(),
                new Reshape(),
                new Softmax(),
                new Identity("dropout"),
                new Identity("stochastic_depth"),
                new Identity("identity"));
    }
}
