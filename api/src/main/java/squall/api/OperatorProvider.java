package squall.api;

import java.util.List;

/**
 * What a jar registers (in {@code META-INF/services/squall.api.OperatorProvider}, e.g. with
 * {@code @AutoService(OperatorProvider.class)}) to add operators.
 *
 * <p>Versioning: {@link #SPI_VERSION} changes whenever this SPI changes incompatibly. Every
 * provider implements {@link #spiVersion()} as {@code return OperatorProvider.SPI_VERSION;}; the
 * compiler copies the constant into the plugin's class, so the value records the api the plugin was
 * built against, and discovery refuses a provider whose version differs from the running api's.
 */
public interface OperatorProvider {
    int SPI_VERSION = 1;

    /** Must be {@code return OperatorProvider.SPI_VERSION;} (see the class comment). */
    int spiVersion();

    List<Operator> operators();
}
