package dev.isthmus.raft.storage;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.Verify;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.FileOps;
import dev.isthmus.uring.IoEngine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * A small durable file of checksummed records, written with direct I/O and fdatasync through the shard's
 * {@link IoEngine}, never blocking: the home of a Raft group's hard state (term, vote), its snapshot and its
 * term-index checkpoint. Each write replaces the whole state; the file holds the latest record and the one
 * before it in two regions used alternately, so a write torn by a crash leaves the previous record intact.
 *
 * <pre>
 *   record (at a 4 KiB-aligned position, padded to the file's alignment):
 *   0  magic i32 'RFTS' | 4 version i16 | 6 reserved i16 | 8 seq i64 | 16 bodyBytes i32 | 20 crc32c i32
 *   24 regionA position i64 | 32 regionA capacity i32 | 36 regionB capacity i32 | 40 regionB position i64
 *   48 body ...
 *   crc32c covers bytes [0, 20), [24, 48) and the body.
 * </pre>
 * A record too large for its region moves that region to the end of the file with twice the room (the file
 * grows only when the state does; the region table travels in every record). Recovery reads the file once,
 * at open, with an ordinary short read, and keeps the valid record with the highest sequence number.
 *
 * <p>Owner: the engine's thread. One write is in flight at a time; the caller coalesces.
 */
public final class RaftStateFile implements CompletionHandler {
    static final int MAGIC = 0x52465453;
    static final short VERSION = 1;
    static final int HEADER_BYTES = 48;
    private static final int INITIAL_REGION_BYTES = 16 * 1024;

    /** Completion of {@link #write}. */
    public interface WriteHandler {
        /** The record is durable ({@code error} null) or the write failed (message names file and errno). */
        void onWritten(String error);
    }

    private final Path path;
    private final DmaFile file;
    private final int alignment;
    private final long[] regionPos = new long[2];
    private final int[] regionCap = new int[2];
    private int current;
    private long seq;
    private long fileEnd;
    private byte[] recovered;
    private MemorySegment buffer;
    private WriteHandler pending;
    private int pendingRegion;
    private boolean closed;

    private RaftStateFile(Path path, DmaFile file) {
        this.path = path;
        this.file = file;
        this.alignment = Math.max(file.alignment(), 4096);
    }

    /**
     * Opens (creating if needed) the state file at {@code path} and recovers its latest valid record
     * (see {@link #recovered()}). Creation makes the directory entry durable before returning.
     */
    public static RaftStateFile open(IoEngine engine, Path path) {
        FileOps fs = engine.fileOps();
        boolean existed = fs.exists(path);
        DmaFile f = engine.openDmaFile(path, true);
        RaftStateFile s = new RaftStateFile(path, f);
        try {
            if (!existed) {
                fs.syncDirectory(path.getParent());
            }
            s.recover(fs);
        } catch (IOException e) {
            f.close();
            throw new UncheckedIOException("cannot read Raft state file " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
        return s;
    }

    private void recover(FileOps fs) throws IOException {
        byte[] all = fs.readAllBytes(path);
        fileEnd = alignUp(all.length);
        ByteBuffer b = ByteBuffer.wrap(all);
        long bestSeq = -1;
        int bestPos = -1;
        for (int pos = 0; pos + HEADER_BYTES <= all.length; pos += 4096) {
            if (b.getInt(pos) != MAGIC || b.getShort(pos + 4) != VERSION) {
                continue;
            }
            int bodyBytes = b.getInt(pos + 16);
            if (bodyBytes < 0 || (long) pos + HEADER_BYTES + bodyBytes > all.length) {
                continue;
            }
            if (crc(all, pos, bodyBytes) != b.getInt(pos + 20)) {
                continue;
            }
            long s = b.getLong(pos + 8);
            if (s > bestSeq) {
                bestSeq = s;
                bestPos = pos;
            }
        }
        if (bestPos < 0) {
            regionPos[0] = 0;
            regionCap[0] = INITIAL_REGION_BYTES;
            regionPos[1] = INITIAL_REGION_BYTES;
            regionCap[1] = INITIAL_REGION_BYTES;
            fileEnd = Math.max(fileEnd, 2L * INITIAL_REGION_BYTES);
            current = 1;
            seq = 0;
            recovered = null;
            return;
        }
        seq = bestSeq;
        regionPos[0] = b.getLong(bestPos + 24);
        regionCap[0] = b.getInt(bestPos + 32);
        regionCap[1] = b.getInt(bestPos + 36);
        regionPos[1] = b.getLong(bestPos + 40);
        current = regionPos[0] == bestPos ? 0 : 1;
        Verify.that(regionPos[current] == bestPos, "state record at %d lies outside its region table (%d, %d)",
            bestPos, regionPos[0], regionPos[1]);
        for (int i = 0; i < 2; i++) {
            fileEnd = Math.max(fileEnd, regionPos[i] + regionCap[i]);
        }
        int bodyBytes = b.getInt(bestPos + 16);
        recovered = new byte[bodyBytes];
        System.arraycopy(all, bestPos + HEADER_BYTES, recovered, 0, bodyBytes);
    }

    private static int crc(byte[] a, int pos, int bodyBytes) {
        CRC32C c = new CRC32C();
        c.update(a, pos, 20);
        c.update(a, pos + 24, HEADER_BYTES - 24 + bodyBytes);
        return (int) c.getValue();
    }

    /** The body of the latest valid record found at open, or null for a new file. */
    public byte[] recovered() {
        return recovered;
    }

    public Path path() {
        return path;
    }

    /** True while a write is in flight. */
    public boolean busy() {
        return pending != null;
    }

    /**
     * Writes {@code body} as the new state: into the region not holding the latest record, then fdatasync;
     * {@code handler} runs on the engine thread when durable. Only one write may be in flight.
     */
    public void write(byte[] body, WriteHandler handler) {
        Verify.that(pending == null, "two writes in flight on a Raft state file");
        if (closed) {
            throw new IllegalStateException("Raft state file " + path + " is closed");
        }
        int target = 1 - current;
        int needed = (int) alignUp(HEADER_BYTES + (long) body.length);
        if (needed > regionCap[target]) {
            regionPos[target] = fileEnd;
            regionCap[target] = (int) alignUp(2L * needed);
            fileEnd += regionCap[target];
        }
        byte[] rec = new byte[needed];
        ByteBuffer b = ByteBuffer.wrap(rec);
        b.putInt(MAGIC).putShort(VERSION).putShort((short) 0).putLong(seq + 1).putInt(body.length).putInt(0)
            .putLong(regionPos[0]).putInt(regionCap[0]).putInt(regionCap[1]).putLong(regionPos[1]);
        System.arraycopy(body, 0, rec, HEADER_BYTES, body.length);
        b.putInt(20, crc(rec, 0, body.length));
        buffer = Arena.ofAuto().allocate(needed, alignment);
        MemorySegment.copy(rec, 0, buffer, ValueLayout.JAVA_BYTE, 0, needed);
        pending = handler;
        pendingRegion = target;
        long r = file.write(buffer, regionPos[target], this, 1);
        if (r < 0) {
            fail("write", (int) r);
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (pending == null) {
            return;
        }
        if (result < 0) {
            fail(attachment == 1 ? "write" : "fdatasync", result);
            return;
        }
        if (attachment == 1) {
            long r = file.datasync(this, 2);
            if (r < 0) {
                fail("fdatasync", (int) r);
            }
            return;
        }
        seq++;
        current = pendingRegion;
        buffer = null;
        WriteHandler h = pending;
        pending = null;
        h.onWritten(null);
    }

    private void fail(String what, int errno) {
        WriteHandler h = pending;
        pending = null;
        buffer = null;
        h.onWritten(what + " of Raft state file " + path + " failed: " + Errno.describe(-Math.abs(errno)));
    }

    private long alignUp(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /** Closes the file; no write may be in flight. */
    public void close() {
        if (!closed) {
            Verify.that(pending == null, "closing a Raft state file with a write in flight");
            closed = true;
            file.close();
        }
    }
}
