package dev.isthmus.raft;

/**
 * The state a member must keep on stable storage before it answers anyone (paper Figure 2, "persistent state
 * on all servers"): the current term and the candidate voted for in it. The log is the third part; it is
 * durable through {@link RaftLog}'s own flushes.
 *
 * @param term     the latest term seen (= the Kafka leader epoch), >= 0
 * @param votedFor the node voted for in {@code term}, or {@link #NO_VOTE}
 */
public record HardState(long term, int votedFor) {
    /** {@link #votedFor()} when this member has not voted in {@link #term()}. */
    public static final int NO_VOTE = -1;

    /** A fresh member's state: term 0, no vote. */
    public static final HardState INITIAL = new HardState(0, NO_VOTE);

    public HardState {
        if (term < 0) {
            throw new IllegalArgumentException("term must be >= 0, not " + term);
        }
        if (votedFor < NO_VOTE) {
            throw new IllegalArgumentException("votedFor must be a node id or NO_VOTE, not " + votedFor);
        }
    }
}
