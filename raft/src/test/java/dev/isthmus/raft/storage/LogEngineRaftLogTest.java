package dev.isthmus.raft.storage;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;

import dev.isthmus.log.BatchCache;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.HardState;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.TermIndex;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link LogEngineRaftLog} on real files through the real I/O engine. */
class LogEngineRaftLogTest {
    /**
     * The I/O backend under test (io_uring where usable). The portable backend cannot reopen a cleanly closed
     * log yet (the log-engine's tail read of an unaligned segment gets EIO there), so it is not run here.
     */
    IoBackend backend() {
        return IoBackend.AUTO;
    }

    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    final LogConfig config = LogConfig.defaults().withSegmentBytes(128 * 1024).withFallocateStep(64 * 1024);
    final LinkedHashSet<LogEngineRaftLog> toPoll = new LinkedHashSet<>();
    LogManager logs;

    static final class Recorder implements RaftLog.Callbacks {
        long durable = -1;
        HardState hardState;
        SnapshotMeta saved;
        SnapshotMeta installed;
        int readable;
        String failure;

        @Override
        public void onAppendDurable(long durableOffset) {
            durable = durableOffset;
        }

        @Override
        public void onHardStateDurable(HardState state) {
            hardState = state;
        }

        @Override
        public void onSnapshotSaved(SnapshotMeta meta) {
            saved = meta;
        }

        @Override
        public void onSnapshotInstalled(SnapshotMeta meta) {
            installed = meta;
        }

        @Override
        public void onReadable() {
            readable++;
        }

        @Override
        public void onStorageFailure(String what) {
            failure = what;
        }
    }

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(backend(), RingConfig.defaults());
        writes = ChunkPool.allocate(32, 32 * 1024);
        reads = ChunkPool.allocate(4, config.readWindowBytes());
    }

    @AfterEach
    void tearDown() {
        engine.close();
        writes.close();
        reads.close();
    }

    void drive(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 60_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            pollAll();
            engine.submitAndWait(1_000_000L);
            pollAll();
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    /** The storage's loop turn, as RaftShard runs it: the logs that asked, then the shard's log housekeeping. */
    void pollAll() {
        List<LogEngineRaftLog> l = new ArrayList<>(toPoll);
        toPoll.clear();
        for (LogEngineRaftLog log : l) {
            log.poll();
        }
        if (logs != null) {
            logs.poll();
        }
    }

    /** The shard's log housekeeper over the current engine and pools (a new one when a test replaces them). */
    LogManager logs() {
        if (logs == null || logs.engine() != engine || logs.writePool() != writes || logs.readPool() != reads) {
            logs = new LogManager(engine, dir, writes, reads);
        }
        return logs;
    }

    LogEngineRaftLog open(Recorder rec) {
        return open(rec, LogEngineRaftLog.Options.defaults());
    }

    LogEngineRaftLog open(Recorder rec, LogEngineRaftLog.Options options) {
        return open(rec, options, config);
    }

    LogEngineRaftLog open(Recorder rec, LogEngineRaftLog.Options options, LogConfig config) {
        LogEngineRaftLog[] out = new LogEngineRaftLog[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        LogEngineRaftLog.open(logs(), dir.resolve("p0"), config, options, toPoll::add, (l, e) -> {
            out[0] = l;
            err[0] = e;
            called[0] = true;
        });
        drive(() -> called[0], "open");
        if (err[0] != null) {
            throw err[0];
        }
        out[0].bind(rec);
        return out[0];
    }

    void close(LogEngineRaftLog log) {
        boolean[] closed = {false};
        log.close(() -> closed[0] = true);
        drive(() -> closed[0], "close");
    }

    static Entry data(long offset, long term, int records, int tag) {
        byte[][] values = new byte[records][];
        for (int i = 0; i < records; i++) {
            values[i] = ("v" + tag + "-" + i).getBytes();
        }
        return Entry.data(offset, term, KafkaBatchPayload.ofValues(1_700_000_000_000L + tag, values));
    }

    List<Entry> readAll(LogEngineRaftLog log, Recorder rec, long from) {
        List<Entry> out = new ArrayList<>();
        long next = from;
        int pendingInARow = 0;
        while (next <= log.lastOffset()) {
            assertTrue(pendingInARow < 100, "reads at " + next + " never become ready (livelock)");
            List<Entry> got = new ArrayList<>();
            int before = rec.readable;
            int rc = log.read(next, 1 << 20, got);
            if (rc == RaftLog.READ_PENDING) {
                pendingInARow++;
                drive(() -> rec.readable > before, "readable");
                continue;
            }
            pendingInARow = 0;
            assertEquals(RaftLog.READ_OK, rc);
            assertTrue(!got.isEmpty());
            out.addAll(got);
            next = got.get(got.size() - 1).lastOffset() + 1;
        }
        return out;
    }

    @Test
    void shouldPersistEntriesTermsConfigurationAndHardStateAcrossReopen() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        assertEquals(HardState.INITIAL, log.hardState());
        assertEquals(0, log.startOffset());
        List<Entry> written = new ArrayList<>();
        written.add(Entry.leaderChange(0, 1));
        written.add(data(1, 1, 3, 1));
        written.add(Entry.configuration(4, 1, Configuration.ofVoters(1, 2, 3)));
        written.add(data(5, 2, 1, 2));
        written.add(data(6, 2, 5, 3));
        log.append(written);
        log.persistHardState(new HardState(2, 3));
        assertEquals(10, log.lastOffset(), "visible at once");
        assertEquals(2, log.termAt(6));
        drive(() -> rec.durable == 10 && new HardState(2, 3).equals(rec.hardState), "durable");
        assertEquals(new HardState(2, 3), log.hardState());
        close(log);

        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(new HardState(2, 3), again.hardState());
        assertEquals(10, again.lastOffset());
        assertEquals(10, again.durableOffset());
        assertEquals(1, again.termAt(4));
        assertEquals(2, again.termAt(10));
        assertEquals(6, again.lastOffsetAtOrBeforeTerm(1) + 2);
        assertEquals(List.of(written.get(2)), again.configurationEntries());
        assertEquals(written, readAll(again, rec2, 0), "entries read back from disk");
        close(again);
    }

    @Test
    void shouldTruncateSuffixAndKeepDurabilityConsistent() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 2, 1), data(3, 1, 2, 2), data(5, 1, 2, 3)));
        drive(() -> rec.durable == 6, "durable");
        log.truncateSuffix(3);
        assertEquals(2, log.lastOffset());
        assertEquals(2, log.durableOffset(), "durable offset drops with the truncation");
        log.append(List.of(Entry.leaderChange(3, 4), data(4, 4, 1, 9)));
        assertTrue(log.durableOffset() <= 2);
        drive(() -> rec.durable == 4, "new suffix durable");
        close(log);

        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(4, again.lastOffset());
        assertEquals(4, again.termAt(3));
        assertEquals(1, again.termAt(2));
        List<Entry> all = readAll(again, rec2, 0);
        assertEquals(4, all.size());
        assertEquals(data(4, 4, 1, 9), all.get(3));
        close(again);
    }

    @Test
    void shouldRecoverAfterAnUncleanStopWithoutLosingDurableEntries() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        long seed = Long.getLong("isthmus.seed", new SplittableRandom().nextLong());
        SplittableRandom r = new SplittableRandom(seed);
        long term = 1;
        long next = 0;
        for (int i = 0; i < 300; i++) {
            if (r.nextInt(20) == 0) {
                term++;
                log.persistHardState(new HardState(term, -1));
            }
            Entry e = data(next, term, 1 + r.nextInt(4), i);
            log.append(List.of(e));
            next = e.lastOffset() + 1;
            if (r.nextInt(10) == 0 && log.lastOffset() > rec.durable + 2) {
                long from = log.lastOffset();
                long t = log.termAt(from);
                // cut the last entry (it starts where the previous one ended)
                List<Entry> tail = new ArrayList<>();
                int before = rec.readable;
                int rc = log.read(from, 1 << 20, tail);
                if (rc == RaftLog.READ_OK && !tail.isEmpty() && tail.get(0).baseOffset() > rec.durable) {
                    log.truncateSuffix(tail.get(0).baseOffset());
                    next = tail.get(0).baseOffset();
                    assertEquals(t, tail.get(0).term());
                } else if (rc == RaftLog.READ_PENDING) {
                    drive(() -> rec.readable > before, "readable");
                }
            }
            if (r.nextInt(8) == 0) {
                pollAll();
                engine.submitAndWait(0);
            }
        }
        long lastTerm = term;
        drive(() -> rec.durable == log.lastOffset() && rec.hardState != null && rec.hardState.term() == lastTerm,
            "all durable");
        TermIndex expected = new TermIndex();
        List<Entry> everything = readAll(log, rec, 0);
        for (Entry e : everything) {
            expected.append(e.baseOffset(), e.lastOffset(), e.term());
        }
        // Unclean stop: the engine goes away without closing the log or writing a clean-shutdown marker.
        engine.close();
        engine = IoEngine.create(backend(), RingConfig.defaults());
        toPoll.clear();
        logs = null; // the old engine's housekeeper went with it
        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(log.lastOffset(), again.lastOffset(), "seed " + seed);
        assertEquals(lastTerm, again.hardState().term(), "seed " + seed);
        for (long o = 0; o <= again.lastOffset(); o++) {
            assertEquals(expected.termAt(o), again.termAt(o), "seed " + seed + " offset " + o);
        }
        assertEquals(everything, readAll(again, rec2, 0), "seed " + seed);
        close(again);
    }

    @Test
    void shouldRebuildTermsWhenTheCheckpointDisagreesWithTheLog() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 4, 1), Entry.leaderChange(5, 3), data(6, 3, 2, 2),
            Entry.leaderChange(8, 5), data(9, 5, 3, 3)));
        drive(() -> rec.durable == 11, "durable");
        close(log);
        // A stale checkpoint (as if written before a truncation): it claims term 4 from offset 5 to 20.
        TermIndex stale = new TermIndex();
        stale.append(0, 4, 1);
        stale.append(5, 20, 4);
        RaftStateFile f = RaftStateFile.open(engine, dir.resolve("p0").resolve(LogEngineRaftLog.STATE_FILE));
        boolean[] written = {false};
        f.write(LogEngineRaftLog.encodeRecord(new HardState(5, 2), SnapshotMeta.NONE, new byte[0], stale, List.of()),
            err -> written[0] = err == null);
        drive(() -> written[0], "stale record");
        f.close();
        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(11, again.lastOffset());
        assertEquals(1, again.termAt(4));
        assertEquals(3, again.termAt(5));
        assertEquals(3, again.termAt(7));
        assertEquals(5, again.termAt(8));
        assertEquals(5, again.termAt(11));
        assertEquals(new HardState(5, 2), again.hardState());
        close(again);
    }

    @Test
    void shouldSaveASnapshotAndCompactThePrefix() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        List<Entry> es = new ArrayList<>();
        long next = 0;
        for (int i = 0; i < 50; i++) {
            Entry e = data(next, 1, 1 + i % 3, i);
            es.add(e);
            next = e.lastOffset() + 1;
        }
        log.append(es);
        drive(() -> rec.durable == log.lastOffset(), "durable");
        Entry mid = es.get(30);
        SnapshotMeta meta = new SnapshotMeta(mid.lastOffset(), 1, Configuration.ofVoters(1));
        log.saveSnapshot(meta, new byte[] {1, 2, 3});
        drive(() -> meta.equals(rec.saved), "snapshot saved");
        log.truncatePrefix(mid.lastOffset() + 1);
        assertEquals(mid.lastOffset() + 1, log.startOffset());
        assertEquals(1, log.termAt(mid.lastOffset()));
        List<Entry> out = new ArrayList<>();
        assertEquals(RaftLog.READ_BELOW_START, log.read(mid.baseOffset(), 100, out));
        close(log);

        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(meta, again.snapshotMeta());
        assertEquals(3, again.snapshotData().length);
        assertEquals(mid.lastOffset() + 1, again.startOffset());
        assertEquals(es.subList(31, 50), readAll(again, rec2, again.startOffset()));
        close(again);
    }

    @Test
    void shouldKeepARecordStartInsideTheFirstEntryAndTruncationEntriesAcrossReopen() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        List<Entry> es = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            es.add(data(3L * i, 1, 3, i)); // entries of three records: [0..2], [3..5], ... [57..59]
        }
        Entry marker = Entry.prefixTruncation(60, 1, 31);
        es.add(marker);
        log.append(es);
        drive(() -> rec.durable == 60, "durable");
        SnapshotMeta meta = new SnapshotMeta(29, 1, Configuration.ofVoters(1));
        log.saveSnapshot(meta, new byte[0]);
        drive(() -> meta.equals(rec.saved), "snapshot saved");
        log.truncatePrefix(30);
        assertEquals(30, log.startOffset());
        log.advanceRecordStart(31);
        assertEquals(31, log.log().logStartOffset(), "the log-engine's start moves at once (reads check it)");
        drive(() -> log.recordStartOffset() == 31, "record start durable");
        assertEquals(31, log.recordStartOffset(), "inside the entry [30..32], reported once durable");
        assertEquals(es.subList(10, 21), readAll(log, rec, 30), "the first entry is still read whole");
        assertEquals(List.of(marker), log.prefixTruncationEntries());
        close(log);

        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(30, again.startOffset());
        assertEquals(31, again.recordStartOffset());
        assertEquals(1, again.termAt(29));
        assertEquals(List.of(marker), again.prefixTruncationEntries());
        assertEquals(es.subList(10, 21), readAll(again, rec2, 30));
        again.append(List.of(data(61, 2, 2, 99)));
        drive(() -> rec2.durable == 62, "appends after the reopen");
        close(again);
    }

    /** A batch as compaction leaves it: {@code kept} records left of the {@code offsets} it covers. */
    static KafkaBatchPayload thinned(int offsets, int kept, int tag) {
        ValueLayout.OfInt i32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
        byte[] buf = new byte[4096];
        dev.isthmus.log.BatchBuilder b = new dev.isthmus.log.BatchBuilder(MemorySegment.ofArray(buf), 0, 0);
        for (int i = 0; i < Math.max(1, kept); i++) {
            b.add(1_700_000_000_000L, ("k" + i).getBytes(), ("v" + tag + "-" + i).getBytes());
        }
        int built = b.build();
        byte[] bytes = java.util.Arrays.copyOf(buf, kept == 0 ? RecordBatch.HEADER_BYTES : built);
        MemorySegment seg = MemorySegment.ofArray(bytes);
        seg.set(i32, RecordBatch.BATCH_LENGTH, bytes.length - RecordBatch.LOG_OVERHEAD);
        seg.set(i32, RecordBatch.LAST_OFFSET_DELTA, offsets - 1);
        seg.set(i32, RecordBatch.RECORDS_COUNT, kept);
        new RecordBatch().wrap(seg, 0).updateCrc();
        return new KafkaBatchPayload(bytes);
    }

    @Test
    void shouldTakeBatchesACompactionThinnedOrEmptiedKeepingTheirOffsets() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        List<Entry> es = List.of(data(0, 1, 2, 1), Entry.data(2, 1, thinned(5, 2, 7)), Entry.data(7, 1, thinned(3, 0, 8)),
            data(10, 2, 1, 9));
        log.append(es);
        assertEquals(10, log.lastOffset());
        drive(() -> rec.durable == 10, "durable");
        close(log);
        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(10, again.lastOffset());
        assertEquals(1, again.termAt(9));
        assertEquals(es, readAll(again, rec2, 0), "thinned batches read back with their offsets");
        close(again);
    }

    @Test
    void shouldReplaceTheWholeLogWithAForeignSnapshot() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 3, 1)));
        drive(() -> rec.durable == 3, "durable");
        SnapshotMeta meta = new SnapshotMeta(1_000, 7, Configuration.ofVoters(1, 2, 3));
        log.installSnapshot(meta, new byte[] {42});
        drive(() -> meta.equals(rec.installed), "installed");
        assertEquals(1_001, log.startOffset());
        assertEquals(1_000, log.lastOffset());
        assertEquals(7, log.termAt(1_000));
        log.append(List.of(Entry.leaderChange(1_001, 8)));
        drive(() -> rec.durable == 1_001, "durable after install");
        close(log);

        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(meta, again.snapshotMeta());
        assertEquals(1_001, again.startOffset());
        assertEquals(1_001, again.lastOffset());
        assertEquals(8, again.termAt(1_001));
        assertNotNull(again.snapshotData());
        close(again);
    }

    @Test
    void shouldQueueAppendsWhileWriteBehindMemoryIsShortAndTruncateBehindThem() {
        writes.close();
        writes = ChunkPool.allocate(2, 32 * 1024); // far less than the burst below
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec);
        List<Entry> burst = new ArrayList<>();
        long next = 0;
        for (int i = 0; i < 120; i++) {
            byte[] v = new byte[3000];
            java.util.Arrays.fill(v, (byte) i);
            Entry e = Entry.data(next, 1, KafkaBatchPayload.ofValues(1_700_000_000_000L, v));
            burst.add(e);
            next = e.lastOffset() + 1;
        }
        log.append(burst);
        assertEquals(119, log.lastOffset(), "all visible although the log took only part of them");
        log.truncateSuffix(100); // behind appends still queued
        log.append(List.of(Entry.leaderChange(100, 2)));
        drive(() -> rec.durable == 100, "queued appends and the truncation reach the disk");
        close(log);
        Recorder rec2 = new Recorder();
        LogEngineRaftLog again = open(rec2);
        assertEquals(100, again.lastOffset());
        assertEquals(2, again.termAt(100));
        List<Entry> all = readAll(again, rec2, 0);
        assertEquals(burst.subList(0, 100), all.subList(0, 100));
        close(again);
    }

    @Test
    void shouldServeReadsFromDiskWhenTheTailCacheIsTiny() {
        Recorder rec = new Recorder();
        LogEngineRaftLog log = open(rec, new LogEngineRaftLog.Options(1024, 64L << 20, 1L << 20));
        List<Entry> es = new ArrayList<>();
        long next = 0;
        for (int i = 0; i < 400; i++) {
            Entry e = data(next, 1 + i / 100, 1 + i % 4, i);
            es.add(e);
            next = e.lastOffset() + 1;
        }
        log.append(es);
        drive(() -> rec.durable == log.lastOffset(), "durable");
        assertEquals(es, readAll(log, rec, 0), "every entry comes back although the cache holds about one");
        close(log);
    }

    /** A copy of a heap batch in {@code arena}'s Raft memory, as the produce path makes it. */
    /**
     * One CRC-32C per batch: a batch that did not come through the produce path's validation (a follower's, off the
     * network) is checked in full as it is appended, refused with its problem named when its CRC does not match, and
     * marked checked once it passed (the log-engine then checks its header only); a batch the produce path marked is
     * taken on its header.
     */
    @Test
    void shouldCheckAnUncheckedBatchInFullOnceAndTakeACheckedOneOnItsHeader() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(16L << 20).withDebug(true));
        try {
            Recorder rec = new Recorder();
            LogEngineRaftLog log = open(rec);
            byte[] corrupt = data(0, 1, 2, 1).payload() instanceof KafkaBatchPayload p ? p.bytes().clone() : null;
            corrupt[corrupt.length - 1] ^= 1;
            KafkaBatchPayload bad = KafkaBatchPayload.copyOf(IoBuf.wrap(MemorySegment.ofArray(corrupt)), 0,
                corrupt.length, arena);
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> log.append(List.of(Entry.data(0, 1, bad))));
            assertTrue(e.getMessage().contains("BAD_CRC"), e.getMessage());
            assertEquals(-1, log.lastOffset(), "nothing of a refused batch is appended");
            org.junit.jupiter.api.Assertions.assertFalse(bad.isChecked());
            bad.release();

            KafkaBatchPayload heard = inArena((KafkaBatchPayload) data(0, 1, 2, 2).payload(), arena);
            org.junit.jupiter.api.Assertions.assertFalse(heard.isChecked());
            log.append(List.of(Entry.data(0, 1, heard)));
            assertTrue(heard.isChecked(), "checked in full once, marked for the log-engine");
            heard.release();
            KafkaBatchPayload produced = inArena((KafkaBatchPayload) data(0, 1, 3, 3).payload(), arena).markChecked();
            log.append(List.of(Entry.data(2, 1, produced)));
            produced.release();
            assertEquals(4, log.lastOffset());
            drive(() -> rec.durable == 4, "durable");
            assertEquals(List.of(data(0, 1, 2, 2), data(2, 1, 3, 3)), readAll(log, rec, 0), "both stored intact");
            close(log);
            assertEquals(0, arena.used(Subsystem.RAFT));
            arena.checkNoLeaks();
        } finally {
            arena.close();
        }
    }

    static KafkaBatchPayload inArena(KafkaBatchPayload heap, MemoryArena arena) {
        byte[] b = heap.bytes();
        return KafkaBatchPayload.copyOf(IoBuf.wrap(MemorySegment.ofArray(b)), 0, b.length, arena);
    }

    /** A one-record batch whose value is {@code valueBytes} long (a multi-fragment chain when over 128 KiB). */
    static KafkaBatchPayload bigBatch(int valueBytes, int tag) {
        byte[] v = new byte[valueBytes];
        new java.util.Random(tag).nextBytes(v);
        return KafkaBatchPayload.ofValues(1_700_000_000_000L + tag, v);
    }

    @Test
    void shouldKeepArenaPayloadsOnlyWhileItNeedsThemAndGiveEveryByteBack() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(16L << 20).withDebug(true));
        try {
            Recorder rec = new Recorder();
            // A tail cache of 64 KiB: most entries are evicted once durable, the rest at truncation and close.
            // Segments of 1 MiB, so that batches over one 128 KiB fragment fit max.message.bytes.
            LogConfig big = LogConfig.defaults().withSegmentBytes(1 << 20).withFallocateStep(256 * 1024)
                .withMaxBatchBytes(240 * 1024);
            LogEngineRaftLog log = open(rec, new LogEngineRaftLog.Options(64 * 1024, 64L << 20, 1L << 20), big);
            List<Entry> expected = new ArrayList<>();
            List<KafkaBatchPayload> made = new ArrayList<>();
            long next = 0;
            for (int i = 0; i < 40; i++) {
                KafkaBatchPayload heap = i % 10 == 3 ? bigBatch(100_000 + 60_000 * (i % 3), i)
                    : (KafkaBatchPayload) data(0, 1, 1 + i % 4, i).payload();
                KafkaBatchPayload a = inArena(heap, arena);
                made.add(a);
                Entry e = Entry.data(next, 1, a);
                expected.add(Entry.data(next, 1, heap));
                log.append(List.of(e));
                a.release(); // as Partition does: the log holds its own references
                next = e.lastOffset() + 1;
            }
            assertTrue(arena.used(Subsystem.RAFT) > 0, "the log holds the payloads it has not written yet");
            long last = log.lastOffset();
            drive(() -> rec.durable == last, "durable");
            // Under memory pressure (the shard's reclaim hook) every durable arena entry leaves the cache.
            assertTrue(arena.used(Subsystem.RAFT) > 0, "the tail cache holds recent arena entries");
            assertTrue(log.shedArenaEntries(Long.MAX_VALUE) > 0);
            assertEquals(0, arena.used(Subsystem.RAFT), "nothing else held them");
            assertEquals(expected, readAll(log, rec, 0), "every batch, multi-fragment ones too, reads back intact");
            // Cut the last ten entries while some are still cached: their references go with them.
            long cut = expected.get(30).baseOffset();
            log.truncateSuffix(cut);
            assertEquals(cut - 1, log.lastOffset());
            drive(() -> log.durableOffset() == cut - 1, "truncated");
            close(log);
            for (KafkaBatchPayload a : made) {
                assertEquals(0, a.refCount(), a + " still referenced after close");
            }
            assertEquals(0, arena.used(Subsystem.RAFT), "every payload's memory is back in the arena");

            Recorder rec2 = new Recorder();
            LogEngineRaftLog again = open(rec2, new LogEngineRaftLog.Options(64 * 1024, 64L << 20, 1L << 20), big);
            assertEquals(expected.subList(0, 30), readAll(again, rec2, 0), "what the log wrote from arena memory");
            close(again);
            arena.checkNoLeaks();
        } finally {
            arena.close();
        }
    }

    /**
     * The leader's produce path replicates the chain a request was received into (no copy into Raft memory), and one
     * cache serves a partition: with the shard's batch cache, the tail cache keeps only entries not durable yet, and
     * durable ones are read back from the batch cache, a hit answering at once with payloads sharing its fragments.
     * Every byte goes back to the arena at close.
     */
    @Test
    void shouldReplicateReceivedChainsAndServeDurableEntriesFromTheBatchCache() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(64L << 20).withDebug(true));
        try {
            BatchCache batchCache = new BatchCache(arena);
            logs = new LogManager(engine, dir, writes, reads, batchCache);
            Recorder rec = new Recorder();
            LogEngineRaftLog log = open(rec);
            List<Entry> expected = new ArrayList<>();
            List<KafkaBatchPayload> made = new ArrayList<>();
            long next = 0;
            for (int i = 0; i < 30; i++) {
                KafkaBatchPayload heap = (KafkaBatchPayload) data(0, 1, 1 + i % 4, i).payload();
                byte[] b = heap.bytes();
                // A request as a connection receives it: a frame header, then the batch, in receive memory.
                IoBuf received = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE);
                received.append(new byte[17]);
                received.append(b);
                KafkaBatchPayload p = KafkaBatchPayload.shareOf(received, 17, b.length).markChecked();
                received.release(); // the request is done with it; the payload keeps the fragment
                made.add(p);
                Entry e = Entry.data(next, 1, p);
                expected.add(Entry.data(next, 1, heap));
                log.append(List.of(e));
                p.release(); // as Partition does: the log holds its own references
                next = e.lastOffset() + 1;
            }
            assertEquals(0, arena.used(Subsystem.RAFT), "nothing was copied into Raft memory");
            long last = log.lastOffset();
            drive(() -> rec.durable == last, "durable");
            for (Entry e : expected) {
                org.junit.jupiter.api.Assertions.assertNull(log.cachedEntry(e.baseOffset()),
                    "a durable entry stays in the batch cache only, not in Raft's tail cache: " + e);
            }
            long hits = batchCache.hits();
            List<Entry> got = new ArrayList<>();
            assertEquals(RaftLog.READ_OK, log.read(0, 1 << 20, got), "a batch-cache hit answers at once");
            assertTrue(batchCache.hits() > hits, "served by the batch cache");
            assertEquals(expected.subList(0, got.size()), got);
            for (Entry e : got) {
                assertTrue(((KafkaBatchPayload) e.payload()).inArena(), "shared, not copied to the heap: " + e);
            }
            assertEquals(expected, readAll(log, rec, 0), "every entry reads back intact");
            close(log);
            for (KafkaBatchPayload p : made) {
                assertEquals(0, p.refCount(), p + " still referenced after close");
            }
            assertEquals(0, arena.used(Subsystem.NETWORK_RECEIVE), "the received chains went back to the arena");
            arena.checkNoLeaks();
        } finally {
            logs = null;
            arena.close();
        }
    }
}
