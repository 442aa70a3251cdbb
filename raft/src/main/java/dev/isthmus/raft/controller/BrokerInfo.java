package dev.isthmus.raft.controller;

/**
 * A registered broker: its id (= Raft node id), where Kafka clients reach it, where its peers reach its RPC
 * port, and how many shards it runs (partitions are placed on shards).
 */
public record BrokerInfo(int id, String host, int kafkaPort, String rpcHost, int rpcPort, int shards) {
    public BrokerInfo {
        if (id < 0) {
            throw new IllegalArgumentException("broker id must be >= 0, not " + id);
        }
        if (host == null || host.isEmpty() || rpcHost == null || rpcHost.isEmpty()) {
            throw new IllegalArgumentException("broker " + id + " needs a host and an RPC host");
        }
        if (kafkaPort < 0 || kafkaPort > 65535 || rpcPort <= 0 || rpcPort > 65535) {
            throw new IllegalArgumentException("broker " + id + " has bad ports " + kafkaPort + "/" + rpcPort);
        }
        if (shards < 1 || shards > 4096) {
            throw new IllegalArgumentException("broker " + id + " reports " + shards + " shards");
        }
    }

    void write(Wire.Writer w) {
        w.i32(id).str(host).i32(kafkaPort).str(rpcHost).i32(rpcPort).i32(shards);
    }

    static BrokerInfo read(Wire.Reader r) {
        try {
            return new BrokerInfo(r.i32(), r.str(), r.i32(), r.str(), r.i32(), r.i32());
        } catch (IllegalArgumentException e) {
            throw new ControllerFormatException(e.getMessage());
        }
    }
}
