package dev.isthmus.raft;

/**
 * InstallSnapshot (thesis §5.1, Figure 5.3): one chunk of the leader's snapshot for a follower whose next
 * offset lies below the leader's log start.
 *
 * @param meta        which snapshot (its last offset, term and configuration)
 * @param totalBytes  size of the whole snapshot
 * @param chunkOffset position of {@code chunk} in it
 * @param chunk       the bytes; not modified by anyone after construction
 * @param done        this is the last chunk
 */
public record InstallSnapshotRequest(long groupId, int from, int to, long term, SnapshotMeta meta,
                                     long totalBytes, long chunkOffset, byte[] chunk, boolean done)
    implements GroupMessage {
}
