package dev.isthmus.uring.sim;

import java.util.random.RandomGenerator;

/**
 * The knobs of a simulated disk ({@link SimDisk}): operation latencies, and which faults it injects and how often.
 * Mutable, read at each operation, so a simulator can change them while it runs (a stall window, a full disk).
 * Every random choice comes from the disk's seeded generator, so a seed replays exactly.
 *
 * <h2>Faults</h2>
 * <ul>
 *   <li><b>Latency</b>: each operation completes after a latency drawn from its kind's range; with
 *       {@link #spikeRate} a spike of up to {@link #spikeNsMax} is added (a late completion: operations complete
 *       out of order). Until {@link #stallUntilNs} nothing completes (a stalled device).</li>
 *   <li><b>Crash</b> ({@link SimDisk#crash}): a power loss keeps what fdatasync and directory syncs made durable;
 *       each write not covered by one survives whole ({@link #crashKeepRate}), not at all ({@link #crashLoseRate})
 *       or block by block, and with {@link #tornBlockRate} its last surviving block is torn at a 512-byte sector.
 *       A process crash keeps every completed operation and decides only those in flight.</li>
 *   <li><b>Errors</b>: a write, read, fallocate or fdatasync fails with EIO at {@link #ioErrorRate}; writes and
 *       fallocates past {@link #capacityBytes}, or while {@link #fullUntilNs} lies ahead, fail with ENOSPC.</li>
 *   <li><b>Misdirection</b> (off by default: it corrupts data below any checksum, which a replica without repair
 *       cannot survive on a majority): at {@link #misdirectRate} a write lands on another block of its file, or a
 *       read returns another block's bytes, and both report success.</li>
 *   <li><b>Directory semantics</b>: with {@link #strictDirectories} (POSIX), creates, renames and deletes are
 *       durable only after a sync of their directory; otherwise (ext4's and XFS's journal order) any fsync or
 *       fdatasync also commits every earlier one.</li>
 * </ul>
 */
public final class SimFaults {
    /** Operation kinds, for latencies. */
    public enum Kind { WRITE, READ, ALLOCATE, DATASYNC, DIRECTORY_SYNC, BACKGROUND }

    public long writeNsMin = 10_000;
    public long writeNsMax = 200_000;
    public long readNsMin = 5_000;
    public long readNsMax = 100_000;
    public long syncNsMin = 30_000;
    public long syncNsMax = 2_000_000;
    public long backgroundNsMin = 100_000;
    public long backgroundNsMax = 5_000_000;
    public double spikeRate;
    public long spikeNsMax = 50_000_000;
    /** Nothing completes before this virtual time (a stalled device); 0 for none. */
    public long stallUntilNs;

    public double crashKeepRate = 0.3;
    public double crashLoseRate = 0.3;
    public double tornBlockRate = 0.2;

    public double ioErrorRate;
    public long capacityBytes = Long.MAX_VALUE;
    /** Writes and fallocates fail with ENOSPC before this virtual time (a full disk); 0 for none. */
    public long fullUntilNs;

    public double misdirectRate;
    public boolean strictDirectories = true;
    /** The direct I/O alignment of every file (a power of two, at least 512). */
    public int alignment = 4096;
    /**
     * The share of writes whose bytes are taken from the caller's buffer when they complete rather than when they
     * are queued (the device may read the buffer any time in between): a caller that changes a buffer in flight
     * is caught.
     */
    public double lateBufferReadRate = 0.5;

    /** No latency spikes, no errors: only the base latencies (tests that want to control one fault). */
    public static SimFaults quiet() {
        return new SimFaults();
    }

    /** A latency for an operation of {@code kind}. */
    public long latencyNs(Kind kind, RandomGenerator random) {
        long ns = switch (kind) {
            case WRITE, ALLOCATE -> between(random, writeNsMin, writeNsMax);
            case READ -> between(random, readNsMin, readNsMax);
            case DATASYNC, DIRECTORY_SYNC -> between(random, syncNsMin, syncNsMax);
            case BACKGROUND -> between(random, backgroundNsMin, backgroundNsMax);
        };
        if (spikeRate > 0 && random.nextDouble() < spikeRate) {
            ns += between(random, 0, spikeNsMax);
        }
        return ns;
    }

    private static long between(RandomGenerator r, long min, long max) {
        return max <= min ? min : r.nextLong(min, max + 1);
    }

    @Override
    public String toString() {
        return "SimFaults{write " + writeNsMin + ".." + writeNsMax + " ns, sync " + syncNsMin + ".." + syncNsMax
            + " ns, spikes " + spikeRate + ", keep/lose " + crashKeepRate + "/" + crashLoseRate + ", torn "
            + tornBlockRate + ", EIO " + ioErrorRate + ", misdirect " + misdirectRate + ", strict dirs "
            + strictDirectories + "}";
    }
}
