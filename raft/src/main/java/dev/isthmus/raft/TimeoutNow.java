package dev.isthmus.raft;

/** Leadership transfer (thesis §3.10): the leader tells an up-to-date follower to start an election now. */
public record TimeoutNow(long groupId, int from, int to, long term) implements GroupMessage {
}
