package squall.api;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Finds backends with {@link ServiceLoader} and picks one: named, then {@code squall.backend}, then best. */
public final class Backends {
    private Backends() {
    }

    public static List<Backend> all() {
        List<Backend> list = new ArrayList<>();
        ServiceLoader.load(Backend.class, Thread.currentThread().getContextClassLoader()).forEach(list::add);
        list.sort(Comparator.comparingInt(Backend::priority).reversed());
        return list;
    }

    /**
     * The backend with this id, or (id null or empty) the one named by the system property
     * {@code squall.backend}, or the available backend with the highest priority.
     */
    public static Backend select(String id) {
        String wanted = id == null || id.isBlank() ? System.getProperty("squall.backend", "") : id;
        List<Backend> all = all();
        if (!wanted.isBlank()) {
            for (Backend b : all) {
                if (b.id().equals(wanted)) {
                    if (!b.isAvailable()) {
                        throw new SquallException("backend '" + wanted + "' is installed but not available here"
                                + (wanted.equals("tornado") ? ": start the JVM with TornadoVM's `tornado` launcher "
                                + "(source tornado-env.sh with a TornadoVM SDK installed)" : ""));
                    }
                    return b;
                }
            }
            throw new SquallException("unknown backend '" + wanted + "'; known: "
                    + all.stream().map(Backend::id).toList());
        }
        for (Backend b : all) {
            if (b.isAvailable()) {
                return b;
            }
        }
        throw new SquallException("no backend is available; put squall-ops-tornado on the classpath");
    }
}
