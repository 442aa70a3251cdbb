/**
 * The embeddable Raft host: {@link dev.isthmus.raft.server.RaftServer} runs a
 * {@link dev.isthmus.raft.server.RaftShard} (a {@link dev.isthmus.raft.RaftNode} and the logs of its groups) on
 * every shard of a shard group, over one transport; {@link dev.isthmus.raft.server.ReplicatedLog} is one
 * group as its owner (a partition, the controller) uses it: replicate, high watermark, leader, log.
 */
package dev.isthmus.raft.server;
