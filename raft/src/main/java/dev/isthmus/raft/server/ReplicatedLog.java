package dev.isthmus.raft.server;

import dev.isthmus.log.Log;
import dev.isthmus.log.LogCleaner;
import dev.isthmus.log.LogConfig;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.Payload;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.raft.Role;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.function.LongConsumer;

/**
 * One Raft group hosted by a {@link RaftShard}: a partition's replicated log (or the controller's), with the
 * calls its owner needs: {@link #replicate} (propose and learn the outcome), the high watermark, the log start,
 * the leader, and the underlying {@link Log} for reads.
 *
 * <h2>Replicating</h2>
 * {@link #replicate} proposes a payload (for a partition a {@link dev.isthmus.raft.storage.KafkaBatchPayload}:
 * one Kafka v2 batch; the storage stamps its baseOffset and the term as partitionLeaderEpoch) and returns a
 * promise completed with the entry's base offset once it is committed (on a majority's disks, the leader's
 * own fdatasync counted like a follower's), or failed with a {@link RaftException}: refused at once
 * (NOT_LEADER, TRANSFER_IN_PROGRESS, BACKPRESSURE, STOPPED), or later NOT_LEADER when this node stops leading
 * before the entry commits (as Kafka fails acks=all requests on a leader change; the entry may still commit
 * under the new leader) or when another leader's entry takes its offset. {@link #replicate(Payload, LongConsumer)}
 * also hands out the base offset as soon as the leader accepts the proposal (acks=1).
 *
 * <h2>Log start, retention, compaction</h2>
 * {@link #truncatePrefix} (Kafka DeleteRecords) replicates a prefix truncation that every replica carries out
 * once it commits (see {@link RaftGroup#proposePrefixTruncation}); {@link #logStartOffset()} is the exact,
 * durable result. The shard applies retention through it ({@link #enforceRetention}, on the leader, whole
 * segments, never past the high watermark) and hands {@code cleanup.policy=compact} logs to its cleaner, which
 * compacts each replica's log below the commit offset keeping every batch's offsets and epoch.
 * {@link #updateConfig} changes those settings at runtime.
 *
 * <h2>Threads</h2>
 * Owned by the group's shard thread, like everything it wraps. Listener calls arrive on it, synchronously
 * from the group's steps: the owner's {@link GroupListener} sees every event after this class has settled its
 * promises.
 */
public final class ReplicatedLog implements GroupListener {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft");
    private final RaftShard host;
    private final long groupId;
    private final Path dir;
    private final LogEngineRaftLog storage;
    private final GroupListener listener;
    private final ArrayDeque<Waiter> waiters = new ArrayDeque<>();
    private final ArrayDeque<Truncation> truncations = new ArrayDeque<>();
    private RaftGroup raft;
    private int preferredLeader = -1;
    private CompactionBound compactionBound;

    /**
     * What the owner of a log with transactions (a Kafka partition) tells its compaction: how far it may look (the
     * last stable offset: a transaction still open may yet be aborted) and the aborted-transaction index it reads and
     * updates. Called on the group's shard.
     */
    public interface CompactionBound {
        /** The offset compaction stays below (at most the high watermark is used), or -1 while it is not known. */
        long endOffset();

        /** The log's aborted-transaction index. */
        dev.isthmus.log.TransactionIndex transactions();
    }

    /** The base offset of the last proposal this leader accepted ({@link #lastProposedOffset()}). */
    private long lastProposed = -1;

    private record Waiter(long baseOffset, long lastOffset, long term, Promise<Long> promise) {
    }

    /**
     * {@link #awaitCommit} waiters: entries already in the leader's log, in no particular offset order (few: a
     * retried or re-sent batch whose first copy is not committed yet), settled like {@link #waiters}.
     */
    private final java.util.ArrayList<Waiter> entryWaiters = new java.util.ArrayList<>();

    /** A prefix truncation proposed here: its entry's offset and term, the start it asks for, and whether committed. */
    private static final class Truncation {
        final long offset;
        final long term;
        final long newStart;
        final Promise<Long> promise = new Promise<>();
        boolean committed;

        Truncation(long offset, long term, long newStart) {
            this.offset = offset;
            this.term = term;
            this.newStart = newStart;
        }
    }

    ReplicatedLog(RaftShard host, long groupId, Path dir, LogEngineRaftLog storage, GroupListener listener) {
        this.host = host;
        this.groupId = groupId;
        this.dir = dir;
        this.storage = storage;
        this.listener = listener == null ? GroupListener.NONE : listener;
    }

    void bind(RaftGroup raft) {
        this.raft = raft;
    }

    public long groupId() {
        return groupId;
    }

    /** The group's directory (segments and the raft-state file). */
    public Path dir() {
        return dir;
    }

    /** The protocol member (for transfer, membership changes, OffsetForLeaderEpoch, metrics). */
    public RaftGroup raft() {
        return raft;
    }

    /** The Raft storage adapter. */
    public LogEngineRaftLog storage() {
        return storage;
    }

    /**
     * The log-engine log holding the entries as Kafka batches; consumers read it bounded by {@link #highWatermark()}.
     * Do not keep it: a snapshot install that does not match the local log (a follower behind the leader's log
     * start after retention or DeleteRecords) closes it and opens a new one in the same directory, and while that
     * happens this returns null. Ask for it at each use.
     */
    public Log log() {
        return storage.log();
    }

    /**
     * Kafka's high watermark: one past the last committed offset whose bytes the log-engine log holds: while a suffix
     * truncation is still running there (a follower replacing a deposed leader's entries), not past the cut (see
     * {@link LogEngineRaftLog#readableOffset()}): every reader of {@link #log()} is bounded by it.
     */
    public long highWatermark() {
        return Math.min(raft.commitOffset(), storage.readableOffset()) + 1;
    }

    /** Kafka's log end offset. */
    public long logEndOffset() {
        return raft.lastOffset() + 1;
    }

    /**
     * Kafka's log start offset: the first offset consumers may fetch (the same as {@code log().logStartOffset()}).
     * Moved by {@link #truncatePrefix} (DeleteRecords) and retention; it may lie inside a batch, which is then
     * served whole (consumers skip the records before their fetch offset).
     */
    public long logStartOffset() {
        return raft.logStartOffset();
    }

    public boolean isLeader() {
        return raft.isLeader();
    }

    /** The leader known here, or -1. */
    public int leaderId() {
        int l = raft.leaderId();
        return l == RaftGroup.NONE ? -1 : l;
    }

    /** The current term: the Kafka leader epoch. */
    public long term() {
        return raft.term();
    }

    public Configuration configuration() {
        return raft.configuration();
    }

    /**
     * The node that should lead this group (the partition's first replica), or -1 for no preference. While
     * this node leads and the preferred voter is caught up and alive, the shard hands leadership to it (Kafka's
     * preferred leader election), so leadership follows the controller's balanced placement.
     */
    public void setPreferredLeader(int nodeId) {
        this.preferredLeader = nodeId;
    }

    public int preferredLeader() {
        return preferredLeader;
    }

    /** Hands leadership to the preferred leader when this node leads and it is ready; true when a transfer started. */
    boolean balanceLeadership() {
        if (preferredLeader < 0 || preferredLeader == raft.nodeId() || !raft.isLeader()
            || !raft.configuration().isVoter(preferredLeader) || !raft.isCaughtUpRecently(preferredLeader)
            || host.server().isLeadershipExcluded(preferredLeader) || !host.node().mayLead()) {
            return false;
        }
        return raft.transferLeadership(preferredLeader) == RaftErrors.OK;
    }

    /**
     * Before this node stops (or goes into maintenance): when it leads, hands leadership to an in-sync voter that
     * {@code eligible} accepts (the preferred leader first, else the one holding the most of the log; see
     * {@link RaftGroup#handOffTarget}) by a Raft leadership transfer (thesis §3.10), unless one is under way.
     * Returns the target, or -1 when this node does not lead or no voter can take over now. Call on the group's
     * shard, repeatedly until this node no longer leads: a transfer not finished within the minimum election
     * timeout is abandoned by the group, and the next call starts another.
     */
    public int handOffLeadership(java.util.function.IntPredicate eligible) {
        if (!raft.isLeader()) {
            return -1;
        }
        int target = raft.handOffTarget(eligible, preferredLeader);
        if (target < 0 || raft.transferring()) {
            return target;
        }
        return raft.transferLeadership(target) == RaftErrors.OK ? target : -1;
    }

    /** Proposals waiting for their outcome. */
    public int pendingReplications() {
        return waiters.size();
    }

    /**
     * The base offset the last accepted {@link #replicate} got, read right after it returned a promise that is not
     * failed: what {@code onProposed} would have been told, without a lambda per proposal (the produce path's acks=1
     * answer and the producer state's offsets). Call on the group's shard.
     */
    public long lastProposedOffset() {
        return lastProposed;
    }

    /**
     * Proposes {@code payload} and returns a promise of its base offset once committed (see the class
     * comment). Call on the group's shard.
     */
    public Promise<Long> replicate(Payload payload) {
        return replicate(payload, null);
    }

    /**
     * {@link #replicate(Payload)}, and, when the leader accepts the proposal, calls {@code onProposed} with its
     * base offset synchronously, before returning: acks=1 can be answered at once with the offset (the entry is
     * in the leader's log, not yet committed; it may still be lost to a leader change, as with Kafka's acks=1).
     * {@code onProposed} is not called when the proposal is refused (the promise is then already failed).
     */
    public Promise<Long> replicate(Payload payload, LongConsumer onProposed) {
        long base = raft.propose(payload);
        if (base < 0) {
            int code = (int) base;
            return Promise.failed(new RaftException(code, leaderId(), "group " + groupId + " on node "
                + raft.nodeId() + ": " + RaftErrors.describe(code)
                + (code == RaftErrors.NOT_LEADER ? " (leader: " + leaderId() + ")" : "")));
        }
        Waiter w = new Waiter(base, base + payload.recordCount() - 1, raft.term(), new Promise<>());
        waiters.add(w);
        lastProposed = base;
        if (onProposed != null) {
            onProposed.accept(base);
        }
        return w.promise;
    }

    /**
     * Waits for the entry already in this leader's log at {@code [baseOffset, lastOffset]} (proposed in this term or
     * an earlier one) to commit: the promise completes with {@code baseOffset} once it is committed as it is in the log
     * now, and fails like a {@link #replicate} promise otherwise (NOT_LEADER when this node stops leading first or
     * another leader's entry takes the offset; STOPPED). What a Kafka leader answers a retried acks=all batch it already
     * has: its offset, once the offset is committed (Kafka's DelayedProduce waits for the high watermark to pass the
     * duplicate's last offset). Call on the group's shard, on the leader.
     */
    public Promise<Long> awaitCommit(long baseOffset, long lastOffset) {
        host.shard().checkOwner();
        if (lastOffset <= raft.commitOffset()) {
            return Promise.completed(baseOffset); // committed entries stay (even once compacted or below the log start)
        }
        long term = raft.termAt(lastOffset);
        if (!raft.isLeader() || term < 0) {
            return Promise.failed(new RaftException(RaftErrors.NOT_LEADER, leaderId(), "group " + groupId + " on node "
                + raft.nodeId() + ": " + (term < 0 ? "offset " + lastOffset + " is not in the log"
                : RaftErrors.describe(RaftErrors.NOT_LEADER) + " (leader: " + leaderId() + ")")));
        }
        Waiter w = new Waiter(baseOffset, lastOffset, term, new Promise<>());
        entryWaiters.add(w);
        return w.promise();
    }

    /**
     * Moves the log start to {@code newStartOffset} (Kafka DeleteRecords; retention calls it too), on every replica:
     * proposes a prefix truncation entry (see {@link RaftGroup#proposePrefixTruncation}); once it is committed each
     * replica takes a zero-byte snapshot before the batch holding the new start, drops its log's prefix behind it
     * and records the exact start. Call on the group's shard, on the leader.
     *
     * @return a promise of the new log start ({@code >= newStartOffset}) once it is durable here, completed at once
     *         when the log already starts there or later; failed with {@link IllegalArgumentException} for an
     *         offset past the high watermark (naming both), with a {@link RaftException} when refused
     *         (NOT_LEADER, TRANSFER_IN_PROGRESS, BACKPRESSURE, STOPPED) or when leadership was lost before the
     *         entry committed (NOT_LEADER: the new leader may still carry it out), or with
     *         {@link IllegalStateException} for a group whose state machine consumes its entries
     */
    public Promise<Long> truncatePrefix(long newStartOffset) {
        host.shard().checkOwner();
        long hw = highWatermark();
        if (newStartOffset < 0 || newStartOffset > hw) {
            return Promise.failed(new IllegalArgumentException("cannot move the log start of group " + groupId + " to "
                + newStartOffset + ": beyond the high watermark " + hw + " (log start " + logStartOffset() + ")"));
        }
        long start = logStartOffset();
        if (newStartOffset <= start) {
            return Promise.completed(start);
        }
        for (Truncation t : truncations) {
            if (t.newStart >= newStartOffset && t.term == raft.term()) {
                return t.promise; // an earlier request of this term covers it
            }
        }
        long offset;
        try {
            offset = raft.proposePrefixTruncation(newStartOffset);
        } catch (IllegalArgumentException | IllegalStateException e) {
            return Promise.failed(e);
        }
        if (offset < 0) {
            int code = (int) offset;
            return Promise.failed(new RaftException(code, leaderId(), "cannot truncate group " + groupId + " on node "
                + raft.nodeId() + ": " + RaftErrors.describe(code)
                + (code == RaftErrors.NOT_LEADER ? " (leader: " + leaderId() + ")" : "")));
        }
        Truncation t = new Truncation(offset, raft.term(), newStartOffset);
        truncations.add(t);
        return t.promise;
    }

    /**
     * Retention, as LogManager applies it to plain logs, made a replicated decision: on the leader, when the log
     * exceeds its retention.ms or retention.bytes, moves the log start where the log-engine's retention would
     * (the base of the oldest segment it would keep, see {@link Log#retentionStartOffset}), never past the high
     * watermark, with {@link #truncatePrefix}: every replica drops the same prefix. Followers do nothing (the
     * leader's truncation reaches them). The shard calls it every {@link RaftServerConfig#retentionCheckIntervalMs()}.
     *
     * @return a promise of the log start: the new one once durable, or the current one when nothing is due or
     *         this node does not lead
     */
    public Promise<Long> enforceRetention(long nowMs) {
        host.shard().checkOwner();
        Log log = storage.log();
        if (log == null || raft.isStopped() || !raft.isLeader() || raft.appliesEntries()) {
            return Promise.completed(logStartOffset()); // a state machine's log goes behind its snapshots instead
        }
        long target = Math.min(log.retentionStartOffset(nowMs), highWatermark());
        if (target <= logStartOffset() || target <= pendingTruncationStart()) {
            return Promise.completed(logStartOffset());
        }
        return truncatePrefix(target);
    }

    /**
     * Hands the log to the shard's cleaner when its cleanup.policy is compact (the cleaner compacts it if its dirty
     * ratio calls for it): only below the commit offset, keeping every batch's offsets, leader epoch and
     * boundaries, so the replicas' logs still match entry for entry. Every replica compacts its own log. The shard
     * calls it every compaction check interval; a test may call it (on the group's shard) instead of waiting.
     */
    public void compact(LogCleaner cleaner) {
        Log log = storage.log();
        if (log == null || raft.isStopped() || raft.appliesEntries() || !storage.config().compact()
            || cleaner.isCompacting(log)) {
            return;
        }
        CompactionBound bound = compactionBound;
        long end = highWatermark();
        dev.isthmus.log.TransactionIndex txns = null;
        if (bound != null) {
            long stable = bound.endOffset();
            if (stable < 0) {
                return; // the owner does not know yet which transactions are open
            }
            end = Math.min(end, stable);
            txns = bound.transactions();
        }
        cleaner.compactReplicated(log, end, txns, error -> {
            if (error != null) {
                LOG.log(System.Logger.Level.DEBUG, "compaction of group " + groupId + " not done now: "
                    + error.getMessage());
            }
        });
    }

    /**
     * Bounds this log's compaction by what its owner knows of transactions (see {@link CompactionBound}); null
     * removes the bound. On the group's shard.
     */
    public void boundCompaction(CompactionBound bound) {
        this.compactionBound = bound;
    }

    /** The highest log start a prefix truncation proposed here and not yet done asks for, or -1. */
    long pendingTruncationStart() {
        long max = -1;
        for (Truncation t : truncations) {
            max = Math.max(max, t.newStart);
        }
        return max;
    }

    /**
     * Changes the log's settings (a topic's retention, segment size, cleanup policy, max.message.bytes): the log
     * takes them at once (new segments, appends), the shard's retention and compaction passes from their next run.
     *
     * @throws IllegalArgumentException when the log cannot take them (max.message.bytes beyond its read windows)
     */
    public void updateConfig(LogConfig config) {
        host.shard().checkOwner();
        storage.updateConfig(config);
    }

    /** The log's settings. */
    public LogConfig config() {
        return storage.config();
    }

    @Override
    public void onRoleChange(long groupId, Role role, long term, int leaderId) {
        if (role != Role.LEADER && (!waiters.isEmpty() || !entryWaiters.isEmpty())) {
            failAll(RaftErrors.NOT_LEADER, "node " + raft.nodeId() + " stopped leading group " + groupId
                + " before the entry committed (it may still be committed by the new leader"
                + (leaderId == RaftGroup.NONE ? "" : ", node " + leaderId) + ")");
        }
        if (role != Role.LEADER) {
            // Committed truncations are carried out on every replica whoever leads: keep waiting for those.
            truncations.removeIf(t -> {
                if (!t.committed) {
                    t.promise.fail(new RaftException(RaftErrors.NOT_LEADER, leaderId == RaftGroup.NONE ? -1 : leaderId,
                        "node " + raft.nodeId() + " stopped leading group " + groupId + " before the truncation to "
                            + t.newStart + " committed (the new leader may still carry it out)"));
                    return true;
                }
                return false;
            });
        }
        listener.onRoleChange(groupId, role, term, leaderId);
    }

    @Override
    public void onLogStartChange(long groupId, long logStartOffset) {
        settleTruncations();
        listener.onLogStartChange(groupId, logStartOffset);
    }

    private void settleTruncations() {
        if (truncations.isEmpty()) {
            return;
        }
        long commit = raft.commitOffset();
        long start = raft.logStartOffset();
        truncations.removeIf(t -> {
            if (!t.committed && t.offset <= commit) {
                switch (raft.proposalOutcome(t.offset, t.term)) {
                    case COMMITTED -> t.committed = true;
                    case LOST -> {
                        t.promise.fail(new RaftException(RaftErrors.NOT_LEADER, leaderId(), "the truncation of group "
                            + groupId + " to " + t.newStart + " proposed at " + t.offset + " in term " + t.term
                            + " was replaced by another leader's entry"));
                        return true;
                    }
                    case UNKNOWN -> t.committed = true; // its offset was truncated away: a later truncation passed it
                    case PENDING -> {
                    }
                }
            }
            if (t.committed && start >= t.newStart) {
                t.promise.complete(start);
                return true;
            }
            return false;
        });
    }

    @Override
    public void onCommit(long groupId, long commitOffset) {
        while (!waiters.isEmpty() && waiters.peek().lastOffset() <= commitOffset) {
            settle(waiters.poll());
        }
        if (!entryWaiters.isEmpty()) {
            entryWaiters.removeIf(w -> {
                if (w.lastOffset() > commitOffset) {
                    return false;
                }
                settle(w);
                return true;
            });
        }
        settleTruncations();
        listener.onCommit(groupId, commitOffset);
    }

    /** Completes or fails the promise of a waiter whose last offset is at or below the commit offset. */
    private void settle(Waiter w) {
        switch (raft.proposalOutcome(w.lastOffset(), w.term())) {
            case COMMITTED -> w.promise().complete(w.baseOffset());
            case LOST -> w.promise().fail(new RaftException(RaftErrors.NOT_LEADER, leaderId(), "the entry proposed at "
                + w.baseOffset() + " in term " + w.term() + " of group " + groupId
                + " was replaced by another leader's"));
            case UNKNOWN, PENDING -> w.promise().fail(new RaftException(RaftErrors.NOT_LEADER, leaderId(),
                "the outcome of the entry proposed at " + w.baseOffset() + " in group " + groupId
                    + " is unknown (its offset was compacted)"));
        }
    }

    @Override
    public void onConfigurationChange(long groupId, Configuration configuration) {
        listener.onConfigurationChange(groupId, configuration);
    }

    void failAll(int code, String message) {
        while (!waiters.isEmpty()) {
            waiters.poll().promise().fail(new RaftException(code, leaderId(), message));
        }
        for (Waiter w : entryWaiters) {
            w.promise().fail(new RaftException(code, leaderId(), message));
        }
        entryWaiters.clear();
        if (code == RaftErrors.STOPPED) {
            while (!truncations.isEmpty()) {
                truncations.poll().promise.fail(new RaftException(code, leaderId(), message));
            }
        }
    }

    RaftShard host() {
        return host;
    }

    @Override
    public String toString() {
        return "ReplicatedLog[group " + groupId + ", " + (raft == null ? "opening" : raft.role() + " term "
            + raft.term() + ", hw " + highWatermark() + ", leo " + logEndOffset()) + "]";
    }
}
