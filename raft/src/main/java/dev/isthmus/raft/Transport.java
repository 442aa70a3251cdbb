package dev.isthmus.raft;

/**
 * The outbox of a {@link RaftNode}: where its messages go. Production serialises them with
 * {@link dev.isthmus.raft.codec.RaftCodec} onto one TCP connection per peer node, on the shard loop; the
 * simulator delivers them through a lossy, reordering network. Sending never blocks and never fails towards
 * Raft: a message that cannot be delivered is dropped (Raft retries), and a transport may drop messages
 * when its bounded per-peer buffer is full.
 */
@FunctionalInterface
public interface Transport {
    /** Sends {@code message} to node {@code message.to()}. The message is immutable and may be kept. */
    void send(RaftMessage message);
}
