package dev.isthmus.raft.net;

/**
 * Settings of the node-to-node transport ({@link RaftTransport}). Immutable; bad values throw
 * {@link IllegalArgumentException} naming the setting.
 *
 * @param clusterId          every node of a cluster carries the same id in its hello; a peer with another id is
 *                           refused (two clusters sharing hosts cannot cross-talk)
 * @param connectTimeoutMs   a connection must finish its TCP connect and the hello exchange within this
 *                           (a SIGSTOPped peer's kernel still accepts; its hello never comes)
 * @param backoffMinMs       first reconnect delay after a failed attempt; doubles per failure
 * @param backoffMaxMs       reconnect delay ceiling
 * @param pingIntervalMs     a connection that sent nothing for this long sends a ping
 * @param idleTimeoutMs      a connection that received nothing (not even a ping) for this long is closed
 * @param maxPeerBufferBytes bytes of messages queued for one peer (on the shard owning its connection) and,
 *                           separately, bytes queued from one shard to another; messages beyond it are dropped
 *                           (Raft retries) and counted
 * @param sendBufferBytes    native buffer per connection that queued messages are encoded into, one send per
 *                           fill (a larger frame gets a buffer of its own size for its send)
 * @param maxFrameBytes      largest frame accepted from a peer (bounds what one peer can make us allocate)
 */
public record TransportConfig(String clusterId, long connectTimeoutMs, long backoffMinMs, long backoffMaxMs,
                              long pingIntervalMs, long idleTimeoutMs, long maxPeerBufferBytes, int sendBufferBytes,
                              int maxFrameBytes) {
    public TransportConfig {
        if (clusterId == null || clusterId.isEmpty() || clusterId.length() > 200) {
            throw new IllegalArgumentException("clusterId must be 1..200 characters, not " + clusterId);
        }
        positive(connectTimeoutMs, "connectTimeoutMs");
        positive(backoffMinMs, "backoffMinMs");
        if (backoffMaxMs < backoffMinMs) {
            throw new IllegalArgumentException("backoffMaxMs (" + backoffMaxMs + ") is below backoffMinMs ("
                + backoffMinMs + ")");
        }
        positive(pingIntervalMs, "pingIntervalMs");
        if (idleTimeoutMs <= 2 * pingIntervalMs) {
            throw new IllegalArgumentException("idleTimeoutMs (" + idleTimeoutMs + ") must exceed twice pingIntervalMs ("
                + pingIntervalMs + ")");
        }
        positive(maxPeerBufferBytes, "maxPeerBufferBytes");
        if (sendBufferBytes < 4096) {
            throw new IllegalArgumentException("sendBufferBytes must be at least 4096, not " + sendBufferBytes);
        }
        if (maxFrameBytes < 4096) {
            throw new IllegalArgumentException("maxFrameBytes must be at least 4096, not " + maxFrameBytes);
        }
    }

    private static void positive(long v, String name) {
        if (v <= 0) {
            throw new IllegalArgumentException(name + " must be positive, not " + v);
        }
    }

    /**
     * Defaults for {@code clusterId}: 1 s connect timeout, 50 ms..1 s back-off, 150 ms pings (the Raft heartbeat
     * interval), 5 s idle timeout, 32 MiB per peer, 256 KiB send buffers, 64 MiB frames.
     */
    public static TransportConfig defaults(String clusterId) {
        return new TransportConfig(clusterId, 1000, 50, 1000, 150, 5000, 32L << 20, 256 << 10, 64 << 20);
    }

    public TransportConfig withTimeouts(long connectTimeoutMs, long pingIntervalMs, long idleTimeoutMs) {
        return new TransportConfig(clusterId, connectTimeoutMs, backoffMinMs, backoffMaxMs, pingIntervalMs,
            idleTimeoutMs, maxPeerBufferBytes, sendBufferBytes, maxFrameBytes);
    }

    public TransportConfig withBackoff(long minMs, long maxMs) {
        return new TransportConfig(clusterId, connectTimeoutMs, minMs, maxMs, pingIntervalMs, idleTimeoutMs,
            maxPeerBufferBytes, sendBufferBytes, maxFrameBytes);
    }

    public TransportConfig withBuffers(long maxPeerBufferBytes, int sendBufferBytes, int maxFrameBytes) {
        return new TransportConfig(clusterId, connectTimeoutMs, backoffMinMs, backoffMaxMs, pingIntervalMs,
            idleTimeoutMs, maxPeerBufferBytes, sendBufferBytes, maxFrameBytes);
    }
}
