package dev.isthmus.gateway;

import dev.isthmus.gateway.txn.TransactionLog;
import dev.isthmus.gateway.txn.TxnConfig;
import dev.isthmus.gateway.txn.TxnErrors;
import dev.isthmus.gateway.txn.TxnPartition;
import dev.isthmus.gateway.txn.TxnState;
import dev.isthmus.gateway.txn.TxnStateMachine;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A deterministic simulation of transactions end to end, from one seed: the transaction coordinator
 * ({@link TxnStateMachine} over a durable {@code __transaction_state} log), transactional producers (versions 1 and
 * 2, several incarnations per id), and the partitions their data and markers go to, each with its producer state as
 * the broker keeps it ({@link ProducerStateManager}: sequences, epochs, open transactions, coordinator-epoch fencing,
 * the last stable offset, the aborted-transaction index).
 *
 * <p>Faults, all drawn from the seed: the coordinator fails over (a new one of the next epoch replays the durable log;
 * appends in flight are kept or lost) at random and, on purpose, <em>between the prepare and the markers</em>: right
 * after a PrepareCommit/PrepareAbort becomes durable, or after only some of its markers were written. The deposed
 * coordinator's markers stay in the network and may land late, after the new coordinator's; the acknowledgements to
 * a deposed coordinator are lost. Markers are delivered in any order; a partition restarts at random and rebuilds its
 * producer state from its log (recovery). Producers stall past their timeout, get fenced by new incarnations, and
 * retry requests whose answers were lost.
 *
 * <p>Checked after every step: a marker that ends a transaction on a partition carries the coordinator's durable
 * decision for that transaction (a transaction's data on a partition belongs to one transaction); after the run
 * drains (producers stop, markers and appends complete, stalled transactions time out): no transaction open on any
 * partition (each last stable offset at its log end), no marker pending at the coordinator, and a read_committed
 * reader of each partition (records below the last stable offset, less the aborted transactions' ranges, as
 * Kafka's consumer filters them) sees exactly the data of the committed transactions: every transaction whose
 * commit was answered NONE, none aborted, nothing twice.
 *
 * <p>Seeded: prints its seed; {@code -Disthmus.seed=N} replays a run (and {@code -Disthmus.txn.sim.runs} sets the
 * number of runs, from the seed up).
 */
class TxnMarkersSimulationTest {
    private static final int RUNS = Integer.getInteger("isthmus.txn.sim.runs", 120);
    private static final int STEPS = Integer.getInteger("isthmus.txn.sim.steps", 500);
    private static final List<String> IDS = List.of("a", "b", "c");
    private static final List<TxnPartition> PARTITIONS = List.of(new TxnPartition("t", 0), new TxnPartition("t", 1),
        new TxnPartition("u", 0));

    /** One data batch or marker in a partition's log. */
    private record Logged(long offset, long producerId, short epoch, int firstSeq, int lastSeq, boolean marker,
                          boolean commit, int coordinatorEpoch, long transaction) {
    }

    /** A partition: its log and the producer state built from it. */
    private static final class Part {
        final TxnPartition tp;
        final List<Logged> log = new ArrayList<>();
        ProducerStateManager state = new ProducerStateManager(0);
        final List<ProducerStateManager.AbortedTxn> aborted = new ArrayList<>();
        /** Per producer id, the simulated transaction open here (its first data batch's). */
        final Map<Long, Long> openTxn = new HashMap<>();

        Part(TxnPartition tp) {
            this.tp = tp;
        }

        long end() {
            return log.size();
        }

        /** Recovery: the producer state rebuilt from the log, as after a restart. */
        void restart() {
            state = new ProducerStateManager(0);
            aborted.clear();
            for (Logged l : log) {
                apply(l);
            }
        }

        void apply(Logged l) {
            if (l.marker) {
                ProducerStateManager.AbortedTxn a = state.applyMarker(l.producerId, l.epoch, l.commit,
                    l.coordinatorEpoch, l.offset, 1);
                if (a != null) {
                    aborted.add(a);
                }
            } else {
                state.applyData(l.producerId, l.epoch, l.firstSeq, l.lastSeq, l.offset, l.offset, true, 1);
            }
        }
    }

    /** A request in flight from a producer. */
    private record Request(String kind, boolean commit, List<TxnPartition> parts, long pid, short epoch) {
    }

    /** A producer incarnation, as Kafka's TransactionManager behaves (simplified: one request at a time). */
    private static final class Producer {
        final String id;
        final boolean tv2;
        final int incarnation;
        long pid = -1;
        short epoch = -1;
        boolean ready;
        boolean dead;
        /** The simulated transaction this producer has open, or -1. */
        long txn = -1;
        final TreeSet<TxnPartition> inTxn = new TreeSet<>();
        /** Next sequence per partition, for the current epoch. */
        final Map<TxnPartition, Integer> nextSeq = new HashMap<>();
        short seqEpoch = -1;
        Request pending;
        Request retry;

        Producer(String id, boolean tv2, int incarnation) {
            this.id = id;
            this.tv2 = tv2;
            this.incarnation = incarnation;
        }

        @Override
        public String toString() {
            return id + "#" + incarnation + (tv2 ? " v2" : " v1") + " pid " + pid + " epoch " + epoch + " txn " + txn;
        }
    }

    /** Markers of one partition sent by the coordinator of {@code coordinatorEpoch}. */
    private record MarkerSend(TxnStateMachine.Markers markers, TxnPartition tp) {
    }

    private static final class Sim {
        final long seed;
        final SplittableRandom r;
        final TxnConfig config = TxnConfig.DEFAULTS;
        TxnStateMachine machine;
        int epoch = 1;
        long now = 1_000_000;
        long nextPid = 1;
        long nextTxn = 1;
        final List<Object[]> log = new ArrayList<>(); // {transactional id, value or null}
        final Map<Long, TxnStateMachine.Append> inFlight = new LinkedHashMap<>();
        /** Marker writes in the network, from the current and deposed coordinators. */
        final List<MarkerSend> network = new ArrayList<>();
        final Map<TxnPartition, Part> parts = new LinkedHashMap<>();
        final List<Producer> producers = new ArrayList<>();
        final Map<String, Integer> incarnations = new HashMap<>();
        /** The simulated transaction Ongoing at the coordinator, per transactional id. */
        final Map<String, Long> ongoing = new HashMap<>();
        /** The coordinator's durable decision per simulated transaction: true = commit. */
        final Map<Long, Boolean> decided = new HashMap<>();
        /** Transactions whose commit the producer was told succeeded. */
        final TreeSet<Long> committedAnswered = new TreeSet<>();
        final List<String> trace = new ArrayList<>();
        int failovers;
        int failoversAfterPrepare;
        int lateMarkers;
        int partitionRestarts;

        Sim(long seed) {
            this.seed = seed;
            this.r = new SplittableRandom(seed);
            for (TxnPartition tp : PARTITIONS) {
                parts.put(tp, new Part(tp));
            }
            machine = new TxnStateMachine(0, epoch, config);
            take(machine.loaded(now));
        }

        String where() {
            return " (seed " + seed + ", replay with -Disthmus.seed=" + seed + " -Disthmus.txn.sim.runs=1)\n  last"
                + " steps:\n    " + String.join("\n    ", trace.subList(Math.max(0, trace.size() - 30), trace.size()));
        }

        void note(String s) {
            trace.add(s);
            if (trace.size() > 80) {
                trace.subList(0, 40).clear();
            }
        }

        long ids() {
            return r.nextInt(20) == 0 ? -1 : nextPid++;
        }

        // ------------------------------------------------------------ coordinator

        void take(TxnStateMachine.Output out) {
            for (TxnStateMachine.Append a : out.appends()) {
                inFlight.put(a.id(), a);
            }
            for (TxnStateMachine.Markers m : out.markers()) {
                for (TxnPartition tp : m.partitions()) {
                    network.add(new MarkerSend(m, tp));
                }
            }
            for (TxnStateMachine.Reply rep : out.replies()) {
                if (rep.waiter() instanceof Producer p) {
                    answered(p, rep);
                }
            }
        }

        /** A record of the transaction log became durable (whether or not its coordinator hears of it). */
        void logged(String id, TransactionLog.Value v) {
            log.add(new Object[] {id, v});
            if (v != null && v.state().preparing()) {
                Long txn = ongoing.remove(id);
                boolean commit = v.state() == TxnState.PREPARE_COMMIT;
                if (txn != null) {
                    Boolean before = decided.putIfAbsent(txn, commit);
                    assertTrue(before == null || before == commit, () -> "transaction " + txn + " decided twice"
                        + where());
                    note("decided " + id + " txn " + txn + (commit ? " commit" : " abort"));
                }
            }
        }

        void durable(long appendId) {
            TxnStateMachine.Append a = inFlight.remove(appendId);
            TransactionLog.Value v = a.value() == null ? null : TransactionLog.readValue(ByteBuffer.wrap(a.value()));
            logged(a.transactionalId(), v);
            note("durable " + a.transactionalId() + " " + (v == null ? "tombstone" : v.state() + " epoch "
                + v.producerEpoch()));
            take(machine.appended(appendId, TxnErrors.NONE, now));
            if (v != null && v.state().preparing() && r.nextInt(3) == 0) {
                // The crash between the prepare and the markers: none, or only some, of them written.
                int some = r.nextInt(3);
                for (int i = 0; i < some && !network.isEmpty(); i++) {
                    deliver(network.size() - 1 - r.nextInt(Math.min(network.size(), 2)));
                }
                failoversAfterPrepare++;
                failover(r.nextBoolean());
            }
        }

        void failover(boolean keepSome) {
            for (long id : new ArrayList<>(inFlight.keySet())) {
                TxnStateMachine.Append a = inFlight.get(id);
                if (keepSome && r.nextBoolean()) {
                    // Committed by the next leader: durable, but this coordinator never hears of it.
                    TransactionLog.Value v = a.value() == null ? null
                        : TransactionLog.readValue(ByteBuffer.wrap(a.value()));
                    logged(a.transactionalId(), v);
                    note("durable at failover " + a.transactionalId() + " " + (v == null ? "tombstone" : v.state()));
                }
            }
            inFlight.clear();
            for (Producer p : producers) {
                if (p.pending != null) {
                    p.retry = p.pending; // its answer is lost: NOT_COORDINATOR, the client retries
                    p.pending = null;
                }
            }
            epoch++;
            failovers++;
            machine = new TxnStateMachine(0, epoch, config);
            for (Object[] l : log) {
                machine.replay((String) l[0], (TransactionLog.Value) l[1]);
            }
            note("failover to coordinator epoch " + epoch + " (" + network.size() + " markers still in the network)");
            take(machine.loaded(now));
        }

        // ------------------------------------------------------------ partitions

        /** Delivers the marker write at {@code index} of the network to its partition's leader. */
        void deliver(int index) {
            MarkerSend s = network.remove(index);
            TxnStateMachine.Markers m = s.markers();
            Part part = parts.get(s.tp());
            boolean late = m.coordinatorEpoch() != epoch;
            if (late) {
                lateMarkers++;
            }
            short error = part.state.checkMarker(m.producerId(), m.producerEpoch(), m.coordinatorEpoch());
            note("marker " + (m.commit() ? "commit " : "abort ") + m.transactionalId() + " pid " + m.producerId()
                + " epoch " + m.producerEpoch() + " from coordinator " + m.coordinatorEpoch() + (late ? " (late)" : "")
                + " at " + s.tp() + ": " + error);
            if (error == TxnErrors.NONE) {
                ProducerStateManager.Producer before = part.state.producer(m.producerId());
                Long txn = part.openTxn.remove(m.producerId());
                if (before != null && before.txnFirstOffset >= 0) {
                    assertTrue(txn != null, () -> "an open transaction of unknown origin at " + s.tp() + where());
                    Boolean decision = decided.get(txn);
                    assertTrue(decision != null && decision == m.commit(), () -> "marker " + (m.commit() ? "COMMIT"
                        : "ABORT") + " ends transaction " + txn + " at " + s.tp() + ", decided " + decision + where());
                }
                Logged l = new Logged(part.end(), m.producerId(), m.producerEpoch(), -1, -1, true, m.commit(),
                    m.coordinatorEpoch(), -1);
                part.log.add(l);
                part.apply(l);
            } else if (!late) {
                assertTrue(error == TxnErrors.INVALID_PRODUCER_EPOCH || error == TxnErrors.TRANSACTION_COORDINATOR_FENCED,
                    where());
                machine.markersAbandoned(m.transactionalId(), m.producerId(), m.producerEpoch());
            }
            if (!late && error == TxnErrors.NONE) {
                take(machine.markerWritten(m.transactionalId(), m.producerId(), m.producerEpoch(), s.tp()));
            }
        }

        /** A producer's data batch for its open transaction on {@code tp}. */
        void produce(Producer p, TxnPartition tp) {
            Part part = parts.get(tp);
            if (p.seqEpoch != p.epoch) {
                p.nextSeq.clear();
                p.seqEpoch = p.epoch;
            }
            int seq = p.nextSeq.getOrDefault(tp, 0);
            short error = part.state.checkData(p.pid, p.epoch, seq, seq, true);
            note("produce " + p + " at " + tp + " seq " + seq + ": " + error);
            if (error == ErrorCodes.INVALID_PRODUCER_EPOCH) {
                p.dead = true; // fenced: the client aborts, and is told it is fenced
                return;
            }
            assertEquals(ErrorCodes.NONE, error, () -> "data of " + p + " at " + tp + ": " + part.state.problem()
                + where());
            Long open = part.openTxn.putIfAbsent(p.pid, p.txn);
            assertTrue(open == null || open == p.txn, () -> "data of transaction " + p.txn + " joins transaction "
                + open + " at " + tp + where());
            Logged l = new Logged(part.end(), p.pid, p.epoch, seq, seq, false, false, -1, p.txn);
            part.log.add(l);
            part.apply(l);
            p.nextSeq.put(tp, seq + 1);
        }

        // ------------------------------------------------------------ producers

        void answered(Producer p, TxnStateMachine.Reply rep) {
            Request q = p.pending;
            p.pending = null;
            short e = rep.error();
            note(p + " <- " + q.kind() + " = " + e);
            if (e == TxnErrors.CONCURRENT_TRANSACTIONS || e == TxnErrors.COORDINATOR_NOT_AVAILABLE
                || e == TxnErrors.NOT_COORDINATOR || e == TxnErrors.NEED_PRODUCER_ID
                || e == TxnErrors.COORDINATOR_LOAD_IN_PROGRESS) {
                p.retry = q;
                return;
            }
            p.retry = null;
            if (e != TxnErrors.NONE) {
                p.dead = true; // PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, ...: fatal here
                return;
            }
            switch (q.kind()) {
                case "init" -> {
                    p.pid = rep.producerId();
                    p.epoch = rep.producerEpoch();
                    p.ready = true;
                    p.inTxn.clear();
                    p.txn = -1;
                }
                case "add" -> {
                    if (p.txn < 0) {
                        p.txn = nextTxn++;
                        ongoing.put(p.id, p.txn);
                    }
                    p.inTxn.addAll(q.parts());
                    for (TxnPartition tp : q.parts()) {
                        produce(p, tp);
                        if (p.dead) {
                            return;
                        }
                    }
                }
                case "end" -> {
                    if (q.commit() && p.txn >= 0) {
                        Boolean decision = decided.get(p.txn);
                        long txn = p.txn;
                        assertTrue(decision != null && decision, () -> "commit of transaction " + txn
                            + " answered NONE, decided " + decision + where());
                        committedAnswered.add(p.txn);
                    }
                    if (p.tv2) {
                        p.pid = rep.producerId();
                        p.epoch = rep.producerEpoch();
                    }
                    p.inTxn.clear();
                    p.txn = -1;
                }
                default -> fail(q.kind());
            }
        }

        void send(Producer p, Request q) {
            p.pending = q;
            note(p + " -> " + q.kind() + (q.kind().equals("end") ? (q.commit() ? " commit" : " abort") : "") + " "
                + q.parts());
            take(switch (q.kind()) {
                case "init" -> machine.initProducerId(p, p.id, 60_000, q.pid(), q.epoch(), now, this::ids);
                case "add" -> machine.addPartitions(p, p.id, q.pid(), q.epoch(), q.parts(), p.tv2, now);
                case "end" -> machine.endTxn(p, p.id, q.pid(), q.epoch(), q.commit(), p.tv2, now, this::ids);
                default -> throw new IllegalStateException(q.kind());
            });
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
            if (choice < 6) {
                List<TxnPartition> ps = new ArrayList<>();
                ps.add(PARTITIONS.get(r.nextInt(PARTITIONS.size())));
                if (r.nextBoolean()) {
                    TxnPartition other = PARTITIONS.get(r.nextInt(PARTITIONS.size()));
                    if (!ps.contains(other)) {
                        ps.add(other);
                    }
                }
                send(p, new Request("add", false, ps, p.pid, p.epoch));
            } else if (!p.inTxn.isEmpty()) {
                send(p, new Request("end", r.nextInt(3) > 0, List.of(), p.pid, p.epoch));
            }
        }

        void step() {
            int x = r.nextInt(100);
            if (x < 4) {
                String id = IDS.get(r.nextInt(IDS.size()));
                int inc = incarnations.merge(id, 1, Integer::sum);
                producers.add(new Producer(id, r.nextBoolean(), inc));
                note("new producer " + id + "#" + inc);
            } else if (x < 45) {
                if (!producers.isEmpty()) {
                    producerStep(producers.get(r.nextInt(producers.size())));
                }
            } else if (x < 68) {
                if (!inFlight.isEmpty()) {
                    List<Long> ids = new ArrayList<>(inFlight.keySet());
                    durable(ids.get(r.nextInt(ids.size())));
                }
            } else if (x < 88) {
                if (!network.isEmpty()) {
                    deliver(r.nextInt(network.size()));
                }
            } else if (x < 93) {
                now += r.nextInt(40_000);
                take(machine.abortTimedOut(now));
            } else if (x < 95) {
                failover(true);
            } else if (x < 97) {
                Part part = parts.get(PARTITIONS.get(r.nextInt(PARTITIONS.size())));
                partitionRestarts++;
                note("partition " + part.tp + " restarts");
                part.restart();
            } else {
                now += r.nextInt(1_000);
            }
        }

        /** Producers stop; appends and markers complete; open transactions time out. */
        void drain() {
            for (Producer p : producers) {
                p.dead = true;
            }
            for (int round = 0; round < 100; round++) {
                while (!inFlight.isEmpty() || !network.isEmpty()) {
                    if (!inFlight.isEmpty()) {
                        durable(inFlight.keySet().iterator().next());
                    } else {
                        deliver(0);
                    }
                }
                now += 61_000;
                take(machine.abortTimedOut(now));
                if (inFlight.isEmpty() && network.isEmpty() && machine.markersPending() > 0) {
                    // Markers stopped (a partition refused them for good): the next coordinator resends them.
                    failover(false);
                }
                if (inFlight.isEmpty() && network.isEmpty() && machine.markersPending() == 0
                    && machine.openTransactions() == 0) {
                    break;
                }
            }
            assertEquals(0, machine.markersPending(), () -> "markers pending after the drain" + where());
            assertEquals(0, machine.openTransactions(), () -> "transactions open after the drain" + where());
        }

        /** What a read_committed reader of every partition sees, checked against the decisions. */
        void checkReadCommitted() {
            for (Part part : parts.values()) {
                if (r.nextBoolean()) {
                    part.restart(); // the reader of a recovered replica sees the same
                }
                assertEquals(0, part.state.openTransactions(), () -> part.tp + " has open transactions" + where());
                assertEquals(part.end(), part.state.lastStableOffset(), () -> part.tp + " LSO" + where());
                for (Logged l : part.log) {
                    if (l.marker) {
                        continue;
                    }
                    boolean abortedRange = false;
                    for (ProducerStateManager.AbortedTxn a : part.aborted) {
                        abortedRange |= a.producerId() == l.producerId && a.firstOffset() <= l.offset
                            && l.offset <= a.lastOffset();
                    }
                    boolean visible = !abortedRange;
                    Boolean decision = decided.get(l.transaction);
                    assertTrue(decision != null, () -> "transaction " + l.transaction + " has data at " + part.tp
                        + " but no decision" + where());
                    assertEquals(decision, visible, () -> "transaction " + l.transaction + " decided "
                        + (decision ? "commit" : "abort") + " but its record at " + part.tp + " offset " + l.offset
                        + (visible ? " is read" : " is not read") + where());
                }
            }
            for (long txn : committedAnswered) {
                assertTrue(decided.get(txn), () -> "transaction " + txn + " was answered committed" + where());
            }
        }
    }

    @Test
    void shouldDeliverEveryDecisionToEveryPartitionAcrossCoordinatorCrashesBetweenPrepareAndMarkers() {
        long base = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("TxnMarkersSimulationTest seed " + base + " (" + RUNS + " runs of " + STEPS + " steps)");
        long committed = 0;
        long aborted = 0;
        long failovers = 0;
        long afterPrepare = 0;
        long late = 0;
        long restarts = 0;
        long answered = 0;
        for (int run = 0; run < RUNS; run++) {
            Sim s = new Sim(base + run);
            for (int i = 0; i < STEPS; i++) {
                s.step();
            }
            s.drain();
            s.checkReadCommitted();
            committed += s.decided.values().stream().filter(d -> d).count();
            aborted += s.decided.values().stream().filter(d -> !d).count();
            failovers += s.failovers;
            afterPrepare += s.failoversAfterPrepare;
            late += s.lateMarkers;
            restarts += s.partitionRestarts;
            answered += s.committedAnswered.size();
        }
        System.out.printf("TxnMarkersSimulationTest: %d transactions committed (%d answered so), %d aborted; %d"
                + " coordinator failovers, %d of them between a prepare and its markers; %d markers delivered late"
                + " from a deposed coordinator; %d partition restarts%n", committed, answered, aborted, failovers,
            afterPrepare, late, restarts);
        assertTrue(committed > 0 && aborted > 0 && afterPrepare > 0 && late > 0, "the runs reach every case");
    }
}
