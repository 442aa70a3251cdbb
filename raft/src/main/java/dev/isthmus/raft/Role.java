package dev.isthmus.raft;

/**
 * The role of a member in one Raft group (Raft paper §5.1, with the pre-vote phase of the thesis §9.6).
 */
public enum Role {
    /** Replicates the leader's log; starts a (pre-)election when it hears nothing for an election timeout. */
    FOLLOWER,
    /** Asking whether it could win an election before disturbing anyone's term (thesis §9.6). */
    PRE_CANDIDATE,
    /** Asking for votes in a new term (paper §5.2). */
    CANDIDATE,
    /** Accepts proposals and replicates them (paper §5.3). */
    LEADER
}
