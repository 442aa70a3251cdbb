package dev.isthmus.gateway.txn;

import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.coordinator.transaction.TransactionLog.TxnRecord;
import org.apache.kafka.coordinator.transaction.generated.TransactionLogValue;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Our {@code __transaction_state} records against Kafka's own code for them (kafka-transaction-coordinator 4.3's
 * generated TransactionLogKey/Value and its TransactionLog reader): byte for byte in both value versions, and
 * read back both ways.
 */
class TransactionLogTest {
    @Test
    void shouldWriteKeysAsKafkaDoes() {
        for (String id : List.of("t", "my-app-0", "ünïcode", "x".repeat(300))) {
            assertArrayEquals(org.apache.kafka.coordinator.transaction.TransactionLog.keyToBytes(id),
                TransactionLog.key(id));
            assertEquals(id, TransactionLog.readKey(ByteBuffer.wrap(TransactionLog.key(id))));
            assertEquals(id, org.apache.kafka.coordinator.transaction.TransactionLog.readTxnRecordKey(
                ByteBuffer.wrap(TransactionLog.key(id))));
        }
        assertNull(TransactionLog.readKey(ByteBuffer.wrap(new byte[] {0, 9, 0, 0})), "an unknown key version");
    }

    @Test
    void shouldWriteValuesByteForByteAsKafkaInBothVersions() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("TransactionLogTest seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < 500; i++) {
            TxnState state = TxnState.values()[r.nextInt(6)];
            List<TxnPartition> parts = new ArrayList<>();
            if (state != TxnState.EMPTY) {
                int topics = r.nextInt(4);
                for (int t = 0; t < topics; t++) {
                    int n = 1 + r.nextInt(4);
                    for (int p = 0; p < n; p++) {
                        parts.add(new TxnPartition("topic-" + t, p * 3));
                    }
                }
            }
            TransactionLog.Value v = new TransactionLog.Value(r.nextLong(1L << 40), r.nextBoolean() ? -1 : r.nextLong(1000),
                r.nextBoolean() ? -1 : r.nextLong(1000), (short) r.nextInt(Short.MAX_VALUE), 1 + r.nextInt(900_000), state,
                parts, r.nextLong(1L << 42), state == TxnState.EMPTY ? -1 : r.nextLong(1L << 42),
                (short) r.nextInt(3));
            for (short version = 0; version <= 1; version++) {
                byte[] ours = TransactionLog.value(v, version);
                // Version 0 has no tagged fields: ours leaves them out, Kafka's needs them at their defaults.
                TransactionLog.Value k = version == 0 ? new TransactionLog.Value(v.producerId(), -1, -1,
                    v.producerEpoch(), v.timeoutMs(), v.state(), v.partitions(), v.lastUpdateMs(), v.startMs(),
                    (short) 0) : v;
                byte[] kafka = MessageUtil.toVersionPrefixedBytes(version, kafka(k));
                assertArrayEquals(kafka, ours, "value " + v + " version " + version + " (seed " + seed + ")");
                TransactionLog.Value back = TransactionLog.readValue(ByteBuffer.wrap(kafka));
                assertEquals(k, back);
                TxnRecord rec = (TxnRecord) org.apache.kafka.coordinator.transaction.TransactionLog.read(
                    ByteBuffer.wrap(TransactionLog.key("id")), ByteBuffer.wrap(ours));
                assertEquals("id", rec.transactionId());
                assertEquals(v.producerId(), rec.metadata().producerId());
                assertEquals(v.producerEpoch(), rec.metadata().producerEpoch());
                assertEquals(v.state().id, rec.metadata().state().id());
            }
        }
    }

    @Test
    void shouldSkipTaggedFieldsItDoesNotKnow() {
        TransactionLogValue k = new TransactionLogValue().setProducerId(7).setProducerEpoch((short) 3)
            .setTransactionTimeoutMs(1000).setTransactionStatus(TxnState.EMPTY.id).setTransactionPartitions(null)
            .setTransactionLastUpdateTimestampMs(5).setTransactionStartTimestampMs(-1).setNextProducerEpoch((short) 4);
        TransactionLog.Value v = TransactionLog.readValue(ByteBuffer.wrap(MessageUtil.toVersionPrefixedBytes((short) 1, k)));
        assertEquals(7, v.producerId());
        assertEquals(3, v.producerEpoch());
    }

    @Test
    void shouldRefuseDamagedValuesWithAReason() {
        byte[] good = TransactionLog.value(new TransactionLog.Value(1, -1, -1, (short) 0, 1000, TxnState.ONGOING,
            List.of(new TxnPartition("a", 0)), 1, 1, (short) 2), (short) 1);
        assertThrows(IllegalArgumentException.class,
            () -> TransactionLog.readValue(ByteBuffer.wrap(java.util.Arrays.copyOf(good, good.length - 3))));
        byte[] future = good.clone();
        future[1] = 7;
        assertEquals("transaction log value version 7 is not 0 or 1", assertThrows(IllegalArgumentException.class,
            () -> TransactionLog.readValue(ByteBuffer.wrap(future))).getMessage());
        assertThrows(IllegalStateException.class, () -> TransactionLog.value(new TransactionLog.Value(1, -1, -1,
            (short) 0, 1000, TxnState.EMPTY, List.of(new TxnPartition("a", 0)), 1, -1, (short) 0), (short) 1));
    }

    private static TransactionLogValue kafka(TransactionLog.Value v) {
        List<TransactionLogValue.PartitionsSchema> parts = null;
        if (v.state() != TxnState.EMPTY) {
            parts = new ArrayList<>();
            String topic = null;
            TransactionLogValue.PartitionsSchema cur = null;
            for (TxnPartition tp : v.partitions()) {
                if (!tp.topic().equals(topic)) {
                    topic = tp.topic();
                    cur = new TransactionLogValue.PartitionsSchema().setTopic(topic).setPartitionIds(new ArrayList<>());
                    parts.add(cur);
                }
                cur.partitionIds().add(tp.partition());
            }
        }
        return new TransactionLogValue().setProducerId(v.producerId()).setPreviousProducerId(v.previousProducerId())
            .setNextProducerId(v.nextProducerId()).setProducerEpoch(v.producerEpoch())
            .setTransactionTimeoutMs(v.timeoutMs()).setTransactionStatus(v.state().id).setTransactionPartitions(parts)
            .setTransactionLastUpdateTimestampMs(v.lastUpdateMs()).setTransactionStartTimestampMs(v.startMs())
            .setClientTransactionVersion(v.clientTransactionVersion());
    }
}
