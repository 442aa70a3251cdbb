package dev.isthmus.raft;

/**
 * Reply to an {@link AppendRequest}. A follower answers once the accepted entries are durable (one reply per
 * flush, however many requests it covers), and at once when it rejects.
 *
 * @param success            the consistency check passed
 * @param matchOffset        the follower's log matches the leader's up to here and is durable there (what
 *                           counts for commit)
 * @param appendedOffset     the follower's log matches the leader's up to here (perhaps not durable yet)
 * @param lastOffset         the follower's last log offset
 * @param rejectedPrevOffset on rejection, the prevOffset that failed the check
 * @param hintOffset         on rejection, the largest offset at or below {@code min(prevOffset, lastOffset)}
 *                           whose term is at most the request's prevTerm (fast backtracking, paper §5.3)
 * @param hintTerm           the term of {@code hintOffset}
 */
public record AppendResponse(long groupId, int from, int to, long term, boolean success, long matchOffset,
                             long appendedOffset, long lastOffset, long rejectedPrevOffset, long hintOffset,
                             long hintTerm) implements GroupMessage {
}
