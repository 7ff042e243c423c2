package squall.api;

import java.net.URL;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * The registry of operators found through {@link ServiceLoader}. Discovery is strict: a provider
 * built against another SPI version, or two providers claiming one op id, is an error naming both.
 */
public final class Operators {
    /** Where an operator came from: its provider class and the jar (or directory) it was loaded from. */
    public record Entry(Operator operator, String providerClass, String location) {
    }

    private static volatile Operators discovered;

    private final Map<String, Entry> byId;

    private Operators(Map<String, Entry> byId) {
        this.byId = Collections.unmodifiableMap(byId);
    }

    /** The operators on the context class loader's classpath, discovered once. */
    public static Operators discover() {
        Operators ops = discovered;
        if (ops == null) {
            synchronized (Operators.class) {
                ops = discovered;
                if (ops == null) {
                    ops = discover(Thread.currentThread().getContextClassLoader());
                    discovered = ops;
                }
            }
        }
        return ops;
    }

    public static Operators discover(ClassLoader loader) {
        List<OperatorProvider> providers = new ArrayList<>();
        try {
            for (OperatorProvider p : ServiceLoader.load(OperatorProvider.class, loader)) {
                providers.add(p);
            }
        } catch (ServiceConfigurationError e) {
            throw new SquallException("an operator plugin on the classpath could not be loaded: " + e.getMessage()
                    + " (was it built against this Squall api? rebuild it, or remove its jar)", e);
        }
        return of(providers);
    }

    /** A registry of exactly these providers (checked as discovery checks them). */
    public static Operators of(List<? extends OperatorProvider> providers) {
        Map<String, Entry> byId = new TreeMap<>();
        for (OperatorProvider p : providers) {
            String where = locationOf(p.getClass());
            int version;
            try {
                version = p.spiVersion();
            } catch (AbstractMethodError e) {
                version = -1;
            }
            if (version != OperatorProvider.SPI_VERSION) {
                throw new SquallException("operator plugin " + p.getClass().getName() + " (" + where
                        + ") was built for Squall operator SPI version " + version + ", but this api is version "
                        + OperatorProvider.SPI_VERSION + ": rebuild the plugin against this api, or remove its jar");
            }
            for (Operator op : p.operators()) {
                Entry previous = byId.get(op.id());
                if (previous != null) {
                    throw new SquallException("op id '" + op.id() + "' is claimed by two providers: "
                            + previous.providerClass() + " (" + previous.location() + ") and " + p.getClass().getName()
                            + " (" + where + "); remove one of the jars from the classpath");
                }
                byId.put(op.id(), new Entry(op, p.getClass().getName(), where));
            }
        }
        return new Operators(byId);
    }

    private static String locationOf(Class<?> c) {
        CodeSource cs = c.getProtectionDomain().getCodeSource();
        URL url = cs == null ? null : cs.getLocation();
        return url == null ? "unknown location" : url.getPath();
    }

    public Operator get(String id) {
        Entry e = byId.get(id);
        if (e == null) {
            throw new SquallException.UnknownOperator("unknown op '" + id + "'. Known ops: "
                    + String.join(", ", byId.keySet()) + ". Operators are found with java.util.ServiceLoader: put the "
                    + "jar of a plugin that provides '" + id + "' on the classpath (it registers a "
                    + OperatorProvider.class.getName() + " in META-INF/services).");
        }
        return e.operator();
    }

    public boolean has(String id) {
        return byId.containsKey(id);
    }

    /** Every operator by id, sorted. */
    public Map<String, Entry> entries() {
        return new LinkedHashMap<>(byId);
    }
}
