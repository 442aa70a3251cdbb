package dev.isthmus.log;

/**
 * Per-log settings, named after Kafka's topic configs where one exists.
 *
 * @param segmentBytes        roll to a new segment past this size (segment.bytes)
 * @param segmentMs           roll a segment older than this (segment.ms)
 * @param maxBatchBytes       largest batch accepted (max.message.bytes)
 * @param indexIntervalBytes  bytes between sparse index entries (index.interval.bytes)
 * @param retentionBytes      delete oldest segments while the log is larger (retention.bytes; -1 = no limit)
 * @param retentionMs         delete segments whose newest record is older (retention.ms; -1 = no limit)
 * @param fallocateStepBytes  grow segment files ahead of the writer by this much (0 = never)
 * @param compact             cleanup.policy=compact
 * @param deleteRetentionMs   how long tombstones survive compaction (delete.retention.ms)
 * @param minCompactionLagMs  never compact a segment whose newest record is younger (min.compaction.lag.ms);
 *                            -1: the cleaner's setting ({@link LogManager.CompactionSettings#minLagMs()})
 * @param maxCompactionLagMs  compact a log, whatever its dirty ratio, once its first dirty sealed segment's newest
 *                            record is this old (max.compaction.lag.ms); {@link Long#MAX_VALUE}: never forced
 * @param minCleanableDirtyRatio compact a log once this share of its cleanable bytes is dirty
 *                            (min.cleanable.dirty.ratio); negative: the cleaner's setting
 */
public record LogConfig(long segmentBytes, long segmentMs, int maxBatchBytes, int indexIntervalBytes,
                        long retentionBytes, long retentionMs, long fallocateStepBytes, boolean compact,
                        long deleteRetentionMs, long minCompactionLagMs, long maxCompactionLagMs,
                        double minCleanableDirtyRatio) {

    /** Settings whose compaction lags and dirty ratio are the cleaner's. */
    public LogConfig(long segmentBytes, long segmentMs, int maxBatchBytes, int indexIntervalBytes, long retentionBytes,
                     long retentionMs, long fallocateStepBytes, boolean compact, long deleteRetentionMs) {
        this(segmentBytes, segmentMs, maxBatchBytes, indexIntervalBytes, retentionBytes, retentionMs,
            fallocateStepBytes, compact, deleteRetentionMs, -1, Long.MAX_VALUE, -1);
    }

    public LogConfig {
        if (minCompactionLagMs < -1 || maxCompactionLagMs < 1 || minCleanableDirtyRatio > 1
            || Double.isNaN(minCleanableDirtyRatio)) {
            throw new IllegalArgumentException("compaction lags and dirty ratio out of range: min lag "
                + minCompactionLagMs + ", max lag " + maxCompactionLagMs + ", ratio " + minCleanableDirtyRatio);
        }
        if (segmentBytes < 64 * 1024 || segmentBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("segment.bytes must be in [64 KiB, 2 GiB), got " + segmentBytes);
        }
        if (maxBatchBytes < RecordBatch.HEADER_BYTES || maxBatchBytes > segmentBytes) {
            throw new IllegalArgumentException("max.message.bytes must be in [" + RecordBatch.HEADER_BYTES
                + ", segment.bytes], got " + maxBatchBytes);
        }
        if (segmentMs <= 0 || indexIntervalBytes <= 0 || fallocateStepBytes < 0) {
            throw new IllegalArgumentException("segment.ms and index.interval.bytes must be positive,"
                + " fallocate step >= 0");
        }
    }

    /** Kafka's defaults (1 GiB segments, 7 days, 1 MiB batches), with 32 MiB fallocate steps. */
    public static LogConfig defaults() {
        return new LogConfig(1L << 30, 7L * 24 * 3600 * 1000, 1 << 20, 4096, -1, 7L * 24 * 3600 * 1000,
            32L << 20, false, 24L * 3600 * 1000);
    }

    public LogConfig withSegmentBytes(long bytes) {
        return new LogConfig(bytes, segmentMs, (int) Math.min(maxBatchBytes, bytes), indexIntervalBytes,
            retentionBytes, retentionMs, fallocateStepBytes, compact, deleteRetentionMs, minCompactionLagMs,
            maxCompactionLagMs, minCleanableDirtyRatio);
    }

    public LogConfig withMaxBatchBytes(int bytes) {
        return new LogConfig(segmentBytes, segmentMs, bytes, indexIntervalBytes, retentionBytes, retentionMs,
            fallocateStepBytes, compact, deleteRetentionMs, minCompactionLagMs,
            maxCompactionLagMs, minCleanableDirtyRatio);
    }

    public LogConfig withRetention(long bytes, long ms) {
        return new LogConfig(segmentBytes, segmentMs, maxBatchBytes, indexIntervalBytes, bytes, ms,
            fallocateStepBytes, compact, deleteRetentionMs, minCompactionLagMs,
            maxCompactionLagMs, minCleanableDirtyRatio);
    }

    public LogConfig withSegmentMs(long ms) {
        return new LogConfig(segmentBytes, ms, maxBatchBytes, indexIntervalBytes, retentionBytes, retentionMs,
            fallocateStepBytes, compact, deleteRetentionMs, minCompactionLagMs,
            maxCompactionLagMs, minCleanableDirtyRatio);
    }

    public LogConfig withFallocateStep(long bytes) {
        return new LogConfig(segmentBytes, segmentMs, maxBatchBytes, indexIntervalBytes, retentionBytes,
            retentionMs, bytes, compact, deleteRetentionMs, minCompactionLagMs, maxCompactionLagMs,
            minCleanableDirtyRatio);
    }

    /** These settings with their own compaction lags and dirty ratio (see the record's parameters). */
    public LogConfig withCompaction(long minLagMs, long maxLagMs, double minDirtyRatio) {
        return new LogConfig(segmentBytes, segmentMs, maxBatchBytes, indexIntervalBytes, retentionBytes, retentionMs,
            fallocateStepBytes, compact, deleteRetentionMs, minLagMs, maxLagMs, minDirtyRatio);
    }

    /** The scan/read window needed for the largest batch. */
    public int readWindowBytes() {
        long w = ((long) maxBatchBytes + 2 * 4096 + 4095) / 4096 * 4096;
        return (int) Math.max(w, 256 * 1024);
    }
}
