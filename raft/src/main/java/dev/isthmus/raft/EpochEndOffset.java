package dev.isthmus.raft;

/**
 * The answer to Kafka's OffsetForLeaderEpoch for one partition: the largest leader epoch (Raft term) at or
 * below the requested one that this log knows, and the end offset (exclusive) of that epoch: the start of the
 * next epoch, or the log end offset when it is the latest. {@link #UNDEFINED} (-1, -1) when the log knows no
 * such epoch (Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET).
 */
public record EpochEndOffset(long epoch, long endOffset) {
    public static final EpochEndOffset UNDEFINED = new EpochEndOffset(-1, -1);
}
