package dev.isthmus.log;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The sparse offset and timestamp indexes of one segment, kept in primitive arrays while the segment lives
 * and stored next to it in Kafka's file formats, so Kafka's tools can read them:
 * <pre>
 *  NNN.index      entries of 8 bytes:  relativeOffset i32 | position i32       (last offset of a batch -> its start)
 *  NNN.timeindex  entries of 12 bytes: timestamp i64 | relativeOffset i32      (max timestamp so far -> offset)
 * </pre>
 * An entry is added at most every {@code intervalBytes} of log (Kafka's index.interval.bytes). Lookups
 * return where to start scanning; the scan finds the exact batch.
 *
 * <p>Owner: the log's shard thread.
 */
public final class SegmentIndex {
    public static final int OFFSET_ENTRY_BYTES = 8;
    public static final int TIME_ENTRY_BYTES = 12;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final long baseOffset;
    private final int intervalBytes;
    // Entries live in blocks that are never copied as the index grows: the only allocation is the memory kept.
    private final IntBlocks relOffsets = new IntBlocks();
    private final IntBlocks positions = new IntBlocks();
    private int offsetEntries;
    private final LongBlocks timestamps = new LongBlocks();
    private final IntBlocks timeRelOffsets = new IntBlocks();
    private int timeEntries;
    private long bytesSinceEntry;
    private long maxTimestamp = -1;
    private long offsetOfMaxTimestamp = -1;

    public SegmentIndex(long baseOffset, int intervalBytes) {
        this.baseOffset = baseOffset;
        this.intervalBytes = intervalBytes;
    }

    public long baseOffset() {
        return baseOffset;
    }

    public int offsetEntries() {
        return offsetEntries;
    }

    public int timeEntries() {
        return timeEntries;
    }

    /** The largest timestamp seen, or -1. */
    public long maxTimestamp() {
        return maxTimestamp;
    }

    /** The offset (absolute) of the batch holding {@link #maxTimestamp()}, or -1. */
    public long offsetOfMaxTimestamp() {
        return offsetOfMaxTimestamp;
    }

    private int relative(long offset) {
        long rel = offset - baseOffset;
        if (rel < 0 || rel > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("offset " + offset + " does not fit segment " + baseOffset);
        }
        return (int) rel;
    }

    /**
     * Records a batch appended at file {@code position}: adds index entries when an interval of bytes has
     * passed since the last entry (and always for the first batch).
     */
    public void onBatch(long lastOffset, long position, int sizeBytes, long batchMaxTimestamp) {
        if (position > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("segment position " + position + " beyond 2 GiB");
        }
        boolean first = offsetEntries == 0;
        if (batchMaxTimestamp > maxTimestamp) {
            maxTimestamp = batchMaxTimestamp;
            offsetOfMaxTimestamp = lastOffset;
        }
        if (first || bytesSinceEntry >= intervalBytes) {
            relOffsets.set(offsetEntries, relative(lastOffset));
            positions.set(offsetEntries, (int) position);
            offsetEntries++;
            if (maxTimestamp >= 0 && (timeEntries == 0 || maxTimestamp > timestamps.get(timeEntries - 1))) {
                timestamps.set(timeEntries, maxTimestamp);
                timeRelOffsets.set(timeEntries, relative(offsetOfMaxTimestamp));
                timeEntries++;
            }
            bytesSinceEntry = 0;
        }
        bytesSinceEntry += sizeBytes;
    }

    /**
     * A file position at or before the batch that contains {@code offset}: the position of the last entry
     * whose offset is below {@code offset}, else 0.
     */
    public long lookup(long offset) {
        long rel = offset - baseOffset;
        if (rel <= 0) {
            return 0;
        }
        // Entries map a batch's last offset to its start; a batch whose last offset is below the target
        // ends before the target's batch, so scanning from it is safe.
        int lo = 0;
        int hi = offsetEntries - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (relOffsets.get(mid) < rel) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found < 0 ? 0 : positions.get(found);
    }

    /**
     * The offset to start scanning from for the first batch with max timestamp >= {@code timestamp}: the
     * offset of the last time entry below it, else the segment's base offset.
     */
    public long lookupTimestamp(long timestamp) {
        int lo = 0;
        int hi = timeEntries - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (timestamps.get(mid) < timestamp) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found < 0 ? baseOffset : baseOffset + timeRelOffsets.get(found);
    }

    /** Drops entries at or past {@code position} (suffix truncation). */
    public void truncateTo(long position, long lastOffsetKept) {
        while (offsetEntries > 0 && positions.get(offsetEntries - 1) >= position) {
            offsetEntries--;
        }
        while (timeEntries > 0 && baseOffset + timeRelOffsets.get(timeEntries - 1) > lastOffsetKept) {
            timeEntries--;
        }
        // The largest timestamp of the kept prefix is known only as far as the time index tells.
        maxTimestamp = timeEntries > 0 ? timestamps.get(timeEntries - 1) : -1;
        offsetOfMaxTimestamp = timeEntries > 0 ? baseOffset + timeRelOffsets.get(timeEntries - 1) : -1;
        bytesSinceEntry = intervalBytes;
    }

    /** How many offset entries point below file {@code position} (entries are in position order). */
    public int offsetEntriesBelow(long position) {
        int lo = 0;
        int hi = offsetEntries;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (positions.get(mid) < position) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** The file position of offset entry {@code i}: the start of the batch it was made for. */
    public long entryPosition(int i) {
        return positions.get(i);
    }

    /** The last offset (absolute) of the batch offset entry {@code i} was made for. */
    public long entryLastOffset(int i) {
        return baseOffset + relOffsets.get(i);
    }

    /** How many time entries point at offsets up to {@code offset} (entries are in offset order). */
    public int timeEntriesUpTo(long offset) {
        int n = 0;
        while (n < timeEntries && baseOffset + timeRelOffsets.get(n) <= offset) {
            n++;
        }
        return n;
    }

    /** Bytes of the Kafka-format offset index. */
    public int offsetIndexBytes() {
        return offsetEntries * OFFSET_ENTRY_BYTES;
    }

    /** Bytes of the Kafka-format time index. */
    public int timeIndexBytes() {
        return timeEntries * TIME_ENTRY_BYTES;
    }

    /** Writes the offset index in Kafka's format into {@code dst}. */
    public void writeOffsetIndex(MemorySegment dst) {
        writeOffsetIndex(dst, 0, offsetEntries);
    }

    /** Writes offset index entries [from, from + n) in Kafka's format at the start of {@code dst}. */
    public void writeOffsetIndex(MemorySegment dst, int from, int n) {
        for (int i = 0; i < n; i++) {
            dst.set(INT, (long) i * OFFSET_ENTRY_BYTES, relOffsets.get(from + i));
            dst.set(INT, (long) i * OFFSET_ENTRY_BYTES + 4, positions.get(from + i));
        }
    }

    /** Writes the time index in Kafka's format into {@code dst}. */
    public void writeTimeIndex(MemorySegment dst) {
        writeTimeIndex(dst, 0, timeEntries);
    }

    /** Writes time index entries [from, from + n) in Kafka's format at the start of {@code dst}. */
    public void writeTimeIndex(MemorySegment dst, int from, int n) {
        for (int i = 0; i < n; i++) {
            dst.set(LONG, (long) i * TIME_ENTRY_BYTES, timestamps.get(from + i));
            dst.set(INT, (long) i * TIME_ENTRY_BYTES + 8, timeRelOffsets.get(from + i));
        }
    }

    /**
     * Loads a Kafka-format offset and time index, validating them against the segment's size. Returns false
     * (leaving this index empty) when either is damaged: entries out of order, positions beyond the
     * segment, a length that is not a whole number of entries. The caller then rebuilds by scanning.
     */
    public boolean load(MemorySegment offsetIndex, long offsetIndexBytes, MemorySegment timeIndex,
                        long timeIndexBytes, long segmentBytes) {
        if (offsetIndexBytes % OFFSET_ENTRY_BYTES != 0 || timeIndexBytes % TIME_ENTRY_BYTES != 0) {
            return false;
        }
        int n = (int) (offsetIndexBytes / OFFSET_ENTRY_BYTES);
        int[] ro = new int[Math.max(64, n)];
        int[] pos = new int[Math.max(64, n)];
        for (int i = 0; i < n; i++) {
            ro[i] = offsetIndex.get(INT, (long) i * OFFSET_ENTRY_BYTES);
            pos[i] = offsetIndex.get(INT, (long) i * OFFSET_ENTRY_BYTES + 4);
            if (ro[i] < 0 || pos[i] < 0 || pos[i] >= segmentBytes
                || (i > 0 && (ro[i] <= ro[i - 1] || pos[i] <= pos[i - 1]))) {
                return false;
            }
        }
        int t = (int) (timeIndexBytes / TIME_ENTRY_BYTES);
        long[] ts = new long[Math.max(16, t)];
        int[] tro = new int[Math.max(16, t)];
        for (int i = 0; i < t; i++) {
            ts[i] = timeIndex.get(LONG, (long) i * TIME_ENTRY_BYTES);
            tro[i] = timeIndex.get(INT, (long) i * TIME_ENTRY_BYTES + 8);
            if (tro[i] < 0 || (i > 0 && (ts[i] <= ts[i - 1] || tro[i] < tro[i - 1]))) {
                return false;
            }
        }
        for (int i = 0; i < n; i++) {
            relOffsets.set(i, ro[i]);
            positions.set(i, pos[i]);
        }
        offsetEntries = n;
        for (int i = 0; i < t; i++) {
            timestamps.set(i, ts[i]);
            timeRelOffsets.set(i, tro[i]);
        }
        timeEntries = t;
        if (t > 0) {
            maxTimestamp = ts[t - 1];
            offsetOfMaxTimestamp = baseOffset + tro[t - 1];
        }
        bytesSinceEntry = intervalBytes;
        return true;
    }

    private static final int BLOCK_SHIFT = 10;
    private static final int BLOCK = 1 << BLOCK_SHIFT;

    /** Growable int storage in blocks of 1024: growing never copies entries. */
    private static final class IntBlocks {
        private int[][] blocks = new int[1][];

        int get(int i) {
            return blocks[i >>> BLOCK_SHIFT][i & (BLOCK - 1)];
        }

        void set(int i, int v) {
            int b = i >>> BLOCK_SHIFT;
            if (b >= blocks.length) {
                blocks = Arrays.copyOf(blocks, Math.max(b + 1, blocks.length * 2));
            }
            if (blocks[b] == null) {
                blocks[b] = new int[b == 0 ? 64 : BLOCK];
            } else if (b == 0 && i >= blocks[0].length) {
                blocks[0] = Arrays.copyOf(blocks[0], Math.min(BLOCK, blocks[0].length * 4)); // small indexes stay small
            }
            blocks[b][i & (BLOCK - 1)] = v;
        }
    }

    /** Growable long storage in blocks of 1024: growing never copies entries. */
    private static final class LongBlocks {
        private long[][] blocks = new long[1][];

        long get(int i) {
            return blocks[i >>> BLOCK_SHIFT][i & (BLOCK - 1)];
        }

        void set(int i, long v) {
            int b = i >>> BLOCK_SHIFT;
            if (b >= blocks.length) {
                blocks = Arrays.copyOf(blocks, Math.max(b + 1, blocks.length * 2));
            }
            if (blocks[b] == null) {
                blocks[b] = new long[b == 0 ? 16 : BLOCK];
            } else if (b == 0 && i >= blocks[0].length) {
                blocks[0] = Arrays.copyOf(blocks[0], Math.min(BLOCK, blocks[0].length * 4));
            }
            blocks[b][i & (BLOCK - 1)] = v;
        }
    }
}
