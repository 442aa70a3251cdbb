package dev.isthmus.log;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Appends of fragment chains, and reads through the batch cache: zero-copy hits, disk fills, read-ahead,
 * bounds, memory pressure and consistency with truncation, against real io_uring files and a real arena.
 */
@ExtendWith(ArenaLeakCheck.class)
class LogCacheTest {
    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    MemoryArena arena;
    BatchCache cache;
    long durable = -1;
    final LogConfig small = LogConfig.defaults().withSegmentBytes(256 * 1024).withFallocateStep(64 * 1024);

    IoBackend backend() {
        return IoBackend.AUTO;
    }

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(backend(), RingConfig.defaults());
        writes = ChunkPool.allocate(32, 32 * 1024);
        reads = ChunkPool.allocate(4, small.readWindowBytes());
        arena = MemoryArena.create(ArenaConfig.of(64L << 20));
    }

    @AfterEach
    void tearDown() {
        engine.close();
        writes.close();
        reads.close();
        arena.checkNoLeaks();
        arena.close();
    }

    void drive(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    Log open(LogConfig config, BatchCache c) {
        Log[] out = new Log[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        Log.open(engine, dir.resolve("topic-0"), config, writes, reads, c, d -> durable = d, (log, e) -> {
            out[0] = log;
            err[0] = e;
            called[0] = true;
        });
        drive(() -> called[0], "open");
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    void close(Log log) {
        boolean[] done = {false};
        log.close(() -> done[0] = true);
        drive(() -> done[0], "close");
    }

    static byte[] batchBytes(int records, int tag, int valueBytes) {
        MemorySegment buf = MemorySegment.ofArray(new byte[records * (valueBytes + 64) + 128]);
        BatchBuilder b = new BatchBuilder(buf, 0, 0);
        for (int i = 0; i < records; i++) {
            byte[] v = new byte[valueBytes];
            Arrays.fill(v, (byte) (tag + i));
            b.add(1_700_000_000_000L + tag, ("key-" + tag + "-" + i).getBytes(), v);
        }
        int size = b.build();
        return Arrays.copyOf(buf.toArray(ValueLayout.JAVA_BYTE), size);
    }

    /** {@code bytes} as a chain cut at random points into separately allocated fragments. */
    IoBuf chainOf(byte[] bytes, Random random) {
        IoBuf chain = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE);
        int pos = 0;
        while (pos < bytes.length) {
            int n = Math.min(bytes.length - pos, 1 + random.nextInt(Math.max(1, bytes.length / 3)));
            IoBuf piece = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE).append(bytes, pos, n);
            chain.append(piece);
            piece.release();
            pos += n;
        }
        return chain;
    }

    long appendChain(Log log, IoBuf chain) {
        long r;
        while ((r = log.append(chain, 3)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        return r;
    }

    long appendBytes(Log log, byte[] bytes) {
        MemorySegment seg = MemorySegment.ofArray(bytes.clone());
        long r;
        while ((r = log.append(seg, 0, bytes.length, 3)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        return r;
    }

    record Chain(byte[] bytes, long first, long last, int fragments) {
    }

    /** A chain read; {@code sync[0]} tells whether the handler ran before read() returned. */
    Chain readChain(Log log, long from, long bound, int maxBytes, boolean[] sync) {
        Chain[] out = new Chain[1];
        LogException[] err = new LogException[1];
        boolean[] returned = {false};
        log.read(from, bound, maxBytes, new Log.ChainReadHandler() {
            @Override
            public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
                if (sync != null) {
                    sync[0] = !returned[0];
                }
                out[0] = new Chain(batches.toByteArray(), firstOffset, lastOffset, batches.fragmentCount());
                batches.release();
            }

            @Override
            public void onError(LogException error) {
                err[0] = error;
            }
        });
        returned[0] = true;
        drive(() -> out[0] != null || err[0] != null, "chain read");
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    /** Every batch of a run of batches: {base, last}. */
    static List<long[]> batches(byte[] bytes) {
        List<long[]> out = new ArrayList<>();
        RecordBatch v = new RecordBatch();
        MemorySegment seg = MemorySegment.ofArray(bytes);
        long pos = 0;
        while (pos < bytes.length) {
            v.wrap(seg, pos);
            assertEquals(RecordBatch.Check.OK, v.check(bytes.length - pos, false), "batch at " + pos);
            out.add(new long[] {v.baseOffset(), v.lastOffset()});
            pos += v.sizeInBytes();
        }
        return out;
    }

    /** The bytes of {@code original} as the log stores them: base offset and leader epoch stamped. */
    static byte[] stamped(byte[] original, long base, int epoch) {
        byte[] b = original.clone();
        MemorySegment s = MemorySegment.ofArray(b);
        s.set(RecordBatch.LONG, RecordBatch.BASE_OFFSET, base);
        s.set(RecordBatch.INT, RecordBatch.PARTITION_LEADER_EPOCH, epoch);
        return b;
    }

    @Test
    void shouldAppendChainsWhoseBatchesCrossFragmentsAndReadThemBack() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("LogCacheTest chains seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random random = new Random(seed);
        Log log = open(small, null);
        List<byte[]> expected = new ArrayList<>();
        long next = 0;
        for (int i = 0; i < 60; i++) {
            // Sometimes two batches in one append, sometimes one large batch spanning many fragments.
            byte[] a = batchBytes(1 + random.nextInt(5), i, random.nextInt(3) == 0 ? 20_000 : 300);
            byte[] b = random.nextBoolean() ? batchBytes(1 + random.nextInt(3), 100 + i, 200) : new byte[0];
            byte[] both = new byte[a.length + b.length];
            System.arraycopy(a, 0, both, 0, a.length);
            System.arraycopy(b, 0, both, a.length, b.length);
            IoBuf chain = chainOf(both, random);
            assertTrue(chain.fragmentCount() > 1 || both.length < 3, "multi-fragment chain");
            assertEquals(next, appendChain(log, chain), "base offset (seed " + seed + ")");
            chain.release();
            expected.add(stamped(a, next, 3));
            next += batches(a).get(0)[1] - batches(a).get(0)[0] + 1;
            if (b.length > 0) {
                expected.add(stamped(b, next, 3));
                next += batches(b).get(0)[1] - batches(b).get(0)[0] + 1;
            }
        }
        log.flush();
        long end = next;
        drive(() -> durable == end, "durable");
        // Read back through the direct-I/O path: byte for byte what was appended, offsets stamped.
        byte[] all = LogTestSupport.readAll(engine, log, 0, end);
        int pos = 0;
        for (byte[] e : expected) {
            assertArrayEquals(e, Arrays.copyOfRange(all, pos, pos + e.length), "batch at byte " + pos + " (seed " + seed + ")");
            pos += e.length;
        }
        assertEquals(all.length, pos);
        close(log);
    }

    @Test
    void shouldRejectAChainWithACorruptCrcInItsSecondFragmentAndAppendNothing() {
        Log log = open(small, null);
        byte[] bytes = batchBytes(3, 1, 5000);
        bytes[bytes.length - 10] ^= 0x40;
        IoBuf chain = chainOf(bytes, new Random(7));
        LogException e = assertThrows(LogException.class, () -> log.append(chain, 1));
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, e.kind());
        assertTrue(e.getMessage().contains("CRC"), e.getMessage());
        assertEquals(0, log.logEndOffset());
        chain.release();
        // A truncated batch (a chain cut short) is refused too.
        byte[] good = batchBytes(2, 2, 100);
        IoBuf shortChain = chainOf(Arrays.copyOf(good, good.length - 5), new Random(8));
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, assertThrows(LogException.class,
            () -> log.append(shortChain, 1)).kind());
        shortChain.release();
        assertEquals(0, log.logEndOffset());
        close(log);
    }

    @Test
    void shouldServeTailReadsFromMemoryAtOnceAndNeverPastTheBound() {
        cache = new BatchCache(arena);
        Log log = open(small, cache);
        byte[] one = batchBytes(4, 1, 500);
        for (int i = 0; i < 10; i++) {
            assertEquals(i * 4L, appendBytes(log, one));
        }
        // Nothing durable yet: a read bounded by the durable end gets nothing.
        boolean[] sync = {false};
        Chain none = readChain(log, 0, log.durableEndOffset(), 1 << 20, sync);
        assertEquals(0, none.bytes().length);
        assertTrue(sync[0], "an empty read answers at once");
        // Bounded by offset 18: batches [0..3], [4..7], [8..11], [12..15]; [16..19] reaches the bound.
        Chain some = readChain(log, 5, 18, 1 << 20, sync);
        assertTrue(sync[0], "a hit answers before read() returns");
        assertEquals(4, some.first());
        assertEquals(15, some.last());
        assertEquals(3, batches(some.bytes()).size());
        assertEquals(0, cache.misses());
        // maxBytes smaller than a batch still returns one batch.
        Chain tiny = readChain(log, 0, 40, 10, sync);
        assertEquals(1, batches(tiny.bytes()).size());
        assertArrayEquals(stamped(one, 0, 3), tiny.bytes());
        log.flush();
        drive(() -> durable == 40, "durable");
        Chain all = readChain(log, 0, log.durableEndOffset(), 1 << 20, sync);
        assertEquals(10, batches(all.bytes()).size());
        assertEquals(0, cache.misses());
        assertTrue(cache.hits() >= 3);
        close(log);
        assertEquals(0, cache.cachedBytes(), "close drops the log's ranges");
    }

    @Test
    void shouldReadMissesIntoTheCacheAndReadAheadOfASequentialReader() {
        cache = new BatchCache(arena, BatchCache.Settings.defaults().withCacheAppends(false).withReadAheadBytes(64 * 1024));
        LogConfig config = small.withSegmentBytes(1 << 20);
        Log log = open(config, cache);
        List<byte[]> expected = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            byte[] b = batchBytes(2, i, 1000);
            expected.add(stamped(b, appendBytes(log, b), 3));
        }
        log.flush();
        drive(() -> durable == 800, "durable");
        assertEquals(0, cache.cachedBytes(), "appends not cached");
        // A consumer reading 8 KiB at a time from the start, in order.
        long next = 0;
        int reads = 0;
        List<byte[]> got = new ArrayList<>();
        while (next < 800) {
            Chain c = readChain(log, next, 800, 8 * 1024, null);
            assertTrue(c.bytes().length > 0, "data at " + next);
            assertEquals(next, c.first());
            MemorySegment s = MemorySegment.ofArray(c.bytes());
            long pos = 0;
            RecordBatch v = new RecordBatch();
            while (pos < c.bytes().length) {
                v.wrap(s, pos);
                got.add(Arrays.copyOfRange(c.bytes(), (int) pos, (int) pos + v.sizeInBytes()));
                pos += v.sizeInBytes();
            }
            next = c.last() + 1;
            reads++;
        }
        assertEquals(expected.size(), got.size());
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), got.get(i), "batch " + i);
        }
        assertTrue(cache.readAheads() > 0, "read-ahead ran: " + cache);
        assertTrue(cache.misses() < reads / 4, "most reads hit thanks to read-ahead: " + cache + ", " + reads + " reads");
        assertTrue(cache.hits() > 0);
        close(log);
    }

    @Test
    void shouldKeepHandedOutChainsValidWhenTheCacheGivesMemoryBack() {
        cache = new BatchCache(arena);
        Log log = open(small, cache);
        byte[] one = batchBytes(2, 9, 3000);
        for (int i = 0; i < 20; i++) {
            appendBytes(log, one);
        }
        IoBuf[] held = new IoBuf[1];
        log.read(0, 40, 1 << 20, new Log.ChainReadHandler() {
            @Override
            public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
                held[0] = batches;
            }

            @Override
            public void onError(LogException error) {
                throw error;
            }
        });
        assertNotNull(held[0]);
        byte[] before = held[0].toByteArray();
        long cached = cache.cachedBytes();
        assertTrue(cached > 0);
        assertEquals(cached, cache.evict(Long.MAX_VALUE));
        assertEquals(0, cache.cachedBytes());
        // The memory of the evicted range lives on in the reader's share, unchanged.
        assertArrayEquals(before, held[0].toByteArray());
        assertEquals(20, batches(before).size());
        assertTrue(arena.used(Subsystem.BATCH_CACHE) > 0, "the share keeps its fragments");
        held[0].release();
        assertEquals(0, arena.used(Subsystem.BATCH_CACHE), "the last release frees them");
        close(log);
    }

    @Test
    void shouldStayWithinItsBudgetAndGiveMemoryBackUnderPressure() {
        arena.close();
        long budget = 512 * 1024;
        arena = MemoryArena.create(ArenaConfig.of(16L << 20).withBudget(Subsystem.BATCH_CACHE, budget));
        cache = new BatchCache(arena);
        Log log = open(small.withSegmentBytes(4 << 20), cache);
        byte[] one = batchBytes(4, 3, 2000);
        for (int i = 0; i < 300; i++) {
            appendBytes(log, one);
            assertTrue(arena.used(Subsystem.BATCH_CACHE) <= budget, "within the budget after append " + i);
        }
        assertTrue(cache.evictedBytes() > 0, "old ranges were dropped: " + cache);
        // Another subsystem that finds the arena short makes the cache give memory back.
        long big = arena.freeBytes() + 256 * 1024;
        long before = cache.cachedBytes();
        assertTrue(before > 0);
        long offset = arena.allocate(Math.min(big, 16L << 20), Subsystem.OTHER);
        if (offset != MemoryArena.NO_MEMORY) {
            assertTrue(cache.cachedBytes() < before, "the cache yielded: " + cache);
            arena.free(offset);
        }
        log.flush();
        drive(() -> durable == 1200, "durable");
        // Whatever was evicted is read back from the disk.
        Chain c = readChain(log, 0, 1200, 64 * 1024, null);
        assertEquals(0, c.first());
        assertArrayEquals(stamped(one, 0, 3), Arrays.copyOf(c.bytes(), one.length));
        close(log);
    }

    @Test
    void shouldForgetCachedBatchesCutBySuffixTruncation() {
        cache = new BatchCache(arena);
        Log log = open(small, cache);
        for (int i = 0; i < 10; i++) {
            appendBytes(log, batchBytes(1, i, 100));
        }
        assertEquals(10, batches(readChain(log, 0, 10, 1 << 20, null).bytes()).size());
        RuntimeException[] err = {null};
        boolean[] done = {false};
        log.truncateSuffix(6, e -> {
            err[0] = e;
            done[0] = true;
        });
        drive(() -> done[0], "truncation");
        assertEquals(null, err[0]);
        byte[] other = batchBytes(1, 77, 100);
        assertEquals(6, appendBytes(log, other));
        Chain c = readChain(log, 5, 100, 1 << 20, null);
        List<long[]> bs = batches(c.bytes());
        assertEquals(2, bs.size());
        assertEquals(6, bs.get(1)[0]);
        byte[] second = Arrays.copyOfRange(c.bytes(), c.bytes().length - other.length, c.bytes().length);
        assertArrayEquals(stamped(other, 6, 3), second, "the new batch, not the truncated one");
        close(log);
    }

    @Test
    void shouldReadAcrossTheGapsCompactionLeavesWithReadAhead() {
        cache = new BatchCache(arena, BatchCache.Settings.defaults().withCacheAppends(false).withReadAheadBytes(8192));
        LogManager manager = new LogManager(engine, dir, writes, reads, cache,
            new LogManager.CompactionSettings(1 << 20, 1 << 20, 3_600_000, 0.5, 0));
        LogConfig config = new LogConfig(64 * 1024, 7L * 24 * 3600 * 1000, 16 * 1024, 1024, -1, -1, 64 * 1024, true,
            24L * 3600 * 1000);
        Log[] opened = new Log[1];
        manager.open("gaps-0", config, d -> durable = d, (l, e) -> opened[0] = l);
        drive(() -> opened[0] != null, "open");
        Log log = opened[0];
        MemorySegment buf = MemorySegment.ofArray(new byte[8192]);
        for (int i = 0; i < 400; i++) {
            // Keys repeat every 25 batches: compaction keeps the last 25 batches' worth and leaves gaps.
            int size = new BatchBuilder(buf, 0, 0).add(1_700_000_000_000L, ("k" + (i % 25)).getBytes(),
                ("value-" + i + "-" + "p".repeat(500)).getBytes()).build();
            while (log.append(buf, 0, size, 1) == Log.NO_MEMORY) {
                engine.submitAndWait(1_000_000L);
            }
        }
        log.roll();
        log.flush();
        drive(() -> durable == 400 && log.segments().get(log.segments().size() - 2).appender == null, "sealed");
        boolean[] compacted = {false};
        manager.compact("gaps-0", e -> compacted[0] = true);
        while (!compacted[0]) {
            manager.poll();
            engine.submitAndWait(1_000_000L);
        }
        List<Long> seen = new ArrayList<>();
        long next = 0;
        while (next < 400) {
            Chain c = readChain(log, next, 400, 2048, null);
            assertTrue(c.bytes().length > 0, "data at " + next);
            RecordBatch v = new RecordBatch();
            for (long[] b : batches(c.bytes())) {
                assertTrue(b[0] >= next, "no batch before the one asked for");
            }
            for (long pos = 0; pos < c.bytes().length; pos += v.sizeInBytes()) {
                v.wrap(MemorySegment.ofArray(c.bytes()), pos);
                if (v.recordsCount() > 0) {
                    seen.add(v.baseOffset()); // empty batches keep the ends of the compacted groups
                }
            }
            next = c.last() + 1;
        }
        List<Long> expected = new ArrayList<>();
        for (long o = 375; o < 400; o++) {
            expected.add(o);
        }
        assertEquals(expected, seen, "exactly the last value of each key, read across the gaps");
        assertTrue(cache.readAheads() > 0 || cache.hits() > 0, cache.toString());
        boolean[] closed = {false};
        manager.closeAll(() -> closed[0] = true);
        drive(() -> closed[0], "close");
    }

    @Test
    void shouldCacheALargeChainAppendBySharingItsFragments() {
        cache = new BatchCache(arena);
        LogConfig config = small.withSegmentBytes(4 << 20).withMaxBatchBytes(1 << 20);
        reads.close();
        reads = ChunkPool.allocate(2, config.readWindowBytes());
        Log log = open(config, cache);
        byte[] big = batchBytes(3, 5, 200_000);
        IoBuf chain = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE).append(big, 0, big.length);
        assertTrue(chain.fragmentCount() > 1);
        long cacheBefore = arena.used(Subsystem.BATCH_CACHE);
        assertEquals(0, appendChain(log, chain));
        assertEquals(cacheBefore, arena.used(Subsystem.BATCH_CACHE), "no cache pages: the fragments are shared");
        long receiveHeld = arena.used(Subsystem.NETWORK_RECEIVE);
        chain.release();
        assertEquals(receiveHeld, arena.used(Subsystem.NETWORK_RECEIVE), "the cache keeps them alive");
        boolean[] sync = {false};
        Chain c = readChain(log, 0, 3, 1 << 20, sync);
        assertTrue(sync[0], "a hit");
        assertArrayEquals(stamped(big, 0, 3), c.bytes());
        // Smaller appends after it are copied into a new write range, contiguous with the shared one.
        byte[] smallBatch = batchBytes(1, 6, 100);
        assertEquals(3, appendBytes(log, smallBatch));
        assertEquals(2, batches(readChain(log, 0, 4, 4 << 20, null).bytes()).size());
        // Network receive memory running short makes the cache drop shared ranges.
        long request = arena.limit(Subsystem.NETWORK_RECEIVE) - arena.used(Subsystem.NETWORK_RECEIVE) + 4096;
        long offset = arena.allocate(request, Subsystem.NETWORK_RECEIVE);
        assertTrue(offset != MemoryArena.NO_MEMORY, "the shared range was given back: " + arena.lastFailure());
        arena.free(offset);
        assertEquals(0, arena.used(Subsystem.NETWORK_RECEIVE));
        close(log);
    }

    /**
     * A Raft payload's chain (appendReplicaChecked: final bytes) is cached by sharing its fragments at any size: small
     * batches go back to back into one shared write range, with no cache pages allocated and no byte copied; reads
     * hit it; the memory stays charged to the chain's subsystem until both the caller and the cache let go, and the
     * chain's subsystem running short makes the cache give it back. A copying append after it starts a copy range.
     */
    @Test
    void shouldShareSmallFinalChainsIntoOneRangeWithoutCopying() {
        arena.close();
        arena = MemoryArena.create(ArenaConfig.of(64L << 20).withBudget(Subsystem.RAFT, 1 << 20));
        cache = new BatchCache(arena);
        Log log = open(small, cache);
        long cacheBefore = arena.used(Subsystem.BATCH_CACHE);
        List<byte[]> expected = new ArrayList<>();
        long next = 0;
        for (int i = 0; i < 20; i++) {
            byte[] b = batchBytes(1 + i % 3, i, 100 + 37 * i);
            IoBuf chain = IoBuf.empty(arena, Subsystem.RAFT).append(b, 0, b.length);
            long r;
            while ((r = log.appendReplicaChecked(chain, 0, b.length, 3)) == Log.NO_MEMORY) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(next, r);
            expected.add(stamped(b, next, 3));
            next += 1 + i % 3;
            chain.release(); // as the Raft log does once the batch is durable: the cache keeps its own references
        }
        assertEquals(cacheBefore, arena.used(Subsystem.BATCH_CACHE), "no cache pages: the fragments are shared");
        assertTrue(arena.used(Subsystem.RAFT) > 0, "the cache keeps the payloads' memory");
        boolean[] sync = {false};
        long last = next - 1;
        Chain c = readChain(log, 0, next, 1 << 20, sync);
        assertTrue(sync[0], "a hit");
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        for (byte[] b : expected) {
            all.writeBytes(b);
        }
        assertArrayEquals(all.toByteArray(), c.bytes(), "every batch, back to back, as stored");
        assertEquals(0, c.first());
        assertEquals(last, c.last());
        assertTrue(cache.cachedBytes() > 0);
        // A copying append after the shared range: a new (copy) range, contiguous with it.
        byte[] copied = batchBytes(2, 99, 80);
        assertEquals(next, appendBytes(log, copied));
        assertEquals(21, batches(readChain(log, 0, next + 2, 1 << 20, null).bytes()).size());
        assertTrue(arena.used(Subsystem.BATCH_CACHE) > cacheBefore, "the copy went to cache pages");
        // The RAFT budget running short makes the cache drop its shared ranges.
        long offset = arena.allocate(arena.limit(Subsystem.RAFT), Subsystem.RAFT); // the whole budget, a power of 2
        assertTrue(offset != MemoryArena.NO_MEMORY, "the shared range was given back: " + arena.lastFailure());
        arena.free(offset);
        assertEquals(0, arena.used(Subsystem.RAFT));
        close(log);
    }

    @Test
    void shouldRefuseChainReadsWithoutACache() {
        Log log = open(small, null);
        appendBytes(log, batchBytes(1, 1, 10));
        assertThrows(IllegalStateException.class, () -> log.read(0, 1, 100, new Log.ChainReadHandler() {
            @Override
            public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
            }

            @Override
            public void onError(LogException error) {
            }
        }));
        close(log);
    }

    @Test
    void shouldMatchAModelUnderRandomAppendsReadsTruncationsAndEvictions() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("LogCacheTest model seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random random = new Random(seed);
        cache = new BatchCache(arena, BatchCache.Settings.defaults().withReadAheadBytes(16 * 1024));
        Log log = open(small, cache);
        List<byte[]> model = new ArrayList<>(); // by offset: the batch holding it (single-record batches + multi)
        List<Long> bases = new ArrayList<>();
        for (int step = 0; step < 1500; step++) {
            int op = random.nextInt(100);
            if (op < 50) {
                byte[] b = batchBytes(1 + random.nextInt(3), step, random.nextInt(4000));
                long base = random.nextBoolean() ? appendBytes(log, b) : appendChainOnce(log, b, random);
                assertEquals(log.logEndOffset() - batches(b).get(0)[1] + batches(b).get(0)[0] - 1, base, "seed " + seed);
                bases.add(base);
                model.add(stamped(b, base, 3));
            } else if (op < 85 && !bases.isEmpty()) {
                int k = random.nextInt(bases.size());
                long from = bases.get(k);
                long bound = random.nextInt(4) == 0 ? log.durableEndOffset() : log.logEndOffset();
                Chain c = readChain(log, from, bound, 1 + random.nextInt(20_000), null);
                if (from >= bound) {
                    assertEquals(0, c.bytes().length);
                    continue;
                }
                if (c.bytes().length == 0) {
                    // Only possible when the batch is not on disk yet and not cached.
                    continue;
                }
                int pos = 0;
                int i = k;
                for (long[] b : batches(c.bytes())) {
                    assertTrue(b[1] < bound, "never past the bound (seed " + seed + ")");
                    byte[] e = model.get(i);
                    assertArrayEquals(e, Arrays.copyOfRange(c.bytes(), pos, pos + e.length),
                        "batch " + i + " (seed " + seed + ")");
                    pos += e.length;
                    i++;
                }
            } else if (op < 90) {
                log.flush();
            } else if (op < 94 && bases.size() > 2) {
                int k = 1 + random.nextInt(bases.size() - 1);
                long cut = bases.get(k);
                boolean[] done = {false};
                log.truncateSuffix(cut, e -> {
                    assertEquals(null, e);
                    done[0] = true;
                });
                drive(() -> done[0], "truncate");
                while (bases.size() > k) {
                    bases.remove(bases.size() - 1);
                    model.remove(model.size() - 1);
                }
            } else if (op < 97) {
                cache.evict(random.nextInt(200_000));
            } else {
                engine.submitAndWait(1_000_000L);
            }
        }
        close(log);
        assertEquals(0, cache.cachedBytes());
    }

    long appendChainOnce(Log log, byte[] bytes, Random random) {
        IoBuf chain = chainOf(bytes, random);
        try {
            return appendChain(log, chain);
        } finally {
            chain.release();
        }
    }
}
