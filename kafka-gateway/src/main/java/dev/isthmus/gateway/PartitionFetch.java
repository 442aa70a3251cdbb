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
 * <h2>Transactions (issue 19)</h2>
 * {@link #isolationLevel} is carried to {@link Partition#read}, which today bounds both levels at the high
 * watermark (no transactional batch can be stored yet, so the last stable offset equals it). READ_COMMITTED
 * will bound the read at the last stable offset there and fill {@link #abortedTransactions}.
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

    // ---- outcome of the last read: set on the partition's shard
    short errorCode;
    long highWatermark = -1;
    long lastStableOffset = -1;
    long logStartOffset = -1;
    /** Whole batches read this round (owned by the fetch, which releases or keeps them), or null. */
    IoBuf records;
    /** The last offset of {@link #records} (meaningless when null). */
    long lastOffset = -1;
    /** READ_COMMITTED: the aborted transactions overlapping {@link #records} (issue 19); null otherwise. */
    List<FetchResponseData.AbortedTransaction> abortedTransactions;

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
    }

    @Override
    public final void onRead(IoBuf batches, long firstOffset, long last) {
        if (batches.isEmpty()) {
            batches.release();
        } else {
            records = batches;
            lastOffset = last;
        }
        readDone();
    }

    @Override
    public final void onError(LogException error) {
        errorCode = error.kind().kafkaCode;
        readDone();
    }
}
