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
        long lastSeenMs;
        final ArrayDeque<long[]> batches = new ArrayDeque<>(); // {firstSeq, lastSeq, baseOffset}

        void record(short batchEpoch, int firstSeq, int lastSeq, long baseOffset, long nowMs) {
            if (batchEpoch > epoch) {
                epoch = batchEpoch;
                batches.clear();
            }
            batches.addLast(new long[] {firstSeq, lastSeq, baseOffset});
            if (batches.size() > 5) {
                batches.pollFirst();
            }
            lastSeenMs = Math.max(lastSeenMs, nowMs);
        }
    }

    /** Kafka's producer.id.expiration.ms: idempotence state of a producer silent this long is dropped. */
    static final long PRODUCER_EXPIRY_MS = 24L * 3600 * 1000;
    static final String PRODUCER_SNAPSHOT = "producers.snapshot";
    private static final int SNAPSHOT_MAGIC = 0x49535053; // "ISPS"
    private boolean producersChanged;
    /** The largest record timestamp appended (ListOffsets MAX_TIMESTAMP); -1 while empty. */
    private long maxTimestamp = -1;

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

    // ------------------------------------------------------------------ producer state across restarts

    /**
     * Rebuilds the idempotent producers' state: loads the snapshot written at the last clean close or periodic
     * snapshot (when it is not ahead of the log), then replays the batch headers from its offset to the log end.
     * {@code done} runs on this shard, with null or the error.
     */
    void recoverProducers(java.util.function.Consumer<RuntimeException> done) {
        long from = log.logStartOffset();
        try {
            long snapshotOffset = loadSnapshot();
            if (snapshotOffset >= from && snapshotOffset <= log.logEndOffset()) {
                from = snapshotOffset;
            } else {
                producers.clear();
            }
        } catch (java.io.IOException | RuntimeException e) {
            producers.clear(); // a damaged snapshot is only a shortcut: rebuild from the log
        }
        scanProducers(from, done);
    }

    private void scanProducers(long from, java.util.function.Consumer<RuntimeException> done) {
        long end = log.logEndOffset();
        if (from >= end) {
            done.accept(null);
            return;
        }
        log.read(from, end, 1 << 20, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (bytes.byteSize() == 0) {
                    done.accept(null);
                    return;
                }
                long pos = 0;
                long next = lastOffset + 1;
                while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize()) {
                    batch.wrap(bytes, pos);
                    int size = batch.sizeInBytes();
                    if (size <= 0 || pos + size > bytes.byteSize()) {
                        break;
                    }
                    next = Math.max(next, batch.baseOffset() + batch.lastOffsetDelta() + 1);
                    long pid = batch.producerId();
                    if (!batch.isControl()) {
                        maxTimestamp = Math.max(maxTimestamp, batch.maxTimestamp());
                    }
                    if (pid >= 0 && !batch.isControl() && batch.baseOffset() >= from) {
                        int first = batch.baseSequence();
                        producers.computeIfAbsent(pid, k -> new ProducerState()).record(batch.producerEpoch(), first,
                            first + batch.lastOffsetDelta(), batch.baseOffset(), batch.maxTimestamp());
                    }
                    pos += size;
                }
                scanProducers(next, done);
            }

            @Override
            public void onError(LogException error) {
                done.accept(error);
            }
        });
    }

    /** Writes the producer state if it changed since the last snapshot (periodically and at close). */
    void snapshotProducers() {
        if (!producersChanged) {
            return;
        }
        long now = System.currentTimeMillis();
        producers.values().removeIf(ps -> now - ps.lastSeenMs > PRODUCER_EXPIRY_MS);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(32 + producers.size() * (8 + 2 + 8 + 4 + 5 * 16) + 8);
        b.putInt(SNAPSHOT_MAGIC).putInt(2).putLong(log.logEndOffset()).putLong(maxTimestamp).putInt(producers.size());
        for (Map.Entry<Long, ProducerState> e : producers.entrySet()) {
            ProducerState ps = e.getValue();
            b.putLong(e.getKey()).putShort(ps.epoch).putLong(ps.lastSeenMs).putInt(ps.batches.size());
            for (long[] x : ps.batches) {
                b.putInt((int) x[0]).putInt((int) x[1]).putLong(x[2]);
            }
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putLong(crc.getValue());
        java.nio.file.Path file = log.dir().resolve(PRODUCER_SNAPSHOT);
        java.nio.file.Path tmp = log.dir().resolve(PRODUCER_SNAPSHOT + ".tmp");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp,
            java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE,
            java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
            b.flip();
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(false);
            java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            producersChanged = false;
        } catch (java.io.IOException e) {
            System.getLogger(Partition.class.getName()).log(System.Logger.Level.WARNING,
                "cannot write the producer snapshot of " + topic + "-" + index + ": " + e.getMessage());
        }
    }

    /** Loads the snapshot into {@code producers}; returns its offset, or -1 when there is none. */
    private long loadSnapshot() throws java.io.IOException {
        java.nio.file.Path file = log.dir().resolve(PRODUCER_SNAPSHOT);
        if (!java.nio.file.Files.exists(file)) {
            return -1;
        }
        byte[] all = java.nio.file.Files.readAllBytes(file);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(all);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(all, 0, all.length - 8);
        if (all.length < 28 || b.getLong(all.length - 8) != crc.getValue() || b.getInt() != SNAPSHOT_MAGIC
            || b.getInt() != 2) {
            throw new java.io.IOException("damaged producer snapshot " + file);
        }
        long offset = b.getLong();
        maxTimestamp = b.getLong();
        int n = b.getInt();
        producers.clear();
        for (int i = 0; i < n; i++) {
            long pid = b.getLong();
            ProducerState ps = new ProducerState();
            ps.epoch = b.getShort();
            ps.lastSeenMs = b.getLong();
            int k = b.getInt();
            for (int j = 0; j < k; j++) {
                ps.batches.addLast(new long[] {b.getInt(), b.getInt(), b.getLong()});
            }
            producers.put(pid, ps);
        }
        return offset;
    }

    /** The largest record timestamp in the log (-1 when empty). */
    long maxTimestamp() {
        return maxTimestamp;
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
        if (batch.magic() != RecordBatch.CURRENT_MAGIC) {
            return Promise.completed(new AppendResult(ErrorCodes.UNSUPPORTED_FOR_MESSAGE_FORMAT, -1, -1,
                "record batch magic " + batch.magic() + " is not supported; only magic 2 (Kafka 0.11+ clients)"));
        }
        if (batch.sizeInBytes() != len) {
            return Promise.completed(new AppendResult(ErrorCodes.INVALID_RECORD, -1, -1,
                "a produce request must carry exactly one record batch per partition (got " + len
                    + " bytes, the first batch is " + batch.sizeInBytes() + ")"));
        }
        long producerId = batch.producerId();
        ProducerState ps = null;
        int firstSeq = batch.baseSequence();
        int lastSeq = firstSeq + batch.lastOffsetDelta();
        if (producerId >= 0) {
            ps = producers.computeIfAbsent(producerId, k -> new ProducerState());
            short epoch = batch.producerEpoch();
            if (epoch < ps.epoch) {
                return Promise.completed(new AppendResult(ErrorCodes.INVALID_PRODUCER_EPOCH, -1, -1,
                    "producer " + producerId + " epoch " + epoch + " is older than " + ps.epoch));
            }
            if (epoch > ps.epoch && firstSeq != 0) {
                return Promise.completed(new AppendResult(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, -1,
                    "producer " + producerId + " started epoch " + epoch + " at sequence " + firstSeq + ", not 0"));
            }
            for (long[] b : epoch > ps.epoch ? new ArrayDeque<long[]>() : ps.batches) {
                if (b[0] == firstSeq && b[1] == lastSeq) {
                    // A retry of a batch we already have: answer with its offset, append nothing.
                    return Promise.completed(new AppendResult(ErrorCodes.NONE, b[2], log.logStartOffset(), null));
                }
            }
            long[] last = epoch > ps.epoch ? null : ps.batches.peekLast();
            boolean inOrder = last == null || firstSeq == (int) (last[1] + 1);
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
            ps.record(batch.producerEpoch(), firstSeq, lastSeq, base, System.currentTimeMillis());
        }
        if (batch.maxTimestamp() > maxTimestamp) {
            maxTimestamp = batch.maxTimestamp();
        }
        producersChanged = true;
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
