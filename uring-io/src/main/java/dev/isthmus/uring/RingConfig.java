package dev.isthmus.uring;

/**
 * How a {@link Ring} is created.
 *
 * @param sqEntries          submission queue size (a power of two, 1..32768)
 * @param cqEntries          completion queue size; at least 4x {@code sqEntries} so bursts of completions
 *                           (multishot receives, many disk writes) do not overflow
 * @param initialSlots       operation-table slots allocated up front (the table grows up to {@code maxInFlight})
 * @param maxInFlight        most operations in flight at once; beyond it new operations fail with -EBUSY
 * @param registerRingFd     register the ring fd (IORING_REGISTER_RING_FDS) so each enter skips an fd lookup
 * @param ioWorkersBounded   cap on io-wq workers for bounded work (disk), 0 = kernel default
 * @param ioWorkersUnbounded cap on io-wq workers for unbounded work (sockets punted to workers), 0 = default
 */
public record RingConfig(int sqEntries, int cqEntries, int initialSlots, int maxInFlight, boolean registerRingFd,
                         int ioWorkersBounded, int ioWorkersUnbounded) {

    public RingConfig {
        if (sqEntries < 1 || sqEntries > 32768 || Integer.bitCount(sqEntries) != 1) {
            throw new IllegalArgumentException("sqEntries must be a power of two in [1, 32768], got " + sqEntries);
        }
        if (cqEntries < 4 * sqEntries || Integer.bitCount(cqEntries) != 1 || cqEntries > 65536 * 4) {
            throw new IllegalArgumentException("cqEntries must be a power of two >= 4 x sqEntries ("
                + 4 * sqEntries + "), got " + cqEntries);
        }
        if (initialSlots < 1 || maxInFlight < initialSlots) {
            throw new IllegalArgumentException("need 1 <= initialSlots (" + initialSlots + ") <= maxInFlight ("
                + maxInFlight + ")");
        }
        if (ioWorkersBounded < 0 || ioWorkersUnbounded < 0) {
            throw new IllegalArgumentException("io worker caps must be >= 0");
        }
    }

    /** Defaults for a shard: 256 SQEs, 1024 CQEs, up to 64Ki operations in flight, ring fd registered. */
    public static RingConfig defaults() {
        return new RingConfig(256, 1024, 1024, 65536, true, 0, 0);
    }

    public RingConfig withEntries(int sq) {
        return new RingConfig(sq, Math.max(cqEntries, 4 * sq), initialSlots, maxInFlight, registerRingFd,
            ioWorkersBounded, ioWorkersUnbounded);
    }

    public RingConfig withIoWorkers(int bounded, int unbounded) {
        return new RingConfig(sqEntries, cqEntries, initialSlots, maxInFlight, registerRingFd, bounded, unbounded);
    }
}
