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
 *
 * <p>{@code rack} is the node's rack ({@code --rack}, Kafka's {@code broker.rack}), or null when it has none:
 * Metadata and DescribeCluster report it, {@link Placement} spreads a partition's replicas over racks, and the
 * leader of a partition points a consumer with a {@code client.rack} at an in-sync follower in its rack (KIP-392).
 */
public record BrokerInfo(int id, String host, int kafkaPort, String rpcHost, int rpcPort, int shards,
                         List<Endpoint> listeners, String rack) {
    /** The longest rack name accepted (Kafka sets no bound; this keeps the controller state small). */
    public static final int MAX_RACK_CHARS = 255;

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
        String bad = rackProblem(rack);
        if (bad != null) {
            throw new IllegalArgumentException("broker " + id + ": " + bad);
        }
    }

    /** A broker with these listeners and no rack. */
    public BrokerInfo(int id, String host, int kafkaPort, String rpcHost, int rpcPort, int shards,
                      List<Endpoint> listeners) {
        this(id, host, kafkaPort, rpcHost, rpcPort, shards, listeners, null);
    }

    /**
     * Null when {@code rack} is a valid rack name (or null: no rack), else the problem: a rack is 1 to
     * {@link #MAX_RACK_CHARS} characters with no control character.
     */
    public static String rackProblem(String rack) {
        if (rack == null) {
            return null;
        }
        if (rack.isEmpty() || rack.length() > MAX_RACK_CHARS) {
            return "a rack name has 1 to " + MAX_RACK_CHARS + " characters, not " + rack.length();
        }
        for (int i = 0; i < rack.length(); i++) {
            if (Character.isISOControl(rack.charAt(i))) {
                return "rack name '" + rack.replaceAll("\\p{Cntrl}", "?") + "' holds a control character";
            }
        }
        return null;
    }

    /** The same broker in {@code rack} (null: none). */
    public BrokerInfo withRack(String rack) {
        return new BrokerInfo(id, host, kafkaPort, rpcHost, rpcPort, shards, listeners, rack);
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

    /** Rack: i8 0 (none) or i8 1 + the name (snapshot version 9 and RegisterBroker commands since racks). */
    void writeRack(Wire.Writer w) {
        if (rack == null) {
            w.i8(0);
        } else {
            w.i8(1).str(rack);
        }
    }

    static String readRack(Wire.Reader r) {
        int has = r.i8();
        if (has != 0 && has != 1) {
            throw new ControllerFormatException("broker rack flag is " + has);
        }
        return has == 1 ? r.str() : null;
    }

    /**
     * A RegisterBroker command's broker: the listeners follow when present (absent in older records), then the rack
     * when present (absent in records written before racks).
     */
    static BrokerInfo readCommand(Wire.Reader r) {
        BrokerInfo b = read(r, null);
        if (!r.hasRemaining()) {
            return b;
        }
        try {
            return b.withRack(readRack(r));
        } catch (IllegalArgumentException e) {
            throw new ControllerFormatException(e.getMessage());
        }
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
