package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * Where each term starts in a log: the Raft side of Kafka's leader-epoch cache. Terms never decrease along a
 * log, so a term's entries are contiguous and the whole map is a short array of (term, start offset) pairs,
 * one per leadership that wrote something. It answers the two lookups Raft and Kafka need:
 * {@link #termAt(long)} (prevLogTerm checks, paper §5.3) and {@link #lastOffsetAtOrBeforeTerm(long)} (fast
 * backtracking after a rejected AppendEntries, and Kafka's OffsetForLeaderEpoch).
 *
 * <pre>
 *   floor (snapshot or compacted prefix)       terms in the log
 *   ... 40 ]  term 3   | 41 .. 57  term 3 | 58 .. 58 term 5 | 59 .. 90 term 6 |
 *   floorOffset=40 floorTerm=3; pairs (3,41) (5,58) (6,59); lastOffset=90
 * </pre>
 *
 * <p>Storage implementations of {@link RaftLog} keep one and persist it as they see fit ({@link #encode()}
 * gives a checksummed image); the simulator's log uses it directly. Not thread-safe: owned by the shard
 * that owns the log.
 */
public final class TermIndex {
    private static final byte FORMAT_VERSION = 1;

    private long floorOffset = -1;
    private long floorTerm;
    private long lastOffset = -1;
    private long[] terms = new long[8];
    private long[] starts = new long[8];
    private int size;

    /** An empty index: nothing before offset 0. */
    public TermIndex() {
    }

    /** Forgets everything and starts an empty log after {@code floorOffset}, whose term is {@code floorTerm}. */
    public void reset(long floorOffset, long floorTerm) {
        Verify.that(floorOffset >= -1 && floorTerm >= 0, "bad floor %d term %d", floorOffset, floorTerm);
        this.floorOffset = floorOffset;
        this.floorTerm = floorTerm;
        this.lastOffset = floorOffset;
        this.size = 0;
    }

    /** The offset just before the first entry (the snapshot's last offset, or -1). */
    public long floorOffset() {
        return floorOffset;
    }

    public long floorTerm() {
        return floorTerm;
    }

    /** The first offset in the log: {@code floorOffset() + 1}. */
    public long startOffset() {
        return floorOffset + 1;
    }

    /** The last offset in the log, or {@link #floorOffset()} when the log is empty. */
    public long lastOffset() {
        return lastOffset;
    }

    /** The term of {@link #lastOffset()}. */
    public long lastTerm() {
        return size == 0 ? floorTerm : terms[size - 1];
    }

    /** Number of (term, start) pairs. */
    public int size() {
        return size;
    }

    /** Records an appended entry; entries arrive in offset order and terms never decrease. */
    public void append(long baseOffset, long lastOffset, long term) {
        Verify.that(baseOffset == this.lastOffset + 1, "append at %d after last offset %d", baseOffset, this.lastOffset);
        Verify.that(lastOffset >= baseOffset, "entry ends at %d before it starts at %d", lastOffset, baseOffset);
        long last = lastTerm();
        Verify.that(term >= last, "term %d appended after term %d", term, last);
        if (size == 0 || term > terms[size - 1]) {
            if (size == terms.length) {
                terms = Arrays.copyOf(terms, size * 2);
                starts = Arrays.copyOf(starts, size * 2);
            }
            terms[size] = term;
            starts[size] = baseOffset;
            size++;
        }
        this.lastOffset = lastOffset;
    }

    /**
     * The term of the entry holding {@code offset}; {@link #floorTerm()} at {@link #floorOffset()}; -1 when the
     * offset lies below the floor or past the end (unknown).
     */
    public long termAt(long offset) {
        if (offset == floorOffset) {
            return floorTerm;
        }
        if (offset < floorOffset || offset > lastOffset) {
            return -1;
        }
        int i = indexAt(offset);
        Verify.that(i >= 0, "offset %d inside the log has no term (floor %d)", offset, floorOffset);
        return terms[i];
    }

    /**
     * The largest offset whose term is at most {@code term}: the last offset of that term, or of the latest
     * earlier term present, or {@link #floorOffset()} when only the floor qualifies. Kafka's
     * OffsetForLeaderEpoch end offset is this plus one. Returns -1 when even the floor's term is larger (the
     * answer lies in the compacted prefix, unknown here).
     */
    public long lastOffsetAtOrBeforeTerm(long term) {
        int lo = 0;
        int hi = size - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (terms[mid] <= term) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found < 0) {
            return floorTerm <= term ? floorOffset : -1;
        }
        return found == size - 1 ? lastOffset : starts[found + 1] - 1;
    }

    /** The first offset written in {@code term}, or -1 when the log holds no entry of that term. */
    public long startOffsetOfTerm(long term) {
        for (int i = 0; i < size; i++) {
            if (terms[i] == term) {
                return starts[i];
            }
        }
        return -1;
    }

    /** Removes every entry at or after {@code fromOffset} (follower conflict resolution, paper §5.3). */
    public void truncateSuffix(long fromOffset) {
        Verify.that(fromOffset > floorOffset, "suffix truncation at %d into the floor %d", fromOffset, floorOffset);
        if (fromOffset > lastOffset) {
            return;
        }
        while (size > 0 && starts[size - 1] >= fromOffset) {
            size--;
        }
        lastOffset = fromOffset - 1;
    }

    /**
     * Drops everything up to and including {@code newFloorOffset}, which must be inside the log (compaction
     * after a snapshot, thesis §5.1).
     */
    public void truncatePrefix(long newFloorOffset) {
        if (newFloorOffset <= floorOffset) {
            return;
        }
        Verify.that(newFloorOffset <= lastOffset, "prefix truncation to %d past the last offset %d",
            newFloorOffset, lastOffset);
        long t = termAt(newFloorOffset);
        int keepFrom = indexAt(newFloorOffset + 1 <= lastOffset ? newFloorOffset + 1 : newFloorOffset);
        if (newFloorOffset == lastOffset) {
            size = 0;
        } else {
            int n = size - keepFrom;
            System.arraycopy(terms, keepFrom, terms, 0, n);
            System.arraycopy(starts, keepFrom, starts, 0, n);
            size = n;
            if (starts[0] <= newFloorOffset) {
                starts[0] = newFloorOffset + 1;
            }
        }
        floorOffset = newFloorOffset;
        floorTerm = t;
    }

    /**
     * Applies an installed snapshot ending at {@code lastOffset} in {@code lastTerm} (thesis §5.1, Figure 5.3):
     * when the log holds that very entry the suffix after it is kept, otherwise the whole log is replaced.
     *
     * @return true when the suffix was kept
     */
    public boolean installSnapshot(long lastOffset, long lastTerm) {
        if (lastOffset > floorOffset && termAt(lastOffset) == lastTerm) {
            truncatePrefix(lastOffset);
            return true;
        }
        if (lastOffset == floorOffset && floorTerm == lastTerm) {
            return true;
        }
        reset(lastOffset, lastTerm);
        return false;
    }

    private int indexAt(long offset) {
        int lo = 0;
        int hi = size - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] <= offset) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    /**
     * A checksummed image for a checkpoint file:
     * <pre>
     *   version i8 | floorOffset i64 | floorTerm i64 | lastOffset i64 | count i32 | (term i64, start i64) * count
     *   | crc32c i32 (of everything before it)
     * </pre>
     */
    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(1 + 8 * 3 + 4 + 16 * size + 4);
        b.put(FORMAT_VERSION).putLong(floorOffset).putLong(floorTerm).putLong(lastOffset).putInt(size);
        for (int i = 0; i < size; i++) {
            b.putLong(terms[i]).putLong(starts[i]);
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /** Reads an {@link #encode()} image; a damaged or foreign image throws {@link IllegalArgumentException}. */
    public static TermIndex decode(byte[] image) {
        if (image.length < 1 + 8 * 3 + 4 + 4) {
            throw new IllegalArgumentException("term index image of " + image.length + " bytes is too short");
        }
        ByteBuffer b = ByteBuffer.wrap(image);
        CRC32C crc = new CRC32C();
        crc.update(image, 0, image.length - 4);
        if ((int) crc.getValue() != b.getInt(image.length - 4)) {
            throw new IllegalArgumentException("term index image fails its checksum");
        }
        byte version = b.get();
        if (version != FORMAT_VERSION) {
            throw new IllegalArgumentException("term index image has unknown version " + version);
        }
        TermIndex t = new TermIndex();
        long floor = b.getLong();
        long floorTerm = b.getLong();
        long last = b.getLong();
        int n = b.getInt();
        if (n < 0 || image.length != 1 + 8 * 3 + 4 + 16L * n + 4) {
            throw new IllegalArgumentException("term index image length does not match its " + n + " entries");
        }
        t.reset(floor, floorTerm);
        long prevTerm = floorTerm;
        long prevStart = floor;
        for (int i = 0; i < n; i++) {
            long term = b.getLong();
            long start = b.getLong();
            if (term < prevTerm || (i > 0 && term == prevTerm) || start <= prevStart || start > last) {
                throw new IllegalArgumentException("term index image entry " + i + " (term " + term + " at " + start
                    + ") is out of order");
            }
            if (t.size == t.terms.length) {
                t.terms = Arrays.copyOf(t.terms, t.size * 2);
                t.starts = Arrays.copyOf(t.starts, t.size * 2);
            }
            t.terms[t.size] = term;
            t.starts[t.size] = start;
            t.size++;
            prevTerm = term;
            prevStart = start;
        }
        if (last < floor) {
            throw new IllegalArgumentException("term index image ends at " + last + " before its floor " + floor);
        }
        t.lastOffset = last;
        return t;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("TermIndex[floor=").append(floorOffset).append("@t").append(floorTerm);
        for (int i = 0; i < size; i++) {
            sb.append(", t").append(terms[i]).append('@').append(starts[i]);
        }
        return sb.append(", last=").append(lastOffset).append(']').toString();
    }
}
