package dev.isthmus.raft;

/** A message of one Raft group, routed by {@link #groupId()} to the group on the destination node. */
public sealed interface GroupMessage extends RaftMessage permits VoteRequest, VoteResponse, AppendRequest,
    AppendResponse, InstallSnapshotRequest, InstallSnapshotResponse, TimeoutNow {
    long groupId();

    /** The sender's term (paper §5.1: every RPC carries it; a higher one makes the receiver step down). */
    long term();
}
