package dev.isthmus.raft.codec;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.IoBufReader;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.raft.AppendRequest;
import dev.isthmus.raft.AppendResponse;
import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.Heartbeat;
import dev.isthmus.raft.HeartbeatResponse;
import dev.isthmus.raft.InstallSnapshotRequest;
import dev.isthmus.raft.InstallSnapshotResponse;
import dev.isthmus.raft.Payload;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.TimeoutNow;
import dev.isthmus.raft.VoteRequest;
import dev.isthmus.raft.VoteResponse;
import dev.isthmus.raft.storage.ConfigurationFormat;
import dev.isthmus.raft.storage.KafkaBatchPayload;

import java.lang.foreign.MemorySegment;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The wire form of {@link RaftMessage}s between nodes: one self-describing, checksummed frame per message,
 * big-endian, so a TCP stream of frames can be cut and verified without knowing the message types.
 *
 * <pre>
 *   0  frameBytes  i32   bytes after this field (8 + body)
 *   4  magic       i16   0x5246 ("RF")
 *   6  version     i8    {@link #VERSION}
 *   7  type        i8    1 VoteRequest, 2 VoteResponse, 3 AppendRequest, 4 AppendResponse,
 *                        5 InstallSnapshotRequest, 6 InstallSnapshotResponse, 7 TimeoutNow,
 *                        8 Heartbeat, 9 HeartbeatResponse
 *   8  crc32c      i32   over bytes [12, 4 + frameBytes)
 *   12 body:       from i32, to i32, then the message's fields in record order
 * </pre>
 * Group messages continue with groupId i64 and term i64. Entries are {@code kind i8, baseOffset i64,
 * lastOffset i64, term i64} then, for DATA, {@code payloadType i8 (1 bytes, 2 Kafka batch), recordCount i32,
 * length i32, bytes}, for CONFIGURATION the {@link ConfigurationFormat}, for PREFIX_TRUNCATION
 * {@code newStartOffset i64}. Long arrays are {@code count i32}
 * then the values. A frame that fails its checksum, names an unknown version or type, or whose fields do not
 * add up to its length is rejected with a {@link RaftCodecException} naming the problem; the connection
 * carrying it should be closed (a byte stream that lost sync cannot be trusted).
 *
 * <p>Stateless apart from its limit; one instance may be shared by the threads of a node.
 */
public final class RaftCodec {
    public static final short MAGIC = 0x5246;
    public static final byte VERSION = 1;
    /** Bytes before the body: length, magic, version, type, crc. */
    public static final int HEADER_BYTES = 12;

    static final byte VOTE_REQUEST = 1;
    static final byte VOTE_RESPONSE = 2;
    static final byte APPEND_REQUEST = 3;
    static final byte APPEND_RESPONSE = 4;
    static final byte INSTALL_SNAPSHOT_REQUEST = 5;
    static final byte INSTALL_SNAPSHOT_RESPONSE = 6;
    static final byte TIMEOUT_NOW = 7;
    static final byte HEARTBEAT = 8;
    static final byte HEARTBEAT_RESPONSE = 9;

    private static final byte PAYLOAD_BYTES = 1;
    private static final byte PAYLOAD_KAFKA_BATCH = 2;

    private final int maxFrameBytes;
    private final MemoryArena payloadArena;
    private long heapPayloads;

    /** @param maxFrameBytes the largest frame accepted (bounds the memory one peer can make us allocate) */
    public RaftCodec(int maxFrameBytes) {
        this(maxFrameBytes, null);
    }

    /**
     * @param maxFrameBytes the largest frame accepted (bounds the memory one peer can make us allocate)
     * @param payloadArena  where decoded record batches go ({@link KafkaBatchPayload#copyOf}, the RAFT budget of the
     *                      decoding shard), or null for heap arrays. Arena payloads belong to the decoded message:
     *                      whoever consumes or drops it calls {@link AppendRequest#releasePayloads()}. When the
     *                      budget is short a batch goes to the heap (counted by {@link #heapPayloads()}).
     */
    public RaftCodec(int maxFrameBytes, MemoryArena payloadArena) {
        if (maxFrameBytes < HEADER_BYTES + 8) {
            throw new IllegalArgumentException("maxFrameBytes " + maxFrameBytes + " is too small");
        }
        this.maxFrameBytes = maxFrameBytes;
        this.payloadArena = payloadArena;
    }

    /** Record batches decoded to the heap because the payload arena's budget was short. */
    public long heapPayloads() {
        return heapPayloads;
    }

    /** A codec accepting frames up to 64 MiB. */
    public static RaftCodec defaults() {
        return new RaftCodec(64 << 20);
    }

    public int maxFrameBytes() {
        return maxFrameBytes;
    }

    // ================================================================================================ encode

    /** The frame's size in bytes, header included. */
    public int frameBytes(RaftMessage m) {
        long n = HEADER_BYTES + 8L;
        switch (m) {
            case VoteRequest r -> n += 16 + 8 + 8 + 2;
            case VoteResponse r -> n += 16 + 2;
            case AppendRequest r -> {
                n += 16 + 24 + 4;
                for (Entry e : r.entries()) {
                    n += entryBytes(e);
                }
            }
            case AppendResponse r -> n += 16 + 1 + 8 * 6;
            case InstallSnapshotRequest r -> n += 16 + 16 + ConfigurationFormat.sizeBytes(r.meta().configuration())
                + 8 + 8 + 4 + r.chunk().length + 1;
            case InstallSnapshotResponse r -> n += 16 + 8 + 8 + 1 + 8;
            case TimeoutNow r -> n += 16;
            case Heartbeat h -> n += 4 + 24L * h.size();
            case HeartbeatResponse h -> n += 4 + 32L * h.size();
        }
        if (n > maxFrameBytes) {
            throw new RaftCodecException("message of " + n + " bytes exceeds the frame limit of " + maxFrameBytes + ": "
                + m.getClass().getSimpleName());
        }
        return (int) n;
    }

    private static long entryBytes(Entry e) {
        long n = 1 + 24;
        return switch (e.kind()) {
            case DATA -> n + 1 + 4 + 4 + e.payload().sizeBytes();
            case LEADER_CHANGE -> n;
            case CONFIGURATION -> n + ConfigurationFormat.sizeBytes(e.configuration());
            case PREFIX_TRUNCATION -> n + 8;
        };
    }

    /** Encodes {@code m} as one frame into a new array. */
    public byte[] encode(RaftMessage m) {
        ByteBuffer b = ByteBuffer.allocate(frameBytes(m));
        encode(m, b);
        return b.array();
    }

    /**
     * Writes {@code m}'s frame at {@code out}'s position (which advances past it).
     *
     * @throws RaftCodecException when the message exceeds the frame limit or holds an unknown payload type
     * @throws java.nio.BufferOverflowException when {@code out} has less room than {@link #frameBytes}
     */
    public void encode(RaftMessage m, ByteBuffer out) {
        int size = frameBytes(m);
        ByteBuffer b = out.duplicate().order(ByteOrder.BIG_ENDIAN);
        int start = b.position();
        b.putInt(size - 4).putShort(MAGIC).put(VERSION).put(type(m)).putInt(0);
        b.putInt(m.from()).putInt(m.to());
        switch (m) {
            case VoteRequest r -> {
                group(b, r.groupId(), r.term());
                b.putLong(r.lastOffset()).putLong(r.lastTerm()).put(bool(r.preVote())).put(bool(r.transfer()));
            }
            case VoteResponse r -> {
                group(b, r.groupId(), r.term());
                b.put(bool(r.granted())).put(bool(r.preVote()));
            }
            case AppendRequest r -> {
                group(b, r.groupId(), r.term());
                b.putLong(r.prevOffset()).putLong(r.prevTerm()).putLong(r.commitOffset()).putInt(r.entries().size());
                for (Entry e : r.entries()) {
                    putEntry(b, e);
                }
            }
            case AppendResponse r -> {
                group(b, r.groupId(), r.term());
                b.put(bool(r.success())).putLong(r.matchOffset()).putLong(r.appendedOffset()).putLong(r.lastOffset())
                    .putLong(r.rejectedPrevOffset()).putLong(r.hintOffset()).putLong(r.hintTerm());
            }
            case InstallSnapshotRequest r -> {
                group(b, r.groupId(), r.term());
                b.putLong(r.meta().lastOffset()).putLong(r.meta().lastTerm());
                ConfigurationFormat.write(b, r.meta().configuration());
                b.putLong(r.totalBytes()).putLong(r.chunkOffset()).putInt(r.chunk().length).put(r.chunk())
                    .put(bool(r.done()));
            }
            case InstallSnapshotResponse r -> {
                group(b, r.groupId(), r.term());
                b.putLong(r.snapshotLastOffset()).putLong(r.nextChunkOffset()).put(bool(r.installed()))
                    .putLong(r.matchOffset());
            }
            case TimeoutNow r -> group(b, r.groupId(), r.term());
            case Heartbeat h -> {
                b.putInt(h.size());
                for (int i = 0; i < h.size(); i++) {
                    b.putLong(h.groupIds()[i]).putLong(h.terms()[i]).putLong(h.commitOffsets()[i]);
                }
            }
            case HeartbeatResponse h -> {
                b.putInt(h.size());
                for (int i = 0; i < h.size(); i++) {
                    b.putLong(h.groupIds()[i]).putLong(h.terms()[i]).putLong(h.matchOffsets()[i])
                        .putLong(h.lastOffsets()[i]);
                }
            }
        }
        if (b.position() - start != size) {
            throw new IllegalStateException("frame of " + m.getClass().getSimpleName() + " is " + (b.position() - start)
                + " bytes, computed " + size);
        }
        b.putInt(start + 8, crc(b, start + HEADER_BYTES, size - HEADER_BYTES));
        out.position(b.position());
    }

    private static void group(ByteBuffer b, long groupId, long term) {
        b.putLong(groupId).putLong(term);
    }

    private static byte bool(boolean v) {
        return (byte) (v ? 1 : 0);
    }

    private static byte type(RaftMessage m) {
        return switch (m) {
            case VoteRequest r -> VOTE_REQUEST;
            case VoteResponse r -> VOTE_RESPONSE;
            case AppendRequest r -> APPEND_REQUEST;
            case AppendResponse r -> APPEND_RESPONSE;
            case InstallSnapshotRequest r -> INSTALL_SNAPSHOT_REQUEST;
            case InstallSnapshotResponse r -> INSTALL_SNAPSHOT_RESPONSE;
            case TimeoutNow r -> TIMEOUT_NOW;
            case Heartbeat h -> HEARTBEAT;
            case HeartbeatResponse h -> HEARTBEAT_RESPONSE;
        };
    }

    private static void putEntry(ByteBuffer b, Entry e) {
        b.put((byte) e.kind().code()).putLong(e.baseOffset()).putLong(e.lastOffset()).putLong(e.term());
        switch (e.kind()) {
            case DATA -> {
                Payload p = e.payload();
                if (p instanceof BytesPayload bp) {
                    b.put(PAYLOAD_BYTES).putInt(p.recordCount()).putInt(bp.bytes().length).put(bp.bytes());
                } else if (p instanceof KafkaBatchPayload kp) {
                    // An arena batch is copied fragment by fragment straight into the frame.
                    b.put(PAYLOAD_KAFKA_BATCH).putInt(p.recordCount()).putInt(kp.sizeBytes());
                    kp.writeTo(b);
                } else {
                    throw new RaftCodecException("no wire form for payload type " + p.getClass().getName());
                }
            }
            case LEADER_CHANGE -> {
            }
            case CONFIGURATION -> ConfigurationFormat.write(b, e.configuration());
            case PREFIX_TRUNCATION -> b.putLong(e.newStartOffset());
        }
    }

    private static int crc(ByteBuffer b, int from, int length) {
        CRC32C c = new CRC32C();
        ByteBuffer s = b.duplicate();
        s.limit(from + length).position(from);
        c.update(s);
        return (int) c.getValue();
    }

    // ================================================================================================ decode

    /**
     * Bytes of the frame starting at {@code in}'s position, or -1 when fewer than 4 bytes are there.
     *
     * @throws RaftCodecException when the announced length is impossible or above the limit
     */
    public int frameLength(ByteBuffer in) {
        if (in.remaining() < 4) {
            return -1;
        }
        int n = in.order() == ByteOrder.BIG_ENDIAN ? in.getInt(in.position())
            : Integer.reverseBytes(in.getInt(in.position()));
        if (n < HEADER_BYTES - 4 + 8 || n > maxFrameBytes - 4) {
            throw new RaftCodecException("frame announces " + n + " bytes (limit " + maxFrameBytes + ")");
        }
        return n + 4;
    }

    /**
     * Decodes the frame at {@code in}'s position: returns the message and advances past the frame, or returns
     * null (position unchanged) when the frame is not complete yet.
     *
     * @throws RaftCodecException for a corrupt, foreign or inconsistent frame (see the class comment)
     */
    public RaftMessage decode(ByteBuffer in) {
        int frame = frameLength(in);
        if (frame < 0 || in.remaining() < frame) {
            return null;
        }
        ByteBuffer b = in.slice(in.position(), frame).order(ByteOrder.BIG_ENDIAN);
        short magic = b.getShort(4);
        if (magic != MAGIC) {
            throw new RaftCodecException("frame has magic 0x" + Integer.toHexString(magic & 0xFFFF) + ", not a Raft frame");
        }
        byte version = b.get(6);
        if (version != VERSION) {
            throw new RaftCodecException("frame has version " + version + "; this node speaks version " + VERSION);
        }
        byte type = b.get(7);
        int expected = b.getInt(8);
        if (crc(b, HEADER_BYTES, frame - HEADER_BYTES) != expected) {
            throw new RaftCodecException("frame of type " + type + " (" + frame + " bytes) fails its CRC32C");
        }
        b.position(HEADER_BYTES);
        RaftMessage m;
        try {
            m = body(type, b);
        } catch (BufferUnderflowException e) {
            throw new RaftCodecException("frame of type " + type + " ends inside its fields (" + frame + " bytes)");
        } catch (IllegalArgumentException e) {
            throw new RaftCodecException("frame of type " + type + " holds an invalid field: " + e.getMessage());
        }
        if (b.hasRemaining()) {
            if (m instanceof AppendRequest r) {
                r.releasePayloads();
            }
            throw new RaftCodecException("frame of type " + type + " has " + b.remaining() + " bytes after its fields");
        }
        in.position(in.position() + frame);
        return m;
    }

    private RaftMessage body(byte type, ByteBuffer b) {
        int from = b.getInt();
        int to = b.getInt();
        if (type == HEARTBEAT) {
            int n = count(b, 24);
            long[] ids = new long[n];
            long[] terms = new long[n];
            long[] commits = new long[n];
            for (int i = 0; i < n; i++) {
                ids[i] = b.getLong();
                terms[i] = b.getLong();
                commits[i] = b.getLong();
            }
            return new Heartbeat(from, to, ids, terms, commits);
        }
        if (type == HEARTBEAT_RESPONSE) {
            int n = count(b, 32);
            long[] ids = new long[n];
            long[] terms = new long[n];
            long[] match = new long[n];
            long[] last = new long[n];
            for (int i = 0; i < n; i++) {
                ids[i] = b.getLong();
                terms[i] = b.getLong();
                match[i] = b.getLong();
                last[i] = b.getLong();
            }
            return new HeartbeatResponse(from, to, ids, terms, match, last);
        }
        long groupId = b.getLong();
        long term = b.getLong();
        return switch (type) {
            case VOTE_REQUEST -> new VoteRequest(groupId, from, to, term, b.getLong(), b.getLong(), bool(b), bool(b));
            case VOTE_RESPONSE -> new VoteResponse(groupId, from, to, term, bool(b), bool(b));
            case APPEND_REQUEST -> {
                long prev = b.getLong();
                long prevTerm = b.getLong();
                long commit = b.getLong();
                int n = count(b, 25);
                List<Entry> entries = new ArrayList<>(n);
                try {
                    for (int i = 0; i < n; i++) {
                        entries.add(entry(b));
                    }
                } catch (RuntimeException e) {
                    // A frame that turns out bad halfway gives back the batches already copied into the arena.
                    for (Entry done : entries) {
                        if (done.payload() != null) {
                            done.payload().release();
                        }
                    }
                    throw e;
                }
                yield new AppendRequest(groupId, from, to, term, prev, prevTerm, commit, entries);
            }
            case APPEND_RESPONSE -> new AppendResponse(groupId, from, to, term, bool(b), b.getLong(), b.getLong(),
                b.getLong(), b.getLong(), b.getLong(), b.getLong());
            case INSTALL_SNAPSHOT_REQUEST -> {
                long last = b.getLong();
                long lastTerm = b.getLong();
                Configuration c = ConfigurationFormat.read(b);
                long total = b.getLong();
                long chunkOffset = b.getLong();
                byte[] chunk = new byte[count(b, 1)];
                b.get(chunk);
                yield new InstallSnapshotRequest(groupId, from, to, term, new SnapshotMeta(last, lastTerm, c), total,
                    chunkOffset, chunk, bool(b));
            }
            case INSTALL_SNAPSHOT_RESPONSE -> new InstallSnapshotResponse(groupId, from, to, term, b.getLong(),
                b.getLong(), bool(b), b.getLong());
            case TIMEOUT_NOW -> new TimeoutNow(groupId, from, to, term);
            default -> throw new RaftCodecException("frame has unknown message type " + type);
        };
    }

    /** Whether {@code type} (a frame's byte 7) is an AppendRequest, the frame {@link #decodeAppend} takes. */
    public static boolean isAppendRequest(byte type) {
        return type == APPEND_REQUEST;
    }

    /**
     * Decodes one whole AppendRequest frame held in {@code f} (exactly the frame, from its length field; a share of a
     * connection's receive chain) with no copy of its record batches: each Kafka-batch payload shares {@code f}'s
     * fragments ({@link KafkaBatchPayload#shareOf}), so a follower's batch is copied once, from the socket into the
     * receive chain, and that chain is what its log writes and its batch cache keeps. A chain not of arena memory
     * (the receive side fell back to the heap) has its batches copied into the payload arena as {@link #decode} does.
     * The message owns one reference per payload ({@link AppendRequest#releasePayloads()}); {@code f} may be
     * released at once.
     *
     * @throws RaftCodecException for a corrupt, foreign or inconsistent frame (nothing stays referenced)
     */
    public AppendRequest decodeAppend(IoBuf f) {
        long frame = f.size();
        if (frame < HEADER_BYTES + 8 || f.getInt(0) != frame - 4) {
            throw new RaftCodecException("frame of " + frame + " bytes announces " + (frame >= 4 ? f.getInt(0) : -1));
        }
        short magic = f.getShort(4);
        if (magic != MAGIC) {
            throw new RaftCodecException("frame has magic 0x" + Integer.toHexString(magic & 0xFFFF) + ", not a Raft frame");
        }
        byte version = f.getByte(6);
        if (version != VERSION) {
            throw new RaftCodecException("frame has version " + version + "; this node speaks version " + VERSION);
        }
        byte type = f.getByte(7);
        if (type != APPEND_REQUEST) {
            throw new RaftCodecException("frame of type " + type + " is not an AppendRequest");
        }
        if (f.crc32c(HEADER_BYTES, frame - HEADER_BYTES) != f.getInt(8)) {
            throw new RaftCodecException("frame of type " + type + " (" + frame + " bytes) fails its CRC32C");
        }
        IoBufReader b = f.reader().position(HEADER_BYTES);
        List<Entry> entries = null;
        try {
            int from = b.readInt();
            int to = b.readInt();
            long groupId = b.readLong();
            long term = b.readLong();
            long prev = b.readLong();
            long prevTerm = b.readLong();
            long commit = b.readLong();
            int n = b.readInt();
            if (n < 0 || (long) n * 25 > b.remaining()) {
                throw new RaftCodecException("count " + n + " does not fit the " + b.remaining() + " bytes left");
            }
            entries = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                entries.add(entry(f, b));
            }
            if (b.hasRemaining()) {
                throw new RaftCodecException("frame of type " + type + " has " + b.remaining() + " bytes after its fields");
            }
            return new AppendRequest(groupId, from, to, term, prev, prevTerm, commit, entries);
        } catch (RuntimeException e) {
            if (entries != null) {
                for (Entry done : entries) {
                    if (done.payload() != null) {
                        done.payload().release();
                    }
                }
            }
            if (e instanceof RaftCodecException) {
                throw e;
            }
            if (e instanceof IndexOutOfBoundsException) {
                throw new RaftCodecException("frame of type " + type + " ends inside its fields (" + frame + " bytes)");
            }
            if (e instanceof IllegalArgumentException || e instanceof BufferUnderflowException) {
                throw new RaftCodecException("frame of type " + type + " holds an invalid field: " + e.getMessage());
            }
            throw e;
        }
    }

    /** {@link #entry(ByteBuffer)} read from a receive chain: a Kafka batch's payload shares the chain. */
    private Entry entry(IoBuf f, IoBufReader b) {
        int code = b.readByte();
        EntryKind kind = EntryKind.fromCode(code);
        if (kind == null) {
            throw new RaftCodecException("entry has unknown kind " + code);
        }
        long base = b.readLong();
        long last = b.readLong();
        long term = b.readLong();
        Entry e = switch (kind) {
            case DATA -> {
                byte type = b.readByte();
                int records = b.readInt();
                int size = b.readInt();
                if (size < 0 || size > b.remaining()) {
                    throw new RaftCodecException("count " + size + " does not fit the " + b.remaining() + " bytes left");
                }
                Payload p;
                if (type == PAYLOAD_KAFKA_BATCH && f.arena() != null) {
                    p = KafkaBatchPayload.shareOf(f, b.position(), size);
                    b.skip(size);
                } else if (type == PAYLOAD_KAFKA_BATCH && payloadArena != null) {
                    p = chainBatch(f, b.position(), size);
                    b.skip(size);
                } else {
                    byte[] bytes = new byte[size];
                    b.readBytes(bytes, 0, size);
                    p = heapPayload(type, bytes, records, base);
                }
                yield dataEntry(base, term, p);
            }
            case LEADER_CHANGE -> Entry.leaderChange(base, term);
            case CONFIGURATION -> {
                // Four id lists (count i32, then the ids): copied out to the heap, as small as they are rare.
                long start = b.position();
                for (int list = 0; list < 4; list++) {
                    int ids = b.readInt();
                    if (ids < 0 || (long) ids * 4 > b.remaining()) {
                        throw new RaftCodecException("configuration lists " + ids + " ids in " + b.remaining() + " bytes");
                    }
                    b.skip(4L * ids);
                }
                byte[] bytes = new byte[(int) (b.position() - start)];
                f.copyTo(start, bytes, 0, bytes.length);
                yield Entry.configuration(base, term, ConfigurationFormat.read(ByteBuffer.wrap(bytes)));
            }
            case PREFIX_TRUNCATION -> {
                long start = b.readLong();
                if (start < 0 || start > base) {
                    throw new RaftCodecException("prefix truncation entry at " + base + " moves the log start to " + start);
                }
                yield Entry.prefixTruncation(base, term, start);
            }
        };
        if (e.lastOffset() != last) {
            if (e.payload() != null) {
                e.payload().release();
            }
            throw new RaftCodecException("entry at " + base + " claims last offset " + last + " but covers "
                + e.recordCount() + " records");
        }
        return e;
    }

    /** One record batch of a heap chain copied into the payload arena (to the heap when its budget is short). */
    private Payload chainBatch(IoBuf f, long at, int size) {
        try {
            return KafkaBatchPayload.copyOf(f, at, size, payloadArena);
        } catch (ArenaExhaustedException e) {
            heapPayloads++;
            byte[] bytes = new byte[size];
            f.copyTo(at, bytes, 0, size);
            return new KafkaBatchPayload(bytes);
        }
    }

    /** The next {@code size} bytes of {@code b} (one record batch) copied into the payload arena. */
    private Payload arenaBatch(ByteBuffer b, int size) {
        if (size > b.remaining()) {
            throw new BufferUnderflowException();
        }
        MemorySegment src = MemorySegment.ofBuffer(b.slice(b.position(), size));
        Payload p;
        try {
            p = KafkaBatchPayload.copyOf(IoBuf.wrap(src), 0, size, payloadArena);
        } catch (ArenaExhaustedException e) {
            heapPayloads++;
            byte[] bytes = new byte[size];
            MemorySegment.copy(src, 0, MemorySegment.ofArray(bytes), 0, size);
            p = new KafkaBatchPayload(bytes);
        }
        b.position(b.position() + size);
        return p;
    }

    private Entry entry(ByteBuffer b) {
        int code = b.get();
        EntryKind kind = EntryKind.fromCode(code);
        if (kind == null) {
            throw new RaftCodecException("entry has unknown kind " + code);
        }
        long base = b.getLong();
        long last = b.getLong();
        long term = b.getLong();
        Entry e = switch (kind) {
            case DATA -> {
                byte type = b.get();
                int records = b.getInt();
                int size = count(b, 1);
                Payload p;
                if (type == PAYLOAD_KAFKA_BATCH && payloadArena != null) {
                    p = arenaBatch(b, size);
                } else {
                    byte[] bytes = new byte[size];
                    b.get(bytes);
                    p = heapPayload(type, bytes, records, base);
                }
                yield dataEntry(base, term, p);
            }
            case LEADER_CHANGE -> Entry.leaderChange(base, term);
            case CONFIGURATION -> Entry.configuration(base, term, ConfigurationFormat.read(b));
            case PREFIX_TRUNCATION -> {
                long start = b.getLong();
                if (start < 0 || start > base) {
                    throw new RaftCodecException("prefix truncation entry at " + base + " moves the log start to " + start);
                }
                yield Entry.prefixTruncation(base, term, start);
            }
        };
        if (e.lastOffset() != last) {
            if (e.payload() != null) {
                e.payload().release(); // an arena copy goes back with the refused frame
            }
            throw new RaftCodecException("entry at " + base + " claims last offset " + last + " but covers "
                + e.recordCount() + " records");
        }
        return e;
    }

    private static int count(ByteBuffer b, int minBytesEach) {
        int n = b.getInt();
        if (n < 0 || (long) n * minBytesEach > b.remaining()) {
            throw new RaftCodecException("count " + n + " does not fit the " + b.remaining() + " bytes left");
        }
        return n;
    }

    private static boolean bool(ByteBuffer b) {
        byte v = b.get();
        if (v != 0 && v != 1) {
            throw new RaftCodecException("boolean field holds " + v);
        }
        return v == 1;
    }

    /** A decoded entry's payload copied to the heap (the arena-sharing paths are the callers' own). */
    private static Payload heapPayload(int type, byte[] bytes, int records, long base) {
        return switch (type) {
            case PAYLOAD_BYTES -> new BytesPayload(bytes, records);
            case PAYLOAD_KAFKA_BATCH -> new KafkaBatchPayload(bytes);
            default -> throw new RaftCodecException("entry at " + base + " has unknown payload type " + type);
        };
    }

    /** A data entry over {@code p}, releasing {@code p} if the entry refuses it. */
    private static Entry dataEntry(long base, long term, Payload p) {
        try {
            return Entry.data(base, term, p);
        } catch (RuntimeException bad) {
            p.release();
            throw bad;
        }
    }
}
