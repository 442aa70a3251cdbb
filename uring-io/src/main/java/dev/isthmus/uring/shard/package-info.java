/**
 * The thread-per-core runtime: {@link dev.isthmus.uring.shard.ShardGroup} starts one pinned platform thread
 * per shard, each driving its own io_uring through a {@link dev.isthmus.uring.shard.Shard} loop (reap, run
 * tasks under a quota, fire timers, run pollers, one kernel entry); {@link dev.isthmus.uring.shard.Promise} is
 * the single-threaded result type; {@link dev.isthmus.uring.shard.ShardCall} is the allocation-free
 * cross-shard message over per-pair SPSC queues with MSG_RING wakeups, carrying piggybacked shard-local
 * metadata into each caller's {@link dev.isthmus.uring.shard.RemoteView}.
 */
package dev.isthmus.uring.shard;
