package dev.isthmus.raft;

/**
 * A message between two Raft nodes. Group messages ({@link GroupMessage}) belong to one group; the
 * heartbeat pair ({@link Heartbeat}, {@link HeartbeatResponse}) is per node pair and carries every group the
 * two share, so heartbeat traffic does not grow with the number of groups (CockroachDB's and Redpanda's
 * coalesced heartbeats). Messages are immutable records; {@link dev.isthmus.raft.codec.RaftCodec} gives their
 * wire form.
 */
public sealed interface RaftMessage permits GroupMessage, Heartbeat, HeartbeatResponse {
    /** Sending node. */
    int from();

    /** Destination node. */
    int to();
}
