package dev.isthmus.raft.sim;

import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.HardState;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.Configuration;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryRaftLogTest {
    static final class Recorder implements RaftLog.Callbacks {
        long durable = -1;
        HardState hs;
        SnapshotMeta saved;
        SnapshotMeta installed;

        @Override
        public void onAppendDurable(long durableOffset) {
            durable = durableOffset;
        }

        @Override
        public void onHardStateDurable(HardState state) {
            hs = state;
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
        }

        @Override
        public void onStorageFailure(String what) {
        }
    }

    static final class ManualDisk implements MemoryRaftLog.Disk {
        final List<Runnable> pending = new ArrayList<>();

        @Override
        public void flush(Runnable completion) {
            pending.add(completion);
        }

        void complete() {
            while (!pending.isEmpty()) {
                pending.remove(0).run();
            }
        }
    }

    static Entry data(long offset, long term) {
        return Entry.data(offset, term, new BytesPayload(new byte[] {(byte) offset, (byte) term}, 1));
    }

    @Test
    void shouldDebounceFlushesAndReportDurableEnd() {
        ManualDisk disk = new ManualDisk();
        MemoryRaftLog log = new MemoryRaftLog(new MemoryRaftLog.Image(), disk);
        Recorder r = new Recorder();
        log.bind(r);
        log.append(List.of(data(0, 1)));
        log.append(List.of(data(1, 1)));
        assertEquals(1, disk.pending.size(), "one flush in flight");
        log.append(List.of(data(2, 1)));
        disk.pending.remove(0).run();
        assertEquals(0, r.durable, "the first flush covers what was written before it started");
        assertEquals(1, disk.pending.size(), "the appends made meanwhile share the next flush");
        disk.pending.remove(0).run();
        assertEquals(2, r.durable);
        assertTrue(disk.pending.isEmpty());
    }

    @Test
    void shouldDropTheDurableOffsetOnTruncationAndKeepItConsistent() {
        ManualDisk disk = new ManualDisk();
        MemoryRaftLog log = new MemoryRaftLog(new MemoryRaftLog.Image(), disk);
        Recorder r = new Recorder();
        log.bind(r);
        log.append(List.of(data(0, 1), data(1, 1), data(2, 1)));
        disk.complete();
        assertEquals(2, log.durableOffset());
        log.truncateSuffix(1);
        assertEquals(0, log.durableOffset());
        log.append(List.of(data(1, 2)));
        assertEquals(0, log.durableOffset());
        disk.complete();
        assertEquals(1, log.durableOffset());
        assertEquals(2, log.termAt(1));
    }

    @Test
    void shouldKeepEveryAcknowledgedWriteAcrossCrashes() {
        long seed = Long.getLong("isthmus.seed", new SplittableRandom().nextLong());
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int round = 0; round < 300; round++) {
            ManualDisk disk = new ManualDisk();
            MemoryRaftLog log = new MemoryRaftLog(new MemoryRaftLog.Image(), disk);
            Recorder r = new Recorder();
            log.bind(r);
            long term = 1;
            List<Entry> acknowledged = new ArrayList<>();
            for (int op = 0; op < 30; op++) {
                int k = rnd.nextInt(10);
                if (k < 6) {
                    if (rnd.nextInt(4) == 0) {
                        term++;
                    }
                    log.append(List.of(data(log.lastOffset() + 1, term)));
                } else if (k < 7 && log.lastOffset() > r.durable + 1) {
                    log.truncateSuffix(log.lastOffset());
                } else if (k < 8) {
                    log.persistHardState(new HardState(term, rnd.nextInt(3)));
                } else if (!disk.pending.isEmpty()) {
                    disk.pending.remove(0).run();
                    acknowledged = new ArrayList<>(log.entries().subList(0,
                        (int) Math.min(log.entries().size(), r.durable + 1)));
                }
            }
            HardState ackedHs = r.hs;
            MemoryRaftLog.Image img = log.crash(rnd);
            MemoryRaftLog after = new MemoryRaftLog(img, new ManualDisk());
            after.bind(new Recorder());
            assertTrue(after.entries().size() >= acknowledged.size(), "seed " + seed);
            assertEquals(acknowledged, after.entries().subList(0, acknowledged.size()), "seed " + seed);
            if (ackedHs != null) {
                assertTrue(after.hardState().term() >= ackedHs.term(), "seed " + seed);
            }
        }
    }

    @Test
    void shouldInstallASnapshotKeepingAMatchingSuffix() {
        ManualDisk disk = new ManualDisk();
        MemoryRaftLog log = new MemoryRaftLog(new MemoryRaftLog.Image(), disk);
        Recorder r = new Recorder();
        log.bind(r);
        log.append(List.of(data(0, 1), data(1, 1), data(2, 2), data(3, 2)));
        SnapshotMeta meta = new SnapshotMeta(2, 2, Configuration.ofVoters(1));
        log.installSnapshot(meta, new byte[] {7});
        assertEquals(0, log.startOffset(), "not in effect before durable");
        disk.complete();
        assertEquals(meta, r.installed);
        assertEquals(3, log.startOffset());
        assertEquals(3, log.lastOffset(), "the matching suffix stays");
        log.installSnapshot(new SnapshotMeta(10, 5, Configuration.ofVoters(1)), new byte[] {8});
        disk.complete();
        assertEquals(11, log.startOffset());
        assertEquals(10, log.lastOffset(), "a foreign snapshot replaces the whole log");
        assertEquals(5, log.termAt(10));
    }
}
