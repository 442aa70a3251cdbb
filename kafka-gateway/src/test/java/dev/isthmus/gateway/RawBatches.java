package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Test helper: record batches built or damaged byte by byte, sent in raw Produce frames, and the stored batches
 * read back with raw Fetch frames (so a test sees exactly what is on the wire and in the log). Owner: one test
 * thread.
 */
final class RawBatches {
    static final int HEADER = 61;
    static final int ATTRIBUTES = 21;
    static final int CRC = 17;
    static final int LAST_OFFSET_DELTA = 23;
    static final int MAX_TIMESTAMP = 35;
    static final int RECORDS_COUNT = 57;

    private RawBatches() {
    }

    /** A well-formed batch of {@code n} records as kafka-clients builds it ({@code codec}: a Kafka codec or NONE). */
    static byte[] good(int n, int valueBytes, Compression codec, long timestamp) {
        SimpleRecord[] records = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            byte[] v = new byte[valueBytes];
            byte[] tag = ("value-" + i + "-").getBytes(StandardCharsets.UTF_8);
            for (int k = 0; k < v.length; k++) {
                v[k] = tag[k % tag.length];
            }
            records[i] = new SimpleRecord(timestamp + i, ("key-" + i).getBytes(StandardCharsets.UTF_8), v);
        }
        return bytes(MemoryRecords.withRecords(codec, records).buffer());
    }

    static byte[] good(int n, int valueBytes) {
        return good(n, valueBytes, Compression.NONE, System.currentTimeMillis());
    }

    static byte[] bytes(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    /** A batch header (recordsCount, lastOffsetDelta as given, now as timestamps) around {@code records}, CRC fixed. */
    static byte[] batch(byte[] records, int count, int lastOffsetDelta) {
        long now = System.currentTimeMillis();
        ByteBuffer b = ByteBuffer.allocate(HEADER + records.length);
        b.putLong(0).putInt(b.capacity() - 12).putInt(-1).put((byte) 2).putInt(0).putShort((short) 0)
            .putInt(lastOffsetDelta).putLong(now).putLong(now).putLong(-1).putShort((short) -1).putInt(-1)
            .putInt(count).put(records);
        byte[] a = b.array();
        fixCrc(a);
        return a;
    }

    /** The records area of a batch (everything after its header). */
    static byte[] records(byte[] batch) {
        return java.util.Arrays.copyOfRange(batch, HEADER, batch.length);
    }

    static void fixCrc(byte[] a) {
        CRC32C crc = new CRC32C();
        crc.update(a, ATTRIBUTES, a.length - ATTRIBUTES);
        ByteBuffer.wrap(a).putInt(CRC, (int) crc.getValue());
    }

    static ProduceRequestData produceRequest(String topic, int partition, byte[] batch, short acks) {
        ProduceRequestData req = new ProduceRequestData();
        req.acks = acks;
        req.timeoutMs = 30_000;
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData();
        t.name = topic;
        ProduceRequestData.PartitionProduceData p = new ProduceRequestData.PartitionProduceData();
        p.index = partition;
        p.records = ByteSlice.of(batch);
        t.partitionData.add(p);
        req.topicData.add(t);
        return req;
    }

    /** Sends one Produce (acks=all) of {@code batch} at {@code version} and returns the partition's answer. */
    static ProduceResponseData.PartitionProduceResponse produce(WireClient c, int correlation, short version,
                                                               String topic, int partition, byte[] batch)
        throws IOException {
        return produce(c, correlation, version, topic, partition, batch, (short) -1);
    }

    /** {@link #produce(WireClient, int, short, String, int, byte[])} with {@code acks} 1 or -1. */
    static ProduceResponseData.PartitionProduceResponse produce(WireClient c, int correlation, short version,
                                                               String topic, int partition, byte[] batch, short acks)
        throws IOException {
        c.send(WireClient.frame(ApiKeys.PRODUCE, version, correlation, produceRequest(topic, partition, batch, acks)));
        byte[] r = c.readFrame();
        if (r == null) {
            throw new IOException("the broker closed the connection instead of answering a Produce");
        }
        ProduceResponseData resp = WireClient.body(r, ApiKeys.PRODUCE, version);
        return resp.responses.get(0).partitionResponses.get(0);
    }

    /** The stored batches of a partition from {@code offset}, read with raw Fetch v11 requests (all of them). */
    static List<byte[]> fetchBatches(WireClient c, int correlation, String topic, int partition, long offset)
        throws IOException {
        List<byte[]> out = new ArrayList<>();
        long next = offset;
        while (true) {
            FetchRequestData req = new FetchRequestData();
            req.maxWaitMs = 0;
            req.minBytes = 0;
            req.maxBytes = 16 << 20;
            FetchRequestData.FetchTopic t = new FetchRequestData.FetchTopic();
            t.topic = topic;
            FetchRequestData.FetchPartition p = new FetchRequestData.FetchPartition();
            p.partition = partition;
            p.fetchOffset = next;
            p.partitionMaxBytes = 16 << 20;
            t.partitions.add(p);
            req.topics.add(t);
            short version = 11;
            c.send(WireClient.frame(ApiKeys.FETCH, version, correlation, req));
            byte[] r = c.readFrame();
            FetchResponseData resp = WireClient.body(r, ApiKeys.FETCH, version);
            FetchResponseData.PartitionData pd = resp.responses.get(0).partitions.get(0);
            if (pd.errorCode != 0) {
                throw new IOException("fetch error " + pd.errorCode);
            }
            byte[] all = new byte[pd.records.length()];
            pd.records.copyTo(0, all, 0, all.length);
            if (all.length == 0) {
                return out;
            }
            ByteBuffer b = ByteBuffer.wrap(all);
            int pos = 0;
            while (pos + HEADER <= all.length) {
                int size = b.getInt(pos + 8) + 12;
                if (pos + size > all.length) {
                    break;
                }
                byte[] one = java.util.Arrays.copyOfRange(all, pos, pos + size);
                long base = b.getLong(pos);
                if (base + b.getInt(pos + LAST_OFFSET_DELTA) >= next) {
                    out.add(one);
                }
                next = Math.max(next, base + b.getInt(pos + LAST_OFFSET_DELTA) + 1);
                pos += size;
            }
            if (next >= pd.highWatermark) {
                return out;
            }
        }
    }

    static int codec(byte[] batch) {
        return ByteBuffer.wrap(batch).getShort(ATTRIBUTES) & 7;
    }

    static boolean logAppendTime(byte[] batch) {
        return (ByteBuffer.wrap(batch).getShort(ATTRIBUTES) & 8) != 0;
    }

    static long maxTimestamp(byte[] batch) {
        return ByteBuffer.wrap(batch).getLong(MAX_TIMESTAMP);
    }

    /** Zig-zag varint, as records use. */
    static void varint(ByteArrayOutputStream o, long v) {
        long z = (v << 1) ^ (v >> 63);
        while ((z & ~0x7FL) != 0) {
            o.write((int) ((z & 0x7F) | 0x80));
            z >>>= 7;
        }
        o.write((int) z);
    }
}
