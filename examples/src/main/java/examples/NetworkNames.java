package examples;

import java.util.Iterator;

import squall.networks.Networks;

/** The built-in network names, for picocli's help text ({@code ${COMPLETION-CANDIDATES}}). */
final class NetworkNames implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        return Networks.names().iterator();
    }
}
