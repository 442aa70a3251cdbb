package dev.isthmus.arena;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(ArenaLeakCheck.class)
class MemoryArenaTest {
    private static final long MiB = 1024 * 1024;

    private static long seed(String name) {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println(name + " seed=" + seed + " (replay with -Disthmus.seed=" + seed + ")");
        return seed;
    }

    private static long randomSize(Random rnd) {
        return switch (rnd.nextInt(4)) {
            case 0 -> 1 + rnd.nextInt(4096);
            case 1 -> 1 + rnd.nextInt(32 * 1024);
            case 2 -> 1 + rnd.nextInt(256 * 1024);
            default -> 1 + rnd.nextInt(2 * 1024 * 1024);
        };
    }

    /** Random allocate/free against a model of live ranges: no overlap, alignment, accounting, full coalescing. */
    @Test
    void shouldNeverOverlapAndCoalesceBackToOneBlock() {
        Random rnd = new Random(seed("shouldNeverOverlapAndCoalesceBackToOneBlock"));
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(64 * MiB).withUnlimitedBudgets())) {
            TreeMap<Long, Long> live = new TreeMap<>(); // offset -> rounded size
            List<Long> offsets = new ArrayList<>();
            long usedModel = 0;
            for (int step = 0; step < 50_000; step++) {
                if (offsets.isEmpty() || rnd.nextInt(100) < 55) {
                    long bytes = randomSize(rnd);
                    Subsystem s = Subsystem.ALL[rnd.nextInt(Subsystem.ALL.length)];
                    long off = arena.allocate(bytes, s);
                    if (off == MemoryArena.NO_MEMORY) {
                        assertTrue(arena.lastFailure().contains("exhausted"), arena.lastFailure());
                        continue;
                    }
                    long size = MemoryArena.roundedSize(bytes);
                    assertTrue(size >= bytes);
                    assertEquals(size, arena.sizeOf(off));
                    assertEquals(0, off % Math.min(size, 4096), "alignment of " + size + "-byte block at " + off);
                    Map.Entry<Long, Long> below = live.floorEntry(off);
                    assertTrue(below == null || below.getKey() + below.getValue() <= off, "overlaps the block below");
                    Map.Entry<Long, Long> above = live.ceilingEntry(off);
                    assertTrue(above == null || off + size <= above.getKey(), "overlaps the block above");
                    assertTrue(off + size <= 64 * MiB);
                    arena.segment(off, size).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, off); // touch it
                    live.put(off, size);
                    offsets.add(off);
                    usedModel += size;
                } else {
                    long off = offsets.remove(rnd.nextInt(offsets.size()));
                    assertEquals(off, arena.segment(off, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
                    usedModel -= live.remove(off);
                    arena.free(off);
                }
                assertEquals(usedModel, arena.stats().usedBytes());
            }
            System.out.println("after the random workload: " + arena.stats());
            for (long off : offsets) {
                arena.free(off);
            }
            assertEquals(0, arena.liveAllocations());
            // Empty slabs kept for reuse are released once their lists empty; force-check the buddy view:
            long kept = arena.stats().totalBytes() - arena.stats().freeBytes();
            assertTrue(kept <= (long) MemoryArena.CLASS_SIZES.length * Subsystem.ALL.length * MemoryArena.MIN_BLOCK,
                "only the spare empty slabs stay out of the buddy lists, not " + kept);
        }
    }

    @Test
    void shouldFaultThePrefaultedRegionInAtCreation() throws Exception {
        long before = residentKb();
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(64 * MiB).withPopulate(true, true))) {
            long grew = residentKb() - before;
            assertTrue(grew >= 60 * 1024, "a prefaulted 64 MiB arena is resident at once, RSS grew " + grew + " KiB");
            long off = arena.allocate(MiB, Subsystem.OTHER);
            assertTrue(off != MemoryArena.NO_MEMORY);
            arena.free(off);
        }
    }

    @Test
    void shouldPopulateFromAnotherThreadWhileTheOwnerWritesAndKeepEveryByte() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(MemoryArena.canPopulateConcurrently(),
            "this kernel has no MADV_POPULATE_WRITE (Linux 5.14)");
        // Not in debug mode: that poisons (writes) the whole region at creation.
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(64 * MiB).withUnlimitedBudgets().withDebug(false))) {
            long before = residentKb();
            long off = arena.allocate(8 * MiB, Subsystem.OTHER);
            assertTrue(off != MemoryArena.NO_MEMORY);
            java.lang.foreign.MemorySegment m = arena.segment(off, 8 * MiB);
            int[] rc = {Integer.MIN_VALUE};
            Thread t = Thread.ofPlatform().start(() -> {
                int r = 0;
                for (long at = 0; at < 64 * MiB && r == 0; at += 4 * MiB) {
                    r = arena.populate(at, 4 * MiB);
                }
                rc[0] = r;
            });
            for (long i = 0; i < 8 * MiB; i += 4096) { // the owner writes meanwhile
                m.set(ValueLayout.JAVA_LONG, i, i * 31 + 7);
            }
            t.join();
            assertEquals(0, rc[0], "populate's result");
            for (long i = 0; i < 8 * MiB; i += 4096) {
                assertEquals(i * 31 + 7, m.get(ValueLayout.JAVA_LONG, i), "byte " + i + " as the owner wrote it");
            }
            long grew = residentKb() - before;
            assertTrue(grew >= 60 * 1024, "the whole 64 MiB arena is resident after populate, RSS grew " + grew + " KiB");
            assertThrows(IndexOutOfBoundsException.class, () -> arena.populate(60 * MiB, 8 * MiB));
            arena.free(off);
        }
    }

    private static long residentKb() throws java.io.IOException {
        for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
            if (l.startsWith("VmRSS:")) {
                return Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    @Test
    void shouldCoalesceFullyWhenOnlyLargeBlocksWereUsed() {
        Random rnd = new Random(seed("shouldCoalesceFullyWhenOnlyLargeBlocksWereUsed"));
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(32 * MiB).withUnlimitedBudgets())) {
            List<Long> offsets = new ArrayList<>();
            for (int i = 0; i < 10_000; i++) {
                if (offsets.isEmpty() || rnd.nextBoolean()) {
                    long off = arena.allocate(64 * 1024 + rnd.nextInt(3 * 1024 * 1024), Subsystem.OTHER);
                    if (off >= 0) {
                        offsets.add(off);
                    }
                } else {
                    arena.free(offsets.remove(rnd.nextInt(offsets.size())));
                }
            }
            offsets.forEach(arena::free);
            assertEquals(32 * MiB, arena.stats().freeBytes());
            assertEquals(32 * MiB, arena.stats().largestFreeBlockBytes(), "everything coalesced back to one block");
            assertEquals(0.0, arena.stats().fragmentation());
        }
    }

    @Test
    void shouldFailClearlyWhenABudgetIsUsedUp() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(16 * MiB).withBudget(Subsystem.NETWORK_RECEIVE, MiB))) {
            List<Long> got = new ArrayList<>();
            long off;
            while ((off = arena.allocate(64 * 1024, Subsystem.NETWORK_RECEIVE)) != MemoryArena.NO_MEMORY) {
                got.add(off);
            }
            assertEquals(16, got.size());
            assertTrue(arena.lastFailure().contains("over the NETWORK_RECEIVE budget: 1048576 of 1048576"),
                arena.lastFailure());
            ArenaExhaustedException e = assertThrows(ArenaExhaustedException.class,
                () -> arena.allocateOrThrow(100, Subsystem.NETWORK_RECEIVE));
            assertEquals(Subsystem.NETWORK_RECEIVE, e.subsystem());
            // Other subsystems are unaffected.
            long other = arena.allocateOrThrow(64 * 1024, Subsystem.RAFT);
            arena.free(other);
            got.forEach(arena::free);
            assertEquals(1, arena.stats().failures() >= 2 ? 1 : 0);
        }
    }

    /** A batch cache that fills memory gives it back when the network needs it. */
    @Test
    void shouldReclaimFromTheCacheUnderPressure() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(8 * MiB).withUnlimitedBudgets())) {
            List<Long> cache = new ArrayList<>();
            long off;
            while ((off = arena.allocate(MiB, Subsystem.BATCH_CACHE)) != MemoryArena.NO_MEMORY) {
                cache.add(off);
            }
            assertEquals(8, cache.size(), "the cache filled the arena");
            arena.registerReclaimer(Subsystem.BATCH_CACHE, wanted -> {
                long freed = 0;
                while (freed < wanted && !cache.isEmpty()) {
                    long victim = cache.remove(cache.size() - 1);
                    freed += arena.sizeOf(victim);
                    arena.free(victim);
                }
                return freed;
            });
            // Memory is exhausted: the network allocation succeeds because the cache gives back 2 MiB.
            long net = arena.allocateOrThrow(2 * MiB, Subsystem.NETWORK_RECEIVE);
            assertNotEquals(MemoryArena.NO_MEMORY, net);
            assertEquals(6, cache.size());
            arena.free(net);
            cache.forEach(arena::free);
        }
    }

    @Test
    void shouldDetectDoubleFreeAndUseAfterFreeAndLeaks() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(4 * MiB).withDebug(true))) {
            long small = arena.allocateOrThrow(100, Subsystem.OTHER);
            arena.free(small);
            IllegalStateException df = assertThrows(IllegalStateException.class, () -> arena.free(small));
            assertTrue(df.getMessage().contains("double free"), df.getMessage());
            long big = arena.allocateOrThrow(100_000, Subsystem.OTHER);
            arena.free(big);
            assertThrows(IllegalStateException.class, () -> arena.free(big));
            // Write into the freed block, then allocate it again: the poison is broken.
            arena.region().set(ValueLayout.JAVA_BYTE, big + 77, (byte) 1);
            IllegalStateException uaf = assertThrows(IllegalStateException.class,
                () -> arena.allocate(100_000, Subsystem.OTHER));
            assertTrue(uaf.getMessage().contains("use after free"), uaf.getMessage());
            long leaked = arena.allocateOrThrow(3000, Subsystem.RAFT);
            IllegalStateException leak = assertThrows(IllegalStateException.class, arena::checkNoLeaks);
            assertTrue(leak.getMessage().contains("1 allocation(s) leaked"), leak.getMessage());
            assertTrue(leak.getMessage().contains("shouldDetectDoubleFreeAndUseAfterFreeAndLeaks"), leak.getMessage());
            arena.free(leaked);
            arena.checkNoLeaks();
            assertThrows(IllegalArgumentException.class, () -> arena.free(12345));
        }
    }

    @Test
    void shouldApplyFreesFromOtherThreadsOnTheOwner() throws Exception {
        long seed = seed("shouldApplyFreesFromOtherThreadsOnTheOwner");
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(64 * MiB).withUnlimitedBudgets())) {
            Random rnd = new Random(seed);
            ConcurrentLinkedQueue<Long> handOff = new ConcurrentLinkedQueue<>();
            int total = 20_000;
            for (int i = 0; i < total; i++) {
                handOff.add(arena.allocateOrThrow(1 + rnd.nextInt(2048), Subsystem.NETWORK_RECEIVE));
            }
            Thread[] threads = new Thread[4];
            for (int t = 0; t < threads.length; t++) {
                threads[t] = new Thread(() -> {
                    Long off;
                    while ((off = handOff.poll()) != null) {
                        arena.free(off);
                    }
                });
                threads[t].start();
            }
            while (arena.liveAllocations() > 0) {
                arena.drainRemoteFrees();
                Thread.onSpinWait();
            }
            for (Thread t : threads) {
                t.join();
            }
            arena.drainRemoteFrees();
            assertEquals(0, arena.liveAllocations());
            assertEquals(total, arena.stats().remoteFrees());
            assertEquals(0, arena.used(Subsystem.NETWORK_RECEIVE));
        }
    }

    @Test
    void shouldRefuseUseFromAForeignThreadAndBadSizes() throws Exception {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(MiB))) {
            Throwable[] seen = new Throwable[1];
            Thread t = new Thread(() -> {
                try {
                    arena.allocate(10, Subsystem.OTHER);
                } catch (Throwable e) {
                    seen[0] = e;
                }
            });
            t.start();
            t.join();
            assertTrue(seen[0] instanceof IllegalStateException && seen[0].getMessage().contains("used from"));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(0, Subsystem.OTHER));
            assertEquals(MemoryArena.NO_MEMORY, arena.allocate(2 * MiB, Subsystem.OTHER));
            assertTrue(arena.lastFailure().contains("larger than the whole arena"));
        }
    }
}
