package dev.isthmus.raft;

/**
 * Timing, flow-control and compaction settings shared by the groups of a {@link RaftNode}. Immutable; build
 * with {@link #builder()}. Defaults follow Redpanda's (150 ms heartbeats, 1.5 s minimum election timeout).
 * Bad values are configuration errors and throw {@link IllegalArgumentException} naming the setting.
 */
public final class RaftConfig {
    private final long heartbeatIntervalMs;
    private final long electionTimeoutMinMs;
    private final long electionTimeoutMaxMs;
    private final boolean preVote;
    private final boolean checkQuorum;
    private final int maxInflightAppends;
    private final long maxInflightBytes;
    private final int maxAppendBytes;
    private final long retransmitTimeoutMs;
    private final long maxUncommittedBytes;
    private final int maxPendingProposals;
    private final int snapshotChunkBytes;
    private final long maxSnapshotBytes;
    private final long snapshotIntervalOffsets;
    private final long snapshotTrailingOffsets;
    private final int maxApplyEntriesPerStep;
    private final int maxHeldMessages;

    private RaftConfig(Builder b) {
        positive(b.heartbeatIntervalMs, "heartbeatIntervalMs");
        positive(b.electionTimeoutMinMs, "electionTimeoutMinMs");
        if (b.electionTimeoutMinMs < 2 * b.heartbeatIntervalMs) {
            throw new IllegalArgumentException("electionTimeoutMinMs (" + b.electionTimeoutMinMs
                + ") must be at least twice heartbeatIntervalMs (" + b.heartbeatIntervalMs + ")");
        }
        if (b.electionTimeoutMaxMs <= b.electionTimeoutMinMs) {
            throw new IllegalArgumentException("electionTimeoutMaxMs (" + b.electionTimeoutMaxMs
                + ") must exceed electionTimeoutMinMs (" + b.electionTimeoutMinMs + ") so timeouts can be randomized");
        }
        positive(b.maxInflightAppends, "maxInflightAppends");
        positive(b.maxInflightBytes, "maxInflightBytes");
        positive(b.maxAppendBytes, "maxAppendBytes");
        positive(b.retransmitTimeoutMs, "retransmitTimeoutMs");
        positive(b.maxUncommittedBytes, "maxUncommittedBytes");
        positive(b.maxPendingProposals, "maxPendingProposals");
        positive(b.snapshotChunkBytes, "snapshotChunkBytes");
        positive(b.maxSnapshotBytes, "maxSnapshotBytes");
        if (b.snapshotIntervalOffsets < 0 || b.snapshotTrailingOffsets < 0) {
            throw new IllegalArgumentException("snapshotIntervalOffsets and snapshotTrailingOffsets must be >= 0");
        }
        positive(b.maxApplyEntriesPerStep, "maxApplyEntriesPerStep");
        positive(b.maxHeldMessages, "maxHeldMessages");
        this.heartbeatIntervalMs = b.heartbeatIntervalMs;
        this.electionTimeoutMinMs = b.electionTimeoutMinMs;
        this.electionTimeoutMaxMs = b.electionTimeoutMaxMs;
        this.preVote = b.preVote;
        this.checkQuorum = b.checkQuorum;
        this.maxInflightAppends = b.maxInflightAppends;
        this.maxInflightBytes = b.maxInflightBytes;
        this.maxAppendBytes = b.maxAppendBytes;
        this.retransmitTimeoutMs = b.retransmitTimeoutMs;
        this.maxUncommittedBytes = b.maxUncommittedBytes;
        this.maxPendingProposals = b.maxPendingProposals;
        this.snapshotChunkBytes = b.snapshotChunkBytes;
        this.maxSnapshotBytes = b.maxSnapshotBytes;
        this.snapshotIntervalOffsets = b.snapshotIntervalOffsets;
        this.snapshotTrailingOffsets = b.snapshotTrailingOffsets;
        this.maxApplyEntriesPerStep = b.maxApplyEntriesPerStep;
        this.maxHeldMessages = b.maxHeldMessages;
    }

    private static void positive(long v, String name) {
        if (v <= 0) {
            throw new IllegalArgumentException(name + " must be positive, not " + v);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public static RaftConfig defaults() {
        return builder().build();
    }

    /** A builder starting from this configuration's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.heartbeatIntervalMs = heartbeatIntervalMs;
        b.electionTimeoutMinMs = electionTimeoutMinMs;
        b.electionTimeoutMaxMs = electionTimeoutMaxMs;
        b.preVote = preVote;
        b.checkQuorum = checkQuorum;
        b.maxInflightAppends = maxInflightAppends;
        b.maxInflightBytes = maxInflightBytes;
        b.maxAppendBytes = maxAppendBytes;
        b.retransmitTimeoutMs = retransmitTimeoutMs;
        b.maxUncommittedBytes = maxUncommittedBytes;
        b.maxPendingProposals = maxPendingProposals;
        b.snapshotChunkBytes = snapshotChunkBytes;
        b.maxSnapshotBytes = maxSnapshotBytes;
        b.snapshotIntervalOffsets = snapshotIntervalOffsets;
        b.snapshotTrailingOffsets = snapshotTrailingOffsets;
        b.maxApplyEntriesPerStep = maxApplyEntriesPerStep;
        b.maxHeldMessages = maxHeldMessages;
        return b;
    }

    /** Interval of the coalesced per-node-pair heartbeats. */
    public long heartbeatIntervalMs() {
        return heartbeatIntervalMs;
    }

    /** Lower bound of the randomized election timeout; also the check-quorum period and the vote lease. */
    public long electionTimeoutMinMs() {
        return electionTimeoutMinMs;
    }

    /** Upper bound (exclusive) of the randomized election timeout (paper §5.2). */
    public long electionTimeoutMaxMs() {
        return electionTimeoutMaxMs;
    }

    /** Run a pre-vote before every election (thesis §9.6). */
    public boolean preVote() {
        return preVote;
    }

    /**
     * A leader steps down when it has not heard from a majority within an election timeout, and followers
     * ignore vote requests while they hear from a leader (thesis §6.2, §4.2.3).
     */
    public boolean checkQuorum() {
        return checkQuorum;
    }

    /** AppendEntries requests in flight per follower (pipelining). */
    public int maxInflightAppends() {
        return maxInflightAppends;
    }

    /** Entry bytes in flight per follower. */
    public long maxInflightBytes() {
        return maxInflightBytes;
    }

    /** Entry bytes per AppendEntries request (batching; at least one entry is always sent). */
    public int maxAppendBytes() {
        return maxAppendBytes;
    }

    /** A follower that acknowledges nothing for this long while requests are in flight is probed again. */
    public long retransmitTimeoutMs() {
        return retransmitTimeoutMs;
    }

    /** Proposed but uncommitted bytes a leader accepts before answering {@link RaftErrors#BACKPRESSURE}. */
    public long maxUncommittedBytes() {
        return maxUncommittedBytes;
    }

    /** Proposed but uncommitted entries a leader tracks before answering {@link RaftErrors#BACKPRESSURE}. */
    public int maxPendingProposals() {
        return maxPendingProposals;
    }

    /** Bytes per InstallSnapshot chunk. */
    public int snapshotChunkBytes() {
        return snapshotChunkBytes;
    }

    /** Largest snapshot a follower accepts. */
    public long maxSnapshotBytes() {
        return maxSnapshotBytes;
    }

    /** Take a snapshot automatically every this many applied offsets; 0 disables (partitions compact by retention). */
    public long snapshotIntervalOffsets() {
        return snapshotIntervalOffsets;
    }

    /** Offsets kept in the log behind a snapshot so slightly lagging followers catch up without one. */
    public long snapshotTrailingOffsets() {
        return snapshotTrailingOffsets;
    }

    /** Entries applied per group per step, to keep shard loop turns short. */
    public int maxApplyEntriesPerStep() {
        return maxApplyEntriesPerStep;
    }

    /** Messages held while the hard state is being made durable; more are dropped (Raft retries). */
    public int maxHeldMessages() {
        return maxHeldMessages;
    }

    @Override
    public String toString() {
        return "RaftConfig[heartbeat=" + heartbeatIntervalMs + "ms, election=" + electionTimeoutMinMs + ".."
            + electionTimeoutMaxMs + "ms, preVote=" + preVote + ", checkQuorum=" + checkQuorum + ", inflight="
            + maxInflightAppends + "/" + maxInflightBytes + "B, append=" + maxAppendBytes + "B]";
    }

    /** Mutable builder; {@link #build()} validates. */
    public static final class Builder {
        private long heartbeatIntervalMs = 150;
        private long electionTimeoutMinMs = 1500;
        private long electionTimeoutMaxMs = 3000;
        private boolean preVote = true;
        private boolean checkQuorum = true;
        private int maxInflightAppends = 16;
        private long maxInflightBytes = 8L << 20;
        private int maxAppendBytes = 1 << 20;
        private long retransmitTimeoutMs = 1000;
        private long maxUncommittedBytes = 64L << 20;
        private int maxPendingProposals = 65536;
        private int snapshotChunkBytes = 1 << 20;
        private long maxSnapshotBytes = 1L << 30;
        private long snapshotIntervalOffsets;
        private long snapshotTrailingOffsets;
        private int maxApplyEntriesPerStep = 1024;
        private int maxHeldMessages = 4096;

        private Builder() {
        }

        public Builder heartbeatIntervalMs(long v) {
            heartbeatIntervalMs = v;
            return this;
        }

        public Builder electionTimeoutMs(long min, long max) {
            electionTimeoutMinMs = min;
            electionTimeoutMaxMs = max;
            return this;
        }

        public Builder preVote(boolean v) {
            preVote = v;
            return this;
        }

        public Builder checkQuorum(boolean v) {
            checkQuorum = v;
            return this;
        }

        public Builder maxInflightAppends(int v) {
            maxInflightAppends = v;
            return this;
        }

        public Builder maxInflightBytes(long v) {
            maxInflightBytes = v;
            return this;
        }

        public Builder maxAppendBytes(int v) {
            maxAppendBytes = v;
            return this;
        }

        public Builder retransmitTimeoutMs(long v) {
            retransmitTimeoutMs = v;
            return this;
        }

        public Builder maxUncommittedBytes(long v) {
            maxUncommittedBytes = v;
            return this;
        }

        public Builder maxPendingProposals(int v) {
            maxPendingProposals = v;
            return this;
        }

        public Builder snapshotChunkBytes(int v) {
            snapshotChunkBytes = v;
            return this;
        }

        public Builder maxSnapshotBytes(long v) {
            maxSnapshotBytes = v;
            return this;
        }

        public Builder snapshotIntervalOffsets(long v) {
            snapshotIntervalOffsets = v;
            return this;
        }

        public Builder snapshotTrailingOffsets(long v) {
            snapshotTrailingOffsets = v;
            return this;
        }

        public Builder maxApplyEntriesPerStep(int v) {
            maxApplyEntriesPerStep = v;
            return this;
        }

        public Builder maxHeldMessages(int v) {
            maxHeldMessages = v;
            return this;
        }

        public RaftConfig build() {
            return new RaftConfig(this);
        }
    }
}
