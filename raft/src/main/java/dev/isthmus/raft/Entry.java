package dev.isthmus.raft;

import java.util.Objects;

/**
 * One Raft log entry, shaped like a Kafka record batch: it covers the contiguous offsets
 * {@code [baseOffset, lastOffset]} and carries one term. The Raft index is the Kafka offset; the term is the
 * Kafka leader epoch, stamped into the batch's partitionLeaderEpoch by the storage adapter.
 *
 * <pre>
 *   offsets   ... | 17 18 19 20 | 21 | 22 23 | ...
 *   entries       |  DATA t=4   | LC | DATA  |         LC = LEADER_CHANGE (no-op) of a new term
 *   prevLogIndex of the entry at 21 is 20 (the last offset of the previous batch), prevLogTerm its term
 * </pre>
 *
 * <p>Immutable. A {@link EntryKind#DATA} entry holds a {@link Payload}; a {@link EntryKind#CONFIGURATION} entry
 * a {@link Configuration}; a {@link EntryKind#PREFIX_TRUNCATION} entry the new log start; a
 * {@link EntryKind#LEADER_CHANGE} entry nothing. The control kinds cover one offset each.
 */
public final class Entry {
    /**
     * Bytes charged per entry on top of its payload for flow control: the size of a Kafka v2 batch header,
     * which every entry becomes on disk and on the wire.
     */
    public static final int OVERHEAD_BYTES = 61;

    private final EntryKind kind;
    private final long baseOffset;
    private final long lastOffset;
    private final long term;
    private final Payload payload;
    private final Configuration configuration;
    private final long newStartOffset;
    private final LeaderChange leaderChange;

    /**
     * What a {@link EntryKind#LEADER_CHANGE} entry records, as KRaft's {@code LeaderChangeMessage}: the leader that
     * took office ({@code -1}: not known where the entry was written), the voters of its configuration and those
     * that granted it their vote. Informational (a log's readers, Kafka's DumpLogSegments): it takes no part in
     * Raft's decisions nor in an entry's equality, and it does not travel in AppendEntries (a follower writes what
     * it knows).
     */
    public record LeaderChange(int leaderId, int[] voters, int[] grantingVoters) {
        public LeaderChange {
            voters = voters.clone();
            grantingVoters = grantingVoters.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof LeaderChange l && l.leaderId == leaderId && java.util.Arrays.equals(l.voters, voters)
                && java.util.Arrays.equals(l.grantingVoters, grantingVoters);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * leaderId + java.util.Arrays.hashCode(voters)) + java.util.Arrays.hashCode(grantingVoters);
        }

        @Override
        public String toString() {
            return "LeaderChange[leader " + leaderId + ", voters " + java.util.Arrays.toString(voters) + ", granted by "
                + java.util.Arrays.toString(grantingVoters) + "]";
        }
    }

    private Entry(EntryKind kind, long baseOffset, long lastOffset, long term, Payload payload,
                  Configuration configuration, long newStartOffset) {
        this(kind, baseOffset, lastOffset, term, payload, configuration, newStartOffset, null);
    }

    private Entry(EntryKind kind, long baseOffset, long lastOffset, long term, Payload payload,
                  Configuration configuration, long newStartOffset, LeaderChange leaderChange) {
        if (baseOffset < 0 || lastOffset < baseOffset) {
            throw new IllegalArgumentException("bad entry offsets [" + baseOffset + ", " + lastOffset + "]");
        }
        if (term < 1) {
            throw new IllegalArgumentException("entries are written in terms >= 1, not " + term);
        }
        this.kind = kind;
        this.baseOffset = baseOffset;
        this.lastOffset = lastOffset;
        this.term = term;
        this.payload = payload;
        this.configuration = configuration;
        this.newStartOffset = newStartOffset;
        this.leaderChange = leaderChange;
    }

    /** A data entry at {@code baseOffset} covering {@code payload.recordCount()} offsets. */
    public static Entry data(long baseOffset, long term, Payload payload) {
        Objects.requireNonNull(payload, "payload");
        if (payload.recordCount() < 1) {
            throw new IllegalArgumentException("a payload holds at least one record, not " + payload.recordCount());
        }
        return new Entry(EntryKind.DATA, baseOffset, baseOffset + payload.recordCount() - 1, term, payload, null, -1);
    }

    /** The no-op a leader appends when it takes office (paper §5.4.2). */
    public static Entry leaderChange(long offset, long term) {
        return new Entry(EntryKind.LEADER_CHANGE, offset, offset, term, null, null, -1);
    }

    /** The no-op of a leader that took office, recording {@code info} (see {@link LeaderChange}). */
    public static Entry leaderChange(long offset, long term, LeaderChange info) {
        return new Entry(EntryKind.LEADER_CHANGE, offset, offset, term, null, null, -1, info);
    }

    /** A membership change (thesis §4). */
    public static Entry configuration(long offset, long term, Configuration configuration) {
        Objects.requireNonNull(configuration, "configuration");
        return new Entry(EntryKind.CONFIGURATION, offset, offset, term, null, configuration, -1);
    }

    /**
     * A prefix truncation (see {@link EntryKind#PREFIX_TRUNCATION}) to {@code newStartOffset}, which is at most
     * the entry's own offset (only committed offsets are truncated).
     */
    public static Entry prefixTruncation(long offset, long term, long newStartOffset) {
        if (newStartOffset < 0 || newStartOffset > offset) {
            throw new IllegalArgumentException("a prefix truncation at offset " + offset + " cannot move the log start to "
                + newStartOffset);
        }
        return new Entry(EntryKind.PREFIX_TRUNCATION, offset, offset, term, null, null, newStartOffset);
    }

    public EntryKind kind() {
        return kind;
    }

    public long baseOffset() {
        return baseOffset;
    }

    public long lastOffset() {
        return lastOffset;
    }

    /** The term (Kafka leader epoch) of the leader that created this entry. */
    public long term() {
        return term;
    }

    /** Number of offsets covered. */
    public int recordCount() {
        return (int) (lastOffset - baseOffset + 1);
    }

    /** The payload of a {@link EntryKind#DATA} entry, else null. */
    public Payload payload() {
        return payload;
    }

    /** The configuration of a {@link EntryKind#CONFIGURATION} entry, else null. */
    public Configuration configuration() {
        return configuration;
    }

    /** What a {@link EntryKind#LEADER_CHANGE} entry records, or null when nothing (see {@link LeaderChange}). */
    public LeaderChange leaderChange() {
        return leaderChange;
    }

    /** The log start a {@link EntryKind#PREFIX_TRUNCATION} entry moves to, else -1. */
    public long newStartOffset() {
        return newStartOffset;
    }

    /** Bytes charged for flow control: the payload plus {@link #OVERHEAD_BYTES}. */
    public int sizeBytes() {
        if (payload != null) {
            return OVERHEAD_BYTES + payload.sizeBytes();
        }
        if (configuration != null) {
            return OVERHEAD_BYTES + 4 * configuration.members().length;
        }
        return OVERHEAD_BYTES + (kind == EntryKind.PREFIX_TRUNCATION ? 8 : 0);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Entry e && e.kind == kind && e.baseOffset == baseOffset && e.lastOffset == lastOffset
            && e.term == term && Objects.equals(e.payload, payload) && Objects.equals(e.configuration, configuration)
            && e.newStartOffset == newStartOffset;
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, baseOffset, lastOffset, term, payload, configuration, newStartOffset);
    }

    @Override
    public String toString() {
        return "Entry[" + kind + " " + baseOffset + ".." + lastOffset + " t" + term
            + (configuration != null ? " " + configuration : "")
            + (kind == EntryKind.PREFIX_TRUNCATION ? " start " + newStartOffset : "") + ']';
    }
}
