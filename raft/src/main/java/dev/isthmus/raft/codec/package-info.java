/**
 * The node-to-node wire format of Raft messages: {@link dev.isthmus.raft.codec.RaftCodec} frames each message
 * with a length, magic, version, type and CRC32C. Stateless; safe to share.
 */
package dev.isthmus.raft.codec;
