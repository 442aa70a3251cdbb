package dev.isthmus.raft;

/**
 * Describes a snapshot (thesis §5.1): the state machine's state as of {@code lastOffset}, which replaces the
 * log up to and including it. {@code lastTerm} is the term of that offset (the prevLogTerm of the first entry
 * after the snapshot) and {@code configuration} the membership in force there.
 *
 * @param lastOffset    last offset covered, -1 for "no snapshot"
 * @param lastTerm      term of {@code lastOffset}, 0 for "no snapshot"
 * @param configuration membership as of {@code lastOffset}
 */
public record SnapshotMeta(long lastOffset, long lastTerm, Configuration configuration) {
    /** No snapshot: the log starts at offset 0. */
    public static final SnapshotMeta NONE = new SnapshotMeta(-1, 0, Configuration.EMPTY);

    public SnapshotMeta {
        if (lastOffset < -1 || lastTerm < 0 || (lastOffset == -1) != (lastTerm == 0)) {
            throw new IllegalArgumentException("bad snapshot position " + lastOffset + " in term " + lastTerm);
        }
        if (configuration == null) {
            throw new IllegalArgumentException("a snapshot records its configuration");
        }
    }

    /** True when this describes an actual snapshot. */
    public boolean exists() {
        return lastOffset >= 0;
    }
}
