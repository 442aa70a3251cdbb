package dev.isthmus.raft;

/**
 * Counters of one Raft group on one node (Redpanda's per-module probe). Plain fields written by the group's
 * shard only; other threads may read them racily (monotonic counters, a stale value is harmless).
 * Latency distributions are kept per node in {@link NodeMetrics}, since a histogram per group would cost
 * more memory than the group.
 */
public final class GroupMetrics {
    long preVotesStarted;
    long electionsStarted;
    long electionsWon;
    long termChanges;
    long leaderChanges;
    long stepDowns;
    long checkQuorumStepDowns;
    long votesGranted;
    long votesIgnoredInLease;
    long appendRequestsSent;
    long appendEntriesSent;
    long appendBytesSent;
    long appendResponsesSent;
    long appendRejectsSent;
    long appendRejectsReceived;
    long retransmits;
    long entriesAppended;
    long suffixTruncations;
    long prefixTruncations;
    long proposalsAccepted;
    long proposalsRejected;
    long commitAdvances;
    long entriesApplied;
    long snapshotsTaken;
    long snapshotChunksSent;
    long snapshotsInstalled;
    long transfersStarted;
    long transfersCompleted;
    long configurationsAppended;
    long heldMessagesDropped;

    public long preVotesStarted() {
        return preVotesStarted;
    }

    public long electionsStarted() {
        return electionsStarted;
    }

    public long electionsWon() {
        return electionsWon;
    }

    /** Times this member's term increased. */
    public long termChanges() {
        return termChanges;
    }

    /** Times the leader this member knows changed (including to "unknown"). */
    public long leaderChanges() {
        return leaderChanges;
    }

    /** Times this member stopped being leader. */
    public long stepDowns() {
        return stepDowns;
    }

    public long checkQuorumStepDowns() {
        return checkQuorumStepDowns;
    }

    public long votesGranted() {
        return votesGranted;
    }

    /** Vote requests ignored because a leader was heard recently (thesis §4.2.3). */
    public long votesIgnoredInLease() {
        return votesIgnoredInLease;
    }

    public long appendRequestsSent() {
        return appendRequestsSent;
    }

    /** Entries (batches) sent in AppendEntries requests, retransmissions included. */
    public long appendEntriesSent() {
        return appendEntriesSent;
    }

    public long appendBytesSent() {
        return appendBytesSent;
    }

    public long appendResponsesSent() {
        return appendResponsesSent;
    }

    public long appendRejectsSent() {
        return appendRejectsSent;
    }

    public long appendRejectsReceived() {
        return appendRejectsReceived;
    }

    /** Followers probed again after {@link RaftConfig#retransmitTimeoutMs()} without acknowledgement. */
    public long retransmits() {
        return retransmits;
    }

    /** Entries appended to the local log (as leader or follower). */
    public long entriesAppended() {
        return entriesAppended;
    }

    public long suffixTruncations() {
        return suffixTruncations;
    }

    public long proposalsAccepted() {
        return proposalsAccepted;
    }

    public long proposalsRejected() {
        return proposalsRejected;
    }

    public long commitAdvances() {
        return commitAdvances;
    }

    public long entriesApplied() {
        return entriesApplied;
    }

    /** Prefix truncations (retention, DeleteRecords) carried out on this member's log. */
    public long prefixTruncations() {
        return prefixTruncations;
    }

    public long snapshotsTaken() {
        return snapshotsTaken;
    }

    public long snapshotChunksSent() {
        return snapshotChunksSent;
    }

    public long snapshotsInstalled() {
        return snapshotsInstalled;
    }

    public long transfersStarted() {
        return transfersStarted;
    }

    /** Transfers where this leader sent TimeoutNow. */
    public long transfersCompleted() {
        return transfersCompleted;
    }

    public long configurationsAppended() {
        return configurationsAppended;
    }

    public long heldMessagesDropped() {
        return heldMessagesDropped;
    }

    @Override
    public String toString() {
        return "GroupMetrics[elections=" + electionsStarted + "/" + electionsWon + " won, preVotes=" + preVotesStarted
            + ", terms=" + termChanges + ", stepDowns=" + stepDowns + ", appendsSent=" + appendRequestsSent
            + ", rejects=" + appendRejectsReceived + ", commits=" + commitAdvances + ", applied=" + entriesApplied
            + ", snapshots=" + snapshotsTaken + "/" + snapshotsInstalled + " installed]";
    }
}
