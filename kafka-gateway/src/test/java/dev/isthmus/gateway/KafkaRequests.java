package dev.isthmus.gateway;

import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.FetchResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.apache.kafka.common.requests.RequestUtils;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Test helper: one request built with kafka-clients' own message classes, sent over a plain socket and its answer
 * parsed by kafka-clients (the oracle, not our codecs): for APIs the Admin client no longer sends (the legacy
 * AlterConfigs) and for reading back the batches a partition stores. Owner: the calling test thread.
 */
final class KafkaRequests {
    private static int correlation;

    private KafkaRequests() {
    }

    /** Sends {@code data} as {@code api} at {@code version} to 127.0.0.1:{@code port}; returns the parsed response. */
    static synchronized AbstractResponse send(int port, ApiKeys api, short version, ApiMessage data) throws IOException {
        RequestHeader header = new RequestHeader(api, version, "isthmus-test", ++correlation);
        ByteBuffer out = RequestUtils.serialize(header.data(), header.headerVersion(), data, version);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(60_000);
            DataOutputStream o = new DataOutputStream(s.getOutputStream());
            o.writeInt(out.remaining());
            o.write(out.array(), out.arrayOffset() + out.position(), out.remaining());
            o.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] resp = new byte[in.readInt()];
            in.readFully(resp);
            return AbstractResponse.parseResponse(ByteBuffer.wrap(resp), header);
        }
    }

    /**
     * Every batch partition {@code partition} of {@code topic} holds below its high watermark, read from offset 0
     * with Fetch v12 from the broker on {@code port} (its leader).
     */
    static List<RecordBatch> batches(int port, String topic, int partition) throws IOException {
        List<RecordBatch> out = new ArrayList<>();
        long offset = 0;
        while (true) {
            FetchRequestData req = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(0).setMinBytes(0)
                .setMaxBytes(32 << 20).setIsolationLevel((byte) 0);
            req.topics().add(new FetchRequestData.FetchTopic().setTopic(topic).setPartitions(List.of(
                new FetchRequestData.FetchPartition().setPartition(partition).setFetchOffset(offset)
                    .setPartitionMaxBytes(16 << 20).setLogStartOffset(-1))));
            FetchResponse r = (FetchResponse) send(port, ApiKeys.FETCH, (short) 12, req);
            FetchResponseData.PartitionData p = r.data().responses().get(0).partitions().get(0);
            if (p.errorCode() != Errors.NONE.code()) {
                throw new IOException("fetch of " + topic + "-" + partition + " at " + offset + ": "
                    + Errors.forCode(p.errorCode()));
            }
            int before = out.size();
            for (RecordBatch b : ((MemoryRecords) p.records()).batches()) {
                out.add(b);
                offset = b.nextOffset();
            }
            if (offset >= p.highWatermark() || out.size() == before) {
                return out;
            }
        }
    }

    /** The bytes of those batches: what the partition's log holds once everything is committed. */
    static long storedBytes(int port, String topic, int partition) throws IOException {
        long n = 0;
        for (RecordBatch b : batches(port, topic, partition)) {
            n += b.sizeInBytes();
        }
        return n;
    }
}
