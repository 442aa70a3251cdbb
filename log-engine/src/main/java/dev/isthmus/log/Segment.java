package dev.isthmus.log;

import dev.isthmus.uring.DmaFile;

import java.nio.file.Path;

/**
 * One segment of a log: the file {@code NNNNNNNNNNNNNNNNNNNN.log} named by its base offset, its sparse
 * indexes, and while it is the active (or sealing) segment, its {@link SegmentAppender}.
 *
 * <p>Owner: the log's shard thread.
 */
final class Segment implements SegmentAppender.Listener {
    final Log log;
    final long baseOffset;
    final Path path;
    final DmaFile file;
    final SegmentIndex index;
    /** End of the valid data (the next append's position). */
    long size;
    /** Last offset in this segment, or baseOffset - 1 when empty. */
    long lastOffset;
    /** When the segment got its first batch (ms), for segment.ms. */
    long createdMs;
    /** Largest batch max timestamp, for retention.ms. */
    long maxTimestamp = -1;
    SegmentAppender appender;
    boolean sealing;
    /** Its file came from the shard's {@link ZeroedSegments}: appends overwrite written blocks. */
    boolean zeroed;
    /** Its busy figures were logged (once per segment). */
    boolean busyReported;
    boolean deleted;
    /** Reads in flight on this segment's file (its fd stays open until they finish). */
    int readers;
    /** The index pointed a read at something other than the batch before it: lookups scan from 0 until reopened. */
    boolean indexDistrusted;

    Segment(Log log, long baseOffset, Path path, DmaFile file, SegmentIndex index) {
        this.log = log;
        this.baseOffset = baseOffset;
        this.path = path;
        this.file = file;
        this.index = index;
        this.lastOffset = baseOffset - 1;
    }

    static String fileName(long baseOffset, String suffix) {
        return String.format("%020d%s", baseOffset, suffix);
    }

    Path indexPath() {
        return path.resolveSibling(fileName(baseOffset, ".index"));
    }

    Path timeIndexPath() {
        return path.resolveSibling(fileName(baseOffset, ".timeindex"));
    }

    /** Where to start scanning for the batch holding {@code offset}: the index's answer, or 0 once it is distrusted. */
    long lookup(long offset) {
        return indexDistrusted ? 0 : index.lookup(offset);
    }

    /**
     * A read found the index wrong (it pointed into a batch, or past the batch it should precede): scan from the
     * start from now on, and delete the index files so the next open rebuilds them.
     */
    void distrustIndex(String why) {
        if (indexDistrusted) {
            return;
        }
        indexDistrusted = true;
        System.getLogger("dev.isthmus.log").log(System.Logger.Level.WARNING, "the index of " + path + " is wrong ("
            + why + "); reading it from the start until it is rebuilt at the next open");
        // In the background, after the log's queued file tasks (one may be writing these very files).
        java.nio.file.Path index = indexPath();
        java.nio.file.Path timeIndex = timeIndexPath();
        dev.isthmus.uring.FileOps fs = log.fs();
        fs.submitBackground(log.dir(), "delete the wrong index of " + path.getFileName(), () -> {
            fs.deleteIfExists(index);
            fs.deleteIfExists(timeIndex);
        });
    }

    boolean isEmpty() {
        return lastOffset < baseOffset;
    }

    /** Bytes readable from disk: everything written by completed writes (the whole file once sealed). */
    long readableEnd() {
        return appender == null ? size : Math.min(size, appender.written());
    }

    @Override
    public void onDurable(long durable) {
        log.onSegmentDurable(this, durable);
    }

    @Override
    public void onFailure(String what, int errno) {
        log.onStorageFailure(this, what, errno);
    }

    @Override
    public void onSpaceAvailable() {
        // The log waits for memory through the shared pool's line (ChunkPool.Waiter), not per segment.
    }

    @Override
    public void onIdle() {
        log.onSegmentIdle(this);
    }

    @Override
    public String toString() {
        return "Segment{" + baseOffset + ".." + lastOffset + ", " + size + " bytes" + (appender != null ? ", active" : "")
            + "}";
    }
}
