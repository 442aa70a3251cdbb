package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import org.HdrHistogram.Histogram;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One partition on its owner shard: its log, the high watermark (the durable end: on one node an entry is
 * committed when it is on disk), produce requests waiting for durability, fetches waiting for data, and
 * the idempotent producers' sequence state. Owner-shard only.
 */
final class Partition implements Log.Listener {
    /** Outcome of an append for the Produce response. */
    record AppendResult(short errorCode, long baseOffset, long logStartOffset, String message) {
    }

    /** Outcome of a read for the Fetch response; {@code records} is owned by the receiver. */
    record ReadResult(short errorCode, IoBufSlice records, long highWatermark, long logStartOffset) {
    }

    private record DurableWaiter(long offsetExclusive, Promise<AppendResult> promise, AppendResult result,
                                 long startNs) {
    }

    /** Last batches of one producer (Kafka keeps 5 for duplicate detection). */
    private static final class ProducerState {
        short epoch;
        final ArrayDeque<long[]> batches = new ArrayDeque<>(); // {firstSeq, lastSeq, baseOffset}
    }

    final String topic;
    final int index;
    final Log log;
    private final Shard shard;
    private final MemoryArena arena;
    private final Runnable onAppended;
    private final ArrayDeque<DurableWaiter> durableWaiters = new ArrayDeque<>();
    private final List<Runnable> dataWaiters = new ArrayList<>();
    private final Map<Long, ProducerState> producers = new HashMap<>();
    private final RecordBatch batch = new RecordBatch();
    private long highWatermark;
    /** Append-to-durable latency of acks=all produces (µs). Owner shard; copied for metrics. */
    final Histogram durableLatencyMicros = new Histogram(60_000_000L, 2);

    Partition(String topic, int index, Log log, Shard shard, MemoryArena arena, Runnable onAppended) {
        this.topic = topic;
        this.index = index;
        this.log = log;
        this.shard = shard;
        this.arena = arena;
        this.onAppended = onAppended;
        this.highWatermark = log.durableEndOffset();
    }

    long highWatermark() {
        return highWatermark;
    }

    @Override
    public void onDurable(long durableEndOffset) {
        highWatermark = durableEndOffset;
        while (!durableWaiters.isEmpty() && durableWaiters.peekFirst().offsetExclusive <= durableEndOffset) {
            DurableWaiter w = durableWaiters.pollFirst();
            durableLatencyMicros.recordValue(Math.min(60_000_000L, Math.max(0, (System.nanoTime() - w.startNs) / 1000)));
            w.promise.complete(w.result);
        }
        if (!dataWaiters.isEmpty()) {
            List<Runnable> ws = new ArrayList<>(dataWaiters);
            dataWaiters.clear();
            ws.forEach(Runnable::run);
        }
    }

    /** The leader epoch of this replica: the Raft term of a one-member group, 0 until it is re-elected. */
    int leaderEpoch() {
        return 0;
    }

    /**
     * OffsetForLeaderEpoch on this partition: {errorCode, epoch, endOffset} for the largest epoch <= {@code wanted}
     * and the offset where the next epoch starts (the log end for the current epoch); fences a client whose
     * {@code current} epoch is stale or from the future, as Kafka does.
     */
    long[] epochEndOffset(int current, int wanted) {
        int epoch = leaderEpoch();
        if (current >= 0 && current < epoch) {
            return new long[] {ErrorCodes.FENCED_LEADER_EPOCH, -1, -1};
        }
        if (current > epoch) {
            return new long[] {ErrorCodes.UNKNOWN_LEADER_EPOCH, -1, -1};
        }
        if (wanted < 0 || wanted > epoch) {
            return new long[] {ErrorCodes.NONE, -1, -1};
        }
        return new long[] {ErrorCodes.NONE, epoch, log.logEndOffset()};
    }

    /** The topic was deleted: pending produces fail, waiting fetches wake (and find the topic gone). */
    void deleted() {
        while (!durableWaiters.isEmpty()) {
            durableWaiters.pollFirst().promise.complete(new AppendResult(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, -1,
                "topic " + topic + " was deleted"));
        }
        if (!dataWaiters.isEmpty()) {
            List<Runnable> ws = new ArrayList<>(dataWaiters);
            dataWaiters.clear();
            ws.forEach(Runnable::run);
        }
    }

    @Override
    public void onFailure(String what) {
        while (!durableWaiters.isEmpty()) {
            durableWaiters.pollFirst().promise.complete(new AppendResult(ErrorCodes.KAFKA_STORAGE_ERROR, -1, -1, what));
        }
    }

    /**
     * Appends the batches of a Produce request (acks 1 or -1; acks 0 is answered the same way but the
     * connection sends nothing). Completes when durable for acks=-1, when appended for acks=1.
     */
    Promise<AppendResult> append(IoBufSlice records, short acks) {
        int len = records.length();
        if (len == 0) {
            return Promise.completed(new AppendResult(ErrorCodes.CORRUPT_MESSAGE, -1, -1, "empty record set"));
        }
        // The log validates, stamps offsets and the epoch, then copies into its write-behind chunks; it needs
        // the batches contiguous. Records that arrived in one fragment (the usual case) go straight from the
        // request's own bytes; only records split across fragments are gathered into a temporary block.
        IoBuf buf = records.buf();
        long tmp = MemoryArena.NO_MEMORY;
        MemorySegment seg;
        if (buf.fragmentCount() == 1) {
            seg = buf.fragment(0);
        } else {
            tmp = arena.allocate(len, Subsystem.NETWORK_RECEIVE);
            if (tmp == MemoryArena.NO_MEMORY) {
                return Promise.completed(new AppendResult(ErrorCodes.REQUEST_TIMED_OUT, -1, -1, arena.lastFailure()));
            }
            seg = arena.segment(tmp, len);
            buf.copyTo(0, seg, 0, len);
        }
        try {
            return appendSegment(seg, len, acks);
        } finally {
            if (tmp != MemoryArena.NO_MEMORY) {
                arena.free(tmp);
            }
        }
    }

    /** Internal writers (the group coordinator): appends one batch and completes once it is durable. */
    Promise<AppendResult> appendInternal(MemorySegment seg, int len) {
        return appendSegment(seg, len, (short) -1);
    }

    private Promise<AppendResult> appendSegment(MemorySegment seg, int len, short acks) {
        if (len < RecordBatch.HEADER_BYTES) {
            return Promise.completed(new AppendResult(ErrorCodes.CORRUPT_MESSAGE, -1, -1,
                "record set of " + len + " bytes is shorter than a batch header"));
        }
        batch.wrap(seg, 0);
        long producerId = batch.producerId();
        ProducerState ps = null;
        int firstSeq = batch.baseSequence();
        int lastSeq = firstSeq + batch.lastOffsetDelta();
        if (producerId >= 0 && batch.magic() == RecordBatch.CURRENT_MAGIC && batch.sizeInBytes() == len) {
            ps = producers.computeIfAbsent(producerId, k -> new ProducerState());
            short epoch = batch.producerEpoch();
            if (epoch < ps.epoch) {
                return Promise.completed(new AppendResult(ErrorCodes.INVALID_PRODUCER_EPOCH, -1, -1,
                    "producer " + producerId + " epoch " + epoch + " is older than " + ps.epoch));
            }
            if (epoch > ps.epoch) {
                ps.epoch = epoch;
                ps.batches.clear();
            }
            for (long[] b : ps.batches) {
                if (b[0] == firstSeq && b[1] == lastSeq) {
                    // A retry of a batch we already have: answer with its offset, append nothing.
                    return Promise.completed(new AppendResult(ErrorCodes.NONE, b[2], log.logStartOffset(), null));
                }
            }
            long[] last = ps.batches.peekLast();
            boolean inOrder = last == null ? true : firstSeq == (int) (last[1] + 1);
            if (!inOrder) {
                return Promise.completed(new AppendResult(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, -1,
                    "producer " + producerId + " sent sequence " + firstSeq + " after " + last[1]));
            }
        }
        long base;
        try {
            base = log.append(seg, 0, len, 0);
        } catch (LogException e) {
            return Promise.completed(new AppendResult(e.kind().kafkaCode, -1, -1, e.getMessage()));
        }
        if (base == Log.NO_MEMORY) {
            return Promise.completed(new AppendResult(ErrorCodes.REQUEST_TIMED_OUT, -1, -1,
                "write-behind memory is full; retry"));
        }
        if (ps != null) {
            ps.batches.addLast(new long[] {firstSeq, lastSeq, base});
            if (ps.batches.size() > 5) {
                ps.batches.pollFirst();
            }
        }
        onAppended.run();
        AppendResult ok = new AppendResult(ErrorCodes.NONE, base, log.logStartOffset(), null);
        long end = log.logEndOffset();
        if (acks == 1 || acks == 0) {
            return Promise.completed(ok);
        }
        Promise<AppendResult> p = new Promise<>();
        durableWaiters.addLast(new DurableWaiter(end, p, ok, System.nanoTime()));
        return p;
    }

    /** Reads from {@code fetchOffset} up to the high watermark, at most {@code maxBytes} (at least one batch). */
    Promise<ReadResult> read(long fetchOffset, int maxBytes) {
        Promise<ReadResult> p = new Promise<>();
        long hw = highWatermark;
        if (fetchOffset == hw) {
            p.complete(new ReadResult(ErrorCodes.NONE, null, hw, log.logStartOffset()));
            return p;
        }
        if (fetchOffset < log.logStartOffset() || fetchOffset > hw) {
            p.complete(new ReadResult(ErrorCodes.OFFSET_OUT_OF_RANGE, null, hw, log.logStartOffset()));
            return p;
        }
        log.read(fetchOffset, hw, Math.max(1, maxBytes), new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (bytes.byteSize() == 0) {
                    p.complete(new ReadResult(ErrorCodes.NONE, null, highWatermark, log.logStartOffset()));
                    return;
                }
                IoBuf copy;
                try {
                    copy = IoBuf.empty(arena, Subsystem.BATCH_CACHE).append(bytes, 0, bytes.byteSize());
                } catch (RuntimeException e) {
                    p.complete(new ReadResult(ErrorCodes.REQUEST_TIMED_OUT, null, highWatermark, log.logStartOffset()));
                    return;
                }
                p.complete(new ReadResult(ErrorCodes.NONE, new IoBufSlice(copy), highWatermark, log.logStartOffset()));
            }

            @Override
            public void onError(LogException error) {
                p.complete(new ReadResult(error.kind().kafkaCode, null, highWatermark, log.logStartOffset()));
            }
        });
        return p;
    }

    /** Completes (true) when data past {@code fetchOffset} is committed, or (false) after {@code waitNs}. */
    Promise<Boolean> awaitData(long fetchOffset, long waitNs) {
        Promise<Boolean> p = new Promise<>();
        if (highWatermark > fetchOffset) {
            p.complete(true);
            return p;
        }
        Runnable[] waiter = new Runnable[1];
        long timer = shard.schedule(waitNs, () -> {
            dataWaiters.remove(waiter[0]);
            p.complete(false);
        });
        waiter[0] = () -> {
            shard.cancelTimer(timer);
            p.complete(true);
        };
        dataWaiters.add(waiter[0]);
        return p;
    }
}
