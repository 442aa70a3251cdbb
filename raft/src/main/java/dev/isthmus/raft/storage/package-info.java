/**
 * Production storage for Raft groups: {@link dev.isthmus.raft.storage.LogEngineRaftLog} keeps a group's
 * entries in a log-engine {@link dev.isthmus.log.Log} as Kafka v2 batches (term = partitionLeaderEpoch,
 * Raft-internal entries as control batches, see {@link dev.isthmus.raft.storage.RaftBatches}) and its hard
 * state, snapshot and term-index checkpoint in a {@link dev.isthmus.raft.storage.RaftStateFile} (O_DIRECT,
 * checksummed, two alternating records). Everything is owned by the shard thread of the I/O engine.
 */
package dev.isthmus.raft.storage;
