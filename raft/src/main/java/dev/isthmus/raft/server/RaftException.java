package dev.isthmus.raft.server;

import dev.isthmus.raft.RaftErrors;

/**
 * A replication that did not happen: {@link #code()} is a {@link RaftErrors} code ({@link RaftErrors#NOT_LEADER}
 * when leadership was lost before the entry committed or another leader's entry took its offset,
 * {@link RaftErrors#BACKPRESSURE}, {@link RaftErrors#STOPPED}, ...). The message says what happened and, for a
 * lost leadership, that the entry may still be committed by the new leader (Kafka's NOT_LEADER_OR_FOLLOWER
 * contract: an idempotent producer's retry is deduplicated).
 */
public final class RaftException extends RuntimeException {
    private final int code;
    private final int leaderId;

    public RaftException(int code, int leaderId, String message) {
        super(message, null, false, false);
        this.code = code;
        this.leaderId = leaderId;
    }

    /** A {@link RaftErrors} code. */
    public int code() {
        return code;
    }

    /** The leader known when it failed, or -1. */
    public int leaderId() {
        return leaderId;
    }
}
