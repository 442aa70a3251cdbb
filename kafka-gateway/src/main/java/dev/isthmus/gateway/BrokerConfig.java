package dev.isthmus.gateway;

import dev.isthmus.ffi.Libc;
import dev.isthmus.uring.IoBackend;

import java.nio.file.Path;

/**
 * Start-up settings of a broker.
 *
 * @param host              listener address (and the address advertised to clients)
 * @param port              Kafka listener port (0 picks a free one: tests)
 * @param nodeId            this node's id
 * @param shards            shard threads ({@code --smp}); default the CPUs this process may use
 * @param memoryBytes       the whole data memory, split evenly across shards ({@code --memory})
 * @param dataDir           where logs and metadata live
 * @param pin               pin shards to CPUs
 * @param backend           io_uring or portable
 * @param maxRequestBytes   largest request frame accepted (Kafka's socket.request.max.bytes)
 * @param defaultPartitions partitions of auto-created topics (num.partitions)
 * @param autoCreateTopics  create unknown topics named in Metadata requests (auto.create.topics.enable)
 */
public record BrokerConfig(String host, int port, int nodeId, int shards, long memoryBytes, Path dataDir, boolean pin,
                           IoBackend backend, int maxRequestBytes, int defaultPartitions, boolean autoCreateTopics) {

    public BrokerConfig {
        if (shards < 1) {
            throw new IllegalArgumentException("--smp must be >= 1, got " + shards);
        }
        long perShard = memoryBytes / shards;
        if (perShard < (64L << 20)) {
            throw new IllegalArgumentException("--memory " + memoryBytes + " gives each of " + shards
                + " shards less than 64 MiB; give at least " + (64L << 20) * shards + " bytes");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
        }
    }

    /** The laptop defaults of {@code isthmus start}: 127.0.0.1:9092, ./data, 1 GiB, one shard per CPU. */
    public static BrokerConfig defaults() {
        int cpus = Libc.allowedCpus().length;
        return new BrokerConfig("127.0.0.1", 9092, 0, cpus, 1L << 30, Path.of("data"), false, IoBackend.AUTO,
            100 << 20, 1, true);
    }

    public long memoryPerShard() {
        return memoryBytes / shards / (64 * 1024) * (64 * 1024);
    }

    public BrokerConfig withPort(int p) {
        return new BrokerConfig(host, p, nodeId, shards, memoryBytes, dataDir, pin, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withShards(int n) {
        return new BrokerConfig(host, port, nodeId, n, memoryBytes, dataDir, pin, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withMemory(long bytes) {
        return new BrokerConfig(host, port, nodeId, shards, bytes, dataDir, pin, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withDataDir(Path dir) {
        return new BrokerConfig(host, port, nodeId, shards, memoryBytes, dir, pin, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withNodeId(int id) {
        return new BrokerConfig(host, port, id, shards, memoryBytes, dataDir, pin, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withPin(boolean p) {
        return new BrokerConfig(host, port, nodeId, shards, memoryBytes, dataDir, p, backend, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }

    public BrokerConfig withBackend(IoBackend b) {
        return new BrokerConfig(host, port, nodeId, shards, memoryBytes, dataDir, pin, b, maxRequestBytes,
            defaultPartitions, autoCreateTopics);
    }
}
