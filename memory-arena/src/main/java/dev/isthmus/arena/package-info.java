/**
 * Fixed per-shard memory: {@link dev.isthmus.arena.MemoryArena} (one mapped region per shard, buddy allocator
 * for 64 KiB+ blocks, size-class slabs below, per-subsystem budgets with reclaim hooks, debug-mode poisoning
 * and leak sites), {@link dev.isthmus.arena.IoBuf} (reference-counted fragment chains read and written as if
 * contiguous, never linearised) and {@link dev.isthmus.arena.ShardArenas} (one arena per shard, frees of
 * foreign memory batched back to the owner through the cross-shard queues).
 */
package dev.isthmus.arena;
