package dev.isthmus.gateway.cluster;

import java.util.List;

/**
 * A registered broker: its id (= Raft node id), where Kafka clients reach it, where its peers reach its RPC
 * port, how many shards it runs (partitions are placed on shards), and the advertised address of each of its
 * named Kafka listeners.
 *
 * <p>{@code host}/{@code kafkaPort} is the first listener's advertised address (what a broker registered before
 * named listeners existed carries). {@code listeners} lists every listener by name; Metadata answers a client
 * with the addresses of the listener its request came in on ({@link #endpoint}). An empty list (an older
 * registration) means {@code host}/{@code kafkaPort} for every listener name.
 *
 * <p>{@code rpcPort} 0 (with any non-empty {@code rpcHost}) is a single node that opens no RPC port.
 */
public record BrokerInfo(int id, String host, int kafkaPort, String rpcHost, int rpcPort, int shards,
                         List<Endpoint> listeners) {
    /** A named listener's advertised address. */
    public record Endpoint(String name, String host, int port) {
        public Endpoint {
            if (name == null || name.isEmpty() || host == null || host.isEmpty() || port < 0 || port > 65535) {
                throw new IllegalArgumentException("bad listener endpoint " + name + "://" + host + ":" + port);
            }
        }
    }

    public BrokerInfo {
        if (id < 0) {
            throw new IllegalArgumentException("broker id must be >= 0, not " + id);
        }
        if (host == null || host.isEmpty() || rpcHost == null || rpcHost.isEmpty()) {
            throw new IllegalArgumentException("broker " + id + " needs a host and an RPC host");
        }
        if (kafkaPort < 0 || kafkaPort > 65535 || rpcPort < 0 || rpcPort > 65535) {
            throw new IllegalArgumentException("broker " + id + " has bad ports " + kafkaPort + "/" + rpcPort);
        }
        if (shards < 1 || shards > 4096) {
            throw new IllegalArgumentException("broker " + id + " reports " + shards + " shards");
        }
        listeners = List.copyOf(listeners);
        if (listeners.size() > 64) {
            throw new IllegalArgumentException("broker " + id + " registers " + listeners.size() + " listeners");
        }
    }

    /** A broker with one unnamed listener (tools and tests that do not name listeners). */
    public BrokerInfo(int id, String host, int kafkaPort, String rpcHost, int rpcPort, int shards) {
        this(id, host, kafkaPort, rpcHost, rpcPort, shards, List.of());
    }

    /**
     * The advertised endpoint of listener {@code name}; null when the broker registered named listeners and this
     * is not one of them. A broker that registered none is reached at {@code host}/{@code kafkaPort} on any name.
     */
    public Endpoint endpoint(String name) {
        if (listeners.isEmpty()) {
            return new Endpoint(name == null || name.isEmpty() ? "PLAINTEXT" : name, host, kafkaPort);
        }
        for (Endpoint e : listeners) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        return null;
    }

    /** Whether peers can dial this broker's RPC port (false: a single node without one). */
    public boolean hasRpc() {
        return rpcPort > 0;
    }

    void write(Wire.Writer w) {
        w.i32(id).str(host).i32(kafkaPort).str(rpcHost).i32(rpcPort).i32(shards);
    }

    void writeListeners(Wire.Writer w) {
        w.i32(listeners.size());
        for (Endpoint e : listeners) {
            w.str(e.name()).str(e.host()).i32(e.port());
        }
    }

    /** A RegisterBroker command's broker: the listeners follow when present (absent in older records). */
    static BrokerInfo readCommand(Wire.Reader r) {
        return read(r, null);
    }

    /** @param withListeners whether the listeners follow; null: when bytes remain (the end of a command) */
    static BrokerInfo read(Wire.Reader r, Boolean withListeners) {
        try {
            int id = r.i32();
            String host = r.str();
            int kafkaPort = r.i32();
            String rpcHost = r.str();
            int rpcPort = r.i32();
            int shards = r.i32();
            List<Endpoint> eps = (withListeners == null ? r.hasRemaining() : withListeners) ? readListeners(r)
                : List.of();
            return new BrokerInfo(id, host, kafkaPort, rpcHost, rpcPort, shards, eps);
        } catch (IllegalArgumentException e) {
            throw new ControllerFormatException(e.getMessage());
        }
    }

    static List<Endpoint> readListeners(Wire.Reader r) {
        int n = r.count(12);
        Endpoint[] eps = new Endpoint[n];
        for (int i = 0; i < n; i++) {
            eps[i] = new Endpoint(r.str(), r.str(), r.i32());
        }
        return List.of(eps);
    }
}
