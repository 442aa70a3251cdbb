/**
 * Node-to-node RPC over TCP on the shard loops: {@link dev.isthmus.raft.net.RaftTransport} (one per node) and
 * its per-shard parts {@link dev.isthmus.raft.net.ShardTransport} (connections, routing by group id to the
 * hosting shard, bounded queues), {@link dev.isthmus.raft.net.PeerConnection} (hello, frame cutting, batched
 * sends), {@link dev.isthmus.raft.net.TransportFrames} (hello, ping and RPC frames sharing
 * {@link dev.isthmus.raft.codec.RaftCodec}'s checksummed header). Everything is owned by shard threads.
 */
package dev.isthmus.raft.net;
