package dev.isthmus.gateway.txn;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Model-based test of {@link TxnStateMachine}: producers modelled on Kafka's TransactionManager (version 1 and 2,
 * several incarnations per transactional id, retries of requests whose answer was lost), a coordinator whose
 * appends become durable, fail or are lost at random, markers acknowledged in any order, timeouts, and failovers
 * (a new coordinator from the durable log, each append in flight kept or lost). After every step:
 * <ul>
 *   <li>the machine agrees with the log: a coordinator replayed from the durable records has each settled id in
 *       the same state;</li>
 *   <li>epochs stay in [0, 32767], clients never get an epoch above 32766, a producer id moves only to a new id at
 *       epoch 0, and no producer id serves two transactional ids;</li>
 *   <li>one decision per transaction: markers and CompleteX records never contradict the PrepareX;</li>
 *   <li>only the newest incarnation of an id is ever told NONE for AddPartitions or a commit;</li>
 *   <li>a commit answered NONE is durable as PrepareCommit (or its completion);</li>
 *   <li>at most one append per id is in flight.</li>
 * </ul>
 * At the end everything drains: every id settles in Empty or CompleteX with no marker pending.
 * Seeded: {@code -Disthmus.seed=N} replays a failure.
 */
class TxnStateMachineModelTest {
    private static final int RUNS = Integer.getInteger("isthmus.txn.model.runs", 150);
    private static final int STEPS = Integer.getInteger("isthmus.txn.model.steps", 400);
    private static final List<String> IDS = List.of("a", "b", "c");
    private static final List<TxnPartition> PARTITIONS = List.of(new TxnPartition("t", 0), new TxnPartition("t", 1),
        new TxnPartition("u", 0), new TxnPartition("__consumer_offsets", 3));

    /** One request in flight from a producer. */
    private static final class Request {
        final String kind;
        final boolean commit;
        final List<TxnPartition> parts;
        final long pid;
        final short epoch;

        Request(String kind, boolean commit, List<TxnPartition> parts, long pid, short epoch) {
            this.kind = kind;
            this.commit = commit;
            this.parts = parts;
            this.pid = pid;
            this.epoch = epoch;
        }

        @Override
        public String toString() {
            return kind + (kind.equals("end") ? (commit ? "(commit)" : "(abort)") : "") + " pid " + pid + " epoch "
                + epoch + " " + parts;
        }
    }

    /** A producer incarnation, as Kafka's TransactionManager behaves. */
    private static final class Producer {
        final String id;
        final boolean tv2;
        final int incarnation;
        long pid = -1;
        short epoch = -1;
        boolean ready;
        boolean dead;
        final Set<TxnPartition> inTxn = new TreeSet<>();
        Request pending;
        /** The last request, resent after its answer was lost. */
        Request retry;

        Producer(String id, boolean tv2, int incarnation) {
            this.id = id;
            this.tv2 = tv2;
            this.incarnation = incarnation;
        }

        @Override
        public String toString() {
            return "producer " + id + "#" + incarnation + (tv2 ? " v2" : " v1") + " pid " + pid + " epoch " + epoch
                + (dead ? " dead" : ready ? " ready" : " new") + " txn " + inTxn;
        }
    }

    private static final class Sim {
        final SplittableRandom r;
        final long seed;
        /** Ids expire after 5 minutes of silence, so tombstones happen within a run. */
        final TxnConfig config = TxnConfig.DEFAULTS.with(TxnConfig.ID_EXPIRATION_MS, "300000");
        TxnStateMachine machine;
        int epoch = 1;
        long now = 1_000_000;
        long nextPid = 1;
        final List<Object[]> log = new ArrayList<>(); // {id, value or null}
        /** The durable log replayed as it grows: what a new coordinator would load. */
        final TxnStateMachine shadow = new TxnStateMachine(0, 0, TxnConfig.DEFAULTS);
        final Map<Long, TxnStateMachine.Append> inFlight = new LinkedHashMap<>();
        final List<Object[]> markers = new ArrayList<>(); // {Markers, partition}
        final List<Producer> producers = new ArrayList<>();
        /** The producer whose InitProducerId (without a producer id of its own) succeeded last, per id. */
        final Map<String, Producer> latest = new HashMap<>();
        final Map<String, Integer> incarnations = new HashMap<>();
        final Map<Long, String> pidOwner = new HashMap<>();
        /** Markers sent (transactions decided, counting resends after failovers). */
        int decisions;
        final List<String> trace = new ArrayList<>();

        Sim(long seed) {
            this.seed = seed;
            this.r = new SplittableRandom(seed);
            machine = new TxnStateMachine(0, epoch, config);
            // Some ids start near the end of the epoch range, so exhaustion happens within a run.
            for (String id : IDS) {
                if (r.nextInt(3) == 0) {
                    long pid = nextPid++;
                    pidOwner.put(pid, id);
                    TransactionLog.Value v = new TransactionLog.Value(pid, -1, -1,
                        (short) (TxnConfig.MAX_EPOCH - r.nextInt(4)), 60_000, TxnState.EMPTY, List.of(), now, -1,
                        (short) 0);
                    logged(id, v);
                }
            }
            restart(false);
        }

        long ids() {
            return r.nextInt(20) == 0 ? -1 : nextPid++;
        }

        String where() {
            return " (seed " + seed + ")\n  last steps:\n    " + String.join("\n    ",
                trace.subList(Math.max(0, trace.size() - 25), trace.size()));
        }

        void note(String s) {
            trace.add(s);
            if (trace.size() > 60) {
                trace.subList(0, 30).clear();
            }
        }

        // ------------------------------------------------------------ outputs

        void take(TxnStateMachine.Output out) {
            for (TxnStateMachine.Append a : out.appends()) {
                for (TxnStateMachine.Append other : inFlight.values()) {
                    if (other.transactionalId().equals(a.transactionalId())) {
                        fail("two appends in flight for " + a.transactionalId() + where());
                    }
                }
                inFlight.put(a.id(), a);
            }
            for (TxnStateMachine.Markers m : out.markers()) {
                decisions++;
                assertEquals(epoch, m.coordinatorEpoch(), () -> "markers carry the coordinator epoch" + where());
                TransactionLog.Value prepared = lastValue(m.transactionalId());
                assertNotNull(prepared, where());
                // One decision per transaction: the markers say what the durable PrepareX says.
                assertTrue(prepared.state().preparing() && prepared.producerEpoch() == m.producerEpoch()
                    && prepared.producerId() == m.producerId() && prepared.partitions().containsAll(m.partitions())
                    && m.commit() == (prepared.state() == TxnState.PREPARE_COMMIT),
                    () -> "markers " + m + " match the durable " + prepared + where());
                for (TxnPartition tp : m.partitions()) {
                    markers.add(new Object[] {m, tp});
                }
            }
            for (TxnStateMachine.Reply rep : out.replies()) {
                if (rep.waiter() instanceof Producer p) {
                    answered(p, rep);
                }
            }
        }

        TransactionLog.Value lastValue(String id) {
            return shadow.snapshot(id) == null ? null : last.get(id);
        }

        /** The last durable value per id (kept with the shadow replay). */
        final Map<String, TransactionLog.Value> last = new HashMap<>();

        void logged(String id, TransactionLog.Value v) {
            log.add(new Object[] {id, v});
            shadow.replay(id, v);
            last.put(id, v);
        }

        void durable(long appendId) {
            TxnStateMachine.Append a = inFlight.remove(appendId);
            TransactionLog.Value v = a.value() == null ? null : TransactionLog.readValue(ByteBuffer.wrap(a.value()));
            TransactionLog.Value before = lastValue(a.transactionalId());
            if (v != null) {
                assertTrue(v.producerEpoch() >= 0, () -> "epoch " + v.producerEpoch() + where());
                String owner = pidOwner.putIfAbsent(v.producerId(), a.transactionalId());
                assertTrue(owner == null || owner.equals(a.transactionalId()), () -> "producer id " + v.producerId()
                    + " serves " + owner + " and " + a.transactionalId() + where());
                if (before != null) {
                    assertTrue(v.producerId() == before.producerId() ? v.producerEpoch() >= before.producerEpoch()
                        : v.producerEpoch() == 0, () -> "from " + before + " to " + v + where());
                    if (v.state().complete()) {
                        assertTrue(before.state().preparing() && (before.state() == TxnState.PREPARE_COMMIT)
                            == (v.state() == TxnState.COMPLETE_COMMIT), () -> "completion " + v + " of " + before + where());
                    }
                }
            }
            logged(a.transactionalId(), v);
            if (v == null) {
                latest.remove(a.transactionalId()); // expired: whoever initialises next owns the id
            }
            note("durable " + a.transactionalId() + " " + v);
            take(machine.appended(appendId, TxnErrors.NONE, now));
        }

        // ------------------------------------------------------------ coordinator events

        void restart(boolean keepSome) {
            for (long id : new ArrayList<>(inFlight.keySet())) {
                if (keepSome && r.nextBoolean()) {
                    // Committed by the next leader: durable, but this coordinator never hears of it.
                    TxnStateMachine.Append a = inFlight.remove(id);
                    TransactionLog.Value v = a.value() == null ? null
                        : TransactionLog.readValue(ByteBuffer.wrap(a.value()));
                    logged(a.transactionalId(), v);
                    if (v == null) {
                        latest.remove(a.transactionalId()); // expired, as in durable()
                    }
                    note("durable at failover " + a.transactionalId() + " " + v);
                }
            }
            inFlight.clear();
            markers.clear();
            for (Producer p : producers) {
                if (p.pending != null) {
                    p.retry = p.pending; // its answer is lost: NOT_COORDINATOR, the client retries
                    p.pending = null;
                }
            }
            epoch++;
            machine = new TxnStateMachine(0, epoch, config);
            for (Object[] l : log) {
                machine.replay((String) l[0], (TransactionLog.Value) l[1]);
            }
            note("failover to coordinator epoch " + epoch);
            take(machine.loaded(now));
        }

        /** The machine agrees with a coordinator replayed from the durable log, for every settled id. */
        void checkAgainstLog() {
            TxnStateMachine replayed = shadow;
            for (String id : IDS) {
                TxnStateMachine.Snapshot live = machine.snapshot(id);
                TxnStateMachine.Snapshot back = replayed.snapshot(id);
                if (live == null || live.pending() != null) {
                    continue;
                }
                if (live.epoch() < 0) {
                    continue; // created, its first record not written (refused): nothing durable yet
                }
                assertNotNull(back, () -> "id " + id + " is " + live + " but the log has nothing" + where());
                assertEquals(back.producerId(), live.producerId(), () -> id + where());
                assertEquals(back.epoch(), live.epoch(), () -> id + where());
                assertEquals(back.state(), live.state(), () -> id + where());
                assertEquals(back.timeoutMs(), live.timeoutMs(), () -> id + where());
                assertEquals(back.clientTransactionVersion(), live.clientTransactionVersion(), () -> id + where());
                assertEquals(back.previousProducerId(), live.previousProducerId(), () -> id + where());
                assertEquals(back.nextProducerId(), live.nextProducerId(), () -> id + where());
                if (!live.state().preparing()) {
                    assertEquals(back.partitions(), live.partitions(), () -> id + where());
                    assertEquals(back.startMs(), live.startMs(), () -> id + where());
                }
            }
        }

        // ------------------------------------------------------------ producers

        void answered(Producer p, TxnStateMachine.Reply rep) {
            Request q = p.pending;
            p.pending = null;
            note(p + " <- " + q + " = " + rep.error() + " " + rep.producerId() + "/" + rep.producerEpoch());
            short e = rep.error();
            if (e == TxnErrors.CONCURRENT_TRANSACTIONS || e == TxnErrors.COORDINATOR_NOT_AVAILABLE
                || e == TxnErrors.NOT_COORDINATOR || e == TxnErrors.NEED_PRODUCER_ID
                || e == TxnErrors.COORDINATOR_LOAD_IN_PROGRESS) {
                p.retry = q;
                return;
            }
            p.retry = null;
            if (e == TxnErrors.PRODUCER_FENCED || e == TxnErrors.INVALID_PRODUCER_ID_MAPPING
                || e == TxnErrors.INVALID_TXN_STATE || e == TxnErrors.INVALID_PRODUCER_EPOCH) {
                p.dead = true;
                return;
            }
            assertEquals(TxnErrors.NONE, e, () -> "unexpected answer to " + q + where());
            switch (q.kind) {
                case "init" -> {
                    assertTrue(rep.producerEpoch() >= 0 && rep.producerEpoch() <= TxnConfig.MAX_EPOCH,
                        () -> "a client epoch " + rep.producerEpoch() + where());
                    p.pid = rep.producerId();
                    p.epoch = rep.producerEpoch();
                    p.ready = true;
                    p.inTxn.clear();
                    if (q.pid < 0 || !latest.containsKey(p.id)) {
                        latest.put(p.id, p); // a new incarnation (or the first after the id expired)
                    } else {
                        assertTrue(latest.get(p.id) == p, () -> "a fenced incarnation re-initialised (KIP-360)" + where());
                    }
                }
                case "add" -> {
                    assertTrue(latest.get(p.id) == p, () -> "a fenced incarnation added partitions" + where());
                    p.inTxn.addAll(q.parts);
                }
                case "end" -> {
                    if (q.commit) {
                        assertTrue(latest.get(p.id) == p, () -> "a fenced incarnation committed" + where());
                        boolean prepared = false;
                        for (Object[] l : log) {
                            TransactionLog.Value v = (TransactionLog.Value) l[1];
                            if (l[0].equals(p.id) && v != null && v.state() == TxnState.PREPARE_COMMIT
                                && (v.producerId() == q.pid && (v.producerEpoch() == q.epoch
                                || v.producerEpoch() == q.epoch + 1))) {
                                prepared = true;
                            }
                        }
                        assertTrue(prepared, () -> "commit of " + q + " answered NONE without a durable PrepareCommit"
                            + where());
                    }
                    if (p.tv2) {
                        assertTrue(rep.producerEpoch() >= 0 && rep.producerEpoch() <= TxnConfig.MAX_EPOCH,
                            () -> "a client epoch " + rep.producerEpoch() + where());
                        p.pid = rep.producerId();
                        p.epoch = rep.producerEpoch();
                    }
                    p.inTxn.clear();
                }
                default -> fail(q.kind);
            }
        }

        void send(Producer p, Request q) {
            p.pending = q;
            note(p + " -> " + q);
            TxnStateMachine.Output out = switch (q.kind) {
                case "init" -> machine.initProducerId(p, p.id, 60_000, q.pid, q.epoch, now, this::ids);
                case "add" -> machine.addPartitions(p, p.id, q.pid, q.epoch, q.parts, p.tv2, now);
                case "end" -> machine.endTxn(p, p.id, q.pid, q.epoch, q.commit, p.tv2, now, this::ids);
                default -> throw new IllegalStateException(q.kind);
            };
            take(out);
        }

        void producerStep(Producer p) {
            if (p.dead || p.pending != null) {
                return;
            }
            if (p.retry != null) {
                send(p, p.retry);
                return;
            }
            if (!p.ready) {
                send(p, new Request("init", false, List.of(), -1, (short) -1));
                return;
            }
            int choice = r.nextInt(10);
            if (choice < 5) {
                List<TxnPartition> parts = new ArrayList<>();
                parts.add(PARTITIONS.get(r.nextInt(PARTITIONS.size())));
                if (r.nextBoolean()) {
                    parts.add(PARTITIONS.get(r.nextInt(PARTITIONS.size())));
                }
                send(p, new Request("add", false, parts, p.pid, p.epoch));
            } else if (choice < 9) {
                if (p.inTxn.isEmpty() && !(p.tv2 && r.nextBoolean())) {
                    return; // nothing to end (version 2 may abort an empty transaction)
                }
                boolean commit = !p.inTxn.isEmpty() && r.nextInt(3) > 0;
                send(p, new Request("end", commit, List.of(), p.pid, p.epoch));
            } else {
                // KIP-360: InitProducerId naming the current id and epoch (after an abortable error).
                p.ready = false;
                send(p, new Request("init", false, List.of(), p.pid, p.epoch));
            }
        }

        void step() {
            int x = r.nextInt(100);
            if (x < 6) {
                String id = IDS.get(r.nextInt(IDS.size()));
                int inc = incarnations.merge(id, 1, Integer::sum);
                producers.add(new Producer(id, r.nextBoolean(), inc));
                note("new producer " + id + "#" + inc);
            } else if (x < 45) {
                if (!producers.isEmpty()) {
                    producerStep(producers.get(r.nextInt(producers.size())));
                }
            } else if (x < 70) {
                if (!inFlight.isEmpty()) {
                    List<Long> ids = new ArrayList<>(inFlight.keySet());
                    durable(ids.get(r.nextInt(ids.size())));
                }
            } else if (x < 73) {
                if (!inFlight.isEmpty()) {
                    List<Long> ids = new ArrayList<>(inFlight.keySet());
                    long id = ids.get(r.nextInt(ids.size()));
                    inFlight.remove(id);
                    note("append " + id + " refused");
                    take(machine.appended(id, TxnErrors.COORDINATOR_NOT_AVAILABLE, now));
                }
            } else if (x < 90) {
                if (!markers.isEmpty()) {
                    Object[] m = markers.remove(r.nextInt(markers.size()));
                    TxnStateMachine.Markers ms = (TxnStateMachine.Markers) m[0];
                    note("marker " + ms.transactionalId() + " " + m[1] + (ms.commit() ? " commit" : " abort"));
                    take(machine.markerWritten(ms.transactionalId(), ms.producerId(), ms.producerEpoch(),
                        (TxnPartition) m[1]));
                }
            } else if (x < 95) {
                now += r.nextInt(40_000);
                take(machine.abortTimedOut(now));
            } else if (x < 96) {
                restart(true);
            } else if (x < 97) {
                now += r.nextInt(200_000);
                take(machine.expire(now));
            } else {
                now += r.nextInt(1000);
            }
        }

        /** Every producer stops; appends and markers complete; open transactions time out. */
        void drain() {
            for (Producer p : producers) {
                p.dead = true;
            }
            for (int round = 0; round < 100; round++) {
                while (!inFlight.isEmpty() || !markers.isEmpty()) {
                    if (!inFlight.isEmpty()) {
                        durable(inFlight.keySet().iterator().next());
                    } else {
                        Object[] m = markers.removeFirst();
                        TxnStateMachine.Markers ms = (TxnStateMachine.Markers) m[0];
                        take(machine.markerWritten(ms.transactionalId(), ms.producerId(), ms.producerEpoch(),
                            (TxnPartition) m[1]));
                    }
                }
                now += 61_000;
                take(machine.abortTimedOut(now));
                if (inFlight.isEmpty() && markers.isEmpty()) {
                    break;
                }
            }
            for (String id : IDS) {
                TxnStateMachine.Snapshot s = machine.snapshot(id);
                if (s != null) {
                    assertTrue(s.pending() == null && (s.state() == TxnState.EMPTY || s.state().complete()),
                        () -> id + " settles: " + s + where());
                }
            }
            assertEquals(0, machine.markersPending(), where());
            assertEquals(0, machine.openTransactions(), where());
        }
    }

    @Test
    void shouldKeepTheCoordinatorInvariantsUnderRandomProducersFailuresAndFailovers() {
        long base = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("TxnStateMachineModelTest seed " + base + " (" + RUNS + " runs of " + STEPS + " steps)");
        int decisions = 0;
        int failovers = 0;
        Set<String> states = new HashSet<>();
        for (int run = 0; run < RUNS; run++) {
            Sim s = new Sim(base + run);
            for (int i = 0; i < STEPS; i++) {
                s.step();
                s.checkAgainstLog();
            }
            s.drain();
            s.checkAgainstLog();
            decisions += s.decisions;
            failovers += s.epoch - 2;
            for (Object[] l : s.log) {
                states.add(l[1] == null ? "tombstone" : ((TransactionLog.Value) l[1]).state().kafkaName);
            }
        }
        System.out.println("TxnStateMachineModelTest: " + decisions + " decisions with markers, " + failovers
            + " failovers, states reached " + states);
        assertTrue(states.containsAll(Set.of("Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
            "CompleteAbort", "tombstone")), "the runs reach every state: " + states);
    }
}
