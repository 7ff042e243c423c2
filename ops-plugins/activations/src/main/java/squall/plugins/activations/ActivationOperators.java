package squall.plugins.activations;

import com.google.auto.service.AutoService;
import java.util.List;
import java.util.Set;
import squall.api.Operator;
import squall.api.OperatorProvider;

/** Registers mish, gelu and hardtanh. */
@AutoService(OperatorProvider.class)
public final class ActivationOperators implements OperatorProvider {
    @Override
    public int spiVersion() {
        return OperatorProvider.SPI_VERSION;
    }

    @Override
    public List<Operator> operators() {
        return List.of(
                new ActivationOperator("mish", Set.of()),
                new ActivationOperator("gelu", Set.of("approximate")),
                new ActivationOperator("hardtanh", Set.of("min_val", "max_val")));
    }
}
