package dev.isthmus.raft;

/**
 * Reply to an {@link InstallSnapshotRequest}.
 *
 * @param snapshotLastOffset the snapshot this answers for
 * @param nextChunkOffset    the byte position the follower expects next
 * @param installed          the snapshot is durably installed (or the follower needed none)
 * @param matchOffset        the follower's log matches the leader's and is durable up to here
 */
public record InstallSnapshotResponse(long groupId, int from, int to, long term, long snapshotLastOffset,
                                      long nextChunkOffset, boolean installed, long matchOffset)
    implements GroupMessage {
}
