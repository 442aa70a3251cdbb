package dev.isthmus.raft;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The contract of {@link RaftLog} (its class Javadoc), checked the same way against every implementation: the
 * in-memory {@code MemoryRaftLog} the simulator used to run on, and the production {@code LogEngineRaftLog} on the
 * simulated disk. A subclass provides a {@link Storage}: how to open (and recover) a log, let time pass, crash.
 *
 * <ul>
 *   <li>mutations are visible at once; durability follows and is reported by callbacks, never inside a call;</li>
 *   <li>a suffix truncation drops the durable offset at once, and the new suffix is durable only later;</li>
 *   <li>after a crash the log is a prefix of its mutations holding every acknowledged one, with the acknowledged
 *       hard state;</li>
 *   <li>snapshots: saved and installed ones take effect with their callbacks; a prefix truncation moves the start and
 *       keeps the term below it; an install keeps a matching suffix and replaces a foreign log;</li>
 *   <li>reads return whole entries from the one containing the offset, within the byte limit (at least one), and
 *       answer below the start with {@link RaftLog#READ_BELOW_START};</li>
 *   <li>configuration and prefix-truncation entries are listed, and survive a reopen.</li>
 * </ul>
 */
public abstract class RaftLogContractTest {

    /** What a test needs from an implementation. */
    protected interface Storage extends AutoCloseable {
        /** Opens the log (recovering what a previous one left) and returns it unbound. */
        RaftLog open();

        /** Lets time pass (I/O completes, the log's loop work runs) until {@code done}; fails when it never is. */
        void drive(BooleanSupplier done, String what);

        /** The open log is gone without closing (a power loss or, with false, a killed process); {@link #open} next. */
        void crash(boolean powerLoss);

        /** Closes {@code log} cleanly. */
        void closeLog(RaftLog log);

        /** A data payload of {@code records} records; equal arguments give equal payloads. */
        Payload payload(int tag, int records);

        @Override
        void close();
    }

    protected abstract Storage newStorage();

    protected Storage storage;

    @BeforeEach
    void setUpStorage() {
        storage = newStorage();
    }

    @AfterEach
    void tearDownStorage() {
        storage.close();
    }

    /** Records callbacks, and whether one arrived inside a call of the log (the contract forbids it). */
    protected static final class Recorder implements RaftLog.Callbacks {
        long durable = -1;
        HardState hardState;
        SnapshotMeta saved;
        SnapshotMeta installed;
        int readable;
        String failure;
        boolean inCall;
        String callbackInsideCall;

        private void check(String what) {
            if (inCall && callbackInsideCall == null) {
                callbackInsideCall = what;
            }
        }

        @Override
        public void onAppendDurable(long durableOffset) {
            check("onAppendDurable");
            durable = durableOffset;
        }

        @Override
        public void onHardStateDurable(HardState state) {
            check("onHardStateDurable");
            hardState = state;
        }

        @Override
        public void onSnapshotSaved(SnapshotMeta meta) {
            check("onSnapshotSaved");
            saved = meta;
        }

        @Override
        public void onSnapshotInstalled(SnapshotMeta meta) {
            check("onSnapshotInstalled");
            installed = meta;
        }

        @Override
        public void onReadable() {
            check("onReadable");
            readable++;
        }

        @Override
        public void onStorageFailure(String what) {
            failure = what;
        }

        /** Runs {@code call} as a call of the log. */
        void call(Runnable call) {
            inCall = true;
            try {
                call.run();
            } finally {
                inCall = false;
            }
        }
    }

    protected RaftLog open(Recorder rec) {
        RaftLog log = storage.open();
        log.bind(rec);
        return log;
    }

    protected Entry data(long offset, long term, int records, int tag) {
        return Entry.data(offset, term, storage.payload(tag, records));
    }

    /** Every entry from {@code from} to the end, through {@link RaftLog#read} (waiting out READ_PENDING). */
    protected List<Entry> readAll(RaftLog log, Recorder rec, long from) {
        List<Entry> out = new ArrayList<>();
        long next = from;
        int pending = 0;
        while (next <= log.lastOffset()) {
            assertTrue(pending < 100, "reads at " + next + " never become ready");
            List<Entry> got = new ArrayList<>();
            int before = rec.readable;
            int rc = log.read(next, 1 << 20, got);
            if (rc == RaftLog.READ_PENDING) {
                assertTrue(got.isEmpty(), "READ_PENDING adds nothing");
                pending++;
                storage.drive(() -> rec.readable > before, "readable at " + next);
                continue;
            }
            pending = 0;
            assertEquals(RaftLog.READ_OK, rc, "read at " + next);
            assertTrue(!got.isEmpty(), "a read below the end returns an entry");
            out.addAll(got);
            next = got.get(got.size() - 1).lastOffset() + 1;
        }
        return out;
    }

    // ============================================================================================ visibility

    @Test
    void shouldMakeAppendsVisibleAtOnceAndReportDurabilityLaterOutsideCalls() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        assertEquals(0, log.startOffset());
        assertEquals(-1, log.lastOffset());
        assertEquals(0, log.termAt(-1));
        List<Entry> es = List.of(Entry.leaderChange(0, 1), data(1, 1, 3, 1), data(4, 2, 1, 2));
        rec.call(() -> log.append(es));
        assertEquals(4, log.lastOffset(), "visible at once");
        assertEquals(1, log.termAt(3));
        assertEquals(2, log.termAt(4));
        assertEquals(-1, log.termAt(5), "unknown past the end");
        assertEquals(3, log.lastOffsetAtOrBeforeTerm(1));
        assertTrue(log.durableOffset() < 4 || rec.durable == 4, "durable only when reported");
        storage.drive(() -> rec.durable == 4, "durable");
        assertEquals(4, log.durableOffset());
        assertNull(rec.callbackInsideCall, "a callback ran inside a call");
        assertEquals(es, readAll(log, rec, 0));
    }

    @Test
    void shouldDropTheDurableOffsetAtATruncationAndReportTheNewSuffixOnlyOnceDurable() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        rec.call(() -> log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 2, 1), data(3, 1, 2, 2),
            data(5, 1, 2, 3))));
        storage.drive(() -> rec.durable == 6, "durable");
        rec.call(() -> log.truncateSuffix(3));
        assertEquals(2, log.lastOffset());
        assertEquals(-1, log.termAt(3));
        assertEquals(2, log.durableOffset(), "the durable offset drops with the truncation");
        rec.call(() -> log.append(List.of(Entry.leaderChange(3, 4), data(4, 4, 1, 9))));
        assertTrue(log.durableOffset() <= 2, "the new suffix is not durable yet");
        storage.drive(() -> rec.durable == 4, "new suffix durable");
        assertEquals(4, log.termAt(3));
        assertNull(rec.callbackInsideCall, "a callback ran inside a call");
        storage.closeLog(log);

        Recorder rec2 = new Recorder();
        RaftLog again = open(rec2);
        assertEquals(4, again.lastOffset());
        assertEquals(List.of(Entry.leaderChange(0, 1), data(1, 1, 2, 1), Entry.leaderChange(3, 4), data(4, 4, 1, 9)),
            readAll(again, rec2, 0));
    }

    @Test
    void shouldReportTheHardStateWhenDurableAndRecoverIt() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        assertEquals(HardState.INITIAL, log.hardState());
        rec.call(() -> log.persistHardState(new HardState(3, 2)));
        rec.call(() -> log.persistHardState(new HardState(4, -1)));
        storage.drive(() -> new HardState(4, -1).equals(rec.hardState), "hard state durable");
        assertEquals(new HardState(4, -1), log.hardState());
        assertNull(rec.callbackInsideCall);
        storage.crash(true);
        assertEquals(new HardState(4, -1), open(new Recorder()).hardState(), "the acknowledged hard state survives");
    }

    // ============================================================================================ crashes

    @Test
    void shouldKeepEveryAcknowledgedEntryAndHardStateAcrossCrashes() {
        String one = System.getProperty("isthmus.seed");
        long base = one != null && !one.isBlank() ? Long.parseLong(one.trim()) : new SplittableRandom().nextLong();
        int rounds = one != null && !one.isBlank() ? 1 : 10;
        SplittableRandom seeds = new SplittableRandom(base);
        for (int i = 0; i < rounds; i++) {
            long seed = i == 0 ? base : seeds.nextLong();
            if (i > 0) {
                storage.close();
                storage = newStorage();
                ackedEnd = -1;
                appended.clear();
            }
            try {
                crashes(seed);
            } catch (Throwable t) {
                throw new AssertionError("seed " + seed + " (replay with -Disthmus.seed=" + seed + "): " + t, t);
            }
        }
    }

    private void crashes(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Entry> log = new ArrayList<>();
        HardState acknowledgedHs = HardState.INITIAL;
        long term = 1;
        int tag = 0;
        for (int life = 0; life < 6; life++) {
            Recorder rec = new Recorder();
            RaftLog l = open(rec);
            assertTrue(l.hardState().term() >= acknowledgedHs.term(), "hard state " + l.hardState()
                + " below the acknowledged " + acknowledgedHs);
            List<Entry> found = readAll(l, rec, l.startOffset());
            int ackedCount = 0;
            for (Entry e : log) {
                if (e.lastOffset() <= ackedEnd) {
                    ackedCount++;
                }
            }
            assertTrue(found.size() >= ackedCount, "life " + life + ": " + found.size() + " entries, "
                + ackedCount + " acknowledged");
            assertEquals(log.subList(0, ackedCount), found.subList(0, ackedCount), "life " + life
                + ": acknowledged entries");
            // What survived beyond the acknowledged end must be entries that were appended there.
            for (int i = ackedCount; i < found.size(); i++) {
                Entry e = found.get(i);
                assertTrue(appended.contains(e), "life " + life + ": " + e + " was never appended");
            }
            log = new ArrayList<>(found);
            term = Math.max(term, l.hardState().term()) + 1;
            long t = term;
            rec.call(() -> l.persistHardState(new HardState(t, 1)));
            ackedEnd = l.durableOffset();
            for (int op = 0; op < 40; op++) {
                int k = r.nextInt(10);
                if (k < 6) {
                    long base = l.lastOffset() + 1;
                    Entry e = r.nextInt(8) == 0 ? Entry.leaderChange(base, term) : data(base, term, 1 + r.nextInt(4),
                        tag++);
                    rec.call(() -> l.append(List.of(e)));
                    log.add(e);
                    appended.add(e);
                } else if (k < 7 && l.lastOffset() > Math.max(rec.durable, l.startOffset())) {
                    Entry last = log.get(log.size() - 1);
                    rec.call(() -> l.truncateSuffix(last.baseOffset()));
                    log.remove(log.size() - 1);
                    // What was acknowledged up to the cut stays acknowledged; nothing at or after it is.
                    rec.durable = Math.min(rec.durable, last.baseOffset() - 1);
                    ackedEnd = Math.min(ackedEnd, last.baseOffset() - 1);
                    term++;
                    long tt = term;
                    rec.call(() -> l.persistHardState(new HardState(tt, 2)));
                } else {
                    int steps = 1 + r.nextInt(5);
                    int[] n = {0};
                    storage.drive(() -> ++n[0] >= steps, "time passes");
                }
                ackedEnd = Math.max(Math.min(ackedEnd, l.lastOffset()), rec.durable);
                if (rec.hardState != null) {
                    acknowledgedHs = rec.hardState;
                }
            }
            assertNull(rec.callbackInsideCall, "a callback ran inside a call");
            storage.crash(r.nextBoolean());
        }
    }

    private long ackedEnd = -1;
    private final java.util.Set<Entry> appended = new java.util.HashSet<>();

    // ============================================================================================ snapshots

    @Test
    void shouldSaveASnapshotThenCompactThePrefixKeepingTheTermBelowIt() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        rec.call(() -> log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 4, 1), data(5, 2, 2, 2),
            data(7, 2, 1, 3))));
        storage.drive(() -> rec.durable == 7, "durable");
        SnapshotMeta meta = new SnapshotMeta(6, 2, Configuration.ofVoters(1, 2, 3));
        rec.call(() -> log.saveSnapshot(meta, new byte[] {1, 2, 3}));
        assertEquals(SnapshotMeta.NONE, log.snapshotMeta(), "in effect only with its callback");
        storage.drive(() -> meta.equals(rec.saved), "snapshot saved");
        assertEquals(meta, log.snapshotMeta());
        assertEquals(3, log.snapshotData().length);
        rec.call(() -> log.truncatePrefix(7));
        assertEquals(7, log.startOffset());
        assertEquals(2, log.termAt(6), "the term of the offset below the start is known");
        assertEquals(RaftLog.READ_BELOW_START, log.read(3, 1 << 20, new ArrayList<>()));
        assertEquals(List.of(data(7, 2, 1, 3)), readAll(log, rec, 7));
        storage.closeLog(log);

        Recorder rec2 = new Recorder();
        RaftLog again = open(rec2);
        assertEquals(meta, again.snapshotMeta());
        assertTrue(again.startOffset() <= 7 && again.startOffset() >= 0);
        assertEquals(2, again.termAt(6));
        assertEquals(7, again.lastOffset());
        assertEquals(data(7, 2, 1, 3), readAll(again, rec2, 7).get(0));
    }

    @Test
    void shouldInstallASnapshotKeepingAMatchingSuffixAndReplacingAForeignLog() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        rec.call(() -> log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 1, 1), data(2, 2, 1, 2),
            data(3, 2, 1, 3))));
        SnapshotMeta meta = new SnapshotMeta(2, 2, Configuration.ofVoters(1));
        rec.call(() -> log.installSnapshot(meta, new byte[] {7}));
        assertEquals(0, log.startOffset(), "not in effect before it is durable");
        storage.drive(() -> meta.equals(rec.installed), "installed");
        assertEquals(meta, log.snapshotMeta());
        assertEquals(3, log.startOffset());
        assertEquals(3, log.lastOffset(), "the matching suffix stays");
        assertEquals(2, log.termAt(2));

        SnapshotMeta foreign = new SnapshotMeta(10, 5, Configuration.ofVoters(1));
        rec.call(() -> log.installSnapshot(foreign, new byte[] {8}));
        storage.drive(() -> foreign.equals(rec.installed), "foreign installed");
        assertEquals(11, log.startOffset());
        assertEquals(10, log.lastOffset(), "a foreign snapshot replaces the whole log");
        assertEquals(5, log.termAt(10));
        rec.call(() -> log.append(List.of(Entry.leaderChange(11, 6))));
        storage.drive(() -> rec.durable == 11, "durable after the install");
        assertNull(rec.callbackInsideCall);
        storage.crash(true);

        RaftLog again = open(new Recorder());
        assertEquals(foreign, again.snapshotMeta());
        assertEquals(11, again.startOffset());
        assertEquals(11, again.lastOffset());
        assertEquals(6, again.termAt(11));
    }

    // ============================================================================================ reads, control entries

    @Test
    void shouldReadWholeEntriesFromTheOneContainingTheOffsetWithinTheByteLimit() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        List<Entry> es = List.of(data(0, 1, 4, 1), data(4, 1, 4, 2), data(8, 1, 4, 3));
        rec.call(() -> log.append(es));
        List<Entry> got = new ArrayList<>();
        int rc = log.read(5, 1, got);
        if (rc == RaftLog.READ_PENDING) {
            int before = rec.readable;
            storage.drive(() -> rec.readable > before, "readable");
            got.clear();
            rc = log.read(5, 1, got);
        }
        assertEquals(RaftLog.READ_OK, rc);
        assertEquals(List.of(es.get(1)), got, "the entry containing offset 5, one at least though over the limit");
        got.clear();
        assertEquals(RaftLog.READ_OK, log.read(12, 1 << 20, got), "past the end: nothing");
        assertTrue(got.isEmpty());
        assertEquals(es, readAll(log, rec, 0));
    }

    @Test
    void shouldListConfigurationAndPrefixTruncationEntriesAndKeepThemAcrossReopen() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        Entry c1 = Entry.configuration(1, 1, Configuration.ofVoters(1, 2, 3));
        Entry t1 = Entry.prefixTruncation(5, 1, 3);
        Entry c2 = Entry.configuration(6, 2, Configuration.ofVoters(1, 2));
        rec.call(() -> log.append(List.of(Entry.leaderChange(0, 1), c1, data(2, 1, 3, 1), t1, c2)));
        assertEquals(List.of(c1, c2), log.configurationEntries());
        assertEquals(List.of(t1), log.prefixTruncationEntries());
        storage.drive(() -> rec.durable == 6, "durable");
        // As a group does for a committed prefix truncation: compact up to the entry holding the new start, then move
        // the record start inside it.
        SnapshotMeta meta = new SnapshotMeta(1, 1, Configuration.ofVoters(1, 2, 3));
        rec.call(() -> log.saveSnapshot(meta, new byte[0]));
        storage.drive(() -> meta.equals(rec.saved), "snapshot saved");
        rec.call(() -> log.truncatePrefix(2));
        assertEquals(2, log.startOffset());
        assertEquals(List.of(c2), log.configurationEntries(), "configurations after the snapshot");
        rec.call(() -> log.advanceRecordStart(3));
        storage.drive(() -> log.recordStartOffset() == 3, "record start durable");
        assertEquals(List.of(t1), log.prefixTruncationEntries());
        assertNull(rec.callbackInsideCall);
        storage.closeLog(log);

        Recorder rec2 = new Recorder();
        RaftLog again = open(rec2);
        assertEquals(meta, again.snapshotMeta());
        assertEquals(List.of(c2), again.configurationEntries());
        assertEquals(List.of(t1), again.prefixTruncationEntries());
        assertEquals(3, again.recordStartOffset(), "the record start survives");
        assertEquals(data(2, 1, 3, 1), readAll(again, rec2, again.startOffset()).get(0));
    }

    @Test
    void shouldNeverMoveTheRecordStartBackAcrossACrash() {
        Recorder rec = new Recorder();
        RaftLog log = open(rec);
        rec.call(() -> log.append(List.of(Entry.leaderChange(0, 1), data(1, 1, 4, 1), data(5, 1, 4, 2))));
        storage.drive(() -> rec.durable == 8, "durable");
        SnapshotMeta meta = new SnapshotMeta(4, 1, Configuration.ofVoters(1));
        rec.call(() -> log.saveSnapshot(meta, new byte[0]));
        storage.drive(() -> meta.equals(rec.saved), "snapshot saved");
        rec.call(() -> log.truncatePrefix(5));
        rec.call(() -> log.advanceRecordStart(7));
        storage.drive(() -> log.recordStartOffset() == 7, "record start durable");
        storage.crash(true);
        RaftLog again = open(new Recorder());
        assertTrue(again.recordStartOffset() >= 7, "the record start went back to " + again.recordStartOffset()
            + " after a power loss");
        assertEquals(8, again.lastOffset());
    }
}
