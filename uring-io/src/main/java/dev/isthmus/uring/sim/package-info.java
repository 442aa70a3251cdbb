/**
 * A simulated machine's storage for deterministic simulation (TigerBeetle's VOPR, FoundationDB's simulator):
 * {@link dev.isthmus.uring.sim.SimDisk} holds the files in memory with a crash model (what fdatasync and directory
 * syncs made durable survives; the rest survives whole, in part or not at all), {@link dev.isthmus.uring.sim.SimEngine}
 * is a real {@link dev.isthmus.uring.IoEngine} over it whose completions fall due on virtual time
 * ({@link dev.isthmus.uring.sim.SimClock}) with latencies and faults drawn from a seed
 * ({@link dev.isthmus.uring.sim.SimFaults}).
 *
 * <p>It lives in the main code, not a test jar, so that every module's tests (log-engine, raft, the gateway) and
 * tools (the chaos suite's in-process runs) can put real storage code on it with an ordinary dependency; nothing in
 * production creates one. Everything here is owned by one thread, the simulation's.
 */
package dev.isthmus.uring.sim;
