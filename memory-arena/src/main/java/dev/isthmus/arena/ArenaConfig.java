package dev.isthmus.arena;

import java.util.Arrays;

/**
 * How a shard's {@link MemoryArena} is made.
 *
 * @param bytes          the shard's whole data memory, a multiple of 64 KiB, taken at start-up
 * @param populate       pre-fault the region (MAP_POPULATE) so no page fault happens on the data path
 * @param hugePages      ask for transparent huge pages on the region (madvise MADV_HUGEPAGE)
 * @param debug          detect double free, use after free (poisoning) and leaks with allocation sites
 * @param budgetLimits   the limit of each {@link Subsystem}, indexed by ordinal; their sum may exceed
 *                       {@code bytes}: the batch cache gives memory back through its reclaim hook
 */
public record ArenaConfig(long bytes, boolean populate, boolean hugePages, boolean debug, long[] budgetLimits) {

    /** Debug mode comes on with -Disthmus.arena.debug=true (the test suites set it). */
    public static final boolean DEBUG_DEFAULT = Boolean.getBoolean("isthmus.arena.debug");

    public ArenaConfig {
        if (bytes < MemoryArena.MIN_BLOCK || bytes % MemoryArena.MIN_BLOCK != 0) {
            throw new IllegalArgumentException("arena bytes must be a positive multiple of 64 KiB, got " + bytes);
        }
        if (budgetLimits == null || budgetLimits.length != Subsystem.ALL.length) {
            throw new IllegalArgumentException("need one budget limit per subsystem (" + Subsystem.ALL.length + ")");
        }
        budgetLimits = budgetLimits.clone();
        for (long l : budgetLimits) {
            if (l < 0) {
                throw new IllegalArgumentException("budget limits must be >= 0: " + Arrays.toString(budgetLimits));
            }
        }
    }

    /**
     * {@code bytes} for one shard with default budgets: network 25%, batch cache 50%, read-ahead 15%,
     * write-behind 25%, raft 10%, other 10% (over-committed on purpose: the cache yields under pressure).
     */
    public static ArenaConfig of(long bytes) {
        long[] limits = new long[Subsystem.ALL.length];
        limits[Subsystem.NETWORK_RECEIVE.ordinal()] = bytes / 4;
        limits[Subsystem.BATCH_CACHE.ordinal()] = bytes / 2;
        limits[Subsystem.READ_AHEAD.ordinal()] = bytes * 15 / 100;
        limits[Subsystem.WRITE_BEHIND.ordinal()] = bytes / 4;
        limits[Subsystem.RAFT.ordinal()] = bytes / 10;
        limits[Subsystem.OTHER.ordinal()] = bytes / 10;
        return new ArenaConfig(bytes, false, false, DEBUG_DEFAULT, limits);
    }

    public ArenaConfig withBudget(Subsystem s, long limit) {
        long[] l = budgetLimits.clone();
        l[s.ordinal()] = limit;
        return new ArenaConfig(bytes, populate, hugePages, debug, l);
    }

    public ArenaConfig withUnlimitedBudgets() {
        long[] l = new long[Subsystem.ALL.length];
        Arrays.fill(l, Long.MAX_VALUE);
        return new ArenaConfig(bytes, populate, hugePages, debug, l);
    }

    public ArenaConfig withDebug(boolean debug) {
        return new ArenaConfig(bytes, populate, hugePages, debug, budgetLimits);
    }

    public ArenaConfig withPopulate(boolean populate, boolean hugePages) {
        return new ArenaConfig(bytes, populate, hugePages, debug, budgetLimits);
    }

    public long budget(Subsystem s) {
        return budgetLimits[s.ordinal()];
    }

    @Override
    public long[] budgetLimits() {
        return budgetLimits.clone();
    }
}
