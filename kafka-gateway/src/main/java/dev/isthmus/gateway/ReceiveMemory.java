package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.shard.Shard;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A shard's receive memory (its arena's NETWORK_RECEIVE budget) shared fairly among the shard's connections,
 * with a deadline on every request a client starts sending. Owner: the shard's thread; every method runs there
 * (the counters at the bottom are atomics so that the metrics thread can read them).
 *
 * <h2>Accounting</h2>
 * Each {@link Connection} is charged what it holds in receive memory, and what it was promised: the requests
 * it sent whose handlers still run (their bytes are zero-copy slices of what was received), the bytes received
 * and not yet parsed, and the rest of the request frame it is receiving once that frame was granted. The sum
 * over the shard's connections is {@link #committedBytes()}; it never passes {@link #capacityBytes()} through a
 * grant.
 *
 * <h2>Grants</h2>
 * Once a frame's length is known and the frame is not complete yet, its connection asks for a grant of the
 * whole frame before reading on:
 * <ul>
 *   <li>a frame larger than {@link #maxFrameBytes()} (the budget less a quarter of the headroom) can never be
 *       received: the connection is closed with one logged reason (raise {@code --memory} or lower
 *       {@code --max-request-bytes});</li>
 *   <li>a small frame (up to {@link #SMALL_FRAME_BYTES}, every request a client sends to connect, look up
 *       metadata, join a group or fetch) is granted while the budget has room;</li>
 *   <li>a large frame is granted while the budget less a headroom (an eighth of it, 256 KiB to 16 MiB) has room,
 *       or, when no other large frame is being received, while {@link #maxFrameBytes()} has room; in the order they
 *       asked, and only while the connection holds at most its share ({@code --connection-receive-share}
 *       percent of the budget less the headroom) — unless it holds nothing else, so that one request up to the
 *       maximum size can always be received.</li>
 * </ul>
 * A connection refused a grant stops reading (TCP back-pressure: its client's sends block) and waits here in
 * arrival order; it is woken as memory comes back. The headroom keeps small frames, so new clients, served
 * while large ones wait.
 *
 * <p>No large frame may take the last quarter of the headroom, so a frame above the budget less that can never
 * be received. A waiting connection still holds what the engine had taken from its socket before it stopped
 * reading (on io_uring, the completions of its multishot receive already posted: hundreds of KiB against a
 * client writing flat out), and that can fill the headroom. Two rules keep the shard moving: while a small frame
 * waits, the waiting large frame holding the most is closed with a logged reason (small frames are new clients
 * and control requests); and should waiting connections hold all the committed memory between them and none
 * fit, no release could ever come, so the last of them to arrive is closed, until one fits. (The first rule
 * waits a sweep period, a quarter of the request receive timeout and at most a second, for memory to come back
 * by itself.)
 *
 * <h2>Deadlines</h2>
 * A connection that received the first byte of a frame must receive the rest within the request receive timeout
 * ({@code --request-receive-timeout}), not counting time it spent stopped by the broker (waiting for a grant or
 * for its own responses to leave); otherwise it is closed with one logged reason. A slowloris client, or one
 * that sends 99 MiB of a 100 MiB frame and waits, thus holds memory for at most that long. A periodic sweep
 * (a quarter of the timeout, at most every second) checks the shard's connections and retries waiters.
 */
final class ReceiveMemory {
    /** Frames up to this size are small: granted from the whole budget, headroom included. */
    static final long SMALL_FRAME_BYTES = 64 * 1024;

    /** The outcome of asking for a grant. */
    enum Grant { GRANTED, WAIT, NEVER }

    private final Shard shard;
    private final long capacityBytes;
    private final long headroomBytes;
    private final long shareBytes;
    private final long timeoutNs;
    private final long sweepNs;
    private long committedBytes;
    /** Connections receiving a large frame now (grants not yet turned into requests). */
    private int largeFrames;
    /** Connections waiting for a grant or for memory, in arrival order. */
    private final ArrayDeque<Connection> waiting = new ArrayDeque<>();
    /** Every open connection of the shard (swept for deadlines). */
    private final Set<Connection> connections = new LinkedHashSet<>();
    private boolean sweepScheduled;
    private boolean wakeScheduled;
    /** Set during a wake pass once a large frame could not be granted: later large ones keep their turn. */
    private boolean largeTurnTaken;

    // Read by the metrics thread.
    private final AtomicLong committedGauge = new AtomicLong();
    private final AtomicLong waitingGauge = new AtomicLong();
    private final AtomicLong waits = new AtomicLong();

    ReceiveMemory(Shard shard, MemoryArena arena, long timeoutNs, int sharePercent) {
        this.shard = shard;
        this.capacityBytes = arena.limit(Subsystem.NETWORK_RECEIVE);
        this.headroomBytes = Math.min(16L << 20, Math.max(256L << 10, capacityBytes / 8));
        long pool = Math.max(0, capacityBytes - headroomBytes);
        this.shareBytes = pool * sharePercent / 100;
        this.timeoutNs = timeoutNs;
        this.sweepNs = Math.max(5_000_000L, Math.min(1_000_000_000L, timeoutNs / 4));
    }

    long capacityBytes() {
        return capacityBytes;
    }

    /** The most of the budget large frames may take together: the budget less the headroom. */
    long largePoolBytes() {
        return capacityBytes - headroomBytes;
    }

    /**
     * The largest frame a connection may receive: the budget less a quarter of the headroom, which no large frame
     * may take, so that small frames (new clients) always find some room.
     */
    long maxFrameBytes() {
        return capacityBytes - headroomBytes / 4;
    }

    long shareBytes() {
        return shareBytes;
    }

    long timeoutNs() {
        return timeoutNs;
    }

    /** Owner shard: the bytes charged to the shard's connections. */
    long committedBytes() {
        return committedBytes;
    }

    /** Any thread: {@link #committedBytes()} as last published. */
    long committedGauge() {
        return committedGauge.get();
    }

    /** Any thread: connections now waiting for receive memory. */
    long waitingGauge() {
        return waitingGauge.get();
    }

    /** Any thread: times a connection had to wait for receive memory. */
    long waits() {
        return waits.get();
    }

    /** Owner shard: the accounting and every connection's receive state (diagnostics, test failure messages). */
    String describe() {
        StringBuilder sb = new StringBuilder("committed " + committedBytes + " of " + capacityBytes + " (large pool "
            + largePoolBytes() + ", share " + shareBytes + "), large frames " + largeFrames + ", waiting "
            + waiting.size() + "\n");
        for (Connection c : connections) {
            sb.append("  ").append(c.describe()).append('\n');
        }
        return sb.toString();
    }

    void register(Connection c) {
        connections.add(c);
        scheduleSweep();
    }

    void unregister(Connection c) {
        connections.remove(c);
        if (waiting.remove(c)) {
            waitingGauge.set(waiting.size());
        }
    }

    /**
     * Decides on a grant for a frame of {@code frameBytes} of which {@code extraBytes} would be charged on top of
     * what the connection holds ({@code heldBytes}, of which {@code otherRequestBytes} in requests it sent
     * earlier that still run).
     */
    Grant grant(long frameBytes, long extraBytes, long heldBytes, long otherRequestBytes, boolean queued) {
        if (frameBytes > maxFrameBytes()) {
            return Grant.NEVER;
        }
        if (frameBytes <= SMALL_FRAME_BYTES) {
            return committedBytes + extraBytes <= capacityBytes ? Grant.GRANTED : Grant.WAIT;
        }
        if (largeTurnTaken || (!queued && hasLargeWaiter())) {
            return Grant.WAIT; // large frames are granted in the order they asked
        }
        boolean fits = committedBytes + extraBytes <= largePoolBytes()
            || (largeFrames == 0 && committedBytes + extraBytes <= maxFrameBytes());
        boolean withinShare = otherRequestBytes == 0 || heldBytes + extraBytes <= shareBytes;
        return fits && withinShare ? Grant.GRANTED : Grant.WAIT;
    }

    private boolean hasLargeWaiter() {
        for (Connection c : waiting) {
            if (c.waitingForLargeGrant()) {
                return true;
            }
        }
        return false;
    }

    /** A connection started (+1) or finished (-1) receiving a granted large frame. */
    void largeFrame(int delta) {
        largeFrames += delta;
    }

    /** Adds {@code deltaBytes} (negative: released) to the committed bytes; a release wakes waiters. */
    void charge(long deltaBytes) {
        committedBytes += deltaBytes;
        committedGauge.lazySet(committedBytes);
        if (deltaBytes < 0 && !waiting.isEmpty()) {
            scheduleWake();
        }
    }

    /** {@code c} stopped reading until memory comes back; it is retried in arrival order. */
    void await(Connection c) {
        if (!waiting.contains(c)) {
            waiting.addLast(c);
            waits.incrementAndGet();
            waitingGauge.set(waiting.size());
        }
        scheduleSweep();
    }

    private void scheduleWake() {
        if (!wakeScheduled) {
            wakeScheduled = true;
            shard.execute(() -> {
                wakeScheduled = false;
                wake();
            });
        }
    }

    /** Retries the waiting connections in order; those that got what they waited for leave the queue. */
    void wake() {
        if (waiting.isEmpty()) {
            return;
        }
        largeTurnTaken = false;
        boolean progress = false;
        List<Connection> pass = new ArrayList<>(waiting);
        for (Connection c : pass) {
            if (!waiting.contains(c)) {
                continue; // closed meanwhile
            }
            boolean large = c.waitingForLargeGrant();
            if (c.retryReceive()) {
                waiting.remove(c);
                progress = true;
            } else if (large) {
                largeTurnTaken = true;
            }
        }
        largeTurnTaken = false;
        Connection smallWaits = null;
        Connection largest = null;
        for (Connection c : waiting) {
            if (c.waitingForLargeGrant()) {
                if (largest == null || c.chargedBytes() > largest.chargedBytes()) {
                    largest = c;
                }
            } else if (smallWaits == null) {
                smallWaits = c;
            }
        }
        if (smallWaits != null && largest != null && largest.chargedBytes() > 0
            && System.nanoTime() - smallWaits.waitingSinceNs() >= sweepNs) {
            // A small frame (a new client, most likely) has waited a sweep period while a large one that was not
            // granted holds what its socket delivered before it stopped reading: the large one goes.
            largest.evictForMemory("a small request has waited for this shard's receive memory (" + committedBytes
                + " of " + capacityBytes + " bytes committed) while this connection, waiting for room for a "
                + largest.waitingFrameBytes() + "-byte request, holds " + largest.chargedBytes() + " bytes it received"
                + " before it stopped reading");
        } else if (!progress && waiting.size() > 1) {
            long heldByWaiters = 0;
            for (Connection c : waiting) {
                heldByWaiters += c.chargedBytes();
            }
            if (heldByWaiters >= committedBytes) {
                // Everything committed belongs to connections that wait: no release will come. What they hold is
                // the first bytes of their frames, taken before they stopped reading; the last to arrive goes.
                waiting.peekLast().evictForMemory(waiting.size() + " connections waiting to receive requests hold all "
                    + committedBytes + " bytes of this shard's committed receive memory and none can be received in"
                    + " full; this one arrived last");
            }
        }
        waitingGauge.set(waiting.size());
    }

    private void scheduleSweep() {
        if (!sweepScheduled && !connections.isEmpty()) {
            sweepScheduled = true;
            shard.schedule(sweepNs, this::sweep);
        }
    }

    /** Closes connections past their frame deadline, retries waiters; reschedules while connections exist. */
    private void sweep() {
        sweepScheduled = false;
        long now = System.nanoTime();
        for (Connection c : new ArrayList<>(connections)) {
            c.checkReceiveDeadline(now);
        }
        wake();
        scheduleSweep();
    }
}
