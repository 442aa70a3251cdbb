package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeMap;

/**
 * One member of one Raft group: a pure, event-driven state machine with no threads, no clock and no I/O of its
 * own. It is stepped by its {@link RaftNode} ({@code tick}, incoming messages, coalesced heartbeats), by its
 * storage's completions ({@link RaftLog.Callbacks}) and by its owner ({@link #propose} and the other
 * operations), and it acts only through its {@link RaftLog} and the node's {@link Transport}.
 *
 * <h2>Protocol (paper = Ongaro and Ousterhout 2014, thesis = Ongaro 2014)</h2>
 * <ul>
 *   <li>Elections (paper §5.2) with randomized timeouts, pre-vote (thesis §9.6) and check-quorum (thesis §6.2):
 *       a leader that has not heard from a majority for an election timeout steps down, and voters that heard
 *       from a leader within the minimum election timeout ignore vote requests (thesis §4.2.3) unless they
 *       come from a leadership transfer.</li>
 *   <li>Term and vote are made durable ({@link RaftLog#persistHardState}) before this member says anything in
 *       the new term: every message it sends is held until the hard state it was produced under is durable,
 *       and a candidate counts its own vote only once durable.</li>
 *   <li>Replication (paper §5.3) with etcd-style progress tracking: one probe at a time until the follower's
 *       log matches, then pipelined AppendEntries (up to {@link RaftConfig#maxInflightAppends()} requests and
 *       {@link RaftConfig#maxInflightBytes()} in flight) batched up to {@link RaftConfig#maxAppendBytes()}.
 *       Followers resolve conflicts by suffix truncation and reject with a (term, offset) hint so the leader
 *       skips a whole term per round trip.</li>
 *   <li>Commit = the highest offset of the current term that a majority (of each half, when joint) holds
 *       <em>durably</em>: followers acknowledge only what they have flushed, and the leader counts its own
 *       durable end like any follower's, flushing in parallel with sending.</li>
 *   <li>Leadership transfer (thesis §3.10), membership change through learners and joint consensus
 *       (thesis §4, see {@link Configuration}), snapshots and prefix truncation with InstallSnapshot for
 *       followers behind the log start (thesis §5).</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * Owned by its node's shard: every method, every storage callback and every listener call runs on that
 * thread. Nothing here blocks. Messages produced by a step are sent during the step or, for replication, in
 * the node's next {@link RaftNode#flush()}, so that a burst of proposals becomes one AppendEntries per follower.
 */
public final class RaftGroup implements RaftLog.Callbacks {
    /** "No node": no leader known, no vote cast. */
    public static final int NONE = HardState.NO_VOTE;

    /** Outcomes of {@link #proposalOutcome}. */
    public enum Outcome {
        /** The entry proposed at that offset in that term is committed. */
        COMMITTED,
        /** Another entry was committed at that offset: the proposal is lost. */
        LOST,
        /** Not decided yet. */
        PENDING,
        /** The log no longer holds that offset (compacted) and cannot tell. */
        UNKNOWN
    }

    /** What a group needs from its node. */
    interface Host {
        long nowMs();

        java.util.random.RandomGenerator random();

        void send(RaftMessage message);

        void markDirty(RaftGroup group);

        NodeMetrics nodeMetrics();

        /**
         * Whether members on this node may become leaders: false while the node hands its leaderships away before
         * stopping (or is in maintenance), so that they neither campaign on a timeout nor take a transfer.
         */
        default boolean mayLead() {
            return true;
        }

        /**
         * How many bytes a leader may send to a learner now (the node's catch-up rate, see
         * {@link RaftNode#setCatchUpRate}): {@link Long#MAX_VALUE} without a rate, 0 or less when it is spent (the
         * send waits for a later tick). One entry or snapshot chunk may go past it.
         */
        default long catchUpAllowance() {
            return Long.MAX_VALUE;
        }

        /** A leader sent {@code bytes} to a learner (charged to the catch-up rate). */
        default void catchUpSent(long bytes) {
        }
    }

    private final Host host;
    private final long groupId;
    private final int nodeId;
    private final RaftConfig config;
    private final RaftLog log;
    private final StateMachine stateMachine;
    private final GroupListener listener;
    private final GroupMetrics metrics = new GroupMetrics();
    private final NodeMetrics nodeMetrics;

    // ---------------------------------------------------------------- persistent state (memory view)
    private long term;
    private int votedFor;
    private HardState requestedHardState;
    private HardState durableHardState;
    private final ArrayDeque<GroupMessage> held = new ArrayDeque<>();
    /** A send to a learner was put off by the catch-up rate: the next tick retries. */
    private boolean catchUpDeferred;

    // ---------------------------------------------------------------- volatile state
    private Role role = Role.FOLLOWER;
    private int leaderId = NONE;
    private long commitOffset;
    private long appliedOffset;
    private boolean applyWaitingRead;
    private ConfigHistory configs;
    private boolean stopped;
    private boolean dirty;

    // ---------------------------------------------------------------- timers
    private long electionDeadlineMs;
    private long lastLeaderContactMs = Long.MIN_VALUE / 4;
    private long lastQuorumCheckMs;

    // ---------------------------------------------------------------- elections
    private final TreeMap<Integer, Boolean> votes = new TreeMap<>();
    private boolean campaignTransfer;

    // ---------------------------------------------------------------- follower
    /** Highest offset verified to match the current term's leader log (by an accepted append or snapshot). */
    private long matchedOffset = -1;
    private int ackTo = NONE;
    private long ackedMatch = -1;
    private SnapshotMeta receivingMeta;
    private byte[] receivingData;
    private int receivingBytes;
    private boolean installing;
    private int installFrom = NONE;
    private long installTerm;

    // ---------------------------------------------------------------- leader
    private Progress[] peers = new Progress[0];
    private final ProposalTracker proposals;
    private long termStartOffset = Long.MAX_VALUE;
    private int transferTarget = NONE;
    private long transferDeadlineMs;
    /** TimeoutNow went to the transfer target: proposals stay refused until it takes over or the deadline. */
    private boolean timeoutNowSent;
    private Configuration pendingTarget;

    // ---------------------------------------------------------------- snapshots
    private boolean snapshotSaving;

    // ---------------------------------------------------------------- prefix truncation (StateMachine.NONE groups)
    /** The PREFIX_TRUNCATION entries in the log not yet carried out: offset -> new log start. */
    private final TreeMap<Long, Long> truncations = new TreeMap<>();
    /** The log start the committed prefix truncations ask for, being carried out; -1 for none. */
    private long truncationTarget = -1;
    /** Offset of the snapshot being saved for a prefix truncation (no trailing offsets kept), or -1. */
    private long truncationSnapshotAt = -1;
    private boolean truncationWaitingRead;
    private final List<Entry> truncationRead = new ArrayList<>(1);

    // ---------------------------------------------------------------- notifications
    private Role notifiedRole;
    private long notifiedTerm = -1;
    private int notifiedLeader = NONE;
    private long notifiedCommit = -1;
    private Configuration notifiedConfig;
    private long notifiedLogStart = -1;

    private final List<Entry> readBuffer = new ArrayList<>();
    private final List<Entry> one = new ArrayList<>(1);

    /**
     * Recovers the member from {@code log}: hard state, snapshot (restored into the state machine), the
     * configurations in the log after it (or {@code bootstrap} when there are none). Starts as a follower that
     * knows no leader; a sole voter campaigns on its first tick.
     */
    RaftGroup(Host host, int nodeId, long groupId, RaftConfig config, RaftLog log, Configuration bootstrap,
              StateMachine stateMachine, GroupListener listener) {
        this.host = host;
        this.nodeId = nodeId;
        this.groupId = groupId;
        this.config = config;
        this.log = log;
        this.stateMachine = stateMachine;
        this.listener = listener;
        this.nodeMetrics = host.nodeMetrics();
        this.proposals = new ProposalTracker(config.maxPendingProposals());
        log.bind(this);

        HardState hs = log.hardState();
        term = hs.term();
        votedFor = hs.votedFor();
        requestedHardState = hs;
        durableHardState = hs;

        SnapshotMeta snap = log.snapshotMeta();
        Verify.that(log.startOffset() <= snap.lastOffset() + 1, "log of group %d starts at %d past its snapshot %d",
            groupId, log.startOffset(), snap.lastOffset());
        Verify.that(log.lastOffset() >= log.startOffset() - 1, "log of group %d ends at %d before its start %d",
            groupId, log.lastOffset(), log.startOffset());
        configs = snap.exists() ? new ConfigHistory(snap.lastOffset(), snap.configuration(), true)
            : new ConfigHistory(-1, bootstrap, false);
        for (Entry e : log.configurationEntries()) {
            if (e.baseOffset() > configs.latestOffset()) {
                configs.add(e.baseOffset(), e.configuration());
            }
        }
        loadTruncations();
        if (snap.exists()) {
            stateMachine.restore(snap, log.snapshotData());
        }
        commitOffset = snap.lastOffset();
        appliedOffset = snap.lastOffset();

        long lastTerm = log.termAt(log.lastOffset());
        if (lastTerm > term) {
            // The log got ahead of the hard state before a crash: adopt its term, with no vote cast in it.
            term = lastTerm;
            votedFor = NONE;
            persistHardState();
        }
        long now = host.nowMs();
        lastQuorumCheckMs = now;
        Configuration c = configs.latest();
        int[] voters = c.allVoters();
        electionDeadlineMs = voters.length == 1 && voters[0] == nodeId ? now : now + randomElectionTimeoutMs();
        notifyChanges();
    }

    // =====================================================================================================
    // Owner-facing API
    // =====================================================================================================

    public long groupId() {
        return groupId;
    }

    public int nodeId() {
        return nodeId;
    }

    public Role role() {
        return role;
    }

    /** The current term (= Kafka leader epoch). */
    public long term() {
        return term;
    }

    /** The leader this member knows for {@link #term()}, or {@link #NONE}. */
    public int leaderId() {
        return leaderId;
    }

    public boolean isLeader() {
        return role == Role.LEADER;
    }

    /** Highest committed offset known here (-1 for none); the Kafka high watermark is this plus one. */
    public long commitOffset() {
        return commitOffset;
    }

    /** Highest offset applied to the state machine. */
    public long appliedOffset() {
        return appliedOffset;
    }

    /** The log's last offset (Kafka log end offset minus one). */
    public long lastOffset() {
        return log.lastOffset();
    }

    /** The log's first offset. */
    public long startOffset() {
        return log.startOffset();
    }

    /** The log's durable end (last durable offset). */
    public long durableOffset() {
        return log.durableOffset();
    }

    /** Term of the entry at {@code offset}, or -1 when the log does not hold it. */
    public long termAt(long offset) {
        return log.termAt(offset);
    }

    /** The configuration in force (the latest in the log, committed or not). */
    public Configuration configuration() {
        return configs.latest();
    }

    /** True when the configuration in force has been committed and no change is being driven. */
    public boolean configurationSettled() {
        return configs.latestOffset() <= commitOffset && pendingTarget == null && !configs.latest().isJoint();
    }

    public boolean isStopped() {
        return stopped;
    }

    public GroupMetrics metrics() {
        return metrics;
    }

    /** The storage behind this member (for tests and tools; do not mutate it). */
    public RaftLog log() {
        return log;
    }

    /**
     * Appends {@code payload} as one entry of the current term (paper §5.3). Replication starts at the node's
     * next {@link RaftNode#flush()}.
     *
     * @return the entry's base offset (>= 0; it covers {@code payload.recordCount()} offsets), or a negative
     *         {@link RaftErrors} code: NOT_LEADER, TRANSFER_IN_PROGRESS, BACKPRESSURE, STOPPED
     */
    public long propose(Payload payload) {
        if (stopped) {
            return RaftErrors.STOPPED;
        }
        if (role != Role.LEADER) {
            metrics.proposalsRejected++;
            return RaftErrors.NOT_LEADER;
        }
        if (transferTarget != NONE) {
            metrics.proposalsRejected++;
            return RaftErrors.TRANSFER_IN_PROGRESS;
        }
        long size = Entry.OVERHEAD_BYTES + (long) payload.sizeBytes();
        if (!proposals.canAccept(size, config.maxUncommittedBytes())) {
            metrics.proposalsRejected++;
            return RaftErrors.BACKPRESSURE;
        }
        Entry e = Entry.data(log.lastOffset() + 1, term, payload);
        appendLocal(e);
        proposals.add(e.lastOffset(), size, host.nowMs());
        metrics.proposalsAccepted++;
        markDirty();
        return e.baseOffset();
    }

    /**
     * Whether the entry proposed at {@code offset} in {@code proposalTerm} (see {@link #propose}) is committed,
     * lost (another entry took its offset), or still pending. Entries are never committed out of order, so an
     * offset at or below {@link #commitOffset()} is decided by the term of the entry now there.
     */
    public Outcome proposalOutcome(long offset, long proposalTerm) {
        if (offset > commitOffset) {
            // Even if another entry sits there now, a later leader holding the proposal may still commit it.
            return Outcome.PENDING;
        }
        long t = log.termAt(offset);
        if (t < 0) {
            return Outcome.UNKNOWN;
        }
        return t == proposalTerm ? Outcome.COMMITTED : Outcome.LOST;
    }

    /**
     * Whether committed entries are applied to a state machine (the controller, which compacts its log behind
     * its own snapshots); false for a group whose log is its state ({@link StateMachine#NONE}: a partition, whose
     * prefix goes by {@link #proposePrefixTruncation}).
     */
    public boolean appliesEntries() {
        return stateMachine.consumesEntries();
    }

    /**
     * Kafka's log start offset: the first offset readers may see ({@link RaftLog#recordStartOffset()}, durable).
     * At least the log's first entry's offset; exactly where a prefix truncation asked for, which may lie inside
     * that entry.
     */
    public long logStartOffset() {
        return log.recordStartOffset();
    }

    /**
     * Leader of a group whose log is its state ({@link StateMachine#NONE}, a partition): appends a
     * {@link EntryKind#PREFIX_TRUNCATION} entry that moves the log start to {@code newStartOffset} (retention,
     * Kafka DeleteRecords). Once it is committed, every replica carries it out on its own log: a zero-byte
     * snapshot at the end of the entry before the one holding {@code newStartOffset}, the prefix truncation
     * behind it (no trailing offsets kept), and the exact log start ({@link #logStartOffset()}). A follower behind
     * the new start catches up through InstallSnapshot. Replication starts at the node's next flush.
     *
     * @return the entry's offset, or NOT_LEADER, TRANSFER_IN_PROGRESS, BACKPRESSURE, STOPPED
     * @throws IllegalArgumentException when {@code newStartOffset} is negative or past the high watermark
     *         ({@code commitOffset() + 1}): only committed data may be dropped
     * @throws IllegalStateException when the group's state machine consumes entries (its snapshots are its state)
     */
    public long proposePrefixTruncation(long newStartOffset) {
        if (stateMachine.consumesEntries()) {
            throw new IllegalStateException("group " + groupId + " applies its entries to a state machine; only a group"
                + " whose log is its state (StateMachine.NONE) truncates its prefix on request");
        }
        if (newStartOffset < 0 || newStartOffset > commitOffset + 1) {
            throw new IllegalArgumentException("cannot move the log start of group " + groupId + " to " + newStartOffset
                + ": it must lie in [0, " + (commitOffset + 1) + "], the high watermark (only committed offsets are"
                + " truncated)");
        }
        if (stopped) {
            return RaftErrors.STOPPED;
        }
        if (role != Role.LEADER) {
            metrics.proposalsRejected++;
            return RaftErrors.NOT_LEADER;
        }
        if (transferTarget != NONE) {
            metrics.proposalsRejected++;
            return RaftErrors.TRANSFER_IN_PROGRESS;
        }
        Entry e = Entry.prefixTruncation(log.lastOffset() + 1, term, newStartOffset);
        if (!proposals.canAccept(e.sizeBytes(), config.maxUncommittedBytes())) {
            metrics.proposalsRejected++;
            return RaftErrors.BACKPRESSURE;
        }
        appendLocal(e);
        proposals.add(e.lastOffset(), e.sizeBytes(), host.nowMs());
        metrics.proposalsAccepted++;
        markDirty();
        return e.baseOffset();
    }

    /**
     * Hands leadership to voter {@code target} (thesis §3.10): proposals are refused meanwhile; once the
     * target's log matches the leader's, it is told to campaign at once (TimeoutNow). Abandoned after
     * {@link RaftConfig#electionTimeoutMinMs()}.
     *
     * @return {@link RaftErrors#OK}, NOT_LEADER, NOT_A_VOTER, STOPPED
     */
    public int transferLeadership(int target) {
        if (stopped) {
            return RaftErrors.STOPPED;
        }
        if (role != Role.LEADER) {
            return RaftErrors.NOT_LEADER;
        }
        if (target == nodeId) {
            return RaftErrors.OK;
        }
        if (!configs.latest().isVoter(target) || progress(target) == null) {
            return RaftErrors.NOT_A_VOTER;
        }
        transferTarget = target;
        transferDeadlineMs = host.nowMs() + config.electionTimeoutMinMs();
        timeoutNowSent = false;
        metrics.transfersStarted++;
        maybeSendTimeoutNow(progress(target));
        markDirty();
        return RaftErrors.OK;
    }

    /**
     * Moves the group to the membership ({@code voters}, {@code learners}). The leader drives it: nodes that
     * are not members yet join as learners and catch up; then, if the voters change, the group goes through
     * the joint configuration (C_old and C_new) and leaves it as soon as that is committed (thesis §4.3,
     * paper §6); learner-only changes take one step. Call again with the same target to learn whether it is
     * done ({@link RaftErrors#OK} once the target is the committed configuration).
     *
     * @return {@link RaftErrors#OK} when the target is committed and in force, {@link RaftErrors#CONFIG_CHANGE_IN_PROGRESS}
     *         while it (or another change) is under way, NOT_LEADER, INVALID_CONFIGURATION, STOPPED
     */
    public int changeMembership(int[] voters, int[] learners) {
        if (stopped) {
            return RaftErrors.STOPPED;
        }
        if (role != Role.LEADER) {
            return RaftErrors.NOT_LEADER;
        }
        Configuration target;
        try {
            target = Configuration.of(voters, learners);
        } catch (IllegalArgumentException e) {
            return RaftErrors.INVALID_CONFIGURATION;
        }
        if (target.isEmpty()) {
            return RaftErrors.INVALID_CONFIGURATION;
        }
        Configuration cur = configs.latest();
        if (cur.equals(target) && configs.latestOffset() <= commitOffset) {
            if (target.equals(pendingTarget)) {
                pendingTarget = null;
            }
            return RaftErrors.OK;
        }
        if (cur.isJoint() && !target.equals(pendingTarget)) {
            return RaftErrors.CONFIG_CHANGE_IN_PROGRESS;
        }
        pendingTarget = target;
        appendTermEntry(); // a configuration change waits for an entry of this term to commit
        driveMembership();
        markDirty();
        return RaftErrors.CONFIG_CHANGE_IN_PROGRESS;
    }

    /**
     * Snapshots the state machine at the applied offset and, once the snapshot is durable, drops the log's
     * prefix up to it (keeping {@link RaftConfig#snapshotTrailingOffsets()} offsets for lagging followers).
     *
     * @return {@link RaftErrors#OK} or {@link RaftErrors#SNAPSHOT_NOT_NEEDED} (one is being written, or
     *         nothing was applied since the last), STOPPED
     */
    public int takeSnapshot() {
        if (stopped) {
            return RaftErrors.STOPPED;
        }
        if (snapshotSaving || installing || appliedOffset <= log.snapshotMeta().lastOffset()
            || appliedOffset < log.startOffset() - 1) {
            return RaftErrors.SNAPSHOT_NOT_NEEDED;
        }
        long t = log.termAt(appliedOffset);
        Verify.that(t > 0, "applied offset %d of group %d has no term", appliedOffset, groupId);
        SnapshotMeta meta = new SnapshotMeta(appliedOffset, t, configs.at(appliedOffset));
        snapshotSaving = true;
        metrics.snapshotsTaken++;
        log.saveSnapshot(meta, stateMachine.snapshot());
        return RaftErrors.OK;
    }

    /**
     * Kafka's OffsetForLeaderEpoch for this log: the largest epoch at or below {@code epoch} the log knows and
     * the offset at which that epoch ends (the start of the next one, or the log end for the latest). Kafka's
     * rules: the latest epoch ends at the log end; an epoch above every known one is undefined; an epoch
     * below every known one ends where the first known one starts.
     */
    public EpochEndOffset epochEndOffset(long epoch) {
        if (epoch < 0) {
            return EpochEndOffset.UNDEFINED;
        }
        long last = log.lastOffset();
        long lastTerm = log.termAt(last);
        if (epoch == lastTerm || (role == Role.LEADER && epoch == term)) {
            return new EpochEndOffset(epoch, last + 1);
        }
        if (epoch > lastTerm) {
            return EpochEndOffset.UNDEFINED;
        }
        long end = log.lastOffsetAtOrBeforeTerm(epoch);
        if (end < log.startOffset() - 1) {
            return new EpochEndOffset(epoch, log.startOffset());
        }
        long floorEpoch = log.termAt(end);
        if (floorEpoch <= 0) {
            return new EpochEndOffset(epoch, end + 1);
        }
        return new EpochEndOffset(floorEpoch, end + 1);
    }

    // =====================================================================================================
    // Node-facing steps
    // =====================================================================================================

    /**
     * Whether this member may campaign: what its node allows ({@link Host#mayLead}: not while the node hands its
     * leaderships away for a shutdown or maintenance), except that the only voter of a group always may (no other
     * member could lead it, so it would stay leaderless).
     */
    private boolean mayLead() {
        if (host.mayLead()) {
            return true;
        }
        int[] all = configs.latest().allVoters();
        return all.length == 1 && all[0] == nodeId;
    }

    /** Timers: election timeout, check-quorum, retransmits, transfer and snapshot-chunk timeouts. */
    void tick() {
        if (stopped) {
            return;
        }
        long now = host.nowMs();
        if (role == Role.LEADER) {
            tickLeader(now);
        } else if (now >= electionDeadlineMs) {
            if (promotable() && !installing && mayLead()) {
                nodeMetrics.timeoutCampaigns++;
                startElection(config.preVote(), false);
            } else {
                resetElectionTimer(now);
            }
        }
        notifyChanges();
    }

    private void tickLeader(long now) {
        if (now - lastQuorumCheckMs >= config.electionTimeoutMinMs()) {
            lastQuorumCheckMs = now;
            boolean quorum = configs.latest().hasQuorum(id -> id == nodeId || isRecentlyActive(id));
            for (Progress pr : peers) {
                pr.recentActive = false;
            }
            if (config.checkQuorum() && !quorum) {
                metrics.checkQuorumStepDowns++;
                becomeFollower(term, NONE);
                return;
            }
        }
        if (transferTarget != NONE && now >= transferDeadlineMs) {
            transferTarget = NONE;
            timeoutNowSent = false;
        }
        if (catchUpDeferred) {
            catchUpDeferred = false;
            markDirty(); // the flush sends what the catch-up rate put off
        }
        for (Progress pr : peers) {
            switch (pr.state) {
                case REPLICATE -> {
                    if (!pr.inflights.isEmpty() && now - pr.lastProgressMs >= config.retransmitTimeoutMs()) {
                        metrics.retransmits++;
                        pr.becomeProbe(pr.match + 1);
                        markDirty();
                    }
                }
                case SNAPSHOT -> {
                    if (now - pr.lastSendMs >= config.retransmitTimeoutMs()) {
                        sendSnapshotChunk(pr);
                    }
                }
                case PROBE -> {
                    if (pr.paused && now - pr.lastSendMs >= config.retransmitTimeoutMs()) {
                        pr.paused = false;
                        markDirty();
                    }
                }
            }
        }
        driveMembership();
    }

    /**
     * Leader only: whether voter {@code id} holds the whole log durably and was heard from in the current
     * check-quorum round, i.e. a {@link #transferLeadership} to it would finish at once. False elsewhere.
     */
    public boolean isCaughtUp(int id) {
        if (role != Role.LEADER || id == nodeId) {
            return false;
        }
        Progress pr = progress(id);
        return pr != null && pr.recentActive && pr.match >= log.lastOffset();
    }

    /**
     * Leader only: the last offset member {@code id} is known to hold matching this leader's log (Raft's match
     * index, thesis §3.5), -1 when nothing is known yet; Long.MIN_VALUE when this node does not lead or {@code id}
     * is not a member. What a leader checks before pointing a consumer at a follower to fetch from (KIP-392: the
     * follower's log must reach the fetch offset).
     */
    public long matchOffset(int id) {
        if (role != Role.LEADER || id == nodeId) {
            return Long.MIN_VALUE;
        }
        Progress pr = progress(id);
        return pr == null ? Long.MIN_VALUE : pr.match;
    }

    /**
     * Leader only: how long ago (ms, by the host clock) the leader last heard from member {@code id}, and how long ago
     * {@code id} last held the leader's whole log (Kafka's last caught-up time), as {lastHeardAgoMs, caughtUpAgoMs};
     * -1 for never. Null when this node does not lead or {@code id} is this node or not a member. What DescribeQuorum
     * reports for the controller group.
     */
    public long[] followerTimesAgoMs(int id) {
        if (role != Role.LEADER || id == nodeId) {
            return null;
        }
        Progress pr = progress(id);
        if (pr == null) {
            return null;
        }
        long now = host.nowMs();
        return new long[] {pr.lastHeardMs <= Long.MIN_VALUE / 8 ? -1 : Math.max(0, now - pr.lastHeardMs),
            pr.caughtUpMs <= Long.MIN_VALUE / 8 ? -1 : Math.max(0, now - pr.caughtUpMs)};
    }

    /**
     * Leader only: how many voters of the configuration in force are live, this node included: a follower counts
     * when the leader heard from it (an answer to AppendEntries or to a snapshot chunk) within the window; a follower this leader has not heard from yet counts for one such window from the moment
     * this node became leader (or the follower was added). The window is the minimum election timeout, the span
     * check-quorum uses. What Kafka's min.insync.replicas is checked against. -1 when this node does not lead.
     */
    public int liveVoters() {
        return liveVoters(config.electionTimeoutMinMs());
    }

    /** {@link #liveVoters()} with a window of {@code withinMs} instead of the election timeout. */
    public int liveVoters(long withinMs) {
        if (role != Role.LEADER) {
            return -1;
        }
        long now = host.nowMs();
        int live = 0;
        for (int id : configs.latest().voters()) {
            if (id == nodeId) {
                live++;
            } else {
                Progress pr = progress(id);
                if (pr != null && now - pr.lastHeardMs <= withinMs) {
                    live++;
                }
            }
        }
        return live;
    }

    /**
     * Leader only: the members (voters and learners) in sync in Kafka's sense, in ascending id order, this node
     * included: a follower is in sync when it held the leader's whole log at some moment within the last
     * {@code lagMs} (Kafka's {@code replica.lag.time.max.ms}: a follower always a round trip behind under load
     * stays in, one that stopped acknowledging or keeps falling behind leaves after {@code lagMs}), and
     * {@code live} says its node is up. Each acknowledgement compares the follower's durable match with the
     * leader's last offset as of the previous acknowledgement ({@code Replica.updateFetchState}'s rule). A new
     * leader counts every follower as caught up at the moment it was elected. Null when this node does not lead.
     */
    public int[] inSyncMembers(long lagMs, java.util.function.IntPredicate live) {
        if (role != Role.LEADER) {
            return null;
        }
        long now = host.nowMs();
        int[] members = configs.latest().members();
        int[] out = new int[members.length];
        int n = 0;
        for (int id : members) {
            if (id == nodeId) {
                out[n++] = id;
            } else {
                Progress pr = progress(id);
                if (pr != null && now - pr.caughtUpMs <= lagMs && live.test(id)) {
                    out[n++] = id;
                }
            }
        }
        int[] isr = Arrays.copyOf(out, n);
        Arrays.sort(isr);
        return isr;
    }

    /**
     * Leader only: the followers {@code wasInSync} rejects no longer count as caught up at this leader's election
     * (they are in sync again at their next acknowledgement that shows them caught up). The owner calls it right
     * after this node became leader with the in-sync set the previous leader published, so a replica that was out
     * before the election does not get a new lag window, as with Kafka's ISR kept by its controller.
     */
    public void assumeOutOfSync(java.util.function.IntPredicate wasInSync) {
        if (role != Role.LEADER) {
            return;
        }
        for (Progress pr : peers) {
            if (!wasInSync.test(pr.nodeId)) {
                pr.caughtUpMs = Long.MIN_VALUE / 4;
            }
        }
    }

    /**
     * Leader only: whether voter {@code id} caught up with this leader's log within the minimum election timeout
     * (Kafka's in-sync rule, the one {@link #handOffTarget} uses). Unlike {@link #isCaughtUp}, which asks for the
     * leader's last offset now, this holds for a follower that keeps up with a steady stream of appends: under load
     * a follower's match trails the leader's end at every instant, yet it is in sync and can take a transfer (the
     * transfer itself brings it to the last offset before TimeoutNow).
     */
    public boolean isCaughtUpRecently(int id) {
        if (role != Role.LEADER || id == nodeId) {
            return false;
        }
        Progress pr = progress(id);
        return pr != null && pr.recentActive && host.nowMs() - pr.caughtUpMs <= config.electionTimeoutMinMs();
    }

    /**
     * Leader only: the voter to hand leadership to ({@link #transferLeadership}) before this node stops: among
     * the other voters {@code eligible} accepts that caught up with the leader within the minimum election timeout,
     * {@code preferred} when it is one, else the one holding the most of the log. -1 when there is none, or when
     * this node does not lead.
     */
    public int handOffTarget(java.util.function.IntPredicate eligible, int preferred) {
        if (role != Role.LEADER) {
            return -1;
        }
        long now = host.nowMs();
        int best = -1;
        long bestMatch = Long.MIN_VALUE;
        for (Progress pr : peers) {
            if (!configs.latest().isVoter(pr.nodeId) || !eligible.test(pr.nodeId)
                || now - pr.caughtUpMs > config.electionTimeoutMinMs()) {
                continue;
            }
            if (pr.nodeId == preferred) {
                return preferred;
            }
            if (pr.match > bestMatch) {
                best = pr.nodeId;
                bestMatch = pr.match;
            }
        }
        return best;
    }

    /** Leader only: whether a leadership transfer is under way (proposals are refused meanwhile). */
    public boolean transferring() {
        return role == Role.LEADER && transferTarget != NONE;
    }

    /**
     * Kafka's follower catch-up rule: a member whose durable match reaches the leader's last offset is caught up
     * now; one that reaches the last offset the leader had at the previous check was caught up at that check's
     * time. Called on every acknowledgement (appends, heartbeats, snapshots), so an idle follower stays in sync.
     */
    private void noteCaughtUp(Progress pr, long now) {
        long end = log.lastOffset();
        if (pr.match >= end) {
            pr.caughtUpMs = now;
            pr.caughtUpTargetOffset = end;
            pr.caughtUpTargetMs = now;
        } else if (pr.match >= pr.caughtUpTargetOffset) {
            pr.caughtUpMs = Math.max(pr.caughtUpMs, pr.caughtUpTargetMs);
            pr.caughtUpTargetOffset = end;
            pr.caughtUpTargetMs = now;
        } else if (pr.caughtUpTargetOffset == Long.MAX_VALUE) {
            pr.caughtUpTargetOffset = end;
            pr.caughtUpTargetMs = now;
        }
    }

    private boolean isRecentlyActive(int id) {
        Progress pr = progress(id);
        return pr != null && pr.recentActive;
    }

    /** A message of this group addressed to this node. */
    void receive(GroupMessage m) {
        if (stopped) {
            return;
        }
        switch (m) {
            case VoteRequest r -> onVoteRequest(r);
            case VoteResponse r -> onVoteResponse(r);
            case AppendRequest r -> onAppendRequest(r);
            case AppendResponse r -> onAppendResponse(r);
            case InstallSnapshotRequest r -> onInstallSnapshot(r);
            case InstallSnapshotResponse r -> onInstallSnapshotResponse(r);
            case TimeoutNow r -> onTimeoutNow(r);
        }
        notifyChanges();
    }

    /**
     * The item of this group in a coalesced heartbeat to {@code peer}: the commit offset the peer may adopt
     * (capped at what the peer is known to hold durably), or {@link Long#MIN_VALUE} for "no item".
     * Also paces probes: a paused probe may be sent again after each heartbeat.
     */
    long heartbeatItem(int peer) {
        if (stopped || role != Role.LEADER || hardStatePending()) {
            return Long.MIN_VALUE;
        }
        Progress pr = progress(peer);
        if (pr == null) {
            return Long.MIN_VALUE;
        }
        if (pr.state == Progress.State.PROBE && pr.paused) {
            pr.paused = false;
            markDirty();
        }
        return Math.min(commitOffset, pr.match);
    }

    /**
     * A coalesced heartbeat item from {@code from}, leader of {@code leaderTerm}. Writes the reply item
     * (term, durable matching offset, last offset) into {@code reply} and returns true, or returns false when
     * no reply can be given yet (the new term is not durable).
     */
    boolean onHeartbeat(int from, long leaderTerm, long leaderCommit, long[] reply) {
        if (stopped) {
            return false;
        }
        try {
            if (leaderTerm < term) {
                reply[0] = term;
                reply[1] = -1;
                reply[2] = log.lastOffset();
                return true;
            }
            acceptLeader(from, leaderTerm);
            if (!installing) {
                long c = Math.min(leaderCommit, log.lastOffset());
                if (c > commitOffset) {
                    advanceCommit(c);
                }
            }
            if (hardStatePending()) {
                return false;
            }
            reply[0] = term;
            reply[1] = ackableMatch();
            reply[2] = log.lastOffset();
            return true;
        } finally {
            notifyChanges();
        }
    }

    /** A coalesced heartbeat reply item from follower {@code from}. */
    void onHeartbeatResponse(int from, long followerTerm, long match, long followerLast) {
        if (stopped) {
            return;
        }
        if (followerTerm > term) {
            becomeFollower(followerTerm, NONE);
            notifyChanges();
            return;
        }
        if (followerTerm < term || role != Role.LEADER) {
            return;
        }
        Progress pr = progress(from);
        if (pr == null) {
            return;
        }
        pr.recentActive = true;
        pr.lastHeardMs = host.nowMs();
        if (match > pr.match) {
            Verify.that(match <= log.lastOffset(), "follower match %d past leader's last offset %d", match,
                log.lastOffset());
            pr.match = match;
            pr.lastProgressMs = host.nowMs();
            maybeCommit();
        }
        noteCaughtUp(pr, host.nowMs());
        if (pr.state == Progress.State.REPLICATE) {
            pr.inflights.freeTo(match);
            if (pr.inflights.isEmpty() && followerLast < pr.next - 1) {
                // Requests were lost: the follower holds less than we sent. Find out where it stands.
                pr.becomeProbe(pr.match + 1);
            }
        } else if (pr.state == Progress.State.PROBE && followerLast + 1 < pr.next) {
            // The follower's log ends before our guess: probe from its end instead (it cannot match beyond).
            pr.next = Math.max(followerLast + 1, pr.match + 1);
        }
        maybeSendTimeoutNow(pr);
        markDirty();
        notifyChanges();
    }

    /** Sends what is ready: AppendEntries to followers, applies committed entries, membership steps. */
    void flush() {
        dirty = false;
        if (stopped) {
            return;
        }
        if (role == Role.LEADER) {
            for (Progress pr : peers) {
                replicate(pr);
            }
        }
        applyCommitted();
        applyTruncations();
        notifyChanges();
    }

    void stop() {
        if (!stopped) {
            stopped = true;
            if (role == Role.LEADER) {
                proposals.clear();
            }
            role = Role.FOLLOWER;
            leaderId = NONE;
            held.clear();
            notifyChanges();
        }
    }

    boolean isDirty() {
        return dirty;
    }

    // =====================================================================================================
    // Elections (paper §5.2, thesis §9.6 pre-vote, §4.2.3 / §6.2 leases and check-quorum)
    // =====================================================================================================

    /**
     * Whether this member may campaign: it votes in the configuration in force, or that configuration is
     * not known to be committed and this member voted in the one before it. The second case keeps a group
     * live when a leader appended the configuration that removes it and crashed before committing it: the
     * remaining joint voters need its vote, and it can still lead the group through committing C_new before
     * stepping down (thesis §4.2.2).
     */
    private boolean promotable() {
        Configuration c = configs.latest();
        if (c.isVoter(nodeId)) {
            return true;
        }
        return configs.latestOffset() > commitOffset && configs.size() > 1
            && configs.at(configs.latestOffset() - 1).isVoter(nodeId);
    }

    private long randomElectionTimeoutMs() {
        return host.random().nextLong(config.electionTimeoutMinMs(), config.electionTimeoutMaxMs());
    }

    private void resetElectionTimer(long now) {
        electionDeadlineMs = now + randomElectionTimeoutMs();
    }

    private void startElection(boolean pre, boolean transfer) {
        long now = host.nowMs();
        resetElectionTimer(now);
        votes.clear();
        campaignTransfer = transfer;
        if (pre) {
            role = Role.PRE_CANDIDATE;
            setLeader(NONE);
            metrics.preVotesStarted++;
        } else {
            if (role == Role.LEADER) {
                leaveLeadership();
            }
            role = Role.CANDIDATE;
            term++;
            votedFor = nodeId;
            matchedOffset = -1;
            ackTo = NONE;
            metrics.termChanges++;
            metrics.electionsStarted++;
            setLeader(NONE);
            persistHardState();
        }
        long last = log.lastOffset();
        long lastTerm = log.termAt(last);
        long requestTerm = pre ? term + 1 : term;
        for (int v : configs.latest().allVoters()) {
            if (v != nodeId) {
                send(new VoteRequest(groupId, nodeId, v, requestTerm, last, lastTerm, pre, transfer));
            }
        }
        checkVotes();
    }

    private void checkVotes() {
        if (role != Role.PRE_CANDIDATE && role != Role.CANDIDATE) {
            return;
        }
        boolean pre = role == Role.PRE_CANDIDATE;
        boolean selfCounts = pre || !hardStatePending();
        Configuration.VoteResult result = configs.latest().voteResult(
            id -> id == nodeId ? selfCounts : Boolean.TRUE.equals(votes.get(id)),
            id -> id != nodeId && Boolean.FALSE.equals(votes.get(id)));
        switch (result) {
            case WON -> {
                if (pre && !mayLead()) {
                    becomeFollower(term, NONE);
                } else if (pre) {
                    startElection(false, campaignTransfer);
                } else {
                    becomeLeader();
                }
            }
            case LOST -> becomeFollower(term, NONE);
            case PENDING -> {
            }
        }
    }

    private boolean inLease(long now) {
        if (!config.checkQuorum() || leaderId == NONE) {
            return false;
        }
        return role == Role.LEADER || now - lastLeaderContactMs < config.electionTimeoutMinMs();
    }

    private void onVoteRequest(VoteRequest r) {
        long now = host.nowMs();
        if (r.term() < term) {
            send(new VoteResponse(groupId, nodeId, r.from(), term, false, r.preVote()));
            return;
        }
        if (r.term() > term && !r.transfer() && inLease(now)) {
            // A leader is alive: do not let a partitioned or removed node disturb it (thesis §4.2.3).
            metrics.votesIgnoredInLease++;
            return;
        }
        long myLast = log.lastOffset();
        long myLastTerm = log.termAt(myLast);
        boolean upToDate = r.lastTerm() > myLastTerm || (r.lastTerm() == myLastTerm && r.lastOffset() >= myLast);
        if (r.preVote()) {
            boolean grant = r.term() > term && upToDate;
            send(new VoteResponse(groupId, nodeId, r.from(), grant ? r.term() : term, grant, true));
            return;
        }
        if (r.term() > term) {
            becomeFollower(r.term(), NONE);
        }
        boolean canVote = votedFor == r.from() || (votedFor == NONE && leaderId == NONE);
        boolean grant = canVote && upToDate;
        if (grant) {
            if (votedFor != r.from()) {
                votedFor = r.from();
                persistHardState();
            }
            resetElectionTimer(now);
            metrics.votesGranted++;
        }
        send(new VoteResponse(groupId, nodeId, r.from(), term, grant, false));
    }

    private void onVoteResponse(VoteResponse r) {
        if (r.term() > term && !(r.preVote() && r.granted())) {
            becomeFollower(r.term(), NONE);
            return;
        }
        if (r.preVote()) {
            if (role != Role.PRE_CANDIDATE || (r.granted() && r.term() != term + 1)) {
                return;
            }
        } else if (role != Role.CANDIDATE || r.term() != term) {
            return;
        }
        votes.put(r.from(), r.granted());
        checkVotes();
    }

    private void onTimeoutNow(TimeoutNow m) {
        if (m.term() < term) {
            return;
        }
        if (m.term() > term) {
            becomeFollower(m.term(), m.from());
        }
        if (!promotable() || installing || !mayLead()) {
            return; // the transfer is abandoned at the leader's deadline
        }
        metrics.transfersCompleted++;
        nodeMetrics.transferCampaigns++;
        startElection(false, true);
    }

    private void becomeFollower(long newTerm, int leader) {
        long now = host.nowMs();
        if (newTerm > term) {
            term = newTerm;
            votedFor = NONE;
            matchedOffset = -1;
            ackTo = NONE;
            metrics.termChanges++;
            persistHardState();
        }
        if (role == Role.LEADER) {
            leaveLeadership();
        }
        role = Role.FOLLOWER;
        setLeader(leader);
        resetElectionTimer(now);
    }

    private void leaveLeadership() {
        metrics.stepDowns++;
        proposals.clear();
        peers = new Progress[0];
        transferTarget = NONE;
        timeoutNowSent = false;
        pendingTarget = null;
        termStartOffset = Long.MAX_VALUE;
    }

    private void becomeLeader() {
        Verify.that(!hardStatePending(), "group %d became leader of term %d before its vote was durable",
            groupId, term);
        role = Role.LEADER;
        setLeader(nodeId);
        metrics.electionsWon++;
        long now = host.nowMs();
        lastQuorumCheckMs = now;
        peers = new Progress[0];
        syncProgress();
        for (Progress pr : peers) {
            // As Kafka's new leader gives the ISR it inherits a full lag window: the followers are taken to be in
            // sync now, until they fail to catch up (see inSyncMembers; assumeOutOfSync narrows it).
            pr.caughtUpMs = now;
        }
        proposals.clear();
        transferTarget = NONE;
        timeoutNowSent = false;
        pendingTarget = null;
        if (log.lastOffset() <= commitOffset) {
            // Everything in the log is known committed, so no earlier-term entry waits for an entry of this term
            // (paper §5.4.2) and none is appended now: the term starts with the next proposal. A partition's first
            // record therefore gets offset 0, as in Kafka; a LEADER_CHANGE control batch (which consumers skip)
            // appears only after elections that inherit uncommitted entries, or before a membership change.
            termStartOffset = log.lastOffset() + 1;
        } else {
            appendTermEntry();
        }
        markDirty();
    }

    /** What this leader's no-op records (KRaft's LeaderChangeMessage): itself, the voters, who granted its vote. */
    private Entry.LeaderChange leaderChange() {
        int[] voters = configs.latest().allVoters();
        int[] granting = java.util.Arrays.stream(voters)
            .filter(v -> v == nodeId || Boolean.TRUE.equals(votes.get(v))).toArray();
        return new Entry.LeaderChange(nodeId, voters, granting);
    }

    /** Leader: appends the term's LEADER_CHANGE no-op unless an entry of this term is already in the log. */
    private void appendTermEntry() {
        if (role != Role.LEADER || log.lastOffset() >= termStartOffset) {
            return;
        }
        Entry noop = Entry.leaderChange(log.lastOffset() + 1, term, leaderChange());
        termStartOffset = noop.baseOffset();
        appendLocal(noop);
        markDirty();
    }

    /**
     * Whether this member leads and every entry of earlier terms in its log is committed (its high watermark
     * is final for them): what a state built from the log (e.g. group offsets) must wait for after an election.
     */
    public boolean leaderCommittedPriorTerms() {
        return role == Role.LEADER && commitOffset >= termStartOffset - 1;
    }

    /** Acknowledges {@code from} as the leader of {@code leaderTerm} (>= our term) and restarts the timer. */
    private void acceptLeader(int from, long leaderTerm) {
        if (leaderTerm > term || role != Role.FOLLOWER || leaderId != from) {
            Verify.that(!(leaderTerm == term && role == Role.LEADER), "two leaders in term %d of group %d",
                term, groupId);
            becomeFollower(leaderTerm, from);
        }
        lastLeaderContactMs = host.nowMs();
        resetElectionTimer(lastLeaderContactMs);
    }

    private void setLeader(int id) {
        if (leaderId != id) {
            leaderId = id;
            metrics.leaderChanges++;
        }
    }

    // =====================================================================================================
    // Hard state
    // =====================================================================================================

    private void persistHardState() {
        requestedHardState = new HardState(term, votedFor);
        log.persistHardState(requestedHardState);
    }

    private boolean hardStatePending() {
        return !requestedHardState.equals(durableHardState);
    }

    /** Sends now, or holds the message until the hard state it was produced under is durable. */
    private void send(GroupMessage m) {
        if (hardStatePending()) {
            if (held.size() >= config.maxHeldMessages()) {
                metrics.heldMessagesDropped++;
                return;
            }
            held.add(m);
            return;
        }
        host.send(m);
    }

    @Override
    public void onHardStateDurable(HardState state) {
        if (stopped) {
            return;
        }
        durableHardState = state;
        if (!hardStatePending()) {
            while (!held.isEmpty()) {
                host.send(held.poll());
            }
            checkVotes();
            if (ackTo != NONE) {
                sendAck();
            }
        }
        markDirty();
        notifyChanges();
    }

    // =====================================================================================================
    // Log replication, follower side (paper §5.3)
    // =====================================================================================================

    private long ackableMatch() {
        return Math.min(matchedOffset, log.durableOffset());
    }

    private void onAppendRequest(AppendRequest r) {
        if (r.term() < term) {
            send(new AppendResponse(groupId, nodeId, r.from(), term, false, -1, -1, log.lastOffset(),
                r.prevOffset(), -1, 0));
            return;
        }
        acceptLeader(r.from(), r.term());
        if (installing) {
            return; // the log is being replaced; the leader retries
        }
        List<Entry> entries = r.entries();
        long requestLast = entries.isEmpty() ? r.prevOffset() : entries.get(entries.size() - 1).lastOffset();
        long floor = log.startOffset() - 1;
        int from = 0;
        if (r.prevOffset() < floor) {
            // Entries up to our floor are compacted here, hence committed, hence the leader's too.
            while (from < entries.size() && entries.get(from).lastOffset() <= floor) {
                from++;
            }
            Verify.that(from == entries.size() || entries.get(from).baseOffset() == floor + 1,
                "append to group %d does not restart at our floor %d", groupId, floor);
        } else if (log.termAt(r.prevOffset()) != r.prevTerm()) {
            rejectAppend(r);
            return;
        }
        for (int i = from; i < entries.size(); i++) {
            Entry e = entries.get(i);
            if (e.baseOffset() > log.lastOffset()) {
                Verify.that(e.baseOffset() == log.lastOffset() + 1, "gap before offset %d in group %d",
                    e.baseOffset(), groupId);
                appendFollower(entries.subList(i, entries.size()));
                break;
            }
            long t = log.termAt(e.baseOffset());
            if (t == e.term()) {
                Verify.that(log.termAt(e.lastOffset()) == e.term(), "entry %d..%d differs inside a term in group %d",
                    e.baseOffset(), e.lastOffset(), groupId);
                continue;
            }
            Verify.that(e.baseOffset() > commitOffset, "group %d would truncate committed offset %d (commit %d)",
                groupId, e.baseOffset(), commitOffset);
            Verify.that(e.baseOffset() > matchedOffset, "group %d would truncate verified offset %d (matched %d)",
                groupId, e.baseOffset(), matchedOffset);
            truncateSuffix(e.baseOffset());
            appendFollower(entries.subList(i, entries.size()));
            break;
        }
        if (requestLast > matchedOffset) {
            matchedOffset = requestLast;
        }
        long c = Math.min(r.commitOffset(), requestLast);
        if (c > commitOffset) {
            advanceCommit(c);
        }
        ackTo = r.from();
        if (log.durableOffset() >= requestLast || entries.isEmpty()) {
            sendAck();
        }
        // else: answered by onAppendDurable, one reply per flush however many requests it covers
    }

    private void sendAck() {
        if (ackTo == NONE || role != Role.FOLLOWER) {
            return;
        }
        long match = ackableMatch();
        ackedMatch = match;
        metrics.appendResponsesSent++;
        send(new AppendResponse(groupId, nodeId, ackTo, term, true, match, matchedOffset, log.lastOffset(), -1, -1, 0));
    }

    private void rejectAppend(AppendRequest r) {
        long last = log.lastOffset();
        long hint;
        if (r.prevOffset() > last) {
            hint = last;
        } else {
            long t = log.termAt(r.prevOffset());
            hint = t > r.prevTerm() ? log.lastOffsetAtOrBeforeTerm(r.prevTerm()) : r.prevOffset();
        }
        hint = Math.max(hint, log.startOffset() - 1);
        long hintTerm = log.termAt(hint);
        metrics.appendRejectsSent++;
        send(new AppendResponse(groupId, nodeId, r.from(), term, false, ackableMatch(), -1, last, r.prevOffset(),
            hint, Math.max(hintTerm, 0)));
    }

    private void appendFollower(List<Entry> entries) {
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            if (e.kind() == EntryKind.LEADER_CHANGE && e.leaderChange() == null) {
                // AppendEntries does not carry what a no-op records: write what this follower knows (the leader of
                // the entry's term when it is the current one, the voters; not who granted the vote).
                List<Entry> copy = new ArrayList<>(entries);
                for (int j = i; j < copy.size(); j++) {
                    Entry x = copy.get(j);
                    if (x.kind() == EntryKind.LEADER_CHANGE && x.leaderChange() == null) {
                        copy.set(j, Entry.leaderChange(x.baseOffset(), x.term(), new Entry.LeaderChange(
                            x.term() == term ? leaderId : -1, configs.latest().allVoters(), new int[0])));
                    }
                }
                entries = copy;
                break;
            }
        }
        log.append(entries);
        for (Entry e : entries) {
            noteAppended(e);
        }
    }

    private void truncateSuffix(long fromOffset) {
        log.truncateSuffix(fromOffset);
        configs.truncateSuffix(fromOffset);
        Verify.that(truncations.isEmpty() || truncations.lastKey() < fromOffset || fromOffset > commitOffset,
            "group %d truncates a committed prefix truncation at %d", groupId, fromOffset);
        truncations.tailMap(fromOffset, true).clear();
        metrics.suffixTruncations++;
        Verify.that(log.lastOffset() == fromOffset - 1, "group %d truncated to %d but ends at %d", groupId,
            fromOffset, log.lastOffset());
    }

    // =====================================================================================================
    // Log replication, leader side
    // =====================================================================================================

    private void appendLocal(Entry e) {
        one.clear();
        one.add(e);
        log.append(one);
        noteAppended(e);
    }

    private void noteAppended(Entry e) {
        metrics.entriesAppended++;
        if (e.kind() == EntryKind.PREFIX_TRUNCATION) {
            truncations.put(e.baseOffset(), e.newStartOffset());
        }
        if (e.kind() == EntryKind.CONFIGURATION) {
            configs.add(e.baseOffset(), e.configuration());
            metrics.configurationsAppended++;
            if (role == Role.LEADER) {
                syncProgress();
            }
        }
    }

    private Progress progress(int id) {
        for (Progress pr : peers) {
            if (pr.nodeId == id) {
                return pr;
            }
        }
        return null;
    }

    /** Makes {@link #peers} the members of the configuration in force, keeping existing progress. */
    private void syncProgress() {
        int[] members = configs.latest().members();
        List<Progress> next = new ArrayList<>(members.length);
        long now = host.nowMs();
        for (int id : members) {
            if (id == nodeId) {
                continue;
            }
            Progress pr = progress(id);
            if (pr == null) {
                pr = new Progress(id, log.lastOffset() + 1, config);
                pr.lastProgressMs = now;
                pr.recentActive = true;
                pr.caughtUpTargetOffset = log.lastOffset(); // a new member is in sync once it holds this much
                pr.caughtUpTargetMs = now;
                pr.lastHeardMs = now;
            }
            next.add(pr);
        }
        peers = next.toArray(new Progress[0]);
    }

    private void replicate(Progress pr) {
        switch (pr.state) {
            case PROBE -> {
                if (!pr.paused) {
                    sendAppend(pr);
                }
            }
            case REPLICATE -> {
                int sent = 0;
                while (!pr.inflights.full() && pr.next <= log.lastOffset() && sent < config.maxInflightAppends()) {
                    if (!sendAppend(pr)) {
                        return;
                    }
                    sent++;
                }
                if (pr.commitSent < commitOffset && pr.next > log.lastOffset() && sent == 0) {
                    sendAppend(pr); // empty: tells the follower the new commit offset
                }
            }
            case SNAPSHOT -> {
            }
        }
    }

    /** Sends one AppendEntries from {@code pr.next}; false when nothing could be sent now. */
    private boolean sendAppend(Progress pr) {
        boolean learner = configs.latest().isLearner(pr.nodeId);
        int maxBytes = config.maxAppendBytes();
        if (learner) {
            long allowance = host.catchUpAllowance();
            if (allowance <= 0) {
                catchUpDeferred = true;
                return false;
            }
            maxBytes = (int) Math.min(maxBytes, allowance);
        }
        readBuffer.clear();
        int rc = log.read(pr.next, maxBytes, readBuffer);
        if (rc == RaftLog.READ_BELOW_START) {
            startSnapshot(pr);
            return false;
        }
        if (rc == RaftLog.READ_PENDING) {
            pr.waitingRead = true;
            return false;
        }
        long prev = readBuffer.isEmpty() ? pr.next - 1 : readBuffer.get(0).baseOffset() - 1;
        long prevTerm = log.termAt(prev);
        if (prevTerm < 0) {
            startSnapshot(pr);
            return false;
        }
        long now = host.nowMs();
        AppendRequest req = new AppendRequest(groupId, nodeId, pr.nodeId, term, prev, prevTerm, commitOffset,
            readBuffer);
        long bytes = req.sizeBytes();
        send(req);
        if (learner && !readBuffer.isEmpty()) {
            host.catchUpSent(bytes);
        }
        metrics.appendRequestsSent++;
        metrics.appendEntriesSent += readBuffer.size();
        metrics.appendBytesSent += bytes;
        pr.lastSendMs = now;
        pr.commitSent = commitOffset;
        if (pr.state == Progress.State.PROBE) {
            pr.paused = true;
            pr.probePrevOffset = prev;
        } else if (!readBuffer.isEmpty()) {
            long last = readBuffer.get(readBuffer.size() - 1).lastOffset();
            if (pr.inflights.isEmpty()) {
                pr.lastProgressMs = now;
            }
            pr.inflights.add(last, bytes);
            pr.next = last + 1;
        }
        return true;
    }

    private void onAppendResponse(AppendResponse r) {
        if (r.term() > term) {
            becomeFollower(r.term(), NONE);
            return;
        }
        if (r.term() < term || role != Role.LEADER) {
            return;
        }
        Progress pr = progress(r.from());
        if (pr == null) {
            return;
        }
        pr.recentActive = true;
        pr.lastHeardMs = host.nowMs();
        long now = host.nowMs();
        if (!r.success()) {
            metrics.appendRejectsReceived++;
            if (r.rejectedPrevOffset() <= pr.match || pr.state == Progress.State.SNAPSHOT
                || (pr.state == Progress.State.PROBE && r.rejectedPrevOffset() != pr.probePrevOffset)) {
                return; // stale
            }
            long next;
            long t = log.termAt(r.hintOffset());
            if (t >= 0 && t == r.hintTerm()) {
                next = r.hintOffset() + 1;
            } else {
                long o = log.lastOffsetAtOrBeforeTerm(r.hintTerm());
                next = (o < 0 ? log.startOffset() - 1 : Math.min(o, r.hintOffset())) + 1;
            }
            next = Math.min(next, r.rejectedPrevOffset());
            pr.becomeProbe(next);
            markDirty();
            return;
        }
        Verify.that(r.matchOffset() <= log.lastOffset() && r.appendedOffset() <= log.lastOffset(),
            "follower acknowledged past the leader's last offset in group %d", groupId);
        if (r.matchOffset() > pr.match) {
            pr.match = r.matchOffset();
            pr.lastProgressMs = now;
        }
        noteCaughtUp(pr, now);
        switch (pr.state) {
            case PROBE -> pr.becomeReplicate(r.appendedOffset() + 1, now);
            case REPLICATE -> {
                pr.inflights.freeTo(r.appendedOffset());
                if (pr.next <= r.appendedOffset()) {
                    pr.next = r.appendedOffset() + 1;
                }
                pr.lastProgressMs = now;
            }
            case SNAPSHOT -> {
            }
        }
        if (pr.state == Progress.State.REPLICATE && pr.next < pr.match + 1) {
            pr.next = pr.match + 1;
        }
        maybeCommit();
        maybeSendTimeoutNow(pr);
        markDirty();
    }

    /** The leader's durable offset while {@link #maybeCommit} counts the quorum (read by {@link #matchOf}). */
    private long commitDurable;
    /** Each voter's match for the quorum count, made once (no lambda per commit attempt): durable for this node. */
    private final java.util.function.IntToLongFunction matchOf = this::quorumMatch;

    private long quorumMatch(int id) {
        if (id == nodeId) {
            return commitDurable;
        }
        Progress pr = progress(id);
        return pr == null ? -1 : pr.match;
    }

    private void maybeCommit() {
        if (role != Role.LEADER) {
            return;
        }
        commitDurable = log.durableOffset();
        long q = configs.latest().quorumOffset(matchOf);
        if (q > commitOffset && q >= termStartOffset && log.termAt(q) == term) {
            advanceCommit(q);
        }
    }

    private void advanceCommit(long c) {
        Verify.that(c <= log.lastOffset(), "group %d commits %d past its last offset %d", groupId, c, log.lastOffset());
        Verify.that(c > commitOffset, "commit of group %d moves back to %d", groupId, c);
        commitOffset = c;
        metrics.commitAdvances++;
        if (role == Role.LEADER) {
            proposals.committedTo(c, host.nowMs(), nodeMetrics);
            driveMembership();
        }
        markDirty();
    }

    /**
     * Sends TimeoutNow once the transfer target holds the whole log. Proposals stay refused after it (thesis
     * §3.10: the leader stops taking requests for the transfer's duration) until this leader steps down for the
     * target's higher term or the transfer's deadline passes: a proposal taken meanwhile would make the leader's log
     * longer than the target's, the voters that have it would refuse the target, and the group would wait for an
     * election timeout without a leader.
     */
    private void maybeSendTimeoutNow(Progress pr) {
        if (transferTarget == NONE || pr.nodeId != transferTarget || role != Role.LEADER || timeoutNowSent) {
            return;
        }
        if (pr.match == log.lastOffset()) {
            send(new TimeoutNow(groupId, nodeId, pr.nodeId, term));
            timeoutNowSent = true;
        }
    }

    // =====================================================================================================
    // Applying committed entries
    // =====================================================================================================

    private void applyCommitted() {
        if (applyWaitingRead || installing) {
            return;
        }
        if (!stateMachine.consumesEntries()) {
            if (commitOffset > appliedOffset) {
                appliedOffset = commitOffset;
                maybeAutoSnapshot();
            }
            return;
        }
        int applied = 0;
        while (appliedOffset < commitOffset && applied < config.maxApplyEntriesPerStep()) {
            readBuffer.clear();
            int rc = log.read(appliedOffset + 1, config.maxAppendBytes(), readBuffer);
            if (rc == RaftLog.READ_PENDING) {
                applyWaitingRead = true;
                return;
            }
            Verify.that(rc == RaftLog.READ_OK && !readBuffer.isEmpty(), "group %d cannot read committed offset %d",
                groupId, appliedOffset + 1);
            for (Entry e : readBuffer) {
                if (e.lastOffset() > commitOffset || applied >= config.maxApplyEntriesPerStep()) {
                    break;
                }
                Verify.that(e.baseOffset() == appliedOffset + 1, "group %d applies %d after %d", groupId,
                    e.baseOffset(), appliedOffset);
                stateMachine.apply(e);
                appliedOffset = e.lastOffset();
                metrics.entriesApplied++;
                applied++;
            }
        }
        if (appliedOffset < commitOffset) {
            markDirty();
        }
        maybeAutoSnapshot();
    }

    private void maybeAutoSnapshot() {
        long every = config.snapshotIntervalOffsets();
        if (every > 0 && appliedOffset - log.snapshotMeta().lastOffset() >= every) {
            takeSnapshot();
        }
    }

    // =====================================================================================================
    // Prefix truncation (retention, DeleteRecords) of groups whose log is their state
    // =====================================================================================================

    /**
     * Rebuilds the pending prefix truncations from the log's entries: all of them, also those at or below the
     * snapshot (committed, carried out again at the next flush if a crash came between the snapshot and the
     * prefix truncation; a no-op otherwise).
     */
    private void loadTruncations() {
        truncations.clear();
        for (Entry e : log.prefixTruncationEntries()) {
            truncations.put(e.baseOffset(), e.newStartOffset());
        }
    }

    /**
     * Carries out the committed prefix truncations, one step per call (each step waits for its I/O and is called
     * again from the next flush): find the entry holding the target start (a read), save a zero-byte snapshot at
     * the end of the entry before it, drop the log's prefix up to it when the snapshot is durable (see
     * {@link #onSnapshotSaved}), then move the exact log start. Waits while a snapshot is being saved or installed,
     * so the steps never race one; a suffix truncation never touches committed entries; an install that moves the
     * log past the target ends the work. Safe to run on every flush: a target already reached is a no-op, so a
     * truncation replayed after a restart (its entry is still above the snapshot) changes nothing.
     */
    private void applyTruncations() {
        if (stateMachine.consumesEntries() || stopped || installing) {
            return;
        }
        while (!truncations.isEmpty() && truncations.firstKey() <= commitOffset) {
            truncationTarget = Math.max(truncationTarget, truncations.pollFirstEntry().getValue());
        }
        if (truncationTarget < 0 || snapshotSaving || truncationWaitingRead) {
            return;
        }
        long target = truncationTarget;
        if (target <= log.recordStartOffset()) {
            truncationTarget = -1;
            return;
        }
        Verify.that(target <= commitOffset + 1 && target <= log.lastOffset() + 1,
            "group %d truncates its prefix to %d past its commit offset %d", groupId, target, commitOffset);
        long entryStart;
        if (target < log.startOffset()) {
            truncationTarget = -1; // the log starts past it already (an installed snapshot)
            return;
        } else if (target > log.lastOffset()) {
            entryStart = target; // the whole log goes
        } else {
            truncationRead.clear();
            int rc = log.read(target, 1, truncationRead);
            if (rc == RaftLog.READ_PENDING) {
                truncationWaitingRead = true;
                return;
            }
            Verify.that(rc == RaftLog.READ_OK && !truncationRead.isEmpty(), "group %d cannot read offset %d of its log",
                groupId, target);
            entryStart = truncationRead.get(0).baseOffset();
            truncationRead.clear();
            Verify.that(entryStart <= target, "group %d read an entry at %d for offset %d", groupId, entryStart, target);
        }
        long snapshotAt = entryStart - 1;
        if (snapshotAt > log.snapshotMeta().lastOffset()) {
            long t = log.termAt(snapshotAt);
            Verify.that(t > 0, "offset %d of group %d has no term", snapshotAt, groupId);
            SnapshotMeta meta = new SnapshotMeta(snapshotAt, t, configs.at(snapshotAt));
            snapshotSaving = true;
            truncationSnapshotAt = snapshotAt;
            metrics.snapshotsTaken++;
            log.saveSnapshot(meta, stateMachine.snapshot());
            return; // onSnapshotSaved drops the prefix; the next flush moves the exact start
        }
        if (entryStart > log.startOffset()) {
            log.truncatePrefix(entryStart);
        }
        Verify.that(log.startOffset() == entryStart, "group %d truncated its prefix to %d but starts at %d", groupId,
            entryStart, log.startOffset());
        log.advanceRecordStart(target);
        metrics.prefixTruncations++;
        truncationTarget = -1;
    }

    // =====================================================================================================
    // Snapshots (thesis §5)
    // =====================================================================================================

    private void startSnapshot(Progress pr) {
        SnapshotMeta meta = log.snapshotMeta();
        Verify.that(meta.exists(), "group %d must send a snapshot but has none (log start %d)", groupId,
            log.startOffset());
        pr.becomeSnapshot(meta, log.snapshotData());
        sendSnapshotChunk(pr);
    }

    private void sendSnapshotChunk(Progress pr) {
        byte[] data = pr.snapshotData;
        int off = (int) pr.snapshotAckedBytes;
        int len = Math.min(config.snapshotChunkBytes(), data.length - off);
        boolean learner = configs.latest().isLearner(pr.nodeId);
        if (learner) {
            if (host.catchUpAllowance() <= 0) {
                catchUpDeferred = true; // lastSendMs unchanged: the next tick sends it
                return;
            }
            host.catchUpSent(len);
        }
        byte[] chunk = Arrays.copyOfRange(data, off, off + len);
        send(new InstallSnapshotRequest(groupId, nodeId, pr.nodeId, term, pr.snapshot, data.length, off, chunk,
            off + len == data.length));
        pr.lastSendMs = host.nowMs();
        metrics.snapshotChunksSent++;
    }

    private void onInstallSnapshot(InstallSnapshotRequest r) {
        SnapshotMeta meta = r.meta();
        if (r.term() < term) {
            send(new InstallSnapshotResponse(groupId, nodeId, r.from(), term, meta.lastOffset(), 0, false, -1));
            return;
        }
        acceptLeader(r.from(), r.term());
        if (installing) {
            return;
        }
        if (meta.lastOffset() <= commitOffset) {
            // We hold everything it covers: no snapshot needed.
            long match = Math.min(commitOffset, log.durableOffset());
            matchedOffset = Math.max(matchedOffset, match);
            send(new InstallSnapshotResponse(groupId, nodeId, r.from(), term, meta.lastOffset(), r.totalBytes(),
                true, match));
            return;
        }
        if (receivingMeta == null || !receivingMeta.equals(meta) || receivingData.length != r.totalBytes()) {
            if (r.chunkOffset() != 0) {
                send(new InstallSnapshotResponse(groupId, nodeId, r.from(), term, meta.lastOffset(), 0, false, -1));
                return;
            }
            if (r.totalBytes() > config.maxSnapshotBytes() || r.totalBytes() > Integer.MAX_VALUE - 16) {
                throw new IllegalStateException("group " + groupId + ": snapshot of " + r.totalBytes()
                    + " bytes exceeds maxSnapshotBytes " + config.maxSnapshotBytes());
            }
            receivingMeta = meta;
            receivingData = new byte[(int) r.totalBytes()];
            receivingBytes = 0;
        }
        if (r.chunkOffset() != receivingBytes) {
            send(new InstallSnapshotResponse(groupId, nodeId, r.from(), term, meta.lastOffset(), receivingBytes, false,
                -1));
            return;
        }
        Verify.that(receivingBytes + r.chunk().length <= receivingData.length, "snapshot chunk overflows in group %d",
            groupId);
        System.arraycopy(r.chunk(), 0, receivingData, receivingBytes, r.chunk().length);
        receivingBytes += r.chunk().length;
        if (!r.done()) {
            send(new InstallSnapshotResponse(groupId, nodeId, r.from(), term, meta.lastOffset(), receivingBytes, false,
                -1));
            return;
        }
        Verify.that(receivingBytes == receivingData.length, "last snapshot chunk leaves %d of %d bytes in group %d",
            receivingBytes, receivingData.length, groupId);
        installing = true;
        installFrom = r.from();
        installTerm = term;
        ackTo = NONE;
        log.installSnapshot(meta, receivingData);
    }

    private void onInstallSnapshotResponse(InstallSnapshotResponse r) {
        if (r.term() > term) {
            becomeFollower(r.term(), NONE);
            return;
        }
        if (r.term() < term || role != Role.LEADER) {
            return;
        }
        Progress pr = progress(r.from());
        if (pr == null) {
            return;
        }
        pr.recentActive = true;
        pr.lastHeardMs = host.nowMs();
        if (r.installed()) {
            if (r.matchOffset() > pr.match) {
                pr.match = r.matchOffset();
            }
            noteCaughtUp(pr, host.nowMs());
            if (pr.state == Progress.State.SNAPSHOT) {
                metrics.snapshotsInstalled++;
                pr.becomeProbe(Math.max(r.matchOffset(), r.snapshotLastOffset()) + 1);
            }
            maybeCommit();
            markDirty();
            return;
        }
        if (pr.state != Progress.State.SNAPSHOT || r.snapshotLastOffset() != pr.snapshot.lastOffset()) {
            return;
        }
        pr.snapshotAckedBytes = Math.min(r.nextChunkOffset(), pr.snapshotData.length);
        if (pr.snapshotAckedBytes >= pr.snapshotData.length) {
            pr.snapshotAckedBytes = 0;
        }
        sendSnapshotChunk(pr);
    }

    @Override
    public void onSnapshotInstalled(SnapshotMeta meta) {
        if (stopped) {
            return;
        }
        Verify.that(installing && meta.equals(receivingMeta), "group %d installed a snapshot it did not receive",
            groupId);
        byte[] data = receivingData;
        installing = false;
        receivingMeta = null;
        receivingData = null;
        receivingBytes = 0;
        Verify.that(log.startOffset() == meta.lastOffset() + 1 && log.termAt(meta.lastOffset()) == meta.lastTerm(),
            "group %d: installed snapshot at %d does not start the log (start %d)", groupId, meta.lastOffset(),
            log.startOffset());
        stateMachine.restore(meta, data);
        appliedOffset = meta.lastOffset();
        applyWaitingRead = false;
        if (meta.lastOffset() > commitOffset) {
            commitOffset = meta.lastOffset();
            metrics.commitAdvances++;
        }
        configs = new ConfigHistory(meta.lastOffset(), meta.configuration(), true);
        for (Entry e : log.configurationEntries()) {
            if (e.baseOffset() > meta.lastOffset()) {
                configs.add(e.baseOffset(), e.configuration());
            }
        }
        loadTruncations();
        metrics.snapshotsInstalled++;
        if (term == installTerm && role == Role.FOLLOWER) {
            matchedOffset = Math.max(matchedOffset, meta.lastOffset());
            send(new InstallSnapshotResponse(groupId, nodeId, installFrom, term, meta.lastOffset(), data.length, true,
                meta.lastOffset()));
        }
        installFrom = NONE;
        markDirty();
        notifyChanges();
    }

    @Override
    public void onSnapshotSaved(SnapshotMeta meta) {
        if (stopped) {
            return;
        }
        snapshotSaving = false;
        configs.rebase(meta.lastOffset(), meta.configuration());
        boolean forTruncation = meta.lastOffset() == truncationSnapshotAt;
        truncationSnapshotAt = -1;
        // A prefix truncation keeps no trailing offsets: what it drops is gone for readers already.
        long newStart = meta.lastOffset() + 1 - (forTruncation ? 0 : config.snapshotTrailingOffsets());
        if (newStart > log.startOffset()) {
            log.truncatePrefix(newStart);
        }
        markDirty();
        notifyChanges();
    }

    // =====================================================================================================
    // Membership (thesis §4)
    // =====================================================================================================

    private void driveMembership() {
        if (role != Role.LEADER || commitOffset < termStartOffset) {
            return;
        }
        Configuration cur = configs.latest();
        if (configs.latestOffset() > commitOffset) {
            return; // the last change is not committed yet
        }
        if (cur.isJoint()) {
            appendConfiguration(cur.leaveJoint());
            return;
        }
        if (!cur.isVoter(nodeId)) {
            // Removed: hand over to the most up-to-date voter, then step down (thesis §4.2.2).
            Progress best = null;
            for (Progress pr : peers) {
                if (cur.isVoter(pr.nodeId) && (best == null || pr.match > best.match)) {
                    best = pr;
                }
            }
            if (best != null) {
                send(new TimeoutNow(groupId, nodeId, best.nodeId, term));
            }
            becomeFollower(term, NONE);
            return;
        }
        Configuration target = pendingTarget;
        if (target == null) {
            return;
        }
        if (cur.equals(target)) {
            pendingTarget = null;
            return;
        }
        int[] joining = Arrays.stream(target.members()).filter(id -> !cur.isMember(id)).toArray();
        if (joining.length > 0) {
            int[] learners = Configuration.union(cur.learners(),
                Arrays.stream(joining).filter(id -> id != nodeId).toArray());
            appendConfiguration(Configuration.of(cur.voters(), learners));
            return;
        }
        if (Arrays.equals(cur.voters(), target.voters())) {
            appendConfiguration(target);
            return;
        }
        for (int v : target.voters()) {
            if (!cur.isVoter(v)) {
                Progress pr = progress(v);
                if (pr == null || pr.match < commitOffset) {
                    return; // not caught up yet; re-checked on every tick and acknowledgement
                }
            }
        }
        appendConfiguration(cur.enterJoint(target));
    }

    private void appendConfiguration(Configuration c) {
        Entry e = Entry.configuration(log.lastOffset() + 1, term, c);
        appendLocal(e);
        markDirty();
    }

    // =====================================================================================================
    // Storage callbacks
    // =====================================================================================================

    @Override
    public void onAppendDurable(long durableOffset) {
        if (stopped) {
            return;
        }
        if (role == Role.LEADER) {
            proposals.durableTo(durableOffset, host.nowMs(), nodeMetrics);
            maybeCommit();
        } else if (ackTo != NONE && ackableMatch() > ackedMatch) {
            sendAck();
        }
        markDirty();
        notifyChanges();
    }

    @Override
    public void onReadable() {
        if (stopped) {
            return;
        }
        applyWaitingRead = false;
        truncationWaitingRead = false;
        for (Progress pr : peers) {
            pr.waitingRead = false;
        }
        markDirty();
    }

    @Override
    public void onStorageFailure(String what) {
        System.getLogger("dev.isthmus.raft").log(System.Logger.Level.ERROR,
            "group " + groupId + " on node " + nodeId + " stops: storage failed: " + what);
        stop();
    }

    // =====================================================================================================
    // Plumbing
    // =====================================================================================================

    private void markDirty() {
        if (!dirty) {
            dirty = true;
            host.markDirty(this);
        }
    }

    private void notifyChanges() {
        if (role != notifiedRole || term != notifiedTerm || leaderId != notifiedLeader) {
            notifiedRole = role;
            notifiedTerm = term;
            notifiedLeader = leaderId;
            listener.onRoleChange(groupId, role, term, leaderId);
        }
        Configuration c = configs.latest();
        if (c != notifiedConfig) {
            notifiedConfig = c;
            listener.onConfigurationChange(groupId, c);
        }
        if (commitOffset > notifiedCommit) {
            notifiedCommit = commitOffset;
            listener.onCommit(groupId, commitOffset);
        }
        long start = log.recordStartOffset();
        if (start != notifiedLogStart) {
            notifiedLogStart = start;
            listener.onLogStartChange(groupId, start);
        }
    }

    @Override
    public String toString() {
        return "RaftGroup[" + groupId + "@" + nodeId + " " + role + " t" + term + " leader=" + leaderId + " log=["
            + log.startOffset() + ".." + log.lastOffset() + "] durable=" + log.durableOffset() + " commit="
            + commitOffset + " applied=" + appliedOffset + " " + configs.latest() + "]";
    }
}
