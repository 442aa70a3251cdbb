package dev.isthmus.arena;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Usage and fragmentation of one arena: written by the owner with opaque stores, readable from any thread
 * without locks (for metrics); values read together are not one atomic snapshot.
 */
public final class ArenaStats {
    private static final int USED_TOTAL = 0;
    private static final int HIGH_WATER = 1;
    private static final int FREE_BYTES = 2;
    private static final int LARGEST_FREE = 3;
    private static final int ALLOCATIONS = 4;
    private static final int FREES = 5;
    private static final int FAILURES = 6;
    private static final int REMOTE_FREES = 7;
    private static final int FIXED = 8;

    private final long totalBytes;
    private final int maxOrder;
    private final AtomicLongArray values = new AtomicLongArray(FIXED);
    private final AtomicLongArray usedBySubsystem = new AtomicLongArray(Subsystem.ALL.length);
    private final AtomicLongArray limitBySubsystem = new AtomicLongArray(Subsystem.ALL.length);
    private final AtomicLongArray freeBlocksByOrder;

    ArenaStats(int maxOrder, long totalBytes) {
        this.maxOrder = maxOrder;
        this.totalBytes = totalBytes;
        this.freeBlocksByOrder = new AtomicLongArray(maxOrder + 1);
    }

    void onAllocate(int s, long usedS, long usedTotal, long highWater) {
        usedBySubsystem.setOpaque(s, usedS);
        values.setOpaque(USED_TOTAL, usedTotal);
        values.setOpaque(HIGH_WATER, highWater);
        values.setOpaque(ALLOCATIONS, values.getPlain(ALLOCATIONS) + 1);
    }

    void onFree(int s, long usedS, long usedTotal) {
        usedBySubsystem.setOpaque(s, usedS);
        values.setOpaque(USED_TOTAL, usedTotal);
        values.setOpaque(FREES, values.getPlain(FREES) + 1);
    }

    void onFailure() {
        values.setOpaque(FAILURES, values.getPlain(FAILURES) + 1);
    }

    void onRemoteFree() {
        values.getAndIncrement(REMOTE_FREES); // foreign threads: atomic
    }

    void setLimit(Subsystem s, long limit) {
        limitBySubsystem.setOpaque(s.ordinal(), limit);
    }

    void onBuddyChange(BuddyAllocator buddy) {
        values.setOpaque(FREE_BYTES, buddy.freeUnits() << MemoryArena.MIN_SHIFT);
        int lo = buddy.largestFreeOrder();
        values.setOpaque(LARGEST_FREE, lo < 0 ? 0 : MemoryArena.MIN_BLOCK << lo);
        for (int o = 0; o <= maxOrder; o++) {
            freeBlocksByOrder.setOpaque(o, buddy.freeBlocksOfOrder(o));
        }
    }

    public long totalBytes() {
        return totalBytes;
    }

    /** Bytes handed out (rounded block sizes). */
    public long usedBytes() {
        return values.getOpaque(USED_TOTAL);
    }

    public long highWaterBytes() {
        return values.getOpaque(HIGH_WATER);
    }

    /** Bytes in free buddy blocks (free objects inside partly used slabs not included). */
    public long freeBytes() {
        return values.getOpaque(FREE_BYTES);
    }

    public long largestFreeBlockBytes() {
        return values.getOpaque(LARGEST_FREE);
    }

    public long allocations() {
        return values.getOpaque(ALLOCATIONS);
    }

    public long frees() {
        return values.getOpaque(FREES);
    }

    public long failures() {
        return values.getOpaque(FAILURES);
    }

    public long remoteFrees() {
        return values.getOpaque(REMOTE_FREES);
    }

    public long used(Subsystem s) {
        return usedBySubsystem.getOpaque(s.ordinal());
    }

    public long limit(Subsystem s) {
        return limitBySubsystem.getOpaque(s.ordinal());
    }

    public int maxOrder() {
        return maxOrder;
    }

    /** Free buddy blocks of 64 KiB x 2^order. */
    public long freeBlocks(int order) {
        return freeBlocksByOrder.getOpaque(order);
    }

    /** 1 - largest free block / free bytes: 0 when all free memory is one block. */
    public double fragmentation() {
        long free = freeBytes();
        return free == 0 ? 0.0 : 1.0 - (double) largestFreeBlockBytes() / free;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ArenaStats{used=").append(usedBytes()).append(", high=")
            .append(highWaterBytes()).append(", free=").append(freeBytes()).append(", largestFree=")
            .append(largestFreeBlockBytes()).append(", fragmentation=")
            .append(String.format("%.3f", fragmentation())).append(", freeByOrder=[");
        for (int o = 0; o <= maxOrder; o++) {
            sb.append(o == 0 ? "" : " ").append(freeBlocks(o));
        }
        sb.append("], bySubsystem={");
        for (Subsystem s : Subsystem.ALL) {
            sb.append(s.ordinal() == 0 ? "" : ", ").append(s).append('=').append(used(s)).append('/').append(limit(s));
        }
        return sb.append("}}").toString();
    }
}
