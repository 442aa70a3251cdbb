package dev.isthmus.raft;

/**
 * RequestVote (paper §5.2, Figure 2) or its pre-vote variant (thesis §9.6).
 *
 * @param term       the candidate's new term; for a pre-vote the term it would campaign in (its term + 1)
 * @param lastOffset the candidate's last log offset (for the election restriction, paper §5.4.1)
 * @param lastTerm   the term of that offset
 * @param preVote    a pre-vote: asks "would you vote for me?" without changing anyone's term
 * @param transfer   sent after a TimeoutNow (leadership transfer, thesis §3.10): voters do not ignore it even
 *                   when they heard from a leader recently (thesis §4.2.3)
 */
public record VoteRequest(long groupId, int from, int to, long term, long lastOffset, long lastTerm,
                          boolean preVote, boolean transfer) implements GroupMessage {
}
