package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Idempotent producer rules at the wire, across restarts: a retried batch is answered with its original offset
 * and not written again, gaps are refused, and the state survives a clean restart (snapshot) and a restart
 * without a snapshot (rebuilt from the log).
 */
@ExtendWith(ArenaLeakCheck.class)
class IdempotenceTest {
    private static final long PID = 4242;
    private int correlation;

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).build();
    }

    private static MemoryRecords batch(short epoch, int seq, int count) {
        SimpleRecord[] records = new SimpleRecord[count];
        for (int i = 0; i < count; i++) {
            records[i] = new SimpleRecord(("v" + (seq + i)).getBytes());
        }
        return MemoryRecords.withIdempotentRecords(Compression.NONE, PID, epoch, seq, records);
    }

    /** Sends one Produce v9 with a batch of {@code count} records from sequence {@code seq}; returns {error, baseOffset}. */
    private long[] produce(Broker b, short epoch, int seq, int count) throws Exception {
        return produce(b, batch(epoch, seq, count));
    }

    private long[] produce(Broker b, MemoryRecords batch) throws Exception {
        ProduceRequestData data = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        data.topicData().add(new ProduceRequestData.TopicProduceData().setName("idem").setPartitionData(List.of(
            new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(batch))));
        short version = 9;
        RequestHeader header = new RequestHeader(ApiKeys.PRODUCE, version, "idempotence-test", ++correlation);
        ByteBuffer out = org.apache.kafka.common.requests.RequestUtils.serialize(header.data(), header.headerVersion(), data,
            version); // not through ProduceRequest.Builder, which would refuse the malformed requests this test sends
        try (Socket s = new Socket("127.0.0.1", b.port())) {
            DataOutputStream o = new DataOutputStream(s.getOutputStream());
            o.writeInt(out.remaining());
            o.write(out.array(), out.arrayOffset() + out.position(), out.remaining());
            o.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] resp = new byte[in.readInt()];
            in.readFully(resp);
            ProduceResponse r = (ProduceResponse) AbstractResponse.parseResponse(ByteBuffer.wrap(resp), header);
            var p = r.data().responses().iterator().next().partitionResponses().get(0);
            return new long[] {p.errorCode(), p.baseOffset()};
        }
    }

    @org.junit.jupiter.api.Test
    void shouldRefuseTwoBatchesInOnePartitionAndAppendNothing(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            b.createTopicBlocking("idem", 1);
            ByteBuffer one = batch((short) 0, 0, 2).buffer();
            ByteBuffer two = batch((short) 0, 2, 2).buffer();
            ByteBuffer both = ByteBuffer.allocate(one.remaining() + two.remaining()).put(one).put(two).flip();
            assertEquals(Errors.INVALID_RECORD.code(), produce(b, MemoryRecords.readableRecords(both))[0]);
            assertEquals(0, produce(b, (short) 0, 0, 1)[1], "nothing was appended by the refused request");
        }
    }

    /**
     * A producer's first batch in a partition must be its sequence 0: a later batch arriving first (its earlier ones
     * held up by a leader change or a timeout) used to be stored ahead of them (bench/chaos 'reordered', ChaosTest
     * seed 6976184099440299723).
     */
    @org.junit.jupiter.api.Test
    void shouldRefuseAFirstBatchThatIsNotSequenceZeroAndTakeTheBatchesInOrder(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            b.createTopicBlocking("idem", 1);
            assertEquals(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code(), produce(b, (short) 0, 2, 2)[0]);
            long[] first = produce(b, (short) 0, 0, 2);
            assertEquals(Errors.NONE.code(), first[0]);
            assertEquals(0, first[1], "the refused batch stored nothing");
            long[] second = produce(b, (short) 0, 2, 2);
            assertEquals(Errors.NONE.code(), second[0]);
            assertEquals(2, second[1], "sequence 2 after 0..1");
        }
    }

    @ParameterizedTest(name = "snapshot kept: {0}")
    @ValueSource(booleans = {true, false})
    void shouldDeduplicateRetriesAcrossRestarts(boolean keepSnapshot, @TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            b.createTopicBlocking("idem", 1);
            assertEquals(Errors.NONE.code(), produce(b, (short) 0, 0, 5)[0]);
            assertEquals(5, produce(b, (short) 0, 5, 5)[1]);
            long[] retry = produce(b, (short) 0, 5, 5);
            assertEquals(Errors.NONE.code(), retry[0]);
            assertEquals(5, retry[1], "a retry is answered with the original offset");
        }
        if (!keepSnapshot) {
            try (var dirs = Files.walk(dir)) {
                for (Path p : dirs.filter(f -> f.getFileName().toString().equals(Partition.PRODUCER_SNAPSHOT)).toList()) {
                    Files.delete(p);
                }
            }
        }
        try (Broker b = Broker.start(config(dir))) {
            long[] retry = produce(b, (short) 0, 5, 5);
            assertEquals(Errors.NONE.code(), retry[0]);
            assertEquals(5, retry[1], "still deduplicated after a restart");
            assertEquals(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code(), produce(b, (short) 0, 20, 1)[0]);
            // The restarted leader may open its term with a LEADER_CHANGE control batch at offset 10.
            long next = produce(b, (short) 0, 10, 1)[1];
            assertTrue(next == 10 || next == 11, "offset " + next);
            assertEquals(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code(), produce(b, (short) 1, 3, 1)[0],
                "a new epoch starts at sequence 0");
            assertEquals(next + 1, produce(b, (short) 1, 0, 1)[1]);
            assertEquals(Errors.INVALID_PRODUCER_EPOCH.code(), produce(b, (short) 0, 11, 1)[0]);
        }
    }
}
