package dev.isthmus.raft;

/**
 * Reply to a {@link VoteRequest}.
 *
 * @param term    the voter's term; for a granted pre-vote, the requested term
 * @param granted whether the vote (or pre-vote) is granted
 * @param preVote true for a pre-vote reply
 */
public record VoteResponse(long groupId, int from, int to, long term, boolean granted, boolean preVote)
    implements GroupMessage {
}
