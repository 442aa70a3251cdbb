/**
 * Raft consensus for Isthmus: one group per partition, and whatever groups the embedder hosts (kafka-gateway's
 * controller). The protocol core is a pure,
 * event-driven, single-threaded state machine per group driven by a per-node multiplexer, against injected
 * storage ({@link dev.isthmus.raft.RaftLog}), transport ({@link dev.isthmus.raft.Transport}), clock and
 * randomness, so that a deterministic simulator can run it. Everything here is owned by one shard thread;
 * see each class for its contract.
 */
package dev.isthmus.raft;
