package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The sequence of bench/chaos seed 2231 (issue 22, {@code duplicate} 4), replayed step by step on three brokers in
 * this JVM with a partition on nodes {leader, follower}:
 * <ol>
 *   <li>the follower stops; the leader takes an acks=all idempotent batch it cannot commit, steps down (check-quorum)
 *       and answers it NOT_LEADER_OR_FOLLOWER, as Kafka answers a produce waiting in purgatory at a leader change;</li>
 *   <li>the follower comes back; only the old leader can win (its log is longer), and it commits the batch;</li>
 *   <li>the client, having taken the error as "not stored" (kafka-clients 4.3 does so for an error that arrives past
 *       delivery.timeout.ms: Sender.completeBatch -> TransactionManager.handleFailedBatch bumps the idempotent epoch
 *       and ProducerBatch.resetProducerState rewrites the batches in flight from sequence 0), sends the same batch
 *       again under epoch 1, sequence 0: the bytes are the stored batch's but for the header's epoch, sequence and
 *       CRC, built here exactly so.</li>
 * </ol>
 * The partition must hold every value once: the batch sent again is answered with the stored batch's offset and not
 * appended, and the producer's next batch follows. Without the recognition it was appended a second time. The race in
 * the client (an error processed after a batch's delivery deadline but before the client expires it) is not a thing a
 * test can schedule with kafka-clients; the bytes on the wire are what it sends.
 */
@Timeout(300)
class ResentBatchTest {
    private static final int NODES = 3;
    private static final String TOPIC = "resend";
    private static final long PID = 7007;
    private int correlation;

    private static MemoryRecords batch(short epoch, int seq, long timestampMs, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(timestampMs, null, values[i].getBytes(StandardCharsets.UTF_8));
        }
        return MemoryRecords.withIdempotentRecords(Compression.NONE, PID, epoch, seq, records);
    }

    private static MemoryRecords copy(MemoryRecords r) {
        return MemoryRecords.readableRecords(r.buffer().duplicate());
    }

    /** Produce v9 of one batch to the partition at {@code port}, acks=all; returns {error code, base offset}. */
    private long[] produce(int port, MemoryRecords records) throws Exception {
        ProduceRequestData data = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        data.topicData().add(new ProduceRequestData.TopicProduceData().setName(TOPIC).setPartitionData(List.of(
            new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(records))));
        short version = 9;
        RequestHeader header = new RequestHeader(ApiKeys.PRODUCE, version, "resent-batch-test", ++correlation);
        ByteBuffer out = org.apache.kafka.common.requests.RequestUtils.serialize(header.data(), header.headerVersion(),
            data, version);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(90_000);
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

    /** Sends to every running broker in turn until one leads and answers with something but a leadership error. */
    private long[] produceToLeader(Broker[] brokers, MemoryRecords records) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            for (Broker b : brokers) {
                if (b == null) {
                    continue;
                }
                long[] r = produce(b.port(), copy(records));
                if (r[0] != Errors.NOT_LEADER_OR_FOLLOWER.code() && r[0] != Errors.NOT_ENOUGH_REPLICAS.code()
                    && r[0] != Errors.REQUEST_TIMED_OUT.code()) {
                    return r;
                }
            }
            if (System.nanoTime() > deadline) {
                fail("no broker took the produce within 90 s");
            }
            Thread.sleep(200);
        }
    }

    @Test
    void shouldStoreOnceABatchSentAgainUnderANewEpochAfterItsLeaderAnsweredAnErrorAndCommittedIt(@TempDir Path dir)
        throws Exception {
        int[] rpc = new int[NODES];
        List<String> seeds = new ArrayList<>();
        for (int i = 0; i < NODES; i++) {
            rpc[i] = TestPorts.free();
            seeds.add(i + "@127.0.0.1:" + rpc[i]);
        }
        BrokerConfig[] configs = new BrokerConfig[NODES];
        Broker[] brokers = new Broker[NODES];
        try {
            for (int i = 0; i < NODES; i++) {
                configs[i] = BrokerConfig.defaults().toBuilder().nodeId(i).port(TestPorts.free())
                    .rpc("127.0.0.1", rpc[i]).seeds(seeds).dataDir(dir.resolve("node-" + i)).shards(1).memoryBytes(192L << 20).pin(false)
                    .autoLeaderRebalance(false).build();
            }
            for (int i = 0; i < NODES; i++) {
                brokers[i] = Broker.start(configs[i]);
            }
            StringBuilder bootstrap = new StringBuilder();
            for (Broker b : brokers) {
                bootstrap.append(bootstrap.isEmpty() ? "" : ",").append("127.0.0.1:").append(b.port());
            }
            Properties props = new Properties();
            props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap.toString());
            try (Admin admin = Admin.create(props)) {
                create(admin);
                int leader = leaderOf(admin);
                int follower = leader == 0 ? 1 : 0;

                long[] a = produceToLeader(brokers, batch((short) 0, 0, 1_000, "a"));
                assertEquals(Errors.NONE.code(), a[0], "the first batch");

                // The follower stops: the leader cannot commit the next batch, steps down and answers it with an error.
                brokers[follower].close();
                brokers[follower] = null;
                MemoryRecords x = batch((short) 0, 1, 2_000, "x1", "x2");
                long[] failed = produce(brokers[leader].port(), copy(x));
                assertEquals(Errors.NOT_LEADER_OR_FOLLOWER.code(), failed[0], "answered at the step-down");

                // The follower is back; the old leader, whose log is longer, leads again and commits the batch.
                brokers[follower] = Broker.start(configs[follower]);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                List<String> before;
                do {
                    if (System.nanoTime() > deadline) {
                        fail("the batch answered with an error was never committed (did the leader step down before it"
                            + " arrived?)");
                    }
                    Thread.sleep(200);
                    before = readAll(bootstrap.toString(), admin).stream()
                        .map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList();
                } while (!before.contains("x2"));
                assertEquals(List.of("a", "x1", "x2"), before, "the batch answered with an error is stored");

                // The client sends it again under epoch 1 from sequence 0 (kafka-clients' rewrite of the header).
                byte[] stored = new byte[x.sizeInBytes()];
                x.buffer().duplicate().get(stored);
                MemoryRecords again = MemoryRecords.readableRecords(ByteBuffer.wrap(
                    ProducerStateManagerTest.rewritten(stored, (short) 1, 0)));
                long[] resent = produceToLeader(brokers, again);
                assertEquals(Errors.NONE.code(), resent[0], "the batch sent again");
                long[] retried = produceToLeader(brokers, again);
                assertEquals(Errors.NONE.code(), retried[0], "a retry of it");
                assertEquals(resent[1], retried[1], "a retry of it is answered with the same offset");
                long[] z = produceToLeader(brokers, batch((short) 1, 2, 3_000, "z"));
                assertEquals(Errors.NONE.code(), z[0], "the producer's next batch follows the ones sent again");
                assertTrue(z[1] > resent[1], "appended after them");

                // What is stored: every value once, x1 at the offset the batch sent again was answered with.
                List<ConsumerRecord<byte[], byte[]>> all = readAll(bootstrap.toString(), admin);
                List<String> values = all.stream().map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList();
                assertEquals(List.of("a", "x1", "x2", "z"), values, "each value once, in order");
                assertEquals(resent[1], all.get(1).offset(), "x1 is where the batch sent again was answered");
                assertEquals(a[1], all.get(0).offset());
                assertEquals(z[1], all.get(3).offset());
            }
        } finally {
            for (Broker b : brokers) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    private static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, Admin admin) throws Exception {
        TopicPartition tp = new TopicPartition(TOPIC, 0);
        long end = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all().get().get(tp).offset();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (c.position(tp) < end) {
                if (System.nanoTime() > deadline) {
                    fail("read " + got.size() + " records up to " + c.position(tp) + ", not to the end offset " + end);
                }
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            return got;
        }
    }

    private static void create(Admin admin) throws Exception {
        // The brokers register once a majority of seeds is up: retry until the placement fits.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            try {
                admin.createTopics(List.of(new NewTopic(TOPIC, Map.of(0, List.of(0, 1))))).all()
                    .get(30, TimeUnit.SECONDS);
                return;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(500);
            }
        }
    }

    private static int leaderOf(Admin admin) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC);
            if (d.partitions().get(0).leader() != null && d.partitions().get(0).leader().id() >= 0) {
                return d.partitions().get(0).leader().id();
            }
            if (System.nanoTime() > deadline) {
                fail(TOPIC + " has no leader");
            }
            Thread.sleep(100);
        }
    }
}
