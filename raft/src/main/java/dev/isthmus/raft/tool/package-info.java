/**
 * {@link dev.isthmus.raft.tool.RaftNodeMain}: a Raft node as a process, with a line protocol for test clients
 * (the real-process tests start three of them).
 */
package dev.isthmus.raft.tool;
