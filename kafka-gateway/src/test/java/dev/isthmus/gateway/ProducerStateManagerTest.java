package dev.isthmus.gateway;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kafka's producer-state rules as {@link ProducerStateManager} applies them: sequences, duplicates and epochs,
 * transactions opened by their first batch and ended by markers, the last stable offset, coordinator-epoch fencing,
 * expiry that spares open transactions, and the snapshot round trip.
 */
class ProducerStateManagerTest {
    @Test
    void shouldFindDuplicatesAmongTheLastFiveBatchesAndRefuseGapsAndOldEpochs() {
        ProducerStateManager m = new ProducerStateManager(0);
        long offset = 0;
        for (int i = 0; i < 7; i++) {
            assertEquals(ErrorCodes.NONE, m.checkData(1, (short) 0, i * 2, i * 2 + 1, false));
            m.applyData(1, (short) 0, i * 2, i * 2 + 1, offset, offset + 1, false, 10);
            offset += 2;
        }
        assertEquals(ProducerStateManager.DUPLICATE, m.checkData(1, (short) 0, 12, 13, false));
        assertEquals(12, m.duplicateOffset());
        assertEquals(ProducerStateManager.DUPLICATE, m.checkData(1, (short) 0, 4, 5, false), "the fifth newest");
        assertEquals(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, m.checkData(1, (short) 0, 2, 3, false),
            "older than the five kept");
        assertEquals(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, m.checkData(1, (short) 0, 15, 15, false), "a gap");
        assertEquals(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, m.checkData(1, (short) 1, 3, 3, false),
            "a new epoch starts at 0");
        assertEquals(ErrorCodes.NONE, m.checkData(1, (short) 1, 0, 0, false));
        m.applyData(1, (short) 1, 0, 0, offset, offset, false, 10);
        assertEquals(ErrorCodes.INVALID_PRODUCER_EPOCH, m.checkData(1, (short) 0, 14, 14, false));
        assertEquals(0, m.producer(1).lastSequence());
        assertEquals(1, m.producer(1).batchCount(), "a new epoch forgets the old batches");
    }

    @Test
    void shouldHoldTheLastStableOffsetAtTheFirstOpenTransactionAndIndexOnlyNonEmptyAborts() {
        ProducerStateManager m = new ProducerStateManager(0);
        m.applyData(-1, (short) -1, -1, -1, 0, 4, false, 1); // plain records 0-4
        m.applyData(7, (short) 0, 0, 2, 5, 7, true, 1); // pid 7 opens at 5
        m.applyData(8, (short) 0, 0, 0, 8, 8, true, 1); // pid 8 opens at 8
        assertEquals(5, m.lastStableOffset());
        assertTrue(m.hasOngoingTransaction(7, (short) 0));
        assertFalse(m.hasOngoingTransaction(7, (short) 1), "another epoch: verified again");
        assertEquals(ErrorCodes.INVALID_TXN_STATE, m.checkData(7, (short) 0, 3, 3, false),
            "a plain batch while the transaction is open");
        assertNull(m.applyMarker(7, (short) 0, true, 3, 9, 1), "a commit indexes nothing");
        assertEquals(8, m.lastStableOffset());
        ProducerStateManager.AbortedTxn a = m.applyMarker(8, (short) 0, false, 3, 10, 1);
        assertEquals(new ProducerStateManager.AbortedTxn(8, 8, 10, 11), a);
        assertEquals(11, m.lastStableOffset());
        assertNull(m.applyMarker(8, (short) 0, false, 3, 11, 1), "a marker with nothing open ends nothing");
        assertEquals(ErrorCodes.INVALID_PRODUCER_EPOCH, m.checkMarker(8, (short) -1, 3));
        assertEquals(ErrorCodes.TRANSACTION_COORDINATOR_FENCED, m.checkMarker(8, (short) 0, 2));
        assertEquals(ErrorCodes.NONE, m.checkMarker(8, (short) 1, 4));
    }

    @Test
    void shouldExpireIdleProducersButNeverOneWithAnOpenTransaction() {
        ProducerStateManager m = new ProducerStateManager(0);
        m.applyData(1, (short) 0, 0, 0, 0, 0, false, 100);
        m.applyData(2, (short) 0, 0, 0, 1, 1, true, 100);
        assertEquals(1, m.expire(10_000, 1_000));
        assertNull(m.producer(1));
        assertTrue(m.hasOngoingTransaction(2, (short) 0));
    }

    @Test
    void shouldRoundTripItsSnapshotWithOpenTransactionsAndRefuseDamagedBytes() {
        ProducerStateManager m = new ProducerStateManager(0);
        for (int i = 0; i < 8; i++) {
            m.applyData(1, (short) 2, i, i, i, i, false, 50);
        }
        m.applyData(3, (short) 0, 0, 1, 8, 9, true, 60);
        m.applyMarker(4, (short) 5, true, 9, 10, 70);
        byte[] bytes = m.snapshot(4, new byte[] {9, 9});
        ProducerStateManager back = new ProducerStateManager(0);
        ProducerStateManager.Loaded l = back.load(bytes);
        assertEquals(11, l.offset());
        assertEquals(4, l.termBeforeOffset());
        assertEquals(2, l.extra().length);
        assertEquals(8, back.lastStableOffset(), "pid 3's transaction is open from 8");
        assertEquals(5, back.producer(1).batchCount());
        assertEquals(7, back.producer(1).lastSequence());
        assertEquals(ProducerStateManager.DUPLICATE, back.checkData(1, (short) 2, 3, 3, false));
        assertEquals(9, back.producer(4).coordinatorEpoch);
        List<Long> pids = new ArrayList<>(back.producers().keySet());
        pids.sort(null);
        assertEquals(List.of(1L, 3L, 4L), pids);
        bytes[20] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> new ProducerStateManager(0).load(bytes));
    }
}
