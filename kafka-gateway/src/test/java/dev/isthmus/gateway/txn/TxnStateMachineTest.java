package dev.isthmus.gateway.txn;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transaction coordinator's rules, one behaviour per test, on the pure {@link TxnStateMachine} driven by a
 * {@link TxnHarness} (appends made durable or refused at will, markers acknowledged at will, restarts from the
 * log). Names of Kafka's issues point at the bug a test keeps out.
 */
class TxnStateMachineTest {
    private static final TxnPartition A0 = new TxnPartition("a", 0);
    private static final TxnPartition A1 = new TxnPartition("a", 1);
    private static final TxnPartition B0 = new TxnPartition("b", 0);
    private static final short NONE = TxnErrors.NONE;

    @Test
    void shouldGiveANewTransactionalIdAProducerIdAtEpochZeroOnceDurable() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Output out = h.take(h.machine.initProducerId("w", "t", 60_000, -1, (short) -1, h.nowMs, h::ids));
        assertTrue(out.replies().isEmpty(), "the answer waits for the record");
        assertEquals(1, out.appends().size());
        TxnStateMachine.Reply busy = h.machine.initProducerId("w2", "t", 60_000, -1, (short) -1, h.nowMs, h::ids).reply();
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, busy.error(), "a second request while the first is pending");
        h.commitAll();
        TxnStateMachine.Reply r = h.replies.getLast();
        assertEquals(NONE, r.error());
        assertEquals(1000, r.producerId());
        assertEquals(0, r.producerEpoch());
        TransactionLog.Value v = h.logged("t");
        assertEquals(TxnState.EMPTY, v.state());
        assertEquals(1000, v.producerId());
        assertEquals(0, v.producerEpoch());
        assertEquals(60_000, v.timeoutMs());
        assertEquals(-1, v.startMs());
    }

    @Test
    void shouldRefuseBadInitProducerIdRequests() {
        TxnHarness h = new TxnHarness();
        assertEquals(TxnErrors.INVALID_REQUEST, h.machine.initProducerId("w", "", 60_000, -1, (short) -1, h.nowMs,
            h::ids).reply().error());
        assertEquals(TxnErrors.INVALID_TRANSACTION_TIMEOUT, h.machine.initProducerId("w", "t",
            TxnConfig.DEFAULTS.maxTimeoutMs() + 1, -1, (short) -1, h.nowMs, h::ids).reply().error());
        assertEquals(TxnErrors.INVALID_TRANSACTION_TIMEOUT, h.machine.initProducerId("w", "t", 0, -1, (short) -1,
            h.nowMs, h::ids).reply().error());
        h.pidsAvailable = false;
        assertEquals(TxnErrors.NEED_PRODUCER_ID, h.machine.initProducerId("w", "t", 1000, -1, (short) -1, h.nowMs,
            h::ids).reply().error());
        assertNull(h.machine.snapshot("t"), "nothing is created without a producer id");
    }

    @Test
    void shouldBumpTheEpochOnEachInitAndCheckTheCallersEpochKip360() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply first = h.init("t");
        TxnStateMachine.Reply second = h.init("t");
        assertEquals(first.producerId(), second.producerId());
        assertEquals(1, second.producerEpoch());
        // KIP-360: the producer names its id and epoch; a match bumps.
        TxnStateMachine.Reply third = h.init("t", first.producerId(), (short) 1);
        assertEquals(2, third.producerEpoch());
        // A retry of that call (its answer was lost) names the epoch before: the current values come back.
        TxnStateMachine.Reply retry = h.init("t", first.producerId(), (short) 1);
        assertEquals(NONE, retry.error());
        assertEquals(2, retry.producerEpoch());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.init("t", first.producerId(), (short) 0).error());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.init("t", 77, (short) 2).error(), "another producer id");
    }

    @Test
    void shouldTakeANewProducerIdWhenTheEpochIsExhaustedAndAcceptARetryNamingTheOldOne() {
        TxnHarness h = new TxnHarness();
        h.seed("t", 5, TxnConfig.MAX_EPOCH, TxnState.COMPLETE_COMMIT, (short) 0);
        TxnStateMachine.Reply r = h.init("t", 5, TxnConfig.MAX_EPOCH);
        assertEquals(NONE, r.error());
        assertEquals(1000, r.producerId());
        assertEquals(0, r.producerEpoch());
        assertEquals(5, h.logged("t").previousProducerId());
        TxnStateMachine.Reply retry = h.init("t", 5, TxnConfig.MAX_EPOCH);
        assertEquals(NONE, retry.error(), "the retry names the exhausted producer id");
        assertEquals(1000, retry.producerId());
        assertEquals(0, retry.producerEpoch());
    }

    @Test
    void shouldFenceAnOpenTransactionOnInitWithOneEpochBumpAndAbortIt() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        assertEquals(NONE, h.add("t", p.producerId(), p.producerEpoch(), false, A0, B0).error());
        TxnStateMachine.Reply fence = h.init("t");
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, fence.error(), "the new producer retries");
        TransactionLog.Value prepare = h.logged("t");
        assertEquals(TxnState.PREPARE_ABORT, prepare.state());
        assertEquals(1, prepare.producerEpoch(), "one bump (KAFKA-19367)");
        assertEquals(List.of(A0, B0), prepare.partitions());
        TxnStateMachine.Markers m = h.markersSent.getLast();
        assertFalse(m.commit());
        assertEquals(1, m.producerEpoch(), "markers carry the fencing epoch");
        assertEquals(h.coordinatorEpoch, m.coordinatorEpoch());
        // The zombie is fenced from now on (the epoch is checked before the pending transition, as Kafka does).
        assertEquals(TxnErrors.PRODUCER_FENCED, h.add("t", p.producerId(), (short) 0, false, A1).error(),
            "while markers are written");
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_ABORT, h.logged("t").state());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.add("t", p.producerId(), (short) 0, false, A1).error());
        TxnStateMachine.Reply again = h.init("t");
        assertEquals(NONE, again.error());
        assertEquals(2, again.producerEpoch());
    }

    @Test
    void shouldNotBumpTwiceWhenAFenceAppendFailedKafka9666() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        h.add("t", p.producerId(), p.producerEpoch(), false, A0);
        h.take(h.machine.initProducerId("w", "t", 60_000, -1, (short) -1, h.nowMs, h::ids));
        h.failAll(TxnErrors.COORDINATOR_NOT_AVAILABLE);
        assertEquals(TxnErrors.COORDINATOR_NOT_AVAILABLE, h.replies.getLast().error());
        assertEquals(0, h.state("t").epoch(), "nothing durable, nothing changed");
        assertEquals(TxnState.ONGOING, h.state("t").state());
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.init("t").error());
        assertEquals(1, h.logged("t").producerEpoch(), "the retry writes the same fencing epoch");
    }

    @Test
    void shouldAddPartitionsCheckingProducerIdThenEpochThenPending() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        assertEquals(TxnErrors.INVALID_PRODUCER_ID_MAPPING, h.machine.addPartitions("w", "nobody", pid, (short) 0,
            List.of(A0), false, h.nowMs).reply().error());
        assertEquals(TxnErrors.INVALID_PRODUCER_ID_MAPPING, h.machine.addPartitions("w", "t", pid + 1, (short) 0,
            List.of(A0), false, h.nowMs).reply().error());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.machine.addPartitions("w", "t", pid, (short) 3, List.of(A0),
            false, h.nowMs).reply().error());
        h.nowMs += 10;
        assertEquals(NONE, h.add("t", pid, (short) 0, false, A0).error());
        TransactionLog.Value v = h.logged("t");
        assertEquals(TxnState.ONGOING, v.state());
        assertEquals(h.nowMs, v.startMs());
        int logged = h.log.size();
        h.nowMs += 10;
        TxnStateMachine.Output again = h.machine.addPartitions("w", "t", pid, (short) 0, List.of(A0), false, h.nowMs);
        assertEquals(NONE, again.reply().error(), "already in the transaction");
        assertTrue(again.appends().isEmpty(), "no record for a partition already in");
        h.add("t", pid, (short) 0, false, A1);
        assertEquals(logged + 1, h.log.size());
        assertEquals(List.of(A0, A1), h.logged("t").partitions());
        assertEquals(v.startMs(), h.logged("t").startMs(), "the start stays the first add's");
    }

    @Test
    void shouldCommitUnderVersionOneThroughMarkersAndTreatARepeatAsARetry() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        h.add("t", pid, (short) 0, false, A0, B0);
        TxnStateMachine.Reply end = h.end("t", pid, (short) 0, true, false);
        assertEquals(NONE, end.error(), "answered once PrepareCommit is durable, before markers");
        assertEquals(TxnState.PREPARE_COMMIT, h.logged("t").state());
        assertEquals(0, h.logged("t").producerEpoch(), "version 1 keeps the epoch");
        TxnStateMachine.Markers m = h.markersSent.getLast();
        assertTrue(m.commit());
        assertEquals(List.of(A0, B0), m.partitions());
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.end("t", pid, (short) 0, true, false).error());
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.add("t", pid, (short) 0, false, A0).error());
        // One marker written: DescribeTransactions shows what is left.
        Object[] first = h.markers.removeFirst();
        h.take(h.machine.markerWritten("t", pid, (short) 0, (TxnPartition) first[1]));
        assertEquals(List.of(B0), h.machine.describe("t").partitions());
        assertEquals(1, h.machine.markersPending());
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_COMMIT, h.logged("t").state());
        assertEquals(List.of(), h.logged("t").partitions());
        assertEquals(NONE, h.end("t", pid, (short) 0, true, false).error(), "a retry of the commit");
        assertEquals(TxnErrors.INVALID_TXN_STATE, h.end("t", pid, (short) 0, false, false).error());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.end("t", pid, (short) 1, true, false).error());
    }

    @Test
    void shouldBumpTheEpochPerTransactionUnderVersionTwo() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        assertEquals(NONE, h.add("t", pid, (short) 0, true, A0).error());
        TxnStateMachine.Reply end = h.end("t", pid, (short) 0, true, true);
        assertEquals(NONE, end.error());
        assertEquals(pid, end.producerId());
        assertEquals(1, end.producerEpoch(), "the producer continues with the bumped epoch");
        TransactionLog.Value prepare = h.logged("t");
        assertEquals(1, prepare.producerEpoch());
        assertEquals(2, prepare.clientTransactionVersion());
        assertEquals(1, h.markersSent.getLast().producerEpoch(), "markers carry the bumped epoch");
        h.ackMarkers();
        // A retry: stored epoch = request epoch + 1.
        TxnStateMachine.Reply retry = h.end("t", pid, (short) 0, true, true);
        assertEquals(NONE, retry.error());
        assertEquals(1, retry.producerEpoch());
        // The next transaction at epoch 1.
        assertEquals(NONE, h.add("t", pid, (short) 1, true, B0).error());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.add("t", pid, (short) 0, true, A0).error(), "a late zombie");
        TxnStateMachine.Reply abort = h.end("t", pid, (short) 1, false, true);
        assertEquals(2, abort.producerEpoch());
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_ABORT, h.logged("t").state());
    }

    @Test
    void shouldAbortAnEmptyVersionTwoTransactionAndAnswerRetryWhileMarkersAreWrittenKafka18464() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        h.add("t", pid, (short) 0, true, A0);
        TxnStateMachine.Reply commit = h.end("t", pid, (short) 0, true, true);
        // Markers not written yet; the producer aborts an empty next transaction with its new epoch.
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.end("t", pid, commit.producerEpoch(), false, true).error(),
            "retry, not PRODUCER_FENCED");
        h.ackMarkers();
        TxnStateMachine.Reply abort = h.end("t", pid, commit.producerEpoch(), false, true);
        assertEquals(NONE, abort.error());
        assertEquals(2, abort.producerEpoch(), "an empty abort still bumps");
        assertEquals(TxnState.COMPLETE_ABORT, h.logged("t").state(), "nothing to mark: complete at once");
        // From Empty as well.
        TxnStateMachine.Reply fresh = h.init("u");
        TxnStateMachine.Reply emptyAbort = h.end("u", fresh.producerId(), (short) 0, false, true);
        assertEquals(NONE, emptyAbort.error());
        assertEquals(1, emptyAbort.producerEpoch());
        assertEquals(TxnErrors.INVALID_TXN_STATE, h.end("u", fresh.producerId(), (short) 1, true, true).error(),
            "nothing to commit");
        TxnStateMachine.Reply v1 = h.init("w");
        assertEquals(TxnErrors.INVALID_TXN_STATE, h.end("w", v1.producerId(), (short) 0, false, false).error(),
            "version 1 has no empty abort");
    }

    @Test
    void shouldMoveToTheNextProducerIdWhenAVersionTwoEpochOverflowsKafka18660() {
        TxnHarness h = new TxnHarness();
        h.seed("t", 5, TxnConfig.MAX_EPOCH, TxnState.ONGOING, (short) 2, A0);
        TxnStateMachine.Reply end = h.end("t", 5, TxnConfig.MAX_EPOCH, true, true);
        assertEquals(NONE, end.error());
        assertEquals(1000, end.producerId());
        assertEquals(0, end.producerEpoch());
        TransactionLog.Value prepare = h.logged("t");
        assertEquals(TxnState.PREPARE_COMMIT, prepare.state());
        assertEquals(Short.MAX_VALUE, prepare.producerEpoch());
        assertEquals(1000, prepare.nextProducerId());
        assertEquals(Short.MAX_VALUE, h.markersSent.getLast().producerEpoch());
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.end("t", 5, TxnConfig.MAX_EPOCH, true, true).error());
        h.ackMarkers();
        TransactionLog.Value complete = h.logged("t");
        assertEquals(1000, complete.producerId());
        assertEquals(0, complete.producerEpoch());
        assertEquals(5, complete.previousProducerId());
        TxnStateMachine.Reply retry = h.end("t", 5, TxnConfig.MAX_EPOCH, true, true);
        assertEquals(NONE, retry.error(), "the retry names the old producer id at the exhausted epoch");
        assertEquals(1000, retry.producerId());
        assertEquals(0, retry.producerEpoch());
        assertEquals(NONE, h.add("t", 1000, (short) 0, true, A0).error());
    }

    @Test
    void shouldFenceAnExhaustedOpenTransactionWithoutOverflowKafka19367() {
        TxnHarness h = new TxnHarness();
        h.seed("t", 5, TxnConfig.MAX_EPOCH, TxnState.ONGOING, (short) 2, A0);
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.init("t").error());
        assertEquals(Short.MAX_VALUE, h.logged("t").producerEpoch());
        h.ackMarkers();
        TxnStateMachine.Reply r = h.init("t");
        assertEquals(NONE, r.error());
        assertEquals(1000, r.producerId(), "the exhausted id is replaced");
        assertEquals(0, r.producerEpoch());
    }

    @Test
    void shouldNeverHandAClientTheLastEpochAfterATimeoutAbortAtTheLimit() {
        // Found by TxnStateMachineModelTest: a version 2 producer at epoch 32766 whose transaction timed out (fenced
        // to 32767) sends its abort; as a "retry" it would get 32767 back, whose next bump overflows.
        TxnHarness h = new TxnHarness();
        h.seed("t", 5, TxnConfig.MAX_EPOCH, TxnState.ONGOING, (short) 2, A0);
        h.nowMs += 60_001;
        h.take(h.machine.abortTimedOut(h.nowMs));
        h.commitAll();
        h.ackMarkers();
        assertEquals(Short.MAX_VALUE, h.logged("t").producerEpoch());
        assertEquals(TxnErrors.PRODUCER_FENCED, h.end("t", 5, TxnConfig.MAX_EPOCH, false, true).error());
        TxnStateMachine.Reply again = h.init("t");
        assertEquals(1000, again.producerId(), "InitProducerId moves it to a new producer id");
        assertEquals(0, again.producerEpoch());
    }

    @Test
    void shouldAbortTimedOutTransactionsAndFenceTheLateCommitKafka20785() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        h.add("t", pid, (short) 0, true, A0);
        h.nowMs += 30_000;
        assertTrue(h.take(h.machine.abortTimedOut(h.nowMs)).appends().isEmpty(), "not yet timed out");
        h.nowMs += 30_001;
        h.take(h.machine.abortTimedOut(h.nowMs));
        h.commitAll();
        assertEquals(TxnState.PREPARE_ABORT, h.logged("t").state());
        assertEquals(1, h.logged("t").producerEpoch());
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.end("t", pid, (short) 0, true, true).error());
        h.ackMarkers();
        assertEquals(TxnErrors.PRODUCER_FENCED, h.end("t", pid, (short) 0, true, true).error(),
            "fenced, not INVALID_TXN_STATE");
        assertEquals(TxnErrors.PRODUCER_FENCED, h.end("t", pid, (short) 0, true, false).error(), "version 1 too");
        assertEquals(TxnErrors.PRODUCER_FENCED, h.add("t", pid, (short) 0, false, A0).error());
    }

    @Test
    void shouldVerifyPartitionsWithoutChangingAnything() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply p = h.init("t");
        long pid = p.producerId();
        h.add("t", pid, (short) 0, false, A0);
        int logged = h.log.size();
        Map<TxnPartition, Short> v = h.machine.verifyPartitions("t", pid, (short) 0, List.of(A0, A1));
        assertEquals(Map.of(A0, NONE, A1, TxnErrors.TRANSACTION_ABORTABLE), v);
        assertEquals(Map.of(A0, TxnErrors.PRODUCER_FENCED), h.machine.verifyPartitions("t", pid, (short) 1, List.of(A0)));
        assertEquals(Map.of(A0, TxnErrors.INVALID_PRODUCER_ID_MAPPING),
            h.machine.verifyPartitions("t", pid + 1, (short) 0, List.of(A0)));
        h.take(h.machine.endTxn("w", "t", pid, (short) 0, true, false, h.nowMs, h::ids));
        h.commitAll();
        assertEquals(Map.of(A0, TxnErrors.CONCURRENT_TRANSACTIONS),
            h.machine.verifyPartitions("t", pid, (short) 0, List.of(A0)));
        assertEquals(logged + 1, h.log.size(), "verification wrote nothing");
    }

    @Test
    void shouldResendMarkersOfDecidedTransactionsAfterARestartAndLeaveOpenOnesToTimeOut() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply a = h.init("a");
        TxnStateMachine.Reply b = h.init("b");
        h.add("a", a.producerId(), (short) 0, false, A0, A1);
        h.add("b", b.producerId(), (short) 0, false, B0);
        h.end("a", a.producerId(), (short) 0, true, false);
        Object[] one = h.markers.removeFirst();
        h.take(h.machine.markerWritten("a", a.producerId(), (short) 0, (TxnPartition) one[1]));
        int sent = h.markersSent.size();
        h.restart();
        assertEquals(sent + 1, h.markersSent.size(), "the new coordinator resends");
        TxnStateMachine.Markers again = h.markersSent.getLast();
        assertEquals(List.of(A0, A1), again.partitions(), "every partition: the log does not know which acked");
        assertEquals(h.coordinatorEpoch, again.coordinatorEpoch());
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_COMMIT, h.logged("a").state());
        assertEquals(TxnState.ONGOING, h.state("b").state());
        h.nowMs += 60_001;
        h.take(h.machine.abortTimedOut(h.nowMs));
        h.commitAll();
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_ABORT, h.logged("b").state());
    }

    @Test
    void shouldIgnoreMarkersAndAppendsFromAnotherDecisionOrCoordinator() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply a = h.init("a");
        h.add("a", a.producerId(), (short) 0, false, A0);
        h.end("a", a.producerId(), (short) 0, false, false);
        TxnStateMachine.Output stale = h.machine.markerWritten("a", a.producerId(), (short) 7, A0);
        assertTrue(stale.appends().isEmpty());
        assertTrue(h.machine.appended(9999, NONE, h.nowMs).replies().isEmpty());
        h.machine.markersAbandoned("a", a.producerId(), (short) 0);
        assertEquals(0, h.machine.markersPending(), "abandoned markers are not counted as pending");
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.init("a").error(), "stays deciding until reloaded");
        h.restart();
        h.ackMarkers();
        assertEquals(TxnState.COMPLETE_ABORT, h.logged("a").state());
    }

    @Test
    void shouldRetryTheCompletionRecordUntilItIsDurable() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply a = h.init("a");
        h.add("a", a.producerId(), (short) 0, false, A0);
        h.end("a", a.producerId(), (short) 0, true, false);
        Object[] m = h.markers.removeFirst();
        h.take(h.machine.markerWritten("a", a.producerId(), (short) 0, (TxnPartition) m[1]));
        assertEquals(1, h.inFlight.size());
        long first = h.inFlight.keySet().iterator().next();
        h.fail(first, TxnErrors.COORDINATOR_NOT_AVAILABLE);
        assertEquals(1, h.inFlight.size(), "appended again");
        h.commitAll();
        assertEquals(TxnState.COMPLETE_COMMIT, h.logged("a").state());
    }

    @Test
    void shouldExpireIdleIdsWithATombstone() {
        TxnConfig c = TxnConfig.DEFAULTS.with(TxnConfig.ID_EXPIRATION_MS, "1000");
        TxnHarness h = new TxnHarness(c);
        TxnStateMachine.Reply a = h.init("a");
        TxnStateMachine.Reply b = h.init("b");
        h.add("b", b.producerId(), (short) 0, false, A0);
        h.nowMs += 1001;
        h.take(h.machine.expire(h.nowMs));
        assertEquals(1, h.inFlight.size(), "only the idle id without an open transaction");
        assertEquals(TxnErrors.CONCURRENT_TRANSACTIONS, h.init("a").error(), "while the tombstone is written");
        h.commitAll();
        assertNull(h.logged("a"), "a tombstone");
        assertNull(h.machine.describe("a"));
        assertNotNull(h.machine.describe("b"));
        h.restart();
        assertNull(h.machine.snapshot("a"));
        TxnStateMachine.Reply again = h.init("a");
        assertTrue(again.producerId() != a.producerId(), "a new id after expiry");
    }

    @Test
    void shouldListWithStateProducerDurationAndPatternFilters() {
        TxnHarness h = new TxnHarness();
        TxnStateMachine.Reply a = h.init("app-a");
        h.init("app-b");
        h.init("other");
        h.add("app-a", a.producerId(), (short) 0, false, A0);
        h.nowMs += 5000;
        assertEquals(Set.of("app-a", "app-b", "other"), ids(h.machine.list(List.of(), List.of(), -1, null, h.nowMs)));
        assertEquals(Set.of("app-a"), ids(h.machine.list(List.of(TxnState.ONGOING), List.of(), -1, null, h.nowMs)));
        assertEquals(Set.of("app-a"), ids(h.machine.list(List.of(), List.of(a.producerId()), -1, null, h.nowMs)));
        assertEquals(Set.of("app-a"), ids(h.machine.list(List.of(TxnState.ONGOING), List.of(), 4000, null,
            h.nowMs)));
        assertEquals(Set.of(), ids(h.machine.list(List.of(TxnState.ONGOING), List.of(), 6000, null, h.nowMs)));
        assertEquals(Set.of("app-a", "app-b"), ids(h.machine.list(List.of(), List.of(), -1,
            java.util.regex.Pattern.compile("app-.*"), h.nowMs)));
        assertEquals(1, h.machine.openTransactions());
        assertEquals(h.nowMs - 5000, h.machine.oldestOpenStartMs());
    }

    private static Set<String> ids(List<TxnStateMachine.Listing> l) {
        return l.stream().map(TxnStateMachine.Listing::transactionalId).collect(java.util.stream.Collectors.toSet());
    }
}
