package dev.isthmus.gateway.group;

/**
 * The settings of the group state machine, named after Kafka's broker configs.
 *
 * @param minSessionTimeoutMs      {@code group.min.session.timeout.ms}: smallest session timeout a member may ask for
 * @param maxSessionTimeoutMs      {@code group.max.session.timeout.ms}: largest session timeout a member may ask for
 * @param initialRebalanceDelayMs  {@code group.initial.rebalance.delay.ms}: how long the first rebalance of an empty
 *                                 group waits for more members (extended by each newcomer, up to the rebalance timeout)
 * @param newMemberJoinTimeoutMs   how long a new member's parked JoinGroup may wait for its rebalance before it is
 *                                 dropped (Kafka's fixed 5 minutes: a new member cannot heartbeat yet)
 * @param maxSize                  {@code group.max.size}: members per group
 * @param offsetsRetentionMs       {@code offsets.retention.minutes} in ms: committed offsets of an empty group expire
 *                                 this long after it became empty (standalone commits: after the commit); -1 never
 * @param retentionCheckIntervalMs {@code offsets.retention.check.interval.ms}: how often expiry runs
 * @param offsetMetadataMaxBytes   {@code offset.metadata.max.bytes}: longest metadata string of a commit
 */
public record GroupConfig(int minSessionTimeoutMs, int maxSessionTimeoutMs, int initialRebalanceDelayMs,
                          int newMemberJoinTimeoutMs, int maxSize, long offsetsRetentionMs,
                          long retentionCheckIntervalMs, int offsetMetadataMaxBytes) {
    public GroupConfig {
        if (minSessionTimeoutMs < 1 || maxSessionTimeoutMs < minSessionTimeoutMs) {
            throw new IllegalArgumentException("group session timeout bounds [" + minSessionTimeoutMs + ", "
                + maxSessionTimeoutMs + "] are not a valid range");
        }
        if (initialRebalanceDelayMs < 0 || newMemberJoinTimeoutMs < 1 || maxSize < 1 || retentionCheckIntervalMs < 1
            || offsetMetadataMaxBytes < 0) {
            throw new IllegalArgumentException("invalid group config: initialRebalanceDelayMs=" + initialRebalanceDelayMs
                + ", newMemberJoinTimeoutMs=" + newMemberJoinTimeoutMs + ", maxSize=" + maxSize
                + ", retentionCheckIntervalMs=" + retentionCheckIntervalMs + ", offsetMetadataMaxBytes="
                + offsetMetadataMaxBytes);
        }
    }

    /** Kafka's defaults. */
    public static GroupConfig defaults() {
        return new GroupConfig(6_000, 1_800_000, 3_000, 300_000, Integer.MAX_VALUE, 7L * 24 * 3600 * 1000, 600_000, 4096);
    }

    /**
     * The expiry check interval Isthmus derives from the retention: a tenth of it, between 1 s and Kafka's
     * 10 minutes, so that short retentions (tests, small deployments) are honoured promptly.
     */
    public static long checkIntervalFor(long offsetsRetentionMs) {
        return offsetsRetentionMs < 0 ? 600_000 : Math.max(1_000, Math.min(600_000, offsetsRetentionMs / 10));
    }
}
