package dev.isthmus.raft.storage;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Payload;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A {@link Payload} that is exactly one Kafka v2 record batch: what a partition's Raft group replicates, and
 * what {@link LogEngineRaftLog} stores as is. The entry covers {@code lastOffsetDelta + 1} offsets.
 *
 * <h2>Two forms</h2>
 * <ul>
 *   <li><b>Heap</b> ({@link #KafkaBatchPayload(byte[])}): controller commands, batches decoded from a leader's
 *       message or read back from disk, tests. Immutable: the log stamps baseOffset and partitionLeaderEpoch
 *       into its own copy.</li>
 *   <li><b>Arena</b>: the produce path. On the leader ({@link #shareOf}) the payload shares the fragments the
 *       request was received into: no copy. A follower's batch ({@link #copyOf}) and a batch the leader rebuilt on
 *       the heap (recompression, internal writers) are copied once into a fragment chain of the partition shard's
 *       arena ({@link Subsystem#RAFT} budget). Never a Java array, so a broker's steady-state produce path
 *       allocates no heap for record data. Reference counted (see
 *       {@link Payload}): the Raft log keeps it until the batch is in the log-engine and durable, a follower's
 *       connection until it is encoded. The log-engine stamps baseOffset and partitionLeaderEpoch (outside the
 *       CRC) into the chain in place, with the values the entry already has.</li>
 * </ul>
 *
 * <p>Threads: the heap form is a value. The arena form is made on its shard; afterwards it is only read
 * fragment by fragment ({@link #copyTo}, {@link #writeTo}), which any thread holding a reference may do.
 */
public final class KafkaBatchPayload implements Payload {
    private static final VarHandle REFS;

    static {
        try {
            REFS = MethodHandles.lookup().findVarHandle(KafkaBatchPayload.class, "refs", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final byte[] bytes;
    private final IoBuf chain;
    private final int size;
    private final int recordCount;
    @SuppressWarnings("unused")
    private volatile int refs = 1;
    /**
     * Whether the batch's CRC-32C was checked in full since its bytes arrived in this process (see
     * {@link #markChecked()}): the Raft log then checks the header only and the log-engine does not compute it again.
     * Set and read on the owner shard.
     */
    private boolean checked;

    /**
     * Wraps one v2 batch held in a heap array.
     *
     * @throws IllegalArgumentException when {@code bytes} is not exactly one well-formed v2 batch header
     */
    public KafkaBatchPayload(byte[] bytes) {
        if (bytes == null || bytes.length < RecordBatch.HEADER_BYTES) {
            throw new IllegalArgumentException("a record batch needs at least " + RecordBatch.HEADER_BYTES
                + " bytes, not " + (bytes == null ? "null" : bytes.length));
        }
        RecordBatch b = new RecordBatch().wrap(MemorySegment.ofArray(bytes), 0);
        this.recordCount = checkHeader(b.magic(), b.sizeInBytes(), b.lastOffsetDelta(), bytes.length);
        this.bytes = bytes;
        this.chain = null;
        this.size = bytes.length;
    }

    private KafkaBatchPayload(IoBuf chain, int size, int recordCount) {
        this.bytes = null;
        this.chain = chain;
        this.size = size;
        this.recordCount = recordCount;
    }

    /**
     * Copies the one batch at {@code src[offset, offset + length)} into a new chain of {@code arena}'s memory (the
     * {@link Subsystem#RAFT} budget). The caller owns the first reference. Only the header is checked here (magic,
     * length, offset delta); the CRC is the caller's or the log's to check. Call on {@code arena}'s shard;
     * {@code src} may be another shard's chain as long as nobody changes it meanwhile.
     *
     * @throws IllegalArgumentException when the bytes are not exactly one v2 batch (nothing is allocated)
     * @throws dev.isthmus.arena.ArenaExhaustedException when the shard's Raft memory budget cannot hold it
     */
    public static KafkaBatchPayload copyOf(IoBuf src, long offset, int length, MemoryArena arena) {
        int records = checkHeader(src, offset, length);
        IoBuf copy = IoBuf.allocate(arena, Subsystem.RAFT, length);
        long at = offset;
        for (int i = 0; i < copy.fragmentCount(); i++) {
            MemorySegment f = copy.fragment(i);
            src.copyTo(at, f, 0, f.byteSize());
            at += f.byteSize();
        }
        return new KafkaBatchPayload(copy, length, records);
    }

    /**
     * The one batch at {@code src[offset, offset + length)} as a share of {@code src}'s fragments: nothing is copied
     * and nothing allocated but the chain's view. This is the leader's produce path: the arena chain a Produce
     * request was received into (a connection's {@link Subsystem#NETWORK_RECEIVE} memory, on the connection's shard,
     * which may not be the partition's) is what Raft replicates, the log-engine writes and the batch cache keeps
     * (when it is the cache's own shard). The caller owns the first reference; the fragments go back to their arena,
     * on its owner shard, when the last chain sharing them lets go (remote frees travel through the owner's free
     * list). The bytes must not change afterwards except for the fields the log-engine stamps (baseOffset,
     * partitionLeaderEpoch, outside the CRC): no other chain writes into bytes it did not append itself.
     *
     * @throws IllegalArgumentException when the bytes are not exactly one v2 batch, or {@code src} is not a chain of
     *                                  arena memory (a wrapped chain's memory may be reused by its owner: copy it)
     */
    public static KafkaBatchPayload shareOf(IoBuf src, long offset, int length) {
        if (src.arena() == null) {
            throw new IllegalArgumentException("only a chain of arena memory can be shared into a payload");
        }
        int records = checkHeader(src, offset, length);
        return new KafkaBatchPayload(src.share(offset, length), length, records);
    }

    private static int checkHeader(IoBuf src, long offset, int length) {
        if (length < RecordBatch.HEADER_BYTES) {
            throw new IllegalArgumentException("a record batch needs at least " + RecordBatch.HEADER_BYTES
                + " bytes, not " + length);
        }
        return checkHeader(src.getByte(offset + RecordBatch.MAGIC),
            src.getInt(offset + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD,
            src.getInt(offset + RecordBatch.LAST_OFFSET_DELTA), length);
    }

    private static int checkHeader(byte magic, int sizeInBytes, int lastOffsetDelta, int length) {
        if (magic != RecordBatch.CURRENT_MAGIC) {
            throw new IllegalArgumentException("record batch has magic " + magic + "; only magic 2 is stored");
        }
        if (sizeInBytes != length) {
            throw new IllegalArgumentException("payload of " + length + " bytes holds a batch of " + sizeInBytes
                + " bytes; exactly one batch is expected");
        }
        if (lastOffsetDelta < 0 || lastOffsetDelta == Integer.MAX_VALUE) {
            // An entry's offset count is an int: a batch covering 2^31 offsets (no producer can send one: it would
            // need 2^31 records) cannot be an entry.
            throw new IllegalArgumentException("record batch has lastOffsetDelta " + lastOffsetDelta);
        }
        return lastOffsetDelta + 1;
    }

    /** A batch of uncompressed records with the given values (null keys), for controller commands and tests. */
    public static KafkaBatchPayload ofValues(long timestampMs, byte[]... values) {
        if (values.length == 0) {
            throw new IllegalArgumentException("a batch needs at least one record");
        }
        long size = RecordBatch.HEADER_BYTES;
        for (byte[] v : values) {
            size += v.length + 32;
        }
        byte[] buf = new byte[(int) size];
        BatchBuilder b = new BatchBuilder(MemorySegment.ofArray(buf), 0, 0);
        for (byte[] v : values) {
            b.add(timestampMs, null, v);
        }
        return new KafkaBatchPayload(Arrays.copyOf(buf, b.build()));
    }

    /**
     * Records that the caller validated this batch in full (size, CRC-32C, magic, offsets) since its bytes arrived and
     * changed nothing the CRC covers since (or recomputed it): the produce path validates a batch once, where it
     * enters its partition, and {@link LogEngineRaftLog} marks a follower's batch once it checked it. Below that only
     * the header is checked. Owner shard.
     *
     * @return this payload
     */
    public KafkaBatchPayload markChecked() {
        checked = true;
        return this;
    }

    /** Whether {@link #markChecked()} was called: the CRC-32C need not be computed again. Owner shard. */
    public boolean isChecked() {
        return checked;
    }

    /** Whether the batch lives in arena memory (reference counted) rather than in a heap array. */
    public boolean inArena() {
        return chain != null;
    }

    /**
     * The batch bytes: the array itself for the heap form (do not modify), a fresh heap copy for the arena form
     * (tests and controller-sized batches only: the copy is the linearisation the arena form exists to avoid).
     */
    public byte[] bytes() {
        if (bytes != null) {
            return bytes;
        }
        byte[] out = new byte[size];
        copyTo(MemorySegment.ofArray(out), 0);
        return out;
    }

    /** The arena form's chain (owner shard only; null for the heap form). Valid while a reference is held. */
    IoBuf chain() {
        return chain;
    }

    /** Copies the whole batch into {@code dst} at {@code dstOffset}. */
    public void copyTo(MemorySegment dst, long dstOffset) {
        if (bytes != null) {
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, dst, dstOffset, size);
            return;
        }
        checkLive();
        long at = dstOffset;
        for (int i = 0; i < chain.fragmentCount(); i++) {
            MemorySegment f = chain.fragment(i);
            MemorySegment.copy(f, 0, dst, at, f.byteSize());
            at += f.byteSize();
        }
    }

    /** Puts the whole batch into {@code out} at its position, which advances by {@link #sizeBytes()}. */
    public void writeTo(ByteBuffer out) {
        if (bytes != null) {
            out.put(bytes);
            return;
        }
        if (out.remaining() < size) {
            throw new java.nio.BufferOverflowException();
        }
        copyTo(MemorySegment.ofBuffer(out), 0);
        out.position(out.position() + size);
    }

    private void checkLive() {
        if ((int) REFS.getVolatile(this) <= 0) {
            throw new IllegalStateException("record batch payload used after its memory was freed");
        }
    }

    @Override
    public int sizeBytes() {
        return size;
    }

    @Override
    public int recordCount() {
        return recordCount;
    }

    @Override
    public KafkaBatchPayload retain() {
        if (chain != null) {
            int before = (int) REFS.getAndAdd(this, 1);
            if (before <= 0) {
                REFS.getAndAdd(this, -1);
                throw new IllegalStateException("retain of a record batch payload whose memory was freed");
            }
        }
        return this;
    }

    @Override
    public void release() {
        if (chain == null) {
            return;
        }
        int after = (int) REFS.getAndAdd(this, -1) - 1;
        if (after == 0) {
            chain.release();
        } else if (after < 0) {
            throw new IllegalStateException("record batch payload released more often than retained");
        }
    }

    /** References held (1 for the heap form, which is not counted); for tests and leak checks. */
    public int refCount() {
        return chain == null ? 1 : (int) REFS.getVolatile(this);
    }

    /** Equality by the batch's content, ignoring the stamped baseOffset and partitionLeaderEpoch. */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof KafkaBatchPayload p) || p.size != size) {
            return false;
        }
        byte[] a = bytes();
        byte[] b = p.bytes();
        return Arrays.equals(a, RecordBatch.BATCH_LENGTH, RecordBatch.PARTITION_LEADER_EPOCH, b,
            RecordBatch.BATCH_LENGTH, RecordBatch.PARTITION_LEADER_EPOCH)
            && Arrays.equals(a, RecordBatch.MAGIC, size, b, RecordBatch.MAGIC, size);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(Arrays.copyOfRange(bytes(), RecordBatch.MAGIC, size));
    }

    @Override
    public String toString() {
        return "KafkaBatchPayload[" + size + " bytes, " + recordCount + " records" + (chain != null ? ", arena" : "")
            + "]";
    }
}
