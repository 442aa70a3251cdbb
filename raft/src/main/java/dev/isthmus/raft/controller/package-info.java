/**
 * The controller group: cluster metadata ({@link dev.isthmus.raft.controller.ClusterState}: brokers, topics,
 * partitions with replicas and shards) as a replicated state machine, its commands
 * ({@link dev.isthmus.raft.controller.ControllerCommand}) with deterministic placement, and
 * {@link dev.isthmus.raft.controller.Controller}, which hosts the group on the controller shard and brings
 * commands from any node to its leader.
 */
package dev.isthmus.raft.controller;
