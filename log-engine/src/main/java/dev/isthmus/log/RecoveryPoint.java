package dev.isthmus.log;

import dev.isthmus.uring.FileOps;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * A log's recovery point: a place in its active segment below which every byte of the log is durable, with the
 * segment's sparse index up to there, so that recovery after a crash validates only the tail past it instead of the
 * last two segments in full (issue 22: with 1 GiB segments a restart validated up to 2 GiB a partition before it
 * served). Kafka's recovery-point checkpoint plays the same part, but Kafka still rescans the whole segment holding
 * it; this one carries that segment's index, so the scan starts at the point itself.
 *
 * <p>File {@code recovery-point} in the log's directory, written atomically (temporary file, fdatasync, rename)
 * in the background by {@link Log} every {@link Log#recoveryPointEveryBytes} bytes the active segment made durable,
 * while the segment before it has finished sealing. Layout, big-endian:
 * <pre>
 *   0  int   magic 0x49525054 ("IRPT")
 *   4  int   version 1
 *   8  long  base offset of the segment
 *  16  long  position P: the start of a batch; every byte of the log before it is durable
 *  24  long  the last offset of the batch at P (checked when recovery reads it)
 *  32  int   n, offset index entries (Kafka's 8-byte format), every one below P
 *  36  int   t, time index entries (Kafka's 12-byte format), up to the batch before P
 *  40  n * 8 + t * 12 bytes of entries
 *  ..  int   CRC-32C of everything before it
 * </pre>
 * The batch at P is the one the index's last entry below the durable end was made for; it is scanned again, which
 * re-creates that entry and covers every timestamp the index had not recorded between entries.
 *
 * <p>Validity: it is used only when it names the log's last segment and P lies inside it, and only after an unclean
 * shutdown. A suffix truncation deletes it (durably) before the cut is reported durable; compaction never rewrites
 * the active segment; retention never deletes the last one. When the batch at P is not where it says, recovery
 * falls back to a full scan of the segment.
 *
 * <p>Immutable; made on the log's thread, written by the file-task thread, read by recovery.
 */
record RecoveryPoint(long baseOffset, long position, long batchLastOffset, byte[] offsetEntries, byte[] timeEntries) {
    static final String FILE = "recovery-point";
    private static final int MAGIC = 0x49525054;
    private static final int VERSION = 1;
    private static final int HEADER_BYTES = 40;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /**
     * The recovery point of {@code index}'s segment for a durable end at {@code durablePosition}, as the file's bytes,
     * or null when the index has no entry below it past the first (nothing worth recording).
     */
    static byte[] encode(SegmentIndex index, long durablePosition) {
        int below = index.offsetEntriesBelow(durablePosition);
        if (below < 2) {
            return null;
        }
        int n = below - 1; // the last entry's batch is scanned again
        long position = index.entryPosition(n);
        long batchLast = index.entryLastOffset(n);
        int t = index.timeEntriesUpTo(batchLast);
        int size = HEADER_BYTES + n * SegmentIndex.OFFSET_ENTRY_BYTES + t * SegmentIndex.TIME_ENTRY_BYTES + 4;
        byte[] bytes = new byte[size];
        MemorySegment m = MemorySegment.ofArray(bytes);
        m.set(INT, 0, MAGIC);
        m.set(INT, 4, VERSION);
        m.set(LONG, 8, index.baseOffset());
        m.set(LONG, 16, position);
        m.set(LONG, 24, batchLast);
        m.set(INT, 32, n);
        m.set(INT, 36, t);
        index.writeOffsetIndex(m.asSlice(HEADER_BYTES), 0, n);
        index.writeTimeIndex(m.asSlice(HEADER_BYTES + (long) n * SegmentIndex.OFFSET_ENTRY_BYTES), 0, t);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, size - 4);
        m.set(INT, size - 4, (int) crc.getValue());
        return bytes;
    }

    /** Parses the file's bytes; null when they are damaged (wrong magic, version, length or checksum). */
    static RecoveryPoint decode(byte[] bytes) {
        if (bytes.length < HEADER_BYTES + 4) {
            return null;
        }
        MemorySegment m = MemorySegment.ofArray(bytes);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        if (m.get(INT, 0) != MAGIC || m.get(INT, 4) != VERSION || m.get(INT, bytes.length - 4) != (int) crc.getValue()) {
            return null;
        }
        long base = m.get(LONG, 8);
        long position = m.get(LONG, 16);
        long batchLast = m.get(LONG, 24);
        int n = m.get(INT, 32);
        int t = m.get(INT, 36);
        if (n < 1 || t < 0 || position <= 0 || batchLast < base
            || HEADER_BYTES + (long) n * SegmentIndex.OFFSET_ENTRY_BYTES + (long) t * SegmentIndex.TIME_ENTRY_BYTES + 4
            != bytes.length) {
            return null;
        }
        int o = HEADER_BYTES;
        byte[] offsets = java.util.Arrays.copyOfRange(bytes, o, o + n * SegmentIndex.OFFSET_ENTRY_BYTES);
        o += n * SegmentIndex.OFFSET_ENTRY_BYTES;
        byte[] times = java.util.Arrays.copyOfRange(bytes, o, o + t * SegmentIndex.TIME_ENTRY_BYTES);
        return new RecoveryPoint(base, position, batchLast, offsets, times);
    }

    /** Reads {@code dir}'s recovery point: null when there is none or it is damaged. */
    static RecoveryPoint read(FileOps fs, Path dir) throws IOException {
        Path p = dir.resolve(FILE);
        if (!fs.exists(p)) {
            return null;
        }
        RecoveryPoint rp = decode(fs.readAllBytes(p));
        if (rp == null) {
            System.getLogger("dev.isthmus.log").log(System.Logger.Level.WARNING, "ignoring damaged " + p
                + " (recovery validates the last two segments instead)");
        }
        return rp;
    }

    /**
     * Loads the entries into {@code index} (empty, of the segment at {@link #baseOffset}); false when they do not
     * fit a segment of {@code segmentBytes} bytes, leaving the index empty.
     */
    boolean loadInto(SegmentIndex index, long segmentBytes) {
        if (index.baseOffset() != baseOffset || position >= segmentBytes) {
            return false;
        }
        return index.load(MemorySegment.ofArray(offsetEntries), offsetEntries.length, MemorySegment.ofArray(timeEntries),
            timeEntries.length, position);
    }
}
