package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test helpers for Fetch on the wire: record batches made by kafka-clients, Produce and Fetch frames over a
 * {@link WireClient}, the batches of a response's record set, and broker state read on its shards.
 */
final class FetchWire {
    private FetchWire() {
    }

    /** One batch of {@code records} records whose values are {@code valueBytes} random bytes, as a producer sends it. */
    static byte[] batch(Random rnd, int records, int valueBytes) {
        SimpleRecord[] rs = new SimpleRecord[records];
        for (int i = 0; i < records; i++) {
            byte[] v = new byte[valueBytes];
            rnd.nextBytes(v);
            rs[i] = new SimpleRecord(System.currentTimeMillis(), null, v);
        }
        ByteBuffer b = MemoryRecords.withRecords(Compression.NONE, rs).buffer();
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** Produces {@code batch} with acks=all, retrying while the partition has no leader yet; its base offset. */
    static long produce(WireClient c, String topic, int partition, byte[] batch) throws IOException {
        for (int attempt = 0; attempt < 200; attempt++) {
            ProduceRequestData req = new ProduceRequestData();
            req.acks = -1;
            req.timeoutMs = 30_000;
            ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData();
            t.name = topic;
            ProduceRequestData.PartitionProduceData p = new ProduceRequestData.PartitionProduceData();
            p.index = partition;
            p.records = ByteSlice.of(batch);
            t.partitionData.add(p);
            req.topicData.add(t);
            c.send(WireClient.frame(ApiKeys.PRODUCE, (short) 9, 1, req));
            byte[] f = c.readFrame();
            assertNotNull(f, "the broker closed the connection on a produce");
            ProduceResponseData r = WireClient.body(f, ApiKeys.PRODUCE, (short) 9);
            ProduceResponseData.PartitionProduceResponse pr = r.responses.get(0).partitionResponses.get(0);
            if (pr.errorCode == ErrorCodes.NONE) {
                return pr.baseOffset;
            }
            if (pr.errorCode != ErrorCodes.NOT_LEADER_OR_FOLLOWER && pr.errorCode != ErrorCodes.LEADER_NOT_AVAILABLE
                && pr.errorCode != ErrorCodes.REQUEST_TIMED_OUT) {
                fail("produce to " + topic + "-" + partition + " answered " + pr.errorCode + ": " + pr.errorMessage);
            }
            sleep(50);
        }
        throw new AssertionError("produce to " + topic + "-" + partition + " found no leader");
    }

    static FetchRequestData request(int maxWaitMs, int minBytes, int maxBytes, int sessionId, int epoch) {
        FetchRequestData r = new FetchRequestData();
        r.maxWaitMs = maxWaitMs;
        r.minBytes = minBytes;
        r.maxBytes = maxBytes;
        r.sessionId = sessionId;
        r.sessionEpoch = epoch;
        return r;
    }

    /** Appends a partition to {@code r} (a new topic entry unless the last one is the same topic). */
    static FetchRequestData add(FetchRequestData r, String topic, Uuid id, int partition, long offset, int maxBytes) {
        FetchRequestData.FetchTopic t = r.topics.isEmpty() ? null : r.topics.get(r.topics.size() - 1);
        if (t == null || !t.topic.equals(topic == null ? "" : topic) || !t.topicId.equals(id == null ? Uuid.ZERO : id)) {
            t = new FetchRequestData.FetchTopic();
            t.topic = topic == null ? "" : topic;
            t.topicId = id == null ? Uuid.ZERO : id;
            r.topics.add(t);
        }
        FetchRequestData.FetchPartition p = new FetchRequestData.FetchPartition();
        p.partition = partition;
        p.fetchOffset = offset;
        p.partitionMaxBytes = maxBytes;
        t.partitions.add(p);
        return r;
    }

    static FetchRequestData forget(FetchRequestData r, String topic, Uuid id, int partition) {
        FetchRequestData.ForgottenTopic t = new FetchRequestData.ForgottenTopic();
        t.topic = topic == null ? "" : topic;
        t.topicId = id == null ? Uuid.ZERO : id;
        t.partitions.add(partition);
        r.forgottenTopicsData.add(t);
        return r;
    }

    static void sendFetch(WireClient c, short version, int correlationId, FetchRequestData r) throws IOException {
        c.send(WireClient.frame(ApiKeys.FETCH, version, correlationId, r));
    }

    static FetchResponseData readFetch(WireClient c, short version) throws IOException {
        byte[] f = c.readFrame();
        assertNotNull(f, "the broker closed the connection instead of answering a fetch");
        return WireClient.body(f, ApiKeys.FETCH, version);
    }

    static FetchResponseData fetch(WireClient c, short version, FetchRequestData r) throws IOException {
        sendFetch(c, version, 7, r);
        return readFetch(c, version);
    }

    /** A partition of a response, or null. */
    static FetchResponseData.PartitionData partition(FetchResponseData r, int index) {
        FetchResponseData.PartitionData found = null;
        for (FetchResponseData.FetchableTopicResponse t : r.responses) {
            for (FetchResponseData.PartitionData p : t.partitions) {
                if (p.partitionIndex == index) {
                    if (found != null) {
                        fail("partition " + index + " is in the response twice");
                    }
                    found = p;
                }
            }
        }
        return found;
    }

    static int partitionCount(FetchResponseData r) {
        int n = 0;
        for (FetchResponseData.FetchableTopicResponse t : r.responses) {
            n += t.partitions.size();
        }
        return n;
    }

    /** The batches of a record set: {baseOffset, lastOffset, sizeBytes} each; fails on a partial batch. */
    static List<long[]> batches(ByteSlice records) {
        byte[] b = records == null ? new byte[0] : records.toArray();
        ByteBuffer bb = ByteBuffer.wrap(b);
        List<long[]> out = new ArrayList<>();
        int pos = 0;
        while (pos < b.length) {
            if (pos + 61 > b.length) {
                fail("a partial batch header at byte " + pos + " of " + b.length);
            }
            long base = bb.getLong(pos);
            int size = 12 + bb.getInt(pos + 8);
            int lastDelta = bb.getInt(pos + 23);
            if (pos + size > b.length) {
                fail("a partial batch (" + size + " bytes) at byte " + pos + " of " + b.length);
            }
            out.add(new long[] {base, base + lastDelta, size});
            pos += size;
        }
        return out;
    }

    static int length(FetchResponseData.PartitionData p) {
        return p.records == null ? 0 : p.records.length();
    }

    static void createTopic(Broker b, String name, int partitions) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
        }
        awaitTrue(() -> shardOf(b, name, partitions - 1) >= 0, "topic " + name + " installed");
    }

    /** The topic's id as the broker's shard 0 knows it. */
    static Uuid topicId(Broker b, String name) throws Exception {
        return b.group().call(0, s -> b.state(0).topics.get(name).id()).get();
    }

    /** The shard hosting {@code name}-{@code partition} on this node, or -1 when not known yet. */
    static int shardOf(Broker b, String name, int partition) {
        try {
            return b.group().call(0, s -> {
                TopicTable.Topic t = b.state(0).topics.get(name);
                return t == null ? -1 : b.shardOf(t, partition);
            }).get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** Fetches parked on {@code name}-{@code partition} now (0 while it is not open). */
    static int parked(Broker b, String name, int partition) {
        int shard = shardOf(b, name, partition);
        try {
            return b.group().call(shard, s -> {
                Partition p = b.state(shard).partitions.get(ShardState.key(name, partition));
                return p == null ? 0 : p.parkedFetches();
            }).get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** Partition reads started for fetches, over all shards. */
    static long partitionReads(Broker b) {
        long n = 0;
        for (int i = 0; i < b.group().size(); i++) {
            int id = i;
            try {
                n += b.group().call(i, s -> b.handlers().fetch().partitionReads(id)).get();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return n;
    }

    /** Round-0 re-reads of partitions cut short by a shard's own budget, over all shards. */
    static long rereads(Broker b) {
        long n = 0;
        for (int i = 0; i < b.group().size(); i++) {
            int id = i;
            try {
                n += b.group().call(i, s -> b.handlers().fetch().rereads(id)).get();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return n;
    }

    /** Waits (at most 30 s: a bound, not a timing assertion) until {@code cond} holds. */
    static void awaitTrue(BooleanSupplier cond, String what) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("not reached within 30 s: " + what);
            }
            sleep(10);
        }
    }

    static void assertNoError(FetchResponseData r) {
        assertEquals(ErrorCodes.NONE, r.errorCode, "top-level error");
        for (FetchResponseData.FetchableTopicResponse t : r.responses) {
            for (FetchResponseData.PartitionData p : t.partitions) {
                assertEquals(ErrorCodes.NONE, p.errorCode, "error of partition " + p.partitionIndex);
            }
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
