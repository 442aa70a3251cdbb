package dev.isthmus.log;

import org.HdrHistogram.Histogram;

/**
 * Measured disk latency of one shard's logs: fdatasync and chunk-write latencies in microseconds. Upper
 * layers read {@link #syncP99Micros()} to fail a request early when the disk cannot meet its deadline
 * (latency fed back from the disk). Owner: the shard thread; {@link #snapshot()} copies for other threads.
 */
public final class DiskStats {
    private final Histogram syncMicros = new Histogram(60_000_000L, 2);
    private final Histogram writeMicros = new Histogram(60_000_000L, 2);
    private long syncs;
    private long writes;
    private long cachedSyncP99 = -1;

    void recordSync(long nanos) {
        syncMicros.recordValue(Math.min(60_000_000L, Math.max(0, nanos / 1000)));
        if ((++syncs & 63) == 0) {
            cachedSyncP99 = -1;
        }
    }

    void recordWrite(long nanos) {
        writeMicros.recordValue(Math.min(60_000_000L, Math.max(0, nanos / 1000)));
        writes++;
    }

    /** fdatasyncs measured. */
    public long syncs() {
        return syncs;
    }

    /** Chunk writes measured. */
    public long writes() {
        return writes;
    }

    /** The 99th percentile of fdatasync latency so far (µs), recomputed every 64 syncs; 0 before any. */
    public long syncP99Micros() {
        if (cachedSyncP99 < 0) {
            cachedSyncP99 = syncMicros.getTotalCount() == 0 ? 0 : syncMicros.getValueAtPercentile(99);
        }
        return cachedSyncP99;
    }

    /** Copies of the histograms (sync, write), for metrics outside the shard thread. */
    public Histogram[] snapshot() {
        return new Histogram[] {syncMicros.copy(), writeMicros.copy()};
    }
}
