package squall.ops;

import java.util.List;
import squall.api.KernelCall;
import squall.api.KernelContext;
import squall.api.Node;
import squall.api.Operator;
import squall.api.OperatorProvider;
import squall.api.Parallel;
import squall.api.Shape;

/**
 * A plugin written only against the api, as a third party would write one: {@code negate}, registered
 * in src/test/resources/META-INF/services. It uses nothing from squall.ops.
 */
public final class NegateOperatorProvider implements OperatorProvider {
    @Override
    public int spiVersion() {
        return OperatorProvider.SPI_VERSION;
    }

    @Override
    public List<Operator> operators() {
        return List.of(new Operator() {
            @Override
            public String id() {
                return "negate";
            }

            @Override
            public List<Shape> outputShapes(Node node, List<Shape> inputShapes) {
                return List.of(inputShapes.getFirst());
            }

            @Override
            public List<KernelCall> kernels(KernelContext context) {
                return List.of(KernelCall.of(NegateOperatorProvider.class, "negate", context.input(0),
                        context.output(0), context.inputShape(0).size()));
            }
        });
    }

    public static void negate(float[] x, float[] y, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            y[i] = -x[i];
        }
    }
}
