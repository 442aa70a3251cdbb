package dev.isthmus.gateway.txn;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Drives a {@link TxnStateMachine} as the broker's shell would, with everything in memory: appends are kept as
 * the partition's log (durable once {@link #commit}ted, or refused with {@link #fail}), markers wait until
 * {@link #ackMarkers}, producer ids come from a counter, time is a field. {@link #restart} builds a new
 * coordinator of the next epoch from the log, as a new leader would.
 */
final class TxnHarness {
    /** A record appended and made durable, as the log holds it. */
    record Logged(String transactionalId, TransactionLog.Value value) {
    }

    final TxnConfig config;
    TxnStateMachine machine;
    int coordinatorEpoch = 1;
    long nowMs = 1_000_000;
    long nextPid = 1000;
    boolean pidsAvailable = true;
    final List<Logged> log = new ArrayList<>();
    /** Appends proposed, not yet durable or refused. */
    final Map<Long, TxnStateMachine.Append> inFlight = new LinkedHashMap<>();
    /** Markers sent and not acknowledged: one entry per partition. */
    final List<Object[]> markers = new ArrayList<>();
    /** Every Markers output seen (all coordinators). */
    final List<TxnStateMachine.Markers> markersSent = new ArrayList<>();
    final List<TxnStateMachine.Reply> replies = new ArrayList<>();

    TxnHarness(TxnConfig config) {
        this.config = config;
        this.machine = new TxnStateMachine(0, coordinatorEpoch, config);
        machine.loaded(nowMs);
    }

    TxnHarness() {
        this(TxnConfig.DEFAULTS);
    }

    long ids() {
        return pidsAvailable ? nextPid++ : -1;
    }

    /** Records an output: replies, appends in flight, markers waiting. Returns the output. */
    TxnStateMachine.Output take(TxnStateMachine.Output out) {
        replies.addAll(out.replies());
        for (TxnStateMachine.Append a : out.appends()) {
            inFlight.put(a.id(), a);
        }
        for (TxnStateMachine.Markers m : out.markers()) {
            markersSent.add(m);
            for (TxnPartition tp : m.partitions()) {
                markers.add(new Object[] {m, tp});
            }
        }
        return out;
    }

    /** Makes every append in flight durable, in order, and records what follows; repeats until none is left. */
    void commitAll() {
        while (!inFlight.isEmpty()) {
            long id = inFlight.keySet().iterator().next();
            commit(id);
        }
    }

    void commit(long id) {
        TxnStateMachine.Append a = inFlight.remove(id);
        log.add(new Logged(a.transactionalId(), a.value() == null ? null
            : TransactionLog.readValue(ByteBuffer.wrap(a.value()))));
        assertEquals(a.transactionalId(), TransactionLog.readKey(ByteBuffer.wrap(a.key())));
        take(machine.appended(id, TxnErrors.NONE, nowMs));
    }

    void fail(long id, short error) {
        inFlight.remove(id);
        take(machine.appended(id, error, nowMs));
    }

    void failAll(short error) {
        for (long id : new ArrayList<>(inFlight.keySet())) {
            fail(id, error);
        }
    }

    /** Acknowledges every marker waiting (and commits what that appends). */
    void ackMarkers() {
        while (!markers.isEmpty()) {
            Object[] m = markers.removeFirst();
            TxnStateMachine.Markers ms = (TxnStateMachine.Markers) m[0];
            take(machine.markerWritten(ms.transactionalId(), ms.producerId(), ms.producerEpoch(), (TxnPartition) m[1]));
        }
        commitAll();
    }

    /** The reply to the last call that answered (after committing what it appended). */
    TxnStateMachine.Reply call(TxnStateMachine.Output out) {
        int before = replies.size();
        take(out);
        commitAll();
        assertTrue(replies.size() > before, "the call was answered: " + out);
        return replies.getLast();
    }

    TxnStateMachine.Reply init(String id, long pid, short epoch) {
        return call(machine.initProducerId("init " + id, id, 60_000, pid, epoch, nowMs, this::ids));
    }

    TxnStateMachine.Reply init(String id) {
        return init(id, -1, (short) -1);
    }

    TxnStateMachine.Reply add(String id, long pid, short epoch, boolean tv2, TxnPartition... parts) {
        return call(machine.addPartitions("add " + id, id, pid, epoch, List.of(parts), tv2, nowMs));
    }

    TxnStateMachine.Reply end(String id, long pid, short epoch, boolean commit, boolean tv2) {
        return call(machine.endTxn("end " + id, id, pid, epoch, commit, tv2, nowMs, this::ids));
    }

    /** A new coordinator (next epoch) loaded from the log; appends in flight are lost (or were committed). */
    void restart() {
        inFlight.clear();
        markers.clear();
        coordinatorEpoch++;
        machine = new TxnStateMachine(0, coordinatorEpoch, config);
        for (Logged l : log) {
            machine.replay(l.transactionalId(), l.value());
        }
        take(machine.loaded(nowMs));
    }

    /** Seeds an id as if the log had it: Empty (or any state) at {@code pid}/{@code epoch}. */
    void seed(String id, long pid, short epoch, TxnState state, short tv, TxnPartition... parts) {
        TransactionLog.Value v = new TransactionLog.Value(pid, -1, -1, epoch, 60_000, state,
            state == TxnState.EMPTY ? List.of() : List.of(parts), nowMs, state == TxnState.EMPTY ? -1 : nowMs, tv);
        log.add(new Logged(id, v));
        restart();
    }

    TxnStateMachine.Snapshot state(String id) {
        TxnStateMachine.Snapshot s = machine.snapshot(id);
        assertNotNull(s, "transactional id " + id + " is known");
        return s;
    }

    /** The last value the log holds for {@code id} (null: tombstone or none). */
    TransactionLog.Value logged(String id) {
        TransactionLog.Value v = null;
        for (Logged l : log) {
            if (l.transactionalId().equals(id)) {
                v = l.value();
            }
        }
        return v;
    }
}
