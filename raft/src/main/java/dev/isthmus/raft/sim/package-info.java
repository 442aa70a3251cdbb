/**
 * Simulation support usable by any module's tests: {@link dev.isthmus.raft.sim.MemoryRaftLog}, a
 * {@link dev.isthmus.raft.RaftLog} in memory whose flushes complete when an injected disk says so and whose
 * crashes lose what was not durable. The deterministic cluster simulator itself lives in this package's tests.
 */
package dev.isthmus.raft.sim;
