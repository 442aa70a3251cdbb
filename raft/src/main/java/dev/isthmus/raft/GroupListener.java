package dev.isthmus.raft;

/**
 * Events of one group for its owner (the partition or controller code above Raft). Called on the group's
 * shard, synchronously from within the group's step that caused them; implementations must not call back into
 * the group's stepping methods ({@code tick}, {@code receive}, storage callbacks), though they may read its
 * state and call {@link RaftGroup#propose} (which only appends and marks the group for the next flush).
 */
public interface GroupListener {
    /** No-op listener. */
    GroupListener NONE = new GroupListener() {
    };

    /**
     * Role, term or known leader changed. A proposal made in an earlier term may be lost or may be committed
     * by the new leader: {@link RaftGroup#proposalOutcome} tells which once the commit offset passes it.
     */
    default void onRoleChange(long groupId, Role role, long term, int leaderId) {
    }

    /** The commit offset advanced (the Kafka high watermark is {@code commitOffset + 1}). */
    default void onCommit(long groupId, long commitOffset) {
    }

    /** The configuration in force changed (appended, truncated away, or installed with a snapshot). */
    default void onConfigurationChange(long groupId, Configuration configuration) {
    }

    /**
     * Kafka's log start offset ({@link RaftGroup#logStartOffset()}) changed on this replica: a prefix truncation
     * was carried out (durably) or a snapshot was installed.
     */
    default void onLogStartChange(long groupId, long logStartOffset) {
    }
}
