package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardCall;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * Kafka's Fetch for consumers: the request's (or its fetch session's) partitions are read on their owner
 * shards, a fetch that cannot be answered yet waits parked on those shards, and the response honours Kafka's
 * byte limits and fetch sessions (KIP-227, {@link FetchSessions}).
 *
 * <h2>Rounds and parking</h2>
 * <pre>
 *  connection shard C                         owner shard S (one ShardRead per shard the fetch touches)
 *  ------------------                         -------------
 *  round 0: ShardRead(READ, budget) ------->  read every partition of S in request order, within the budget
 *           &lt;--------------------------------  reply: batches, high watermarks, errors
 *  enough (min_bytes), an error, or max_wait 0?  -> respond
 *  else:    ShardRead(PARK, deadline) ----->  park each partition's PartitionFetch on its Partition
 *                                             (woken by a high-watermark advance or a leadership change)
 *                                             woken: read just the partitions that have data, once
 *           &lt;--------------------------------  reply with them (or, at the deadline, with nothing)
 *  min_bytes reached / error / deadline?  -> Cancel the shards still parked, respond once all replied
 *  else park that shard again (the same objects, from the offsets after what was kept)
 * </pre>
 * Every read of a wake-up is kept: its batches are added to what the partition already holds (within the
 * limits below), and the next park starts after them; a long poll reads nothing twice. One {@link ShardCall}
 * per shard carries all of that shard's partitions, so a fetch of 200 partitions on 4 shards is 4 messages per
 * round, not 200, and a parked fetch holds one of the {@code crossShardDepth} call slots per shard it waits on
 * (a send refused for that bound is retried after a millisecond, up to the fetch's deadline). The
 * per-fetch objects (one {@link FetchPart} per partition, one {@link ShardRead} per shard) are made once and
 * reused by every round; wake-ups, timers and cancellations allocate nothing (no lambdas: the objects are
 * their own callbacks).
 *
 * <h2>Byte limits (KIP-74), and the choice made for shards</h2>
 * Kafka fills partitions in request order (session order for incremental fetches); each takes at most its
 * {@code partition_max_bytes} and what is left of {@code max_bytes}; the first partition of the response that
 * has data returns at least one whole batch even when it is larger than both limits (so a consumer always
 * progresses), later partitions stop when the budget is spent. Partitions live on different shards, and reading
 * shard after shard would cost a cross-shard round trip per shard on every fetch, so the shards read in
 * parallel and the connection's shard decides:
 * <ol>
 *   <li>Each shard reads its own partitions in request order, applying Kafka's rule to them alone with the
 *       whole remaining budget: a partition gets at most its limit and what the shard's earlier partitions
 *       left. When that local budget caps a partition below what the whole budget would allow and it has more
 *       data, the partition is marked <em>cut</em>.</li>
 *   <li>The connection's shard walks all partitions in request order with the real budget and keeps whole
 *       batches within it (the first batch of the response always), releasing the rest.</li>
 *   <li>A cut partition that could take more than its shard read (its shard counted bytes that the walk gave
 *       to another shard's partition instead) is read again, with the cut partitions after it, within what is
 *       left; the walk then goes on. This needs partitions of several shards competing for the budget and is
 *       rare; in the usual cases (budget not reached, or one shard) there is one round trip.</li>
 * </ol>
 * The result is exactly Kafka's rule; the cost is about (shards - 1) x max_bytes of batch-cache references
 * read and released unsent, plus the first batch of a partition whose batch exceeds its cap (the bytes stay in
 * the batch cache, where the consumer's next fetch finds them).
 * Batches kept in an earlier round are never given back for a later one, so a long poll keeps what it read.
 * Batches are never cut: a partition returns whole batches or none.
 *
 * <h2>Connection close</h2>
 * A fetch that parks registers itself with its {@link Connection}; if the connection closes first, the fetch
 * cancels its parked reads on every shard (removing its waiters from the partitions), releases the batches it
 * held and completes, so a long poll with max_wait 2^31-1 ms ends with its client.
 *
 * <h2>Threads</h2>
 * {@link #handle} and everything of a {@link FetchOp} run on the connection's shard, except what a
 * {@link ShardRead} does between its send and its reply (on the owner shard, with the {@link FetchPart}s it
 * carries); the single-producer queues between the shards order those accesses. The {@link FetchSessions} of a
 * shard are touched only by that shard.
 *
 * <h2>Transactions</h2>
 * {@code isolation_level} is carried to {@link Partition#read} on every read ({@link PartitionFetch}):
 * READ_COMMITTED reads below the last stable offset, parks until it passes the fetch offset, and each read reports
 * the aborted transactions overlapping what it returned; the rounds' lists are merged for the batches kept
 * ({@link FetchOp#keepAborted}), so a long poll that completes from a wake-up lists them too (KAFKA-5376).
 * READ_UNCOMMITTED gets no aborted list (null, as Kafka sends).
 */
final class FetchHandler {
    /** How long a cross-shard send refused for back-pressure waits before it is tried again. */
    private static final long RETRY_NS = 1_000_000L;

    private final Broker broker;
    /** One cache per shard, each touched only by its shard. */
    private final FetchSessions[] sessions;
    /** Partition reads started on each shard (tests, metrics); each slot written only by its shard. */
    private final long[] partitionReads;
    /** Round-0 re-reads of partitions a shard cut short for its own budget, per connection shard (tests, metrics). */
    private final long[] rereads;

    FetchHandler(Broker broker, int shards, int sessionSlotsPerBroker) {
        this.broker = broker;
        this.sessions = new FetchSessions[shards];
        this.partitionReads = new long[shards];
        this.rereads = new long[shards];
        int slots = FetchSessions.slotsPerShard(sessionSlotsPerBroker, shards);
        long seed = System.nanoTime();
        for (int i = 0; i < shards; i++) {
            sessions[i] = new FetchSessions(slots, i, shards, seed + i);
        }
    }

    /** Shard {@code shard} only: its fetch sessions. */
    FetchSessions sessions(int shard) {
        return sessions[shard];
    }

    /** Shard {@code shard} only: round-0 re-reads its fetches made of partitions cut short by a shard's budget. */
    long rereads(int shard) {
        return rereads[shard];
    }

    /** Shard {@code shard} only: partition reads it has started for fetches. */
    long partitionReads(int shard) {
        return partitionReads[shard];
    }

    /**
     * Handles a Fetch on the connection's shard {@code st}; {@code connection} (null in tests) ends a parked
     * fetch when it closes.
     */
    Promise<ProtocolMessage> handle(ShardState st, FetchRequestData req, short version, Connection connection) {
        FetchSessions cache = sessions[st.shard.id()];
        long nowMs = System.currentTimeMillis();
        boolean usesTopicIds = version >= 13;
        FetchOp op;
        if (req.sessionEpoch == 0 || req.sessionEpoch == -1) {
            // Full fetch: a session it names is closed; epoch 0 asks for a new one (FINAL, -1, does not).
            if (req.sessionId != 0) {
                cache.remove(req.sessionId);
            }
            op = new FetchOp(this, st, req, version, connection, null, req.sessionEpoch == 0 ? cache : null);
            addRequestPartitions(op, st, req, usesTopicIds);
        } else {
            FetchSessions.Session s = cache.get(req.sessionId);
            if (s == null) {
                return Promise.completed(sessionError(ErrorCodes.FETCH_SESSION_ID_NOT_FOUND));
            }
            if (s.epoch != req.sessionEpoch) {
                return Promise.completed(sessionError(ErrorCodes.INVALID_FETCH_SESSION_EPOCH));
            }
            if (s.usesTopicIds != usesTopicIds) {
                return Promise.completed(sessionError(ErrorCodes.FETCH_SESSION_TOPIC_ID_ERROR));
            }
            updateSession(s, req, usesTopicIds);
            if (s.size() == 0) {
                cache.remove(s.id);
                op = new FetchOp(this, st, req, version, connection, null, null);
                addRequestPartitions(op, st, req, usesTopicIds);
            } else {
                cache.touch(s, nowMs);
                s.epoch = FetchSessions.nextEpoch(s.epoch);
                op = new FetchOp(this, st, req, version, connection, s, null);
                for (FetchSessions.Cached c : s.partitions.values()) {
                    op.add(st, c.topicId, c.topicName, c.partition, c.fetchOffset, c.maxBytes, c.currentLeaderEpoch, c);
                }
            }
        }
        op.start();
        return op.promise;
    }

    private static void addRequestPartitions(FetchOp op, ShardState st, FetchRequestData req, boolean usesTopicIds) {
        for (FetchRequestData.FetchTopic t : req.topics) {
            for (FetchRequestData.FetchPartition p : t.partitions) {
                op.add(st, usesTopicIds ? t.topicId : null, usesTopicIds ? null : t.topic, p.partition, p.fetchOffset,
                    p.partitionMaxBytes, p.currentLeaderEpoch, null);
            }
        }
    }

    /**
     * Kafka's {@code FetchSession.update}: partitions of the request are added (at the end, with no high
     * watermark sent yet, so they are answered) or updated in place; then the forgotten ones are removed.
     */
    private static void updateSession(FetchSessions.Session s, FetchRequestData req, boolean usesTopicIds) {
        for (FetchRequestData.FetchTopic t : req.topics) {
            for (FetchRequestData.FetchPartition p : t.partitions) {
                FetchSessions.Key k = usesTopicIds ? new FetchSessions.Key(t.topicId, null, p.partition)
                    : new FetchSessions.Key(null, t.topic, p.partition);
                FetchSessions.Cached c = s.partitions.get(k);
                if (c == null) {
                    c = new FetchSessions.Cached(k.topicId(), k.topicName(), p.partition);
                    s.partitions.put(k, c);
                }
                c.fetchOffset = p.fetchOffset;
                c.maxBytes = p.partitionMaxBytes;
                c.currentLeaderEpoch = p.currentLeaderEpoch;
            }
        }
        for (FetchRequestData.ForgottenTopic t : req.forgottenTopicsData) {
            for (Integer p : t.partitions) {
                s.partitions.remove(usesTopicIds ? new FetchSessions.Key(t.topicId, null, p)
                    : new FetchSessions.Key(null, t.topic, p));
            }
        }
    }

    /** Kafka's answer to a session it cannot use: the error at the top, session id 0, no partitions. */
    private static FetchResponseData sessionError(short code) {
        FetchResponseData r = new FetchResponseData();
        r.errorCode = code;
        r.sessionId = 0;
        return r;
    }

    // ------------------------------------------------------------------ one fetch

    /** One partition of a fetch: what the connection's shard keeps beside what the owner shard reads. */
    static final class FetchPart extends PartitionFetch {
        final ShardRead shardRead;
        /** The position in the response (request or session order). */
        final int index;
        /** The topic as resolved on the connection's shard (null when unknown). */
        final TopicTable.Topic resolved;
        /** The id the client named the topic by (Fetch v13+), else null. */
        final Uuid topicId;
        /** The name the client named the topic by (Fetch v12 and older), else null. */
        final String topicName;
        final int maxBytes;
        final long requestOffset;
        /** The session's entry of this partition (incremental fetches), else null. */
        final FetchSessions.Cached cached;

        // ---- connection's shard
        /** Whole batches kept for the response so far (null: none). */
        IoBuf kept;
        long keptBytes;
        /** READ_COMMITTED: the aborted transactions overlapping {@link #kept}, from every round (null: none). */
        List<FetchResponseData.AbortedTransaction> keptAborted;
        /** Whether the current round reads this partition (PARK rounds: it may take more bytes). */
        boolean inRound;
        /** Bytes of {@link #kept} a follower replica served (KIP-392; the follower-fetch metrics). */
        long followerBytes;

        // ---- owner shard
        /** The partition object, looked up at most once per fetch on the owner shard (or the session's hint). */
        Partition partitionRef;
        boolean lookedUp;
        /** Set by the owner shard when this round read (or looked at) the partition; cleared when absorbed. */
        boolean readThisRound;
        /**
         * Set by the owner shard: the read was capped by the shard's own budget below what the round allowed,
         * and the partition has more (the connection's shard may read it again).
         */
        boolean cut;

        FetchPart(ShardRead shardRead, int index, TopicTable.Topic resolved, Uuid topicId, String topicName,
                  int partition, byte isolationLevel, long fetchOffset, int maxBytes, FetchSessions.Cached cached) {
            super(resolved != null ? resolved.name() : topicName != null ? topicName : "", partition, isolationLevel,
                fetchOffset);
            this.shardRead = shardRead;
            this.index = index;
            this.resolved = resolved;
            this.topicId = topicId;
            this.topicName = topicName;
            this.maxBytes = maxBytes;
            this.requestOffset = fetchOffset;
            this.cached = cached;
        }

        @Override
        void readDone() {
            shardRead.partRead();
        }

        /** Connection's shard: gives back every batch this partition holds (kept, or read and not yet kept). */
        void releaseBatches() {
            if (kept != null) {
                kept.release();
                kept = null;
            }
            if (records != null) {
                records.release();
                records = null;
            }
            keptAborted = null;
        }

        @Override
        void dataAvailable() {
            shardRead.wake();
        }
    }

    /**
     * One Fetch request in progress, on the connection's shard. It is its connection's close hook
     * ({@link #run()}) while it is parked.
     */
    static final class FetchOp implements Runnable {
        final FetchHandler handler;
        final ShardState st;
        final FetchRequestData req;
        final short version;
        final Connection connection;
        /** The session of an incremental fetch, else null. */
        final FetchSessions.Session session;
        /** Where a full fetch with epoch 0 creates its session, else null. */
        final FetchSessions createIn;
        final Promise<ProtocolMessage> promise = new Promise<>();
        final long deadlineNs;
        final int minBytes;
        final byte isolationLevel;
        /** A consumer's Fetch v11+: a follower replica may serve it (KIP-392). */
        final boolean followerMayServe;
        /** The consumer's client.rack (Fetch v11+), or null when it sent none. */
        final String clientRack;

        private final List<FetchPart> parts = new ArrayList<>();
        /** Per shard, the ShardRead carrying that shard's partitions (null when none). */
        private final ShardRead[] byShard;
        private final List<ShardRead> reads = new ArrayList<>(2);

        /** 0: the first read (and re-reads of partitions cut short); 1: parked rounds. */
        private int round;
        /** Round 0: the partitions before this index are settled (batches kept or released). */
        private int walkIndex;
        /** ShardReads sent and not replied yet. */
        private int outstanding;
        /** ShardReads (or their cancels) refused by back-pressure, waiting for the retry timer. */
        private int pendingSends;
        private boolean retryScheduled;
        /** The retry timer's task, made the first time back-pressure refuses a send. */
        private Runnable retryTask;
        private boolean finishing;
        private boolean cancelled;
        private boolean completed;
        private boolean hookRegistered;
        private boolean anyError;
        /** Bytes kept for the response so far; what is left of max_bytes. */
        private long keptBytes;
        private long remaining;

        FetchOp(FetchHandler handler, ShardState st, FetchRequestData req, short version, Connection connection,
                FetchSessions.Session session, FetchSessions createIn) {
            this.handler = handler;
            this.st = st;
            this.req = req;
            this.version = version;
            this.connection = connection;
            this.session = session;
            this.createIn = createIn;
            this.deadlineNs = System.nanoTime() + Math.max(0, req.maxWaitMs) * 1_000_000L;
            this.minBytes = req.minBytes;
            this.isolationLevel = req.isolationLevel == PartitionFetch.READ_COMMITTED
                ? PartitionFetch.READ_COMMITTED : PartitionFetch.READ_UNCOMMITTED;
            this.remaining = req.maxBytes <= 0 ? 0 : req.maxBytes;
            this.byShard = new ShardRead[handler.sessions.length];
            // Kafka's ReplicaManager: only a consumer (no replica id) with client metadata (v11+) reads from followers.
            boolean consumer = req.replicaId < 0 && (req.replicaState == null || req.replicaState.replicaId < 0);
            this.followerMayServe = consumer && version >= 11;
            this.clientRack = followerMayServe && req.rackId != null && !req.rackId.isEmpty() ? req.rackId : null;
        }

        /** Adds a partition to read, in response order; one the connection's shard can answer is answered here. */
        void add(ShardState st, Uuid topicId, String topicName, int partition, long fetchOffset, int maxBytes,
                 int currentLeaderEpoch, FetchSessions.Cached cached) {
            TopicTable.Topic topic = topicId != null ? st.topics.get(topicId) : st.topics.get(topicName);
            short error = ErrorCodes.NONE;
            int shard = -1;
            if (topic == null) {
                error = topicId != null ? ErrorCodes.UNKNOWN_TOPIC_ID : ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
            } else if (partition < 0 || partition >= topic.partitions()) {
                error = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                shard = handler.broker.shardOf(topic, partition);
                if (shard < 0) {
                    error = ErrorCodes.NOT_LEADER_OR_FOLLOWER; // no replica on this node
                }
            }
            ShardRead sr = null;
            if (error == ErrorCodes.NONE) {
                sr = byShard[shard];
                if (sr == null) {
                    sr = new ShardRead(this, shard);
                    byShard[shard] = sr;
                    reads.add(sr);
                }
            }
            FetchPart p = new FetchPart(sr, parts.size(), topic, topicId, topicName, partition, isolationLevel,
                fetchOffset, maxBytes, cached);
            p.followerMayServe = followerMayServe;
            p.clientRack = clientRack;
            p.currentLeaderEpoch = currentLeaderEpoch;
            if (cached != null) {
                p.partitionRef = cached.partitionHint;
            }
            parts.add(p);
            if (sr != null) {
                sr.parts.add(p);
            } else {
                p.errorCode = error;
                anyError = true;
            }
        }

        void start() {
            for (int i = 0; i < reads.size(); i++) {
                ShardRead sr = reads.get(i);
                sr.mode = ShardRead.READ;
                sr.budget = remaining;
                for (int j = 0; j < sr.parts.size(); j++) {
                    sr.parts.get(j).inRound = true;
                }
                send(sr);
            }
            maybeComplete();
        }

        private void send(ShardRead sr) {
            sr.firstPending = keptBytes == 0;
            if (st.shard.trySend(sr.target, sr)) {
                sr.inFlightRound = true;
                outstanding++;
            } else {
                sr.sendPending = true;
                pendingSends++;
                scheduleRetry();
            }
        }

        private void sendCancel(ShardRead sr) {
            if (sr.cancel == null) {
                sr.cancel = new Cancel(sr);
            }
            if (sr.cancel.isInFlight()) {
                return;
            }
            if (!st.shard.trySend(sr.target, sr.cancel)) {
                sr.cancelPending = true;
                pendingSends++;
                scheduleRetry();
            }
        }

        private void scheduleRetry() {
            if (!retryScheduled) {
                retryScheduled = true;
                if (retryTask == null) {
                    retryTask = this::retrySends;
                }
                st.shard.schedule(RETRY_NS, retryTask);
            }
        }

        /** The retry timer: sends what back-pressure refused. */
        private void retrySends() {
            retryScheduled = false;
            for (int i = 0; i < reads.size(); i++) {
                ShardRead sr = reads.get(i);
                if (sr.sendPending) {
                    sr.sendPending = false;
                    pendingSends--;
                    if (round == 0 || !finishing && !cancelled) {
                        send(sr);
                    }
                }
                if (sr.cancelPending) {
                    sr.cancelPending = false;
                    pendingSends--;
                    if (sr.outstanding()) {
                        sendCancel(sr);
                    }
                }
            }
            maybeComplete();
        }

        /** The close hook: the connection closed while this fetch was parked. */
        @Override
        public void run() {
            connectionClosed();
        }

        /** The connection closed: stop waiting, cancel what is parked; complete once every shard replied. */
        void connectionClosed() {
            if (completed || cancelled) {
                return;
            }
            cancelled = true;
            hookRegistered = false;
            cancelOutstanding();
            maybeComplete();
        }

        private void cancelOutstanding() {
            if (round == 0) {
                return; // first reads are never parked: they reply by themselves
            }
            for (int i = 0; i < reads.size(); i++) {
                ShardRead sr = reads.get(i);
                if (sr.outstanding()) {
                    sendCancel(sr);
                }
            }
        }

        /** A ShardRead replied (connection's shard). */
        void onReply(ShardRead sr) {
            outstanding--;
            sr.inFlightRound = false;
            if (round == 0) {
                if (outstanding == 0 && pendingSends == 0) {
                    walk();
                }
                return;
            }
            for (int i = 0; i < sr.parts.size(); i++) {
                absorb(sr.parts.get(i));
            }
            if (!finishing && !cancelled) {
                if (keptBytes >= minBytes || anyError || sr.timedOut || System.nanoTime() - deadlineNs >= 0) {
                    finishing = true;
                    cancelOutstanding();
                } else if (!park(sr) && outstanding == 0 && pendingSends == 0) {
                    finishing = true; // nothing can take more bytes
                }
            }
            maybeComplete();
        }

        /**
         * Round 0, once every shard replied: keeps batches in request order across all shards. A partition its
         * shard cut short for the shard's own budget, which could take more of what is left of the response's,
         * is read again (with the others cut short after it) before the walk goes on: the shard counted bytes
         * of its earlier partitions that the walk gave to other shards' partitions, so what it skipped may fit.
         */
        private void walk() {
            while (walkIndex < parts.size() && !cancelled) {
                FetchPart p = parts.get(walkIndex);
                if (p.readThisRound && p.cut && p.errorCode == ErrorCodes.NONE) {
                    long limit = Math.min(p.maxBytes - p.keptBytes, remaining);
                    long read = p.records == null ? 0 : p.records.size();
                    if (read < limit || keptBytes == 0 && read == 0) {
                        readAgainFromWalk();
                        return;
                    }
                }
                absorb(p);
                walkIndex++;
            }
            afterFirstRound();
        }

        /** Reads again, within what is left of the response's budget, the partitions cut short from the walk on. */
        private void readAgainFromWalk() {
            for (int i = 0; i < reads.size(); i++) {
                ShardRead sr = reads.get(i);
                sr.mode = ShardRead.READ;
                sr.budget = remaining;
                boolean any = false;
                for (int j = 0; j < sr.parts.size(); j++) {
                    FetchPart p = sr.parts.get(j);
                    p.inRound = p.index >= walkIndex && p.readThisRound && p.cut && p.errorCode == ErrorCodes.NONE;
                    if (p.inRound) {
                        p.readThisRound = false;
                        if (p.records != null) {
                            p.records.release();
                            p.records = null;
                        }
                        any = true;
                    }
                }
                if (any) {
                    handler.rereads[st.shard.id()]++;
                    send(sr);
                }
            }
            maybeComplete();
        }

        private void afterFirstRound() {
            if (cancelled) {
                maybeComplete();
                return;
            }
            if (req.maxWaitMs <= 0 || keptBytes >= minBytes || anyError) {
                finishing = true;
                maybeComplete();
                return;
            }
            if (connection != null) {
                if (!connection.onClose(this)) {
                    cancelled = true; // the client left while the first reads ran
                    maybeComplete();
                    return;
                }
                hookRegistered = true;
            }
            round = 1;
            boolean parked = false;
            for (int i = 0; i < reads.size(); i++) {
                parked |= park(reads.get(i));
            }
            if (!parked) {
                finishing = true;
            }
            maybeComplete();
        }

        /** Sends {@code sr} to park its partitions that can take more bytes; false when none can. */
        private boolean park(ShardRead sr) {
            boolean any = false;
            for (int i = 0; i < sr.parts.size(); i++) {
                FetchPart p = sr.parts.get(i);
                p.inRound = remaining > 0 && p.keptBytes < p.maxBytes && p.errorCode == ErrorCodes.NONE
                    && p.preferredReadReplica < 0;
                any |= p.inRound;
            }
            if (!any) {
                return false;
            }
            sr.mode = ShardRead.PARK;
            sr.budget = remaining;
            sr.deadlineNs = deadlineNs;
            send(sr);
            return true;
        }

        /**
         * Keeps the batches this round read for {@code p}, whole and in order, within the partition's limit and
         * what is left of the response's; releases the rest. The response's first batch is always kept.
         */
        private void absorb(FetchPart p) {
            if (!p.readThisRound) {
                return;
            }
            p.readThisRound = false;
            IoBuf batches = p.records;
            p.records = null;
            if (p.errorCode != ErrorCodes.NONE) {
                anyError = true;
                if (batches != null) {
                    batches.release();
                }
                return;
            }
            if (p.preferredReadReplica >= 0) {
                anyError = true; // Kafka answers at once when a partition names its preferred read replica
                if (batches != null) {
                    batches.release();
                }
                return;
            }
            if (batches == null) {
                return;
            }
            long limit = Math.min(p.maxBytes - p.keptBytes, remaining);
            long keep = 0;
            long lastOffset = -1;
            long size = batches.size();
            while (keep + RecordBatch.LOG_OVERHEAD <= size) {
                long batchBytes = RecordBatch.LOG_OVERHEAD + (batches.getInt(keep + RecordBatch.BATCH_LENGTH) & 0xffffffffL);
                boolean first = keptBytes == 0 && keep == 0;
                if (keep + batchBytes > size || keep + batchBytes > limit && !first) {
                    break;
                }
                lastOffset = batches.getLong(keep + RecordBatch.BASE_OFFSET)
                    + batches.getInt(keep + RecordBatch.LAST_OFFSET_DELTA);
                keep += batchBytes;
            }
            if (keep == 0) {
                batches.release();
                return;
            }
            if (keep < size) {
                batches.trimBack(size - keep);
            }
            if (p.kept == null) {
                p.kept = batches;
            } else {
                p.kept.append(batches);
                batches.release();
            }
            keepAborted(p, lastOffset);
            if (p.servedByFollower) {
                p.followerBytes += keep;
            }
            p.keptBytes += keep;
            p.fetchOffset = lastOffset + 1;
            keptBytes += keep;
            remaining = Math.max(0, remaining - keep);
        }

        /**
         * READ_COMMITTED: adds the aborted transactions the round's read reported that overlap the batches kept (up
         * to {@code lastKept}), once each, to what earlier rounds kept: the response lists them for all it returns.
         */
        private static void keepAborted(FetchPart p, long lastKept) {
            List<FetchResponseData.AbortedTransaction> found = p.abortedTransactions;
            if (found == null) {
                return;
            }
            for (int i = 0; i < found.size(); i++) {
                FetchResponseData.AbortedTransaction a = found.get(i);
                if (a.firstOffset > lastKept) {
                    continue;
                }
                boolean known = false;
                if (p.keptAborted == null) {
                    p.keptAborted = new ArrayList<>(found.size());
                } else {
                    for (int j = 0; j < p.keptAborted.size() && !known; j++) {
                        FetchResponseData.AbortedTransaction k = p.keptAborted.get(j);
                        known = k.producerId == a.producerId && k.firstOffset == a.firstOffset;
                    }
                }
                if (!known) {
                    p.keptAborted.add(a);
                }
            }
        }

        private void maybeComplete() {
            if (completed || outstanding > 0 || pendingSends > 0) {
                return;
            }
            if (round == 0 && !finishing && !cancelled) {
                if (reads.isEmpty()) {
                    finishing = true; // every partition was answered here (errors)
                } else {
                    return;
                }
            }
            if (!finishing && !cancelled) {
                return;
            }
            completed = true;
            if (hookRegistered) {
                hookRegistered = false;
                connection.removeOnClose(this);
            }
            if (cancelled) {
                for (int i = 0; i < parts.size(); i++) {
                    parts.get(i).releaseBatches();
                }
                promise.complete(new FetchResponseData()); // the closed connection sends nothing
                return;
            }
            promise.complete(response());
        }

        /** The response, in request (or session) order; for an incremental fetch only what changed. */
        private FetchResponseData response() {
            FetchResponseData r = new FetchResponseData();
            FetchResponseData.FetchableTopicResponse topic = null;
            FetchPart topicOf = null;
            LinkedHashMap<FetchSessions.Key, FetchSessions.Cached> created = createIn != null
                ? new LinkedHashMap<>() : null;
            for (int i = 0; i < parts.size(); i++) {
                FetchPart p = parts.get(i);
                if (p.records != null) {
                    p.records.release(); // every read was kept or released before: none is left over
                    p.records = null;
                }
                if (p.cached != null) {
                    p.cached.partitionHint = p.partitionRef;
                }
                if (session != null && !mustRespond(p)) {
                    continue;
                }
                if (created != null) {
                    FetchSessions.Cached c = new FetchSessions.Cached(p.topicId, p.topicName, p.partition);
                    c.fetchOffset = p.requestOffset;
                    c.maxBytes = p.maxBytes;
                    c.highWatermark = p.errorCode == ErrorCodes.NONE ? p.highWatermark : -1;
                    c.logStartOffset = p.logStartOffset;
                    c.partitionHint = p.partitionRef;
                    created.put(c.key(), c);
                }
                if (topic == null || !sameTopic(topicOf, p)) {
                    topic = new FetchResponseData.FetchableTopicResponse();
                    topic.topic = p.topicName != null ? p.topicName : p.topic;
                    topic.topicId = p.topicId != null ? p.topicId
                        : p.resolved != null ? p.resolved.id() : Uuid.ZERO;
                    topicOf = p;
                    r.responses.add(topic);
                }
                FetchResponseData.PartitionData pd = new FetchResponseData.PartitionData();
                pd.partitionIndex = p.partition;
                pd.errorCode = p.errorCode;
                boolean ok = p.errorCode == ErrorCodes.NONE;
                pd.highWatermark = ok ? p.highWatermark : -1;
                pd.lastStableOffset = ok ? p.lastStableOffset : -1;
                pd.logStartOffset = ok ? p.logStartOffset : -1;
                pd.abortedTransactions = isolationLevel == PartitionFetch.READ_COMMITTED
                    ? (p.keptAborted != null ? p.keptAborted : new ArrayList<>(0)) : null;
                p.keptAborted = null;
                // An empty record set, never null (librdkafka rejects size -1).
                pd.records = p.kept != null ? new IoBufSlice(p.kept) : ByteSlice.EMPTY;
                p.kept = null;
                if (version >= 11 && ok && p.preferredReadReplica >= 0) {
                    pd.preferredReadReplica = p.preferredReadReplica;
                    st.metrics.preferredReadReplicaAnswers++;
                }
                st.metrics.followerFetchBytes += p.followerBytes;
                p.followerBytes = 0;
                topic.partitions.add(pd);
                if (session != null && pd.records != ByteSlice.EMPTY) {
                    session.moveToEnd(p.cached);
                }
            }
            if (session != null) {
                r.sessionId = session.id;
            } else if (created != null) {
                FetchSessions.Session s = createIn.create(System.currentTimeMillis(), version >= 13, created);
                r.sessionId = s == null ? 0 : s.id;
            }
            return r;
        }

        private static boolean sameTopic(FetchPart a, FetchPart b) {
            return a.topicId != null ? a.topicId.equals(b.topicId) : java.util.Objects.equals(a.topicName, b.topicName);
        }

        /**
         * Kafka's {@code CachedPartition.maybeUpdateResponseData}: an incremental response carries a partition
         * with data, a changed high watermark or log start offset, or an error; the session remembers what it
         * sent (an error resets the high watermark so the partition is sent again once it clears).
         */
        private static boolean mustRespond(FetchPart p) {
            FetchSessions.Cached c = p.cached;
            boolean must = p.kept != null || p.preferredReadReplica >= 0;
            if (p.errorCode != ErrorCodes.NONE) {
                c.highWatermark = -1;
                return true;
            }
            if (c.highWatermark != p.highWatermark) {
                c.highWatermark = p.highWatermark;
                must = true;
            }
            if (c.logStartOffset != p.logStartOffset) {
                c.logStartOffset = p.logStartOffset;
                must = true;
            }
            return must;
        }
    }

    // ------------------------------------------------------------------ the owner shard's side

    /**
     * The partitions of one fetch on one owner shard, sent there once per round. Also the task of a parked
     * round ({@link #run()}: its deadline, or its read once woken).
     */
    static final class ShardRead extends ShardCall implements Runnable {
        static final int READ = 0;
        static final int PARK = 1;
        private static final int IDLE = 0;
        private static final int READING = 1;
        private static final int PARKED = 2;
        /** Woken, its read queued as a task of the owner shard. */
        private static final int WOKEN = 3;

        final FetchOp op;
        final int target;
        final List<FetchPart> parts = new ArrayList<>(4);
        Cancel cancel;

        // ---- the round, set by the connection's shard before each send
        int mode;
        long budget;
        long deadlineNs;
        /** Nothing is kept for the response yet: the first batch this shard finds is read whatever the limits. */
        boolean firstPending;
        // ---- connection's shard
        boolean inFlightRound;
        boolean sendPending;
        boolean cancelPending;

        // ---- owner shard, between send and reply
        private Shard shard;
        private ShardState owner;
        private int state = IDLE;
        private boolean onTargetNow;
        private long timer = -1;
        private int cursor;
        private long budgetLeft;
        private boolean readingSync;
        private boolean readCompletedSync;
        /** Batches were read this round (so the first-batch rule is served). */
        private boolean sawData;
        /** The cap of the read in progress. */
        private long capNow;
        /** Read only the partitions that have something (a woken round), not all of them. */
        private boolean onlyFetchable;
        /** Set by the owner shard: the round ended at its deadline. */
        boolean timedOut;

        ShardRead(FetchOp op, int target) {
            this.op = op;
            this.target = target;
        }

        boolean outstanding() {
            return inFlightRound;
        }

        @Override
        protected boolean onTarget(Shard s) {
            shard = s;
            owner = op.handler.broker.state(s.id());
            timedOut = false;
            onTargetNow = true;
            try {
                if (mode == READ) {
                    startReads(false);
                } else if (anyFetchable()) {
                    startReads(true);
                } else if (deadlineNs - System.nanoTime() <= 0) {
                    timedOut = true;
                    state = IDLE;
                } else {
                    parkAll();
                }
                return state == IDLE;
            } finally {
                onTargetNow = false;
            }
        }

        @Override
        protected void onReply(Shard s) {
            op.onReply(this);
        }

        /**
         * Owner shard: the partition of {@code p} here, or null (then {@code p} carries the error). The object a
         * session's earlier fetch found is used while it leads (no key built, no lookup); otherwise it is looked
         * up again (it may have been reopened).
         */
        private Partition partitionOf(FetchPart p) {
            Partition part = p.partitionRef;
            if (part == null || !p.lookedUp && !part.isLeader()) {
                part = owner.partitions.get(ShardState.key(p.topic, p.partition));
                p.partitionRef = part;
                p.lookedUp = true;
            }
            return part;
        }

        private boolean anyFetchable() {
            for (int i = 0; i < parts.size(); i++) {
                FetchPart p = parts.get(i);
                if (p.inRound) {
                    Partition part = partitionOf(p);
                    if (part == null || part.hasFetchable(p)) {
                        return true;
                    }
                }
            }
            return false;
        }

        private void parkAll() {
            state = PARKED;
            for (int i = 0; i < parts.size(); i++) {
                FetchPart p = parts.get(i);
                if (p.inRound) {
                    checkParked(partitionOf(p).park(p));
                }
            }
            timer = shard.schedule(deadlineNs - System.nanoTime(), this);
        }

        private static void checkParked(boolean parked) {
            if (!parked) {
                throw new IllegalStateException("a partition turned fetchable between the check and the park");
            }
        }

        private void unparkAll() {
            for (int i = 0; i < parts.size(); i++) {
                FetchPart p = parts.get(i);
                if (p.parkedOn != null) {
                    p.parkedOn.unpark(p);
                }
            }
            if (timer >= 0) {
                shard.cancelTimer(timer);
                timer = -1;
            }
        }

        /**
         * Owner shard: a parked partition has data (or an error) now. The read runs as the shard's next task, not
         * inside the commit that woke it: the commit path stays short, and partitions of this fetch committed in
         * the same loop turn are read together, in one reply.
         */
        void wake() {
            if (state != PARKED) {
                return;
            }
            unparkAll();
            state = WOKEN;
            shard.execute(this);
        }

        /** Owner shard: the woken fetch's read, or the deadline of a parked round. */
        @Override
        public void run() {
            if (state == WOKEN) {
                startReads(true);
                return;
            }
            if (state != PARKED) {
                return;
            }
            timer = -1;
            unparkAll();
            timedOut = true;
            reply();
        }

        /** Owner shard: the fetch is done with this shard (enough bytes elsewhere, or its connection closed). */
        void cancelled() {
            if (state == PARKED) {
                unparkAll();
                reply();
            }
        }

        private void reply() {
            state = IDLE;
            if (!onTargetNow) {
                shard.reply(this);
            }
        }

        /**
         * Owner shard: reads the round's partitions one after the other in request order, each within its limit
         * and what is left of the budget (a partition past the budget is only looked at: high watermark, log
         * start, errors). Reads served from the batch cache complete inside {@link Partition#read}; a disk read
         * continues from its completion ({@link #partRead()}).
         */
        private void startReads(boolean onlyFetchable) {
            state = READING;
            this.onlyFetchable = onlyFetchable;
            budgetLeft = budget;
            sawData = false;
            cursor = 0;
            readFromCursor();
        }

        private void readFromCursor() {
            while (cursor < parts.size()) {
                FetchPart p = parts.get(cursor);
                if (!p.inRound) {
                    cursor++;
                    continue;
                }
                Partition part = partitionOf(p);
                if (part == null) {
                    p.resetOutcome();
                    p.cut = false;
                    p.errorCode = ErrorCodes.NOT_LEADER_OR_FOLLOWER; // not open here (yet, or any more)
                    p.readThisRound = true;
                    cursor++;
                    continue;
                }
                if (onlyFetchable && !part.hasFetchable(p)) {
                    cursor++;
                    continue;
                }
                // What the round's budget could give this partition, and what this shard's own reads left of it.
                long full = Math.min(p.maxBytes - p.keptBytes, budget);
                long cap = Math.min(full, budgetLeft);
                capNow = cap;
                boolean first = firstPending && !sawData;
                if (cap <= 0 && first && full <= 0) {
                    cap = 1; // the response's first batch is returned whatever the limits
                }
                p.cut = cap < full;
                p.readThisRound = true;
                op.handler.partitionReads[shard.id()]++;
                p.readerShard = owner;
                readingSync = true;
                readCompletedSync = false;
                part.read(p, (int) Math.max(0, Math.min(Integer.MAX_VALUE, cap)));
                readingSync = false;
                if (!readCompletedSync) {
                    return; // partRead() continues
                }
                account(p);
                cursor++;
            }
            reply();
        }

        /**
         * Counts what the Kafka rule would keep of {@code p}'s read against this shard's budget: all of it when
         * within the cap or when it is the first batch of the response; nothing when it is a single batch larger
         * than the cap (the connection's shard will not keep it). Clears {@link FetchPart#cut} when the
         * partition has nothing more below its bound.
         */
        private void account(FetchPart p) {
            long read = p.records == null ? 0 : p.records.size();
            boolean first = firstPending && !sawData;
            if (read > 0 && (read <= capNow || first)) {
                budgetLeft = Math.max(0, budgetLeft - read);
                sawData = true;
            }
            long next = p.records == null ? p.fetchOffset : p.lastOffset + 1;
            if (p.errorCode != ErrorCodes.NONE || next >= p.bound) {
                p.cut = false;
            }
        }

        /** Owner shard: the read of the partition at {@link #cursor} completed. */
        void partRead() {
            if (readingSync) {
                readCompletedSync = true;
                return;
            }
            account(parts.get(cursor));
            cursor++;
            readFromCursor();
        }
    }

    /** Tells an owner shard that a fetch no longer waits for a parked ShardRead. */
    static final class Cancel extends ShardCall {
        final ShardRead read;

        Cancel(ShardRead read) {
            this.read = read;
        }

        @Override
        protected boolean onTarget(Shard s) {
            read.cancelled();
            return true;
        }

        @Override
        protected void onReply(Shard s) {
        }
    }
}
