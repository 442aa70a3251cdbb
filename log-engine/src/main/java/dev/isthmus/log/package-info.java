/**
 * The log engine: a durable, append-only, segmented log of Kafka v2 record batches on O_DIRECT files.
 * {@link dev.isthmus.log.Log} (one partition: append of contiguous memory or {@link dev.isthmus.arena.IoBuf}
 * chains, offsets at once and durability reported later, reads bounded by the caller's durable/committed end,
 * timestamp lookup, prefix and suffix truncation, retention, recovery), {@link dev.isthmus.log.LogManager}
 * (the one owner of a shard's log housekeeping: one flush per loop turn, compaction scheduling, the shared
 * pools, cache and zeroed segment stock), {@code SegmentReader} (the one reader of segment files: recovery,
 * truncation, compaction, copying reads and cache fills), {@link dev.isthmus.log.BatchCache} (the
 * shard's cache of batches as zero-copy chains, with read-ahead), {@link dev.isthmus.log.SegmentAppender}
 * (aligned write-behind chunks written out of order, debounced fdatasync, fallocate ahead) and the Kafka
 * batch format helpers ({@link dev.isthmus.log.RecordBatch}, {@link dev.isthmus.log.Records},
 * {@link dev.isthmus.log.BatchBuilder}). Everything runs on the owning shard's thread; see the module README.
 */
package dev.isthmus.log;
