package dev.isthmus.uring.sim;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.FileOps;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The simulated disk's fault model: what survives which crash, and how operations complete. */
class SimDiskTest {
    static final Path DIR = Path.of("/data/log");
    static final int BLOCK = 4096;

    final Arena arena = Arena.ofAuto();

    MemorySegment block(int fill, int blocks) {
        MemorySegment m = arena.allocate((long) blocks * BLOCK, BLOCK);
        m.fill((byte) fill);
        return m;
    }

    /** Results of completed operations, by attachment. */
    static final class Results {
        final List<long[]> done = new ArrayList<>();

        void on(int result, int flags, long attachment) {
            done.add(new long[] {attachment, result});
        }

        long result(long attachment) {
            for (long[] d : done) {
                if (d[0] == attachment) {
                    return d[1];
                }
            }
            throw new AssertionError("operation " + attachment + " did not complete");
        }
    }

    static void drain(SimEngine e) {
        for (int i = 0; i < 10_000 && e.inFlight() > 0; i++) {
            e.submitAndWait(1_000_000_000L);
        }
        assertEquals(0, e.inFlight(), "operations left in flight");
    }

    SimEngine engine(long seed) throws IOException {
        SimEngine e = SimEngine.standalone(seed, SimFaults.quiet());
        e.fileOps().createDirectories(DIR);
        e.fileOps().syncDirectory(DIR.getParent());
        e.fileOps().syncDirectory(DIR);
        return e;
    }

    @Test
    void shouldKeepWhatFdatasyncCoveredThroughAPowerLoss() throws IOException {
        for (long seed = 0; seed < 50; seed++) {
            SimEngine e = engine(seed);
            Results r = new Results();
            DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
            e.syncDirectory(DIR, r::on, 9);
            f.write(block(1, 2), 0, r::on, 1);
            drain(e);
            f.datasync(r::on, 2);
            drain(e);
            f.write(block(2, 1), 2L * BLOCK, r::on, 3); // completed, never synced
            drain(e);
            assertEquals(0, r.result(2));
            SimDisk disk = e.disk();
            disk.crash(true);
            byte[] after = disk.contents(DIR.resolve("a.log"));
            assertNotNull(after, "seed " + seed + ": a synced file in a synced directory survives");
            assertTrue(after.length >= 2 * BLOCK, "seed " + seed + ": the synced size survives");
            for (int i = 0; i < 2 * BLOCK; i++) {
                assertEquals(1, after[i], "seed " + seed + ": synced byte " + i);
            }
            assertTrue(e.isCrashed());
        }
    }

    @Test
    void shouldSometimesLoseOrTearUnsyncedWrites() throws IOException {
        Set<String> outcomes = new HashSet<>();
        for (long seed = 0; seed < 300; seed++) {
            SimEngine e = engine(seed);
            e.disk().faults().tornBlockRate = 0.5;
            Results r = new Results();
            DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
            e.syncDirectory(DIR, r::on, 9);
            f.write(block(7, 3), 0, r::on, 1);
            drain(e);
            e.disk().crash(true);
            byte[] after = e.disk().contents(DIR.resolve("a.log"));
            int sevens = 0;
            for (byte b : after) {
                sevens += b == 7 ? 1 : 0;
            }
            outcomes.add(sevens == 3 * BLOCK ? "whole" : sevens == 0 ? "none"
                : sevens % BLOCK == 0 ? "blocks" : "torn");
        }
        assertEquals(Set.of("whole", "none", "blocks", "torn"), outcomes, "every fate of an unsynced write occurs");
    }

    @Test
    void shouldKeepEveryCompletedWriteThroughAProcessCrash() throws IOException {
        for (long seed = 0; seed < 50; seed++) {
            SimEngine e = engine(seed);
            Results r = new Results();
            DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
            f.write(block(3, 2), 0, r::on, 1);
            drain(e);
            e.disk().crash(false);
            byte[] after = e.disk().contents(DIR.resolve("a.log"));
            assertNotNull(after, "a process crash keeps an unsynced create");
            byte[] expected = new byte[2 * BLOCK];
            Arrays.fill(expected, (byte) 3);
            assertArrayEquals(expected, Arrays.copyOf(after, 2 * BLOCK));
            // ... but it is still not durable: a power loss afterwards may lose it.
        }
    }

    @Test
    void shouldLoseCreatesRenamesAndDeletesUntilTheDirectoryIsSynced() throws IOException {
        int lostCreate = 0;
        int revertedRename = 0;
        int undeleted = 0;
        for (long seed = 0; seed < 200; seed++) {
            SimEngine e = engine(seed);
            FileOps fs = e.fileOps();
            fs.writeAtomically(DIR.resolve("keep"), new byte[] {1});
            fs.syncDirectory(DIR);
            fs.writeAtomically(DIR.resolve("ckpt"), new byte[] {1});
            fs.syncDirectory(DIR);
            fs.writeAtomically(DIR.resolve("ckpt"), new byte[] {2}); // rename over it, directory not synced
            try (FileOps.Writer w = fs.create(DIR.resolve("new"))) {
                w.write(java.nio.ByteBuffer.wrap(new byte[] {5}));
                w.sync();
            }
            fs.deleteIfExists(DIR.resolve("keep"));
            e.disk().crash(true);
            byte[] ckpt = fs.readAllBytes(DIR.resolve("ckpt"));
            assertEquals(1, ckpt.length, "an atomic rename leaves one whole version");
            assertTrue(ckpt[0] == 1 || ckpt[0] == 2);
            revertedRename += ckpt[0] == 1 ? 1 : 0;
            lostCreate += fs.exists(DIR.resolve("new")) ? 0 : 1;
            undeleted += fs.exists(DIR.resolve("keep")) ? 1 : 0;
        }
        assertTrue(lostCreate > 0 && revertedRename > 0 && undeleted > 0, "unsynced directory changes are sometimes lost: "
            + lostCreate + " creates, " + revertedRename + " renames, " + undeleted + " deletes");
    }

    @Test
    void shouldCommitEarlierMetadataWithAnyFsyncInJournalMode() throws IOException {
        for (long seed = 0; seed < 50; seed++) {
            SimEngine e = engine(seed);
            e.disk().faults().strictDirectories = false;
            FileOps fs = e.fileOps();
            try (FileOps.Writer w = fs.create(DIR.resolve("new"))) {
                w.write(java.nio.ByteBuffer.wrap(new byte[] {5}));
                w.sync();
            }
            e.disk().crash(true);
            assertArrayEquals(new byte[] {5}, fs.readAllBytes(DIR.resolve("new")));
        }
    }

    @Test
    void shouldCompleteOperationsOutOfOrderByLatency() throws IOException {
        SimEngine e = engine(3);
        e.disk().faults().spikeRate = 0.5;
        Results r = new Results();
        DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
        for (int i = 0; i < 32; i++) {
            f.write(block(i, 1), (long) i * BLOCK, r::on, i);
        }
        drain(e);
        List<Long> order = new ArrayList<>();
        for (long[] d : r.done) {
            order.add(d[0]);
            assertEquals(BLOCK, d[1]);
        }
        List<Long> sorted = new ArrayList<>(order);
        sorted.sort(null);
        assertFalse(order.equals(sorted), "32 writes with random latencies complete out of order: " + order);
    }

    @Test
    void shouldFailWithEnospcWhenFullAndEioWhenTold() throws IOException {
        SimEngine e = engine(4);
        Results r = new Results();
        DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
        e.disk().faults().capacityBytes = BLOCK;
        f.write(block(1, 2), 0, r::on, 1);
        drain(e);
        assertEquals(-Errno.ENOSPC, r.result(1));
        e.disk().faults().capacityBytes = Long.MAX_VALUE;
        e.disk().faults().ioErrorRate = 1.0;
        f.datasync(r::on, 2);
        drain(e);
        assertEquals(-Errno.EIO, r.result(2));
    }

    @Test
    void shouldReadBackWhatWasWrittenAndStopAtTheEnd() throws IOException {
        SimEngine e = engine(5);
        Results r = new Results();
        DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
        f.write(block(9, 1), 0, r::on, 1);
        drain(e);
        f.truncate(100);
        MemorySegment into = block(0, 2);
        f.read(into, 0, r::on, 2);
        drain(e);
        assertEquals(100, r.result(2), "a read stops at the end of the file");
        assertEquals(9, into.get(ValueLayout.JAVA_BYTE, 99));
        assertThrows(IllegalArgumentException.class, () -> f.read(into.asSlice(1, BLOCK), 0, r::on, 3));
    }

    @Test
    void shouldRunBackgroundTasksInOrderAndLoseThemInACrash() throws IOException {
        SimEngine e = engine(6);
        FileOps fs = e.fileOps();
        List<Integer> ran = new ArrayList<>();
        fs.submitBackground(DIR, "one", () -> ran.add(1));
        fs.submitBackground(DIR, "two", () -> ran.add(2));
        assertEquals(2, fs.backgroundQueued());
        fs.awaitBackground(DIR);
        assertEquals(List.of(1, 2), ran);
        fs.submitBackground(DIR, "three", () -> ran.add(3));
        e.disk().crash(false);
        assertEquals(0, fs.backgroundQueued());
        assertEquals(List.of(1, 2), ran);
    }

    @Test
    void shouldMisdirectWritesWhenToldAndReportThemDone() throws IOException {
        SimEngine e = engine(8);
        e.disk().faults().misdirectRate = 1.0;
        Results r = new Results();
        DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
        f.write(block(1, 4), 0, r::on, 1);
        drain(e);
        f.write(block(2, 1), 3L * BLOCK, r::on, 2);
        drain(e);
        assertEquals(BLOCK, r.result(2), "a misdirected write reports success");
        byte[] c = e.disk().contents(DIR.resolve("a.log"));
        int twos = 0;
        for (byte b : c) {
            twos += b == 2 ? 1 : 0;
        }
        assertEquals(BLOCK, twos, "the block landed, whole, at some aligned block of the file");
    }

    @Test
    void shouldReplayTheSameSeedExactly() throws IOException {
        assertEquals(run(42), run(42));
    }

    private String run(long seed) throws IOException {
        SimEngine e = engine(seed);
        e.disk().faults().spikeRate = 0.3;
        Results r = new Results();
        DmaFile f = e.openDmaFile(DIR.resolve("a.log"), true);
        for (int i = 0; i < 16; i++) {
            f.write(block(i + 1, 1), (long) i * BLOCK, r::on, i);
            if (i % 5 == 4) {
                f.datasync(r::on, 100 + i);
            }
        }
        e.submitAndWait(1_000_000L);
        e.disk().crash(true);
        byte[] c = e.disk().contents(DIR.resolve("a.log"));
        StringBuilder sb = new StringBuilder();
        for (long[] d : r.done) {
            sb.append(d[0]).append(',');
        }
        return sb + "|" + (c == null ? "gone" : Arrays.hashCode(c));
    }
}
