package dev.isthmus.raft.net;

/**
 * Counters of one shard's part of the transport. Written by the owner shard only (plain fields); read them on
 * that shard or take a {@link #copy()} there ({@link RaftTransport#metrics()} does, with one cross-shard call
 * per shard) and {@link #add} the copies.
 */
public final class TransportMetrics {
    long framesSent;
    long bytesSent;
    long framesReceived;
    long bytesReceived;
    long heartbeatFramesSent;
    long heartbeatResponseFramesSent;
    long pingsSent;
    long rpcFramesSent;
    long sends;
    long droppedNoRoute;
    long droppedPeerBufferFull;
    long droppedShardBufferFull;
    long droppedUnknownGroup;
    long droppedMisaddressed;
    long crossShardBatches;
    long connectAttempts;
    long connectFailures;
    long handshakeFailures;
    long connectionsEstablished;
    long connectionsClosed;
    long duplicateConnectionsClosed;
    long idleTimeouts;
    long corruptFrames;

    /** Raft and transport frames written to sockets. */
    public long framesSent() {
        return framesSent;
    }

    public long bytesSent() {
        return bytesSent;
    }

    public long framesReceived() {
        return framesReceived;
    }

    public long bytesReceived() {
        return bytesReceived;
    }

    /** Coalesced {@link dev.isthmus.raft.Heartbeat} frames written (grows with node pairs, not groups). */
    public long heartbeatFramesSent() {
        return heartbeatFramesSent;
    }

    public long heartbeatResponseFramesSent() {
        return heartbeatResponseFramesSent;
    }

    public long pingsSent() {
        return pingsSent;
    }

    public long rpcFramesSent() {
        return rpcFramesSent;
    }

    /** Socket sends issued (each carries every frame queued when it started). */
    public long sends() {
        return sends;
    }

    /** Messages dropped because no connection to their peer was established. */
    public long droppedNoRoute() {
        return droppedNoRoute;
    }

    /** Messages dropped because their peer's buffer was full (a slow or stopped peer). */
    public long droppedPeerBufferFull() {
        return droppedPeerBufferFull;
    }

    /** Messages dropped because the buffer towards another shard was full. */
    public long droppedShardBufferFull() {
        return droppedShardBufferFull;
    }

    /** Received messages (or heartbeat items) for a group this node does not host. */
    public long droppedUnknownGroup() {
        return droppedUnknownGroup;
    }

    /** Received messages addressed to another node id. */
    public long droppedMisaddressed() {
        return droppedMisaddressed;
    }

    public long crossShardBatches() {
        return crossShardBatches;
    }

    public long connectAttempts() {
        return connectAttempts;
    }

    public long connectFailures() {
        return connectFailures;
    }

    /** Connections closed because the hello exchange failed or timed out. */
    public long handshakeFailures() {
        return handshakeFailures;
    }

    public long connectionsEstablished() {
        return connectionsEstablished;
    }

    public long connectionsClosed() {
        return connectionsClosed;
    }

    /** Connections closed because both nodes dialed at once and the other connection was kept. */
    public long duplicateConnectionsClosed() {
        return duplicateConnectionsClosed;
    }

    public long idleTimeouts() {
        return idleTimeouts;
    }

    /** Connections closed because a frame failed its checksum or did not parse. */
    public long corruptFrames() {
        return corruptFrames;
    }

    /** A copy (take it on the owner shard). */
    public TransportMetrics copy() {
        TransportMetrics m = new TransportMetrics();
        m.add(this);
        return m;
    }

    /** Adds {@code o}'s counters to this one (to sum shards). */
    public void add(TransportMetrics o) {
        framesSent += o.framesSent;
        bytesSent += o.bytesSent;
        framesReceived += o.framesReceived;
        bytesReceived += o.bytesReceived;
        heartbeatFramesSent += o.heartbeatFramesSent;
        heartbeatResponseFramesSent += o.heartbeatResponseFramesSent;
        pingsSent += o.pingsSent;
        rpcFramesSent += o.rpcFramesSent;
        sends += o.sends;
        droppedNoRoute += o.droppedNoRoute;
        droppedPeerBufferFull += o.droppedPeerBufferFull;
        droppedShardBufferFull += o.droppedShardBufferFull;
        droppedUnknownGroup += o.droppedUnknownGroup;
        droppedMisaddressed += o.droppedMisaddressed;
        crossShardBatches += o.crossShardBatches;
        connectAttempts += o.connectAttempts;
        connectFailures += o.connectFailures;
        handshakeFailures += o.handshakeFailures;
        connectionsEstablished += o.connectionsEstablished;
        connectionsClosed += o.connectionsClosed;
        duplicateConnectionsClosed += o.duplicateConnectionsClosed;
        idleTimeouts += o.idleTimeouts;
        corruptFrames += o.corruptFrames;
    }

    @Override
    public String toString() {
        return "TransportMetrics[frames sent " + framesSent + " (" + bytesSent + " B, " + heartbeatFramesSent
            + " heartbeats, " + pingsSent + " pings) in " + sends + " sends, received " + framesReceived + " ("
            + bytesReceived + " B); dropped: no route " + droppedNoRoute + ", peer full " + droppedPeerBufferFull
            + ", shard full " + droppedShardBufferFull + ", unknown group " + droppedUnknownGroup
            + "; connects " + connectAttempts + " (" + connectFailures + " failed), established "
            + connectionsEstablished + ", closed " + connectionsClosed + " (idle " + idleTimeouts + ", duplicate "
            + duplicateConnectionsClosed + ", handshake " + handshakeFailures + ", corrupt " + corruptFrames + ")]";
    }
}
