/**
 * The controller group: cluster metadata ({@link dev.isthmus.gateway.cluster.ClusterState}: brokers, topics,
 * partitions with replicas and shards) as a replicated state machine, its commands
 * ({@link dev.isthmus.gateway.cluster.ControllerCommand}) with deterministic placement, and
 * {@link dev.isthmus.gateway.cluster.Controller}, which hosts the group on the controller shard and brings
 * commands from any node to its leader.
 */
package dev.isthmus.gateway.cluster;
