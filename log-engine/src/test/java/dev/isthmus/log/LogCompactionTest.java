package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Key-based compaction on real files: last value per key, tombstones and their delete horizon, batch offsets
 * and producer metadata kept, crash-safe swaps (every intermediate state on disk reopens correctly), work in
 * small steps while the log stays in use, and abandoning when the log changes under it.
 */
class LogCompactionTest {
    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    LogManager manager;
    final LogConfig compact = new LogConfig(64 * 1024, 7L * 24 * 3600 * 1000, 16 * 1024, 1024, -1, -1, 64 * 1024,
        true, 24L * 3600 * 1000);

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        writes = ChunkPool.allocate(32, 32 * 1024);
        reads = ChunkPool.allocate(4, compact.readWindowBytes());
        manager = newManager(LogManager.CompactionSettings.defaults());
    }

    LogManager newManager(LogManager.CompactionSettings settings) {
        return new LogManager(engine, dir, writes, reads, null, settings);
    }

    @AfterEach
    void tearDown() {
        boolean[] done = {false};
        manager.closeAll(() -> done[0] = true);
        drive(() -> done[0], "close all");
        engine.close();
        writes.close();
        reads.close();
    }

    void drive(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(1_000_000L);
            manager.poll();
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    Log open(String name, LogConfig config) {
        Log[] out = new Log[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        manager.open(name, config, d -> {
        }, (log, e) -> {
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

    void closeLog(String name) {
        boolean[] done = {false};
        manager.close(name, () -> done[0] = true);
        drive(() -> done[0], "close");
    }

    RuntimeException compactNow(String name) {
        RuntimeException[] err = new RuntimeException[1];
        boolean[] done = {false};
        manager.compact(name, e -> {
            err[0] = e;
            done[0] = true;
        });
        drive(() -> done[0], "compaction");
        return err[0];
    }

    /** One record per entry: key (null = keyless), value (null = tombstone). */
    record Rec(String key, String value) {
    }

    long append(Log log, long producerId, List<Rec> recs) {
        MemorySegment buf = MemorySegment.ofArray(new byte[64 * 1024]);
        BatchBuilder b = new BatchBuilder(buf, 0, 0);
        if (producerId >= 0) {
            b.producer(producerId, (short) 0, (int) log.logEndOffset());
        }
        for (Rec r : recs) {
            b.add(1_700_000_000_000L + log.logEndOffset(), r.key() == null ? null : r.key().getBytes(StandardCharsets.UTF_8),
                r.value() == null ? null : r.value().getBytes(StandardCharsets.UTF_8));
        }
        int size = b.build();
        long base;
        while ((base = log.append(buf, 0, size, 5)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        manager.appended(log);
        return base;
    }

    /** A batch as read back: its header and records. */
    record Batch(long base, long last, long producerId, int epoch, int leaderEpoch, int attributes, long baseTimestamp,
                 List<long[]> offsetsAndTimestamps, List<Rec> records) {
    }

    List<Batch> readAll(Log log) {
        byte[] bytes = LogTestSupport.readAll(engine, log, log.logStartOffset(), log.logEndOffset());
        List<Batch> out = new ArrayList<>();
        MemorySegment seg = MemorySegment.ofArray(bytes);
        RecordBatch v = new RecordBatch();
        Records r = new Records();
        long pos = 0;
        while (pos < bytes.length) {
            v.wrap(seg, pos);
            assertEquals(RecordBatch.Check.OK, v.check(bytes.length - pos, false), "valid batch at " + pos);
            List<long[]> ots = new ArrayList<>();
            List<Rec> recs = new ArrayList<>();
            if (r.wrap(v)) {
                while (r.next()) {
                    ots.add(new long[] {r.offset(), r.timestamp()});
                    recs.add(new Rec(r.keyLength() < 0 ? null : new String(r.key().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                        StandardCharsets.UTF_8), r.valueLength() < 0 ? null
                        : new String(r.value().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8)));
                }
            }
            out.add(new Batch(v.baseOffset(), v.lastOffset(), v.producerId(), v.producerEpoch(), v.partitionLeaderEpoch(),
                v.attributes(), v.baseTimestamp(), ots, recs));
            pos += v.sizeInBytes();
        }
        return out;
    }

    void rollAndSeal(Log log) {
        log.roll();
        log.flush();
        drive(() -> log.durableEndOffset() == log.logEndOffset() && log.quiescent(), "sealed");
        drive(() -> log.segments().get(log.segments().size() - 2).appender == null, "seal finished");
    }

    @Test
    void shouldKeepTheLastValueOfEveryKeyWithBatchOffsetsAndProducerMetadata() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("LogCompactionTest seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random random = new Random(seed);
        Log log = open("compact-0", compact);
        Map<String, Long> lastOffsetOfKey = new HashMap<>();
        Map<String, String> lastValue = new HashMap<>();
        List<long[]> originalBatches = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            List<Rec> recs = new ArrayList<>();
            int n = 1 + random.nextInt(4);
            for (int k = 0; k < n; k++) {
                String key = random.nextInt(20) == 0 ? null : "key-" + random.nextInt(40);
                recs.add(new Rec(key, "value-" + i + "-" + k + "-" + "x".repeat(random.nextInt(300))));
            }
            long pid = random.nextInt(3) == 0 ? 1000 + random.nextInt(3) : -1;
            long base = append(log, pid, recs);
            originalBatches.add(new long[] {base, base + n - 1, pid});
            for (int k = 0; k < n; k++) {
                if (recs.get(k).key() != null) {
                    lastOffsetOfKey.put(recs.get(k).key(), base + k);
                    lastValue.put(recs.get(k).key(), recs.get(k).value());
                }
            }
        }
        rollAndSeal(log);
        long end = log.logEndOffset();
        long sizeBefore = log.sizeBytes();
        int segmentsBefore = log.segmentCount();
        assertTrue(segmentsBefore > 3, "several segments: " + segmentsBefore);
        List<Batch> before = readAll(log);

        assertNull(compactNow("compact-0"), "seed " + seed);
        assertEquals(end, log.logEndOffset());
        assertTrue(log.sizeBytes() < sizeBefore / 2, "compaction removed most bytes: " + sizeBefore + " -> " + log.sizeBytes());
        assertTrue(manager.compactions() >= 1);
        checkCompacted(readAll(log), before, lastOffsetOfKey, lastValue, originalBatches, seed);

        // Reopen: the same content, from the swapped segments and their new indexes.
        closeLog("compact-0");
        Log again = open("compact-0", compact);
        assertEquals(end, again.logEndOffset());
        checkCompacted(readAll(again), before, lastOffsetOfKey, lastValue, originalBatches, seed);
        // Appends continue; compacting again changes nothing that was already clean.
        append(again, -1, List.of(new Rec("key-1", "after")));
        assertNull(compactNow("compact-0"));
        checkCompacted(readAll(again).subList(0, readAll(again).size() - 1), before, lastOffsetOfKey, lastValue,
            originalBatches, seed);
    }

    private void checkCompacted(List<Batch> after, List<Batch> before, Map<String, Long> lastOffsetOfKey,
                                Map<String, String> lastValue, List<long[]> originalBatches, long seed) {
        Map<Long, long[]> originals = new HashMap<>();
        for (long[] b : originalBatches) {
            originals.put(b[0], b);
        }
        Map<String, Integer> seen = new LinkedHashMap<>();
        long prevLast = -1;
        for (Batch b : after) {
            long[] o = originals.get(b.base());
            assertNotNull(o, "batch " + b.base() + " is one of the original batches (seed " + seed + ")");
            assertEquals(o[1], b.last(), "last offset kept (seed " + seed + ")");
            assertEquals(o[2], b.producerId(), "producer id kept");
            assertEquals(5, b.leaderEpoch(), "leader epoch kept");
            assertTrue(b.base() > prevLast, "offsets increase");
            prevLast = b.last();
            for (int i = 0; i < b.records().size(); i++) {
                Rec r = b.records().get(i);
                long offset = b.offsetsAndTimestamps().get(i)[0];
                if (r.key() != null) {
                    assertEquals(lastOffsetOfKey.get(r.key()), offset, "only the last record of " + r.key() + " (seed " + seed + ")");
                    assertEquals(lastValue.get(r.key()), r.value());
                    seen.merge(r.key(), 1, Integer::sum);
                }
                assertEquals(1_700_000_000_000L + b.base(), b.offsetsAndTimestamps().get(i)[1], "timestamp kept");
            }
        }
        assertEquals(lastOffsetOfKey.keySet(), seen.keySet(), "every key still has its last value (seed " + seed + ")");
        // Keyless records are all kept.
        long keylessBefore = before.stream().flatMap(b -> b.records().stream()).filter(r -> r.key() == null).count();
        long keylessAfter = after.stream().flatMap(b -> b.records().stream()).filter(r -> r.key() == null).count();
        assertEquals(keylessBefore, keylessAfter);
        // The log's last batch is there (its end is kept).
        assertEquals(before.get(before.size() - 1).last(), after.get(after.size() - 1).last());
    }

    @Test
    void shouldDropTombstonesOnlyOnceTheirDeleteHorizonPassed() {
        // A long delete retention: the tombstone survives compactions.
        Log kept = open("tomb-kept", compact);
        append(kept, -1, List.of(new Rec("a", "1"), new Rec("b", "1")));
        append(kept, -1, List.of(new Rec("a", null)));
        append(kept, -1, List.of(new Rec("c", "1")));
        rollAndSeal(kept);
        assertNull(compactNow("tomb-kept"));
        List<Batch> once = readAll(kept);
        Batch tomb = once.stream().filter(b -> b.base() == 2).findFirst().orElseThrow();
        assertEquals(List.of(new Rec("a", null)), tomb.records(), "the tombstone stays, the value it deletes goes");
        assertTrue((tomb.attributes() & LogCompaction.DELETE_HORIZON_BIT) != 0, "its delete horizon is set");
        assertTrue(tomb.baseTimestamp() > System.currentTimeMillis() + 3600_000L, "horizon = now + delete.retention.ms");
        assertEquals(1_700_000_000_002L, tomb.offsetsAndTimestamps().get(0)[1], "the record's timestamp is unchanged");
        assertEquals(List.of(new Rec("b", "1")), once.get(0).records());
        append(kept, -1, List.of(new Rec("d", "1")));
        rollAndSeal(kept);
        assertNull(compactNow("tomb-kept"));
        assertTrue(readAll(kept).stream().anyMatch(b -> b.records().contains(new Rec("a", null))), "still there");

        // delete.retention.ms = 0: the first compaction sets the horizon, the next one removes the tombstone.
        Log gone = open("tomb-gone", new LogConfig(64 * 1024, 7L * 24 * 3600 * 1000, 16 * 1024, 1024, -1, -1, 64 * 1024,
            true, 0));
        append(gone, -1, List.of(new Rec("a", "1")));
        append(gone, -1, List.of(new Rec("a", null)));
        append(gone, -1, List.of(new Rec("z", "1")));
        rollAndSeal(gone);
        assertNull(compactNow("tomb-gone"));
        assertTrue(readAll(gone).stream().anyMatch(b -> b.records().contains(new Rec("a", null))), "kept on the first pass");
        assertNull(compactNow("tomb-gone"));
        List<Batch> after = readAll(gone);
        assertFalse(after.stream().anyMatch(b -> b.records().stream().anyMatch(r -> "a".equals(r.key()))),
            "the tombstone and the value are gone: " + after);
        assertEquals(2, after.get(after.size() - 1).last(), "the log end is kept");
    }

    /** Appends a transactional batch of producer {@code producerId} (sequence from {@code seq}). */
    long appendTransactional(Log log, long producerId, int seq, List<Rec> recs) {
        MemorySegment buf = MemorySegment.ofArray(new byte[64 * 1024]);
        BatchBuilder b = new BatchBuilder(buf, 0, 0).producer(producerId, (short) 0, seq);
        for (Rec r : recs) {
            b.add(1_700_000_000_000L + log.logEndOffset(), r.key().getBytes(StandardCharsets.UTF_8),
                r.value() == null ? null : r.value().getBytes(StandardCharsets.UTF_8));
        }
        int size = b.build();
        buf.set(RecordBatch.SHORT, RecordBatch.ATTRIBUTES,
            (short) (buf.get(RecordBatch.SHORT, RecordBatch.ATTRIBUTES) | RecordBatch.TRANSACTIONAL_BIT));
        new RecordBatch().wrap(buf, 0).updateCrc();
        return appendBytes(log, buf, size);
    }

    /** Appends the COMMIT or ABORT marker of {@code producerId}. */
    long appendMarker(Log log, long producerId, boolean commit) {
        MemorySegment buf = MemorySegment.ofArray(new byte[ControlBatch.MARKER_BYTES]);
        ControlBatch.writeMarker(buf, 0, producerId, (short) 0, commit, 3, 1_700_000_000_000L + log.logEndOffset());
        return appendBytes(log, buf, ControlBatch.MARKER_BYTES);
    }

    long appendBytes(Log log, MemorySegment buf, int size) {
        long base;
        while ((base = log.append(buf, 0, size, 5)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        manager.appended(log);
        return base;
    }

    RuntimeException compactReplicatedNow(Log log, TransactionIndex txns) {
        RuntimeException[] err = new RuntimeException[1];
        boolean[] done = {false};
        manager.cleaner().compactReplicated(log, log.logEndOffset(), txns, e -> {
            err[0] = e;
            done[0] = true;
        });
        drive(() -> done[0] && !manager.compactionRunning(), "compaction");
        return err[0];
    }

    @Test
    void shouldRemoveAbortedRecordsThenTheirMarkerOnceItsDeleteHorizonPassed() {
        // delete.retention.ms = 0: a discardable marker's horizon is "now", so the pass after it removes it.
        Log log = open("txn-0", new LogConfig(64 * 1024, 7L * 24 * 3600 * 1000, 16 * 1024, 1024, -1, -1, 64 * 1024,
            true, 0));
        TransactionIndex txns = new TransactionIndex(log.dir(), log.fileOps());
        assertEquals(0, appendTransactional(log, 1, 0, List.of(new Rec("a", "committed"))));
        assertEquals(1, appendTransactional(log, 2, 0, List.of(new Rec("a", "aborted"), new Rec("b", "aborted"))));
        assertEquals(3, appendMarker(log, 1, true));
        assertEquals(4, appendMarker(log, 2, false));
        txns.append(0, 2, 1, 4, 5); // the owner indexes the ABORT marker that ends producer 2's transaction
        assertEquals(5, append(log, -1, List.of(new Rec("c", "plain"))));
        rollAndSeal(log);

        // Pass 1: the aborted records go (their batch stays, empty: a replicated log keeps every batch) and never
        // entered the key map, so the committed "a" stays. Both markers stay: their transactions had records here.
        assertNull(compactReplicatedNow(log, txns));
        List<Batch> once = readAll(log);
        assertEquals(List.of(0L, 1L, 3L, 4L, 5L), once.stream().map(Batch::base).toList());
        assertEquals(List.of(new Rec("a", "committed")), once.get(0).records());
        assertEquals(List.of(), once.get(1).records(), "the aborted records are gone");
        assertEquals(2, once.get(1).last(), "the emptied batch keeps its offsets");
        assertEquals(2, once.get(1).producerId());
        assertEquals(1, once.get(2).records().size(), "the COMMIT marker stays");
        assertEquals(1, once.get(3).records().size(), "the ABORT marker stays");
        assertEquals(0, once.get(3).attributes() & LogCompaction.DELETE_HORIZON_BIT);
        assertEquals(1, txns.size(), "the ABORT marker's index entry stays with it");
        assertArrayEquals(new long[] {2, 1, 4, 5}, txns.entries().get(0));

        // Pass 2 (due at once: nothing of the aborted transaction is left): its index entry goes and its marker gets a
        // delete horizon; the COMMIT marker stays while its transaction's record does.
        assertNull(compactReplicatedNow(log, txns));
        List<Batch> twice = readAll(log);
        assertEquals(0, txns.size(), "no record of the aborted transaction is left to hide");
        assertEquals(1, twice.get(3).records().size(), "the ABORT marker waits for its delete horizon");
        assertTrue((twice.get(3).attributes() & LogCompaction.DELETE_HORIZON_BIT) != 0, "its delete horizon is set");
        assertEquals(0, twice.get(2).attributes() & LogCompaction.DELETE_HORIZON_BIT);

        // Pass 3: the horizon has passed; the marker's record goes (its batch stays, empty).
        assertNull(compactReplicatedNow(log, txns));
        List<Batch> after = readAll(log);
        assertEquals(List.of(0L, 1L, 3L, 4L, 5L), after.stream().map(Batch::base).toList());
        assertEquals(List.of(), after.get(3).records(), "the ABORT marker is removed");
        assertTrue((after.get(3).attributes() & RecordBatch.CONTROL_BIT) != 0);
        assertEquals(1, after.get(2).records().size(), "the COMMIT marker stays with its data");
        assertEquals(List.of(new Rec("a", "committed")), after.get(0).records());
        assertEquals(List.of(new Rec("c", "plain")), after.get(4).records());
    }

    @Test
    void shouldNotLetAnAbortedValueShadowTheCommittedOneWhileItsMarkerIsPending() {
        // A long delete retention: the marker of the aborted transaction outlives several passes.
        Log log = open("txn-1", compact);
        TransactionIndex txns = new TransactionIndex(log.dir(), log.fileOps());
        append(log, -1, List.of(new Rec("k", "v0")));                    // 0
        appendTransactional(log, 7, 0, List.of(new Rec("k", "v1")));     // 1 (committed)
        appendMarker(log, 7, true);                                       // 2
        appendTransactional(log, 7, 1, List.of(new Rec("k", "bad")));    // 3 (aborted)
        appendMarker(log, 7, false);                                      // 4
        txns.append(0, 7, 3, 4, 5);
        rollAndSeal(log);
        assertNull(compactReplicatedNow(log, txns));
        List<Batch> once = readAll(log);
        assertEquals(List.of(), once.get(0).records(), "v0 is superseded by the committed v1");
        assertEquals(List.of(new Rec("k", "v1")), once.get(1).records(), "the aborted value does not supersede it");
        assertEquals(List.of(), once.get(3).records());
        // More passes (new data each time) keep the committed value; the marker keeps its horizon until it passes.
        for (int i = 0; i < 2; i++) {
            append(log, -1, List.of(new Rec("other", "x" + i)));
            rollAndSeal(log);
            assertNull(compactReplicatedNow(log, txns));
        }
        List<Batch> later = readAll(log);
        assertEquals(List.of(new Rec("k", "v1")), later.get(1).records());
        assertEquals(1, later.get(4).records().size(), "the ABORT marker stays until its delete horizon");
        assertTrue((later.get(4).attributes() & LogCompaction.DELETE_HORIZON_BIT) != 0);
        assertEquals(0, txns.size());
    }

    @Test
    void shouldKeepAProducersLastBatchEvenWhenAllItsRecordsWereSuperseded() {
        Log log = open("producer-0", compact);
        append(log, 77, List.of(new Rec("k", "1")));          // offset 0: producer 77's only batch
        append(log, -1, List.of(new Rec("k", "2")));          // offset 1
        append(log, 88, List.of(new Rec("j", "1")));          // offset 2: producer 88, superseded by 4
        append(log, 88, List.of(new Rec("x", "1")));          // offset 3: producer 88's last batch
        append(log, -1, List.of(new Rec("j", "2")));          // offset 4
        append(log, -1, List.of(new Rec("k", "3")));          // offset 5
        rollAndSeal(log);
        assertNull(compactNow("producer-0"));
        List<Batch> after = readAll(log);
        Batch p77 = after.stream().filter(b -> b.base() == 0).findFirst().orElseThrow();
        assertEquals(77, p77.producerId());
        assertEquals(0, p77.records().size(), "an empty batch keeps producer 77's sequence");
        assertFalse(after.stream().anyMatch(b -> b.base() == 1), "a superseded batch without a producer is dropped");
        assertFalse(after.stream().anyMatch(b -> b.base() == 2), "not producer 88's last batch: dropped");
        assertTrue(after.stream().anyMatch(b -> b.base() == 3));
        // Readers move across the gaps: a read at a removed offset returns the next batch.
        byte[] bytes = LogTestSupport.readAll(engine, log, 1, log.logEndOffset());
        assertEquals(3, new RecordBatch().wrap(MemorySegment.ofArray(bytes), 0).baseOffset());
    }

    @Test
    void shouldFinishOrUndoAnInterruptedSwapOnOpen() throws IOException {
        Log log = open("swap-0", compact);
        Random random = new Random(3);
        for (int i = 0; i < 300; i++) {
            append(log, -1, List.of(new Rec("key-" + random.nextInt(10), "v" + i + "x".repeat(200))));
        }
        rollAndSeal(log);
        // A first pass leaves small segments; the pass under test groups them into one.
        assertNull(compactNow("swap-0"));
        long end = log.logEndOffset();
        closeLog("swap-0");
        Path logDir = dir.resolve("swap-0");
        Path original = dir.resolve("original");
        copyTree(logDir, original);
        Log l = open("swap-0", compact);
        List<Batch> uncompacted = readAll(l);
        assertNull(compactNow("swap-0"));
        List<Batch> compacted = readAll(l);
        closeLog("swap-0");
        long[] compactedBases = Log.listSegments(logDir);
        long[] originalBases = Log.listSegments(original);
        assertTrue(compactedBases.length < originalBases.length, "segments were grouped");
        Path compactedFirst = dir.resolve("compacted-first.log");
        Files.copy(logDir.resolve(Segment.fileName(compactedBases[0], ".log")), compactedFirst);
        // The group that became the first compacted segment: original segments in [its base, the next compacted base).
        long groupNext = compactedBases.length > 1 ? compactedBases[1] : end;

        // 1. Crash before the commit: a .cleaned file next to the untouched originals. It is ignored and deleted.
        Path state = dir.resolve("state-1");
        copyTree(original, state);
        Files.copy(compactedFirst, state.resolve(Segment.fileName(compactedBases[0], LogCompaction.CLEANED_SUFFIX)));
        replaceLogDir(logDir, state);
        Log s1 = open("swap-0", compact);
        assertBatchesEqual(uncompacted, readAll(s1));
        assertFalse(Files.exists(logDir.resolve(Segment.fileName(compactedBases[0], LogCompaction.CLEANED_SUFFIX))));
        closeLog("swap-0");

        // 2. Crash right after the commit: the .swap file and all the originals. The swap is finished.
        state = dir.resolve("state-2");
        copyTree(original, state);
        Files.copy(compactedFirst, state.resolve(LogCompaction.swapName(compactedBases[0], groupNext)));
        replaceLogDir(logDir, state);
        Log s2 = open("swap-0", compact);
        List<Batch> got2 = readAll(s2);
        assertEquals(compacted.get(0).base(), got2.get(0).base());
        assertEquals(end, s2.logEndOffset());
        assertSameValues(compacted, got2, groupNext);
        closeLog("swap-0");

        // 3. Crash in the middle of deleting the originals (some gone, indexes gone): finished the same way.
        state = dir.resolve("state-3");
        copyTree(original, state);
        Files.copy(compactedFirst, state.resolve(LogCompaction.swapName(compactedBases[0], groupNext)));
        Files.delete(state.resolve(Segment.fileName(originalBases[0], ".log")));
        Files.deleteIfExists(state.resolve(Segment.fileName(originalBases[0], ".index")));
        replaceLogDir(logDir, state);
        Log s3 = open("swap-0", compact);
        assertSameValues(compacted, readAll(s3), groupNext);
        assertEquals(end, s3.logEndOffset());
        closeLog("swap-0");
    }

    private void assertBatchesEqual(List<Batch> expected, List<Batch> got) {
        assertEquals(expected.size(), got.size());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i).base(), got.get(i).base());
            assertEquals(expected.get(i).records(), got.get(i).records());
        }
    }

    /** The batches below {@code until} are those of the compacted log. */
    private void assertSameValues(List<Batch> compacted, List<Batch> got, long until) {
        List<Batch> a = compacted.stream().filter(b -> b.base() < until).toList();
        List<Batch> b = got.stream().filter(x -> x.base() < until).toList();
        assertBatchesEqual(a, b);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Files.copy(p, to.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    private static void replaceLogDir(Path logDir, Path state) throws IOException {
        try (Stream<Path> files = Files.list(logDir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Files.delete(p);
            }
        }
        copyTree(state, logDir);
    }

    @Test
    void shouldWorkInSmallStepsWhileTheLogStaysInUse() {
        manager = newManager(new LogManager.CompactionSettings(1 << 20, 4096, 3_600_000, 0.5, 0));
        Log log = open("steps-0", compact);
        for (int i = 0; i < 500; i++) {
            append(log, -1, List.of(new Rec("key-" + (i % 7), "v" + i + "y".repeat(100))));
        }
        rollAndSeal(log);
        boolean[] done = {false};
        RuntimeException[] err = {null};
        manager.compact("steps-0", e -> {
            err[0] = e;
            done[0] = true;
        });
        int polls = 0;
        long maxWork = 0;
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!done[0] && System.nanoTime() < deadline) {
            // The log is used while it is compacted: appends, flushes and reads go on.
            append(log, -1, List.of(new Rec("key-" + (polls % 7), "during-" + polls)));
            int work = manager.poll();
            maxWork = Math.max(maxWork, work);
            engine.submitAndWait(0);
            polls++;
        }
        assertTrue(done[0], "compaction finished");
        assertNull(err[0]);
        assertTrue(polls > 10, "the compaction took many small steps: " + polls);
        assertTrue(maxWork <= 4096 + 16 * 1024 + 1, "no step did much more than the budget (one batch over at most): " + maxWork);
        log.flush();
        drive(() -> log.durableEndOffset() == log.logEndOffset(), "durable");
        List<Batch> all = readAll(log);
        assertEquals(log.logEndOffset() - 1, all.get(all.size() - 1).last());
    }

    @Test
    void shouldAbandonACompactionWhenTheLogIsTruncatedUnderIt() {
        manager = newManager(new LogManager.CompactionSettings(1 << 20, 1024, 3_600_000, 0.5, 0));
        Log log = open("trunc-0", compact);
        List<Long> bases = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            bases.add(append(log, -1, List.of(new Rec("key-" + (i % 5), "v" + i + "z".repeat(300)))));
        }
        rollAndSeal(log);
        List<Batch> before = readAll(log);
        boolean[] done = {false};
        RuntimeException[] err = {null};
        manager.compact("trunc-0", e -> {
            err[0] = e;
            done[0] = true;
        });
        for (int i = 0; i < 5; i++) {
            manager.poll();
            engine.submitAndWait(1_000_000L);
        }
        assertFalse(done[0], "still running");
        long cut = bases.get(150);
        boolean[] truncated = {false};
        log.truncateSuffix(cut, e -> {
            assertNull(e);
            truncated[0] = true;
        });
        drive(() -> truncated[0] && done[0], "truncation and the compaction's end");
        assertNotNull(err[0], "abandoned");
        assertTrue(err[0].getMessage().contains("truncated"), err[0].getMessage());
        assertEquals(cut, log.logEndOffset());
        assertBatchesEqual(before.subList(0, 150), readAll(log));
        try (Stream<Path> files = Files.list(dir.resolve("trunc-0"))) {
            assertFalse(files.anyMatch(p -> p.toString().endsWith(LogCompaction.CLEANED_SUFFIX)), "no cleaned file left");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void shouldCompactOnItsOwnOnceEnoughIsDirty() {
        manager = newManager(new LogManager.CompactionSettings(1 << 20, 64 * 1024, 0, 0.5, 0));
        Log log = open("auto-0", compact);
        Log plain = open("plain-0", new LogConfig(64 * 1024, compact.segmentMs(), 16 * 1024, 1024, -1, -1, 64 * 1024,
            false, 0));
        for (int i = 0; i < 300; i++) {
            append(log, -1, List.of(new Rec("key-" + (i % 3), "v" + i + "w".repeat(300))));
            append(plain, -1, List.of(new Rec("key-" + (i % 3), "v" + i + "w".repeat(300))));
        }
        rollAndSeal(log);
        rollAndSeal(plain);
        long plainSize = plain.sizeBytes();
        long size = log.sizeBytes();
        // Compactions start on their own, as segments seal and make the log dirty enough, until it is all clean.
        drive(() -> log.sizeBytes() < size / 4 && !manager.compactionRunning(), "automatic compaction");
        assertTrue(manager.compactions() >= 1);
        assertEquals(plainSize, plain.sizeBytes(), "cleanup.policy=delete logs are never compacted");
    }

    @Test
    void shouldFollowEachLogsOwnDirtyRatioAndMaxCompactionLag() {
        // The cleaner compacts only logs dirty to 99.9% of their cleanable bytes, unless a log says otherwise.
        manager = newManager(new LogManager.CompactionSettings(1 << 20, 64 * 1024, 0, 0.999, 0));
        Log plain = open("plain-0", compact);
        Log ratio = open("ratio-0", compact.withCompaction(-1, Long.MAX_VALUE, 0.5));
        Log lagged = open("lagged-0", compact.withCompaction(-1, 1, -1)); // records are from 2023: long past 1 ms
        List<Log> logs = List.of(plain, ratio, lagged);
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 300; i++) {
                for (Log log : logs) {
                    append(log, -1, List.of(new Rec("key-" + (i % 3), "v" + i + "w".repeat(300))));
                }
            }
            long[] sizes = new long[logs.size()];
            for (int j = 0; j < logs.size(); j++) {
                rollAndSeal(logs.get(j));
                sizes[j] = logs.get(j).sizeBytes();
            }
            if (round == 0) {
                // Wholly dirty: every log is compacted.
                drive(() -> logs.stream().allMatch(l -> l.cleanerCheckpoint() > 0) && !manager.compactionRunning(),
                    "first compactions");
                continue;
            }
            double dirty = LogCompaction.dirtyRatio(plain, System.currentTimeMillis(), 0);
            assertTrue(dirty > 0.5 && dirty < 0.999, "dirty ratio " + dirty);
            drive(() -> ratio.sizeBytes() < sizes[1] / 4 && lagged.sizeBytes() < sizes[2] / 4
                && !manager.compactionRunning(), "compaction by the logs' own ratio and max lag");
            for (int turn = 0; turn < 200; turn++) {
                engine.submitAndWait(1_000_000L);
                manager.poll();
            }
            assertEquals(sizes[0], plain.sizeBytes(), "below the cleaner's ratio and with no max lag: not compacted");
        }
    }
}
