package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;

import java.util.List;

/**
 * One partition of one Fetch request as the partition's shard sees it: where to read and with which isolation,
 * the outcome of the last read, and the links that park it on the {@link Partition} while it waits for data.
 *
 * <h2>Lifecycle and threads</h2>
 * Made by {@link FetchHandler} on the connection's shard, once per partition per fetch, and reused for every
 * round of that fetch (the first read, then one read per wake-up). Between the cross-shard send that carries
 * it and that send's reply it belongs to the partition's shard, which calls {@link Partition#read},
 * {@link Partition#park} and {@link Partition#unpark} with it and fills the outcome fields; afterwards the
 * connection's shard reads them. The hand-over through the shard queues orders the accesses; no field is
 * touched by both shards at once. The parking links are only ever touched by the partition's shard.
 *
 * <p>It is its own {@link Log.ChainReadHandler}, so a read allocates nothing here (no handler object, no
 * promise). {@link #readDone()} may run before {@link Partition#read} returns (a batch-cache hit) or later
 * from the disk read's completion.
 *
 * <h2>Transactions</h2>
 * {@link #isolationLevel} is carried to {@link Partition#read}: READ_UNCOMMITTED reads below the high watermark,
 * READ_COMMITTED below the last stable offset ({@link #bound}); for READ_COMMITTED the read's completion fills
 * {@link #abortedTransactions} with the aborted transactions overlapping what it returned, on the partition's shard
 * and from the state of that moment (a wake-up of a parked fetch reads afresh, so the list always matches the data).
 */
abstract class PartitionFetch implements Log.ChainReadHandler {
    /** Kafka's isolation levels (FetchRequest {@code isolation_level}). */
    static final byte READ_UNCOMMITTED = 0;
    static final byte READ_COMMITTED = 1;

    // ---- what to read: set by the connection's shard before each round
    /** The topic's name (the partition's key on its shard). */
    final String topic;
    final int partition;
    final byte isolationLevel;
    /** Where the next read starts. */
    long fetchOffset;
    /**
     * A consumer's Fetch v11+ (KIP-392): a follower replica may serve it, up to the follower's high watermark. Other
     * fetches are served by the leader only (followers answer NOT_LEADER_OR_FOLLOWER).
     */
    boolean followerMayServe;
    /** The consumer's {@code client.rack} (Fetch v11+ {@code RackId}), or null: the leader may point it elsewhere. */
    String clientRack;
    /** The leader epoch the client knows ({@code CurrentLeaderEpoch}, -1: none); a follower serving it checks it. */
    int currentLeaderEpoch = -1;
    /** The shard state of the partition's shard, set there before each read (the leader's replica selection). */
    ShardState readerShard;

    // ---- outcome of the last read: set on the partition's shard
    short errorCode;
    long highWatermark = -1;
    long lastStableOffset = -1;
    /** What the read was bounded by: the high watermark, or for READ_COMMITTED the last stable offset. */
    long bound = -1;
    long logStartOffset = -1;
    /** Whole batches read this round (owned by the fetch, which releases or keeps them), or null. */
    IoBuf records;
    /** The last offset of {@link #records} (meaningless when null). */
    long lastOffset = -1;
    /** READ_COMMITTED: the aborted transactions overlapping {@link #records}; null when none (or READ_UNCOMMITTED). */
    List<FetchResponseData.AbortedTransaction> abortedTransactions;
    /** The partition the read in progress reads (for the aborted transactions of READ_COMMITTED). */
    Partition readFrom;
    /** The leader's answer: fetch from this node instead (KIP-392 {@code PreferredReadReplica}), or -1. */
    int preferredReadReplica = -1;
    /** The last read was served by a follower replica (for the follower-fetch metrics). */
    boolean servedByFollower;

    // ---- parking: the partition's shard only
    Partition parkedOn;
    PartitionFetch prevParked;
    PartitionFetch nextParked;
    /** Link of the list {@link Partition} builds of the fetches it wakes in one go. */
    PartitionFetch nextWoken;

    PartitionFetch(String topic, int partition, byte isolationLevel, long fetchOffset) {
        this.topic = topic;
        this.partition = partition;
        this.isolationLevel = isolationLevel;
        this.fetchOffset = fetchOffset;
    }

    /** Partition's shard: the read started by {@link Partition#read} is complete (outcome fields are set). */
    abstract void readDone();

    /**
     * Partition's shard: this fetch was parked and the partition now has something for it (its high watermark
     * passed {@link #fetchOffset}, or it stopped leading or serving). It is no longer parked on that partition.
     */
    abstract void dataAvailable();

    /** Clears the outcome of the previous read (records must have been taken). */
    final void resetOutcome() {
        errorCode = ErrorCodes.NONE;
        records = null;
        lastOffset = -1;
        abortedTransactions = null;
        readFrom = null;
        preferredReadReplica = -1;
        servedByFollower = false;
    }

    @Override
    public final void onRead(IoBuf batches, long firstOffset, long last) {
        if (batches.isEmpty()) {
            batches.release();
        } else {
            records = batches;
            lastOffset = last;
            if (isolationLevel == READ_COMMITTED && readFrom != null) {
                readFrom.collectAborted(this);
            }
        }
        readDone();
    }

    @Override
    public final void onError(LogException error) {
        errorCode = error.kind().kafkaCode;
        readDone();
    }
}
