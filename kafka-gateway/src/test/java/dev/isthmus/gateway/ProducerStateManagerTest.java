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

    // ------------------------------------------------------------------ batches sent again under a new epoch

    /** A stored idempotent batch of {@code values} (kafka-clients' own encoding), sequences from {@code seq}. */
    private static byte[] batch(short epoch, int seq, long timestampMs, String... values) {
        org.apache.kafka.common.record.internal.SimpleRecord[] records =
            new org.apache.kafka.common.record.internal.SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new org.apache.kafka.common.record.internal.SimpleRecord(timestampMs + i, null,
                values[i].getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        java.nio.ByteBuffer b = org.apache.kafka.common.record.internal.MemoryRecords.withIdempotentRecords(
            org.apache.kafka.common.compress.Compression.NONE, 7, epoch, seq, records).buffer();
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        return bytes;
    }

    /**
     * What kafka-clients sends when it bumps an idempotent producer's epoch with the batch in flight
     * (ProducerBatch.resetProducerState): the same bytes with the epoch, base sequence and CRC rewritten.
     */
    static byte[] rewritten(byte[] stored, short epoch, int seq) {
        byte[] b = stored.clone();
        java.nio.ByteBuffer w = java.nio.ByteBuffer.wrap(b);
        w.putShort(dev.isthmus.log.RecordBatch.PRODUCER_EPOCH, epoch);
        w.putInt(dev.isthmus.log.RecordBatch.BASE_SEQUENCE, seq);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b, dev.isthmus.log.RecordBatch.ATTRIBUTES, b.length - dev.isthmus.log.RecordBatch.ATTRIBUTES);
        w.putInt(dev.isthmus.log.RecordBatch.CRC, (int) crc.getValue());
        return b;
    }

    private static void apply(ProducerStateManager m, byte[] b, long offset) {
        java.nio.ByteBuffer r = java.nio.ByteBuffer.wrap(b);
        int first = r.getInt(dev.isthmus.log.RecordBatch.BASE_SEQUENCE);
        int delta = r.getInt(dev.isthmus.log.RecordBatch.LAST_OFFSET_DELTA);
        long maxTs = r.getLong(dev.isthmus.log.RecordBatch.MAX_TIMESTAMP);
        m.applyData(7, r.getShort(dev.isthmus.log.RecordBatch.PRODUCER_EPOCH), first, first + delta, offset,
            offset + delta, false, maxTs, r.getInt(dev.isthmus.log.RecordBatch.CRC), b.length, maxTs);
    }

    /**
     * bench/chaos seed 2231: batches a stepped-down leader answered with an error were stored, and kafka-clients, which
     * took an error past delivery.timeout.ms as "not stored", bumped the epoch and sent its batches in flight again
     * from sequence 0. Each is recognised as the stored batch (answered with its offset, not stored twice), a retry of
     * it is a duplicate, and the producer's next new batch follows them.
     */
    @Test
    void shouldRecogniseBatchesSentAgainUnderANewEpochAsTheStoredOnes() {
        ProducerStateManager m = new ProducerStateManager(0);
        byte[] a = batch((short) 0, 0, 1_000, "a");
        byte[] x = batch((short) 0, 1, 1_001, "x1", "x2");
        byte[] y = batch((short) 0, 3, 1_002, "y");
        apply(m, a, 0);
        apply(m, x, 1);
        apply(m, y, 3);
        // x and y again under epoch 1, from sequence 0.
        byte[] x1 = rewritten(x, (short) 1, 0);
        assertEquals(ErrorCodes.NONE, m.checkData(7, (short) 1, 0, 1, false));
        assertTrue(m.mayBeResent(7, (short) 1, 0));
        assertTrue(m.matchResent(7, (short) 1, 0, 1, x1, x1.length));
        assertEquals(1, m.resentOffset());
        assertEquals(2, m.resentLastOffset());
        m.applyResent(7, (short) 1, 0, 1, 1, 10);
        assertEquals(4, m.appliedOffset(), "nothing appended");
        assertEquals(ProducerStateManager.DUPLICATE, m.checkData(7, (short) 1, 0, 1, false), "its retry");
        assertEquals(1, m.duplicateOffset());
        assertEquals(2, m.duplicateLastOffset());
        byte[] y1 = rewritten(y, (short) 1, 2);
        assertEquals(ErrorCodes.NONE, m.checkData(7, (short) 1, 2, 2, false));
        assertTrue(m.mayBeResent(7, (short) 1, 2), "the batch after a re-sent one may be re-sent too");
        assertTrue(m.matchResent(7, (short) 1, 2, 2, y1, y1.length));
        assertEquals(3, m.resentOffset());
        m.applyResent(7, (short) 1, 2, 2, 3, 10);
        // A new batch: other bytes (its own timestamp and value), appended; then nothing is taken for a re-send.
        byte[] z = batch((short) 1, 3, 5_000, "z");
        assertEquals(ErrorCodes.NONE, m.checkData(7, (short) 1, 3, 3, false));
        assertTrue(m.mayBeResent(7, (short) 1, 3));
        assertFalse(m.matchResent(7, (short) 1, 3, 3, z, z.length));
        apply(m, z, 4);
        assertFalse(m.mayBeResent(7, (short) 1, 4));
        assertEquals(3, m.producer(7).lastSequence());
    }

    /** A new epoch's batch is not taken for a stored one when anything but the epoch and sequence differs. */
    @Test
    void shouldNotTakeANewBatchForAStoredOneWhenItsBytesDiffer() {
        ProducerStateManager m = new ProducerStateManager(0);
        byte[] x = batch((short) 0, 0, 1_000, "x");
        apply(m, x, 0);
        byte[] sameValueLater = batch((short) 1, 0, 1_001, "x");
        byte[] otherValue = batch((short) 1, 0, 1_000, "w");
        byte[] sameBytesOldEpoch = rewritten(x, (short) 0, 1);
        assertFalse(m.matchResent(7, (short) 1, 0, 0, sameValueLater, sameValueLater.length), "another timestamp");
        assertFalse(m.matchResent(7, (short) 1, 0, 0, otherValue, otherValue.length), "another value");
        assertFalse(m.mayBeResent(7, (short) 0, 1), "same epoch: not a re-send");
        assertFalse(m.matchResent(7, (short) 0, 1, 1, sameBytesOldEpoch, sameBytesOldEpoch.length),
            "only an earlier epoch's batch is matched");
        // Known only from a snapshot (no stored bytes): never matched.
        ProducerStateManager fromSnapshot = new ProducerStateManager(0);
        fromSnapshot.load(m.snapshot(0, new byte[0]));
        byte[] x1 = rewritten(x, (short) 1, 0);
        assertFalse(fromSnapshot.matchResent(7, (short) 1, 0, 0, x1, x1.length));
        assertTrue(m.matchResent(7, (short) 1, 0, 0, x1, x1.length));
    }
}
