package dev.isthmus.uring.sim;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.ErrnoException;
import dev.isthmus.uring.Clock;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.ConnectAttempt;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.FileOps;
import dev.isthmus.uring.IoDriver;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.TcpListener;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

/**
 * An {@link IoEngine} over a {@link SimDisk}: the files of a simulated machine, in memory, with latencies and
 * faults drawn from the disk's seed, on virtual time ({@link SimClock}). A real implementation of the engine's
 * file half (not a mock): storage code runs on it unchanged, and a simulator replays any schedule exactly.
 *
 * <h2>Completions</h2>
 * Each operation gets a due time (now plus a latency from {@link SimFaults}); {@link #reap()} and
 * {@link #submitAndWait(long)} deliver, in due-time order, the operations due by the clock's current time. So
 * operations complete out of order, late, or all at once, as the latencies fall. The disk's due listener
 * ({@link SimDisk#onDue}) hears every due time, so a simulator knows when to step the shard. A test can also
 * {@link #completeNext() complete one operation at a time} regardless of time. With {@link #autoAdvance(boolean)},
 * a {@code submitAndWait} with a timeout moves the clock to the next due time itself (tests that drive one engine
 * without a simulator).
 *
 * <h2>No network</h2>
 * A simulated machine has no sockets: {@link #listen} fails as a bind would and {@link #connect} completes with
 * ECONNREFUSED. Simulators model the network themselves (the Raft simulator delivers messages directly).
 *
 * <p>Owner: the simulation's thread; every completion runs there. A handler that throws fails the step (the
 * exception propagates out of {@code reap}): in a simulation a throwing handler is a bug to stop at.
 */
public final class SimEngine implements IoEngine {
    private final SimDisk disk;
    private final SplittableRandom random;
    private final PriorityQueue<Op> queue = new PriorityQueue<>();
    private final int maxInFlight;
    private long seq;
    private boolean crashed;
    private boolean closed;
    private boolean autoAdvance;
    private long completed;

    SimEngine(SimDisk disk, SplittableRandom random) {
        this.disk = disk;
        this.random = random;
        this.maxInFlight = 4096;
    }

    /** An engine over a fresh disk of its own, with its own clock that it advances itself (unit tests). */
    public static SimEngine standalone(long seed, SimFaults faults) {
        SimEngine e = new SimDisk(new SimClock(), faults, seed).newEngine();
        e.autoAdvance(true);
        return e;
    }

    public SimDisk disk() {
        return disk;
    }

    /** With {@code on}, {@code submitAndWait(t > 0)} moves the clock to the next due time when nothing is due. */
    public void autoAdvance(boolean on) {
        this.autoAdvance = on;
    }

    /** Operations queued and not completed. */
    public int inFlight() {
        return queue.size();
    }

    /** Operations completed so far. */
    public long completed() {
        return completed;
    }

    /** The earliest due time of an operation in flight, or {@link Long#MAX_VALUE}. */
    public long nextDueNs() {
        Op o = queue.peek();
        return o == null ? Long.MAX_VALUE : o.dueNs;
    }

    /** Whether the machine crashed under this engine (nothing completes any more). */
    public boolean isCrashed() {
        return crashed;
    }

    void crashed() {
        crashed = true;
        queue.clear();
    }

    @Override
    public Clock clock() {
        return disk.clock;
    }

    @Override
    public FileOps fileOps() {
        return disk.fileOps();
    }

    // ============================================================================================ operations

    enum Kind { WRITE, READ, ALLOCATE, DATASYNC, DIRECTORY_SYNC, CONNECT }

    static final class Op implements Comparable<Op> {
        final Kind kind;
        final long seq;
        final long dueNs;
        SimDmaFile file;
        MemorySegment buffer;
        long position;
        long length;
        boolean keepSize;
        SimDisk.DataOp data;
        long watermark;
        Path dir;
        CompletionHandler handler;
        long attachment;
        TcpConnection.ConnectHandler connectHandler;
        boolean cancelled;

        Op(Kind kind, long seq, long dueNs) {
            this.kind = kind;
            this.seq = seq;
            this.dueNs = dueNs;
        }

        @Override
        public int compareTo(Op o) {
            int c = Long.compare(dueNs, o.dueNs);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private void checkUsable() {
        if (crashed) {
            throw new IllegalStateException("the simulated machine crashed under this engine; make a new one");
        }
        if (closed) {
            throw new IllegalStateException("engine is closed");
        }
    }

    /** A new operation due after a latency of {@code latencyKind}; null when too many are in flight (EBUSY). */
    Op newOp(Kind kind, SimFaults.Kind latencyKind) {
        checkUsable();
        if (queue.size() >= maxInFlight) {
            return null;
        }
        SimFaults f = disk.faults;
        long now = disk.clock.nanoTime();
        long due = now + f.latencyNs(latencyKind, random);
        if (f.stallUntilNs > due) {
            due = f.stallUntilNs + f.latencyNs(latencyKind, random);
        }
        return new Op(kind, seq++, due);
    }

    long submit(Op op) {
        queue.add(op);
        disk.due(op.dueNs);
        return op.seq;
    }

    // ============================================================================================ driver

    @Override
    public int reap() {
        if (crashed) {
            return 0; // the machine is down: nothing completes (a handler may have crashed it during this turn)
        }
        if (closed) {
            throw new IllegalStateException("engine is closed");
        }
        int n = disk.runBackground();
        long limit = seq; // operations queued by these completions wait for the next reap
        long now = disk.clock.nanoTime();
        while (!crashed && !queue.isEmpty() && queue.peek().dueNs <= now && queue.peek().seq < limit) {
            complete(queue.poll());
            n++;
        }
        return n;
    }

    @Override
    public int submitAndWait(long timeoutNs) {
        int n = reap();
        if (n == 0 && timeoutNs > 0 && autoAdvance && !crashed) {
            long target = Math.min(nextDueNs(), disk.clock.nanoTime() + timeoutNs);
            disk.clock.advanceTo(Math.max(disk.clock.nanoTime(), target));
            n = reap();
        }
        return n;
    }

    /**
     * Completes the operation that is due first, whatever the time (a test choosing the order of completions);
     * returns false when none is in flight.
     */
    public boolean completeNext() {
        checkUsable();
        Op o = queue.poll();
        if (o == null) {
            return false;
        }
        complete(o);
        return true;
    }

    /** The operations in flight, earliest due first (tests). */
    public List<String> describeInFlight() {
        List<Op> ops = new ArrayList<>(queue);
        ops.sort(null);
        List<String> out = new ArrayList<>();
        for (Op o : ops) {
            out.add(o.kind + (o.file != null ? " " + o.file.path() : o.dir != null ? " " + o.dir : "") + " at "
                + o.position + " due " + o.dueNs);
        }
        return out;
    }

    @Override
    public void wakeup() {
        // Nothing blocks: the simulator decides when the shard runs.
    }

    @Override
    public void signal(IoDriver target) {
        target.wakeup();
    }

    @Override
    public String backendName() {
        return "simulated";
    }

    /** Closes the engine: operations still in flight complete with -ECANCELED (as on io_uring). */
    @Override
    public void close() {
        if (closed || crashed) {
            closed = true;
            return;
        }
        closed = true;
        Op o;
        while ((o = queue.poll()) != null) {
            if (o.data != null) {
                disk.abandon(o.file.inode, o.data);
            }
            deliver(o, -Errno.ECANCELED);
        }
    }

    // ============================================================================================ completion

    private void complete(Op o) {
        completed++;
        SimFaults f = disk.faults;
        int result;
        switch (o.kind) {
            case WRITE -> result = completeWrite(o, f);
            case READ -> result = completeRead(o, f);
            case ALLOCATE -> {
                if (f.ioErrorRate > 0 && random.nextDouble() < f.ioErrorRate) {
                    disk.abandon(o.file.inode, o.data);
                    result = -Errno.EIO;
                } else if (full(f, o.keepSize ? 0 : Math.max(0, o.position + o.length - o.file.inode.size))) {
                    disk.abandon(o.file.inode, o.data);
                    result = -Errno.ENOSPC;
                } else {
                    disk.complete(o.file.inode, o.data);
                    result = 0;
                }
            }
            case DATASYNC -> {
                if (f.ioErrorRate > 0 && random.nextDouble() < f.ioErrorRate) {
                    result = -Errno.EIO;
                } else {
                    disk.datasync(o.file.inode, o.watermark);
                    result = 0;
                }
            }
            case DIRECTORY_SYNC -> {
                if (!disk.isDirectory(o.dir)) {
                    result = -Errno.ENOENT;
                } else if (f.ioErrorRate > 0 && random.nextDouble() < f.ioErrorRate) {
                    result = -Errno.EIO;
                } else {
                    disk.syncDirectory(o.dir, o.watermark);
                    result = 0;
                }
            }
            case CONNECT -> {
                if (!o.cancelled) {
                    o.cancelled = true;
                    o.connectHandler.onConnect(null, -Errno.ECONNREFUSED);
                }
                return;
            }
            default -> throw new IllegalStateException("unknown operation " + o.kind);
        }
        deliver(o, result);
    }

    private void deliver(Op o, int result) {
        if (o.handler != null) {
            o.handler.onComplete(result, 0, o.attachment);
        }
    }

    private boolean full(SimFaults f, long growBytes) {
        if (f.fullUntilNs > disk.clock.nanoTime()) {
            return true;
        }
        return growBytes > 0 && f.capacityBytes != Long.MAX_VALUE && disk.usedBytes() + growBytes > f.capacityBytes;
    }

    private int completeWrite(Op o, SimFaults f) {
        SimDisk.Inode inode = o.file.inode;
        if (f.ioErrorRate > 0 && random.nextDouble() < f.ioErrorRate) {
            disk.abandon(inode, o.data);
            return -Errno.EIO;
        }
        if (full(f, Math.max(0, o.position + o.length - inode.size))) {
            disk.abandon(inode, o.data);
            return -Errno.ENOSPC;
        }
        if (o.buffer != null) {
            // The device read the caller's buffer only now (see SimFaults.lateBufferReadRate).
            o.data.bytes = o.buffer.asSlice(0, o.length).toArray(ValueLayout.JAVA_BYTE);
        }
        if (f.misdirectRate > 0 && random.nextDouble() < f.misdirectRate) {
            long blocks = Math.max(1, (inode.size + o.length) / f.alignment);
            o.data.position = random.nextLong(blocks) * f.alignment; // lands elsewhere, reported as done
        }
        disk.complete(inode, o.data);
        return (int) o.length;
    }

    private int completeRead(Op o, SimFaults f) {
        if (f.ioErrorRate > 0 && random.nextDouble() < f.ioErrorRate) {
            return -Errno.EIO;
        }
        SimDisk.Inode inode = o.file.inode;
        long position = o.position;
        if (f.misdirectRate > 0 && random.nextDouble() < f.misdirectRate && inode.size > f.alignment) {
            position = random.nextLong(inode.size / f.alignment) * f.alignment;
        }
        byte[] bytes = new byte[(int) o.length];
        int n = SimDisk.read(inode, position, bytes, bytes.length);
        MemorySegment.copy(bytes, 0, o.buffer, ValueLayout.JAVA_BYTE, 0, n);
        return n;
    }

    // ============================================================================================ files

    @Override
    public DmaFile openDmaFile(Path path, boolean create) {
        checkUsable();
        SimDisk.Inode inode = disk.open(path, create);
        if (inode == null) {
            throw new ErrnoException("open(" + path + ", O_DIRECT)", disk.isDirectory(path) ? Errno.EINVAL : Errno.ENOENT);
        }
        return new SimDmaFile(this, path, inode, disk.faults.alignment);
    }

    @Override
    public long syncDirectory(Path dir, CompletionHandler handler, long attachment) {
        if (!disk.isDirectory(dir)) {
            return -Errno.ENOENT;
        }
        Op o = newOp(Kind.DIRECTORY_SYNC, SimFaults.Kind.DIRECTORY_SYNC);
        if (o == null) {
            return -Errno.EBUSY;
        }
        o.dir = dir;
        o.watermark = disk.metaWatermark();
        o.handler = handler;
        o.attachment = attachment;
        return submit(o);
    }

    SimDisk diskOf() {
        return disk;
    }

    SplittableRandom random() {
        return random;
    }

    // ============================================================================================ sockets

    @Override
    public TcpListener listen(InetSocketAddress address, boolean reusePort, int backlog,
                              TcpListener.AcceptHandler handler) {
        throw new IllegalStateException("cannot listen on " + address + ": a simulated machine has no network"
            + " (simulators deliver their messages themselves)");
    }

    @Override
    public ConnectAttempt connect(InetSocketAddress address, long timeoutNs, TcpConnection.ConnectHandler handler) {
        if (handler == null) {
            throw new IllegalArgumentException("connect handler is null");
        }
        Op o = newOp(Kind.CONNECT, SimFaults.Kind.READ);
        if (o == null) {
            handler.onConnect(null, -Errno.EBUSY);
            return new ConnectAttempt() {
                @Override
                public boolean cancel() {
                    return false;
                }

                @Override
                public boolean isDone() {
                    return true;
                }
            };
        }
        o.connectHandler = handler;
        submit(o);
        return new ConnectAttempt() {
            @Override
            public boolean cancel() {
                if (o.cancelled) {
                    return false;
                }
                o.cancelled = true;
                return true;
            }

            @Override
            public boolean isDone() {
                return o.cancelled;
            }
        };
    }

    @Override
    public String toString() {
        return "SimEngine{" + queue.size() + " in flight, " + completed + " completed" + (crashed ? ", crashed" : "")
            + "}";
    }
}
