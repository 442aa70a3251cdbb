package dev.isthmus.raft;

/**
 * Expected outcomes of {@link RaftGroup}'s owner-facing operations, as values (negative codes; >= 0 means
 * success or an offset). The gateway maps them to Kafka errors: {@link #NOT_LEADER} and
 * {@link #TRANSFER_IN_PROGRESS} to NOT_LEADER_OR_FOLLOWER (6), {@link #BACKPRESSURE} to REQUEST_TIMED_OUT (7)
 * or a retriable throttle, the membership errors to REASSIGNMENT_IN_PROGRESS (60) / INVALID_REPLICA_ASSIGNMENT
 * (39).
 */
public final class RaftErrors {
    private RaftErrors() {
    }

    public static final int OK = 0;
    /** This member is not the leader (see {@link RaftGroup#leaderId()}). */
    public static final int NOT_LEADER = -1;
    /** The leader is handing over leadership and accepts no proposals meanwhile (thesis §3.10). */
    public static final int TRANSFER_IN_PROGRESS = -2;
    /** Too many uncommitted bytes or entries; retry after commits. */
    public static final int BACKPRESSURE = -3;
    /** Another membership change is not finished. */
    public static final int CONFIG_CHANGE_IN_PROGRESS = -4;
    /** The node named is not a voter of the group. */
    public static final int NOT_A_VOTER = -5;
    /** The requested membership is invalid (no voters, a node both voter and learner, ...). */
    public static final int INVALID_CONFIGURATION = -6;
    /** The group has stopped (its storage failed or it was removed from the node). */
    public static final int STOPPED = -7;
    /** A snapshot is already being written, or there is nothing new to snapshot. */
    public static final int SNAPSHOT_NOT_NEEDED = -8;

    /** A short description of {@code code} for logs and error messages. */
    public static String describe(int code) {
        return switch (code) {
            case OK -> "ok";
            case NOT_LEADER -> "not the leader";
            case TRANSFER_IN_PROGRESS -> "leadership transfer in progress";
            case BACKPRESSURE -> "too much uncommitted data";
            case CONFIG_CHANGE_IN_PROGRESS -> "a membership change is in progress";
            case NOT_A_VOTER -> "not a voter";
            case INVALID_CONFIGURATION -> "invalid configuration";
            case STOPPED -> "group stopped";
            case SNAPSHOT_NOT_NEEDED -> "snapshot in progress or nothing to snapshot";
            default -> code >= 0 ? "ok (" + code + ")" : "unknown error " + code;
        };
    }
}
