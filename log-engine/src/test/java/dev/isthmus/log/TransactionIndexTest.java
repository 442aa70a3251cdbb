package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.uring.FileOps;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The aborted-transaction index: Kafka's collectAbortedTxns rules, the files a checkpoint writes (Kafka's 34-byte
 * entries, one file per segment), what a restore takes back or refuses, and the control batch layout.
 */
class TransactionIndexTest {
    private static List<long[]> collect(TransactionIndex idx, long from, long upper) {
        List<long[]> out = new ArrayList<>();
        idx.collect(from, upper, (pid, first) -> out.add(new long[] {pid, first}));
        return out;
    }

    private static TreeMap<Long, byte[]> read(TransactionIndex idx, Path dir) {
        AtomicReference<TreeMap<Long, byte[]>> files = new AtomicReference<>();
        idx.readState("snap", (snapshot, f, problem) -> files.set(f));
        FileOps.JDK.awaitBackground(dir);
        return files.get();
    }

    @Test
    void shouldCollectTheAbortedTransactionsOverlappingAFetchAndStopAtTheFirstStableOne(@TempDir Path dir) {
        TransactionIndex idx = new TransactionIndex(dir, FileOps.JDK);
        // pid 1: [0, 10] (another transaction open from 5 at its abort), pid 2: [5, 20], pid 3: [30, 40].
        idx.append(0, 1, 0, 10, 5);
        idx.append(0, 2, 5, 20, 21);
        idx.append(0, 3, 30, 40, 41);
        assertEquals(3, collect(idx, 0, 100).size());
        // A fetch of [11, 25): pid 1 ended at 10 (before the fetch); pid 2 overlaps; pid 2's LSO (21) is below 25, so
        // the search goes on, and pid 3 starts at 30 (past the fetch).
        List<long[]> got = collect(idx, 11, 25);
        assertEquals(1, got.size());
        assertArrayEquals(new long[] {2, 5}, got.get(0));
        // [0, 3): pid 1 (first 0) and pid 2 (first 5, no) ... the search stops at pid 1's LSO 5 >= 3.
        got = collect(idx, 0, 3);
        assertEquals(1, got.size());
        assertArrayEquals(new long[] {1, 0}, got.get(0));
        assertThrows(IllegalStateException.class, () -> idx.append(0, 4, 35, 40, 41), "markers come in order");
    }

    @Test
    void shouldWriteKafkasEntriesPerSegmentAtACheckpointAndRestoreThem(@TempDir Path dir) throws Exception {
        TransactionIndex idx = new TransactionIndex(dir, FileOps.JDK);
        idx.append(0, 7, 2, 9, 10);
        idx.append(100, 8, 98, 120, 121);
        idx.append(100, 9, 130, 140, 141);
        byte[] manifest = idx.manifest();
        AtomicReference<String> problem = new AtomicReference<>("not run");
        idx.checkpoint(dir.resolve("snap"), new byte[] {1, 2, 3}, true, problem::set);
        assertNull(problem.get());
        byte[] first = Files.readAllBytes(TransactionIndex.path(dir, 0));
        byte[] second = Files.readAllBytes(TransactionIndex.path(dir, 100));
        assertEquals(TransactionIndex.ENTRY_BYTES, first.length);
        assertEquals(2 * TransactionIndex.ENTRY_BYTES, second.length);
        ByteBuffer b = ByteBuffer.wrap(second);
        assertEquals(0, b.getShort()); // version
        assertEquals(8, b.getLong()); // producer id
        assertEquals(98, b.getLong()); // first offset (in the segment before: the marker decides the file)
        assertEquals(120, b.getLong()); // the marker's offset
        assertEquals(121, b.getLong()); // the last stable offset after it
        assertEquals("00000000000000000100.txnindex", TransactionIndex.path(dir, 100).getFileName().toString());

        TransactionIndex again = new TransactionIndex(dir, FileOps.JDK);
        assertNull(again.restore(manifest, read(again, dir), 0));
        assertEquals(3, again.size());
        assertEquals(collect(idx, 0, 1000).size(), collect(again, 0, 1000).size());
        // Entries wholly below the log start are left out; a file partly above it is kept whole.
        TransactionIndex later = new TransactionIndex(dir, FileOps.JDK);
        assertNull(later.restore(manifest, read(later, dir), 125));
        assertEquals(2, later.size());
    }

    @Test
    void shouldRefuseARestoreWhenAFileTheSnapshotCountedIsShortOrMissing(@TempDir Path dir) throws Exception {
        TransactionIndex idx = new TransactionIndex(dir, FileOps.JDK);
        idx.append(0, 7, 2, 9, 10);
        idx.append(0, 8, 11, 19, 20);
        idx.checkpoint(dir.resolve("snap"), new byte[0], true, x -> {
        });
        byte[] manifest = idx.manifest();
        Path file = TransactionIndex.path(dir, 0);
        byte[] whole = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(whole, whole.length - 1));
        TransactionIndex torn = new TransactionIndex(dir, FileOps.JDK);
        String why = torn.restore(manifest, read(torn, dir), 0);
        assertNotNull(why);
        assertTrue(why.contains("holds"), why);
        assertEquals(0, torn.size(), "nothing taken: the owner rebuilds from the log");
        Files.delete(file);
        TransactionIndex gone = new TransactionIndex(dir, FileOps.JDK);
        why = gone.restore(manifest, read(gone, dir), 0);
        assertTrue(why != null && why.contains("missing"), why);
    }

    @Test
    void shouldWriteAndReadKafkasTransactionMarker() {
        MemorySegment m = MemorySegment.ofArray(new byte[ControlBatch.MARKER_BYTES]);
        assertEquals(78, ControlBatch.writeMarker(m, 0, 42, (short) 3, false, 17, 1_000));
        RecordBatch batch = new RecordBatch().wrap(m, 0);
        assertTrue(batch.isControl());
        assertEquals(42, batch.producerId());
        assertEquals(3, batch.producerEpoch());
        assertEquals(-1, batch.baseSequence());
        assertEquals(RecordBatch.Check.OK, RecordBatch.check(IoBuf.wrap(m), 0, 78, true));
        IoBuf buf = IoBuf.wrap(m);
        assertEquals(ControlBatch.ABORT, ControlBatch.type(buf, 0));
        assertEquals(17, ControlBatch.coordinatorEpoch(buf, 0));
        ControlBatch.writeMarker(m, 0, 42, (short) 3, true, 18, 1_000);
        assertEquals(ControlBatch.COMMIT, ControlBatch.type(buf, 0));
        assertEquals(18, ControlBatch.coordinatorEpoch(buf, 0));
    }
}
