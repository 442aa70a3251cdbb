package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Client quotas enforced with Kafka's semantics, seen by real kafka-clients: a client over its byte-rate quota gets
 * {@code throttle_time_ms} in its responses (the client's {@code produce-throttle-time-max} /
 * {@code fetch-throttle-time-max} metrics, fed only by that field) while a client without a quota on the same broker
 * is never throttled, and the broker's metrics show the throttle time and bytes per quota entity. No assertion on
 * speed or latency: each throttled client runs until it has seen a throttle, bounded by the bytes it may send.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(300)
class ClientQuotaEnforcementTest {
    private static final int VALUE_BYTES = 10_000;
    private static final long MB = 1 << 20;

    private static Broker start(Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .pin(false).metrics("127.0.0.1", 0).build();
        return Broker.start(c);
    }

    private static void alter(Broker b, ClientQuotaEntity entity, String key, double value) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        try (Admin admin = Admin.create(ap)) {
            admin.alterClientQuotas(List.of(new ClientQuotaAlteration(entity, List.of(new ClientQuotaAlteration.Op(key,
                value))))).all().get();
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(Broker b, String clientId) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        pp.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        pp.put(ProducerConfig.ACKS_CONFIG, "1");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(256 * 1024));
        // A small buffer: what a throttled producer still holds when it stops drains quickly at its quota.
        pp.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(4 * 1024 * 1024));
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return new KafkaProducer<>(pp);
    }

    private static KafkaConsumer<byte[], byte[]> consumer(Broker b, String clientId) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return new KafkaConsumer<>(cp);
    }

    /** A client metric's value (NaN when the client has none by that name). */
    private static double metric(Map<MetricName, ? extends Metric> metrics, String group, String name) {
        for (var e : metrics.entrySet()) {
            if (e.getKey().group().equals(group) && e.getKey().name().equals(name) && !e.getKey().tags().containsKey("node-id")) {
                return ((Number) e.getValue().metricValue()).doubleValue();
            }
        }
        return Double.NaN;
    }

    private static String scrape(Broker b) throws Exception {
        HttpResponse<String> m = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
            + b.metricsPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, m.statusCode());
        return m.body();
    }

    /** The value of {@code name{labels}} on /metrics, or -1 when absent. */
    private static double value(String body, String name, String labels) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name + "{" + labels + "}") + " (\\S+)$").matcher(body);
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    private static byte[] payload(SplittableRandom random) {
        byte[] v = new byte[VALUE_BYTES];
        random.nextBytes(v); // incompressible, though nothing compresses here
        return v;
    }

    @Test
    void shouldThrottleAProducerOverItsQuotaButNotAnotherClient(@TempDir Path dir) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        SplittableRandom random = new SplittableRandom(seed);
        try (Broker b = start(dir)) {
            b.createTopicBlocking("quota-produce", 2);
            alter(b, new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, "throttled")), "producer_byte_rate",
                1048576);
            long sent = 0;
            double throttleMax = 0;
            try (KafkaProducer<byte[], byte[]> p = producer(b, "throttled")) {
                // As fast as it can, until a response carried a throttle time (bounded by bytes, not by time).
                while (!(throttleMax > 0)) { // NaN until the client has a sample
                    if (sent > 200 * MB) {
                        fail("200 MB produced against a 1 MB/s quota without a throttle time");
                    }
                    for (int i = 0; i < 100; i++) {
                        p.send(new ProducerRecord<>("quota-produce", payload(random)));
                        sent += VALUE_BYTES;
                    }
                    throttleMax = metric(p.metrics(), "producer-metrics", "produce-throttle-time-max");
                }
                p.flush();
                assertTrue(metric(p.metrics(), "producer-metrics", "produce-throttle-time-avg") > 0);
            }
            System.out.println("throttled after " + sent / MB + " MB, produce-throttle-time-max " + throttleMax);

            // Another client on the same broker, with no quota, producing as much flat out: never throttled.
            try (KafkaProducer<byte[], byte[]> p = producer(b, "free")) {
                for (long n = 0; n < 12 * MB; n += VALUE_BYTES) {
                    p.send(new ProducerRecord<>("quota-produce", payload(random)));
                }
                p.flush();
                assertEquals(0.0, metric(p.metrics(), "producer-metrics", "produce-throttle-time-max"));
            }

            String body = scrape(b);
            String throttled = "type=\"produce\",user=\"\",client_id=\"throttled\"";
            String free = "type=\"produce\",user=\"\",client_id=\"free\"";
            assertTrue(value(body, "isthmus_quota_throttle_time_ms_total", throttled) > 0, body);
            assertTrue(value(body, "isthmus_quota_entity_throttled_responses_total", throttled) > 0, body);
            assertTrue(value(body, "isthmus_quota_bytes_total", throttled) >= 10 * MB, body);
            assertEquals(1048576.0, value(body, "isthmus_quota_limit", throttled), body);
            assertEquals(0.0, value(body, "isthmus_quota_throttle_time_ms_total", free), body);
            assertTrue(value(body, "isthmus_quota_bytes_total", free) >= 12 * MB, body);
            assertEquals(-1, value(body, "isthmus_quota_limit", free), "no quota, no limit line");
            assertTrue(value(body, "isthmus_quota_throttled_responses_total", "type=\"produce\"") > 0, body);
        }
    }

    @Test
    void shouldThrottleAConsumerOverItsQuotaWithoutLosingRecordsButNotAnotherClient(@TempDir Path dir)
        throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        SplittableRandom random = new SplittableRandom(seed);
        int records = (int) (16 * MB / VALUE_BYTES);
        try (Broker b = start(dir)) {
            b.createTopicBlocking("quota-fetch", 1);
            try (KafkaProducer<byte[], byte[]> p = producer(b, "loader")) {
                for (int i = 0; i < records; i++) {
                    p.send(new ProducerRecord<>("quota-fetch", payload(random)));
                }
                p.flush();
            }
            // Kafka's (default user, client id) entity: every user of client id "slow" gets 1 MB/s of its own.
            Map<String, String> e = new HashMap<>();
            e.put(ClientQuotaEntity.USER, null);
            e.put(ClientQuotaEntity.CLIENT_ID, "slow");
            alter(b, new ClientQuotaEntity(e), "consumer_byte_rate", 1048576);

            TopicPartition tp = new TopicPartition("quota-fetch", 0);
            try (KafkaConsumer<byte[], byte[]> c = consumer(b, "slow")) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long next = 0;
                double throttleMax = 0;
                while (!(throttleMax > 0)) { // NaN until the client has a sample
                    if (next >= records) {
                        fail("consumed all " + records + " records against a 1 MB/s quota without a throttle time");
                    }
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                        assertEquals(next, r.offset(), "no record lost or repeated around throttled fetches");
                        assertEquals(VALUE_BYTES, r.value().length);
                        next++;
                    }
                    throttleMax = metric(c.metrics(), "consumer-fetch-manager-metrics", "fetch-throttle-time-max");
                }
                System.out.println("throttled after " + next + " records, fetch-throttle-time-max " + throttleMax);
                // It goes on after the throttle, from where it was.
                long before = next;
                while (next < before + 10) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                        assertEquals(next, r.offset());
                        next++;
                    }
                }
            }

            try (KafkaConsumer<byte[], byte[]> c = consumer(b, "fast")) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long next = 0;
                while (next < records) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                        assertEquals(next, r.offset());
                        next++;
                    }
                }
                assertEquals(0.0, metric(c.metrics(), "consumer-fetch-manager-metrics", "fetch-throttle-time-max"));
            }

            String body = scrape(b);
            String slow = "type=\"fetch\",user=\"ANONYMOUS\",client_id=\"slow\"";
            String fast = "type=\"fetch\",user=\"\",client_id=\"fast\"";
            assertTrue(value(body, "isthmus_quota_throttle_time_ms_total", slow) > 0, body);
            assertTrue(value(body, "isthmus_quota_bytes_total", slow) >= 10 * MB, body);
            assertEquals(0.0, value(body, "isthmus_quota_throttle_time_ms_total", fast), body);
            assertTrue(value(body, "isthmus_quota_bytes_total", fast) >= 16 * MB * 0.99, body);
        }
    }

    /** One request on an open socket, answered: the parsed response (kafka-clients parses it: the oracle). */
    private static org.apache.kafka.common.requests.AbstractResponse exchange(java.net.Socket s,
        org.apache.kafka.common.protocol.ApiKeys api, short version, int correlation,
        org.apache.kafka.common.protocol.ApiMessage data) throws Exception {
        org.apache.kafka.common.requests.RequestHeader header = new org.apache.kafka.common.requests.RequestHeader(api,
            version, "ignorer", correlation);
        java.nio.ByteBuffer out = org.apache.kafka.common.requests.RequestUtils.serialize(header.data(),
            header.headerVersion(), data, version);
        java.io.DataOutputStream o = new java.io.DataOutputStream(s.getOutputStream());
        o.writeInt(out.remaining());
        o.write(out.array(), out.arrayOffset() + out.position(), out.remaining());
        o.flush();
        java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
        byte[] resp = new byte[in.readInt()];
        in.readFully(resp);
        return org.apache.kafka.common.requests.AbstractResponse.parseResponse(java.nio.ByteBuffer.wrap(resp), header);
    }

    private static org.apache.kafka.common.message.ProduceRequestData produceOf(SplittableRandom random, int bytes) {
        byte[] v = new byte[bytes];
        random.nextBytes(v);
        org.apache.kafka.common.message.ProduceRequestData data = new org.apache.kafka.common.message.ProduceRequestData()
            .setAcks((short) 1).setTimeoutMs(30_000);
        data.topicData().add(new org.apache.kafka.common.message.ProduceRequestData.TopicProduceData()
            .setName("quota-mute").setPartitionData(List.of(new org.apache.kafka.common.message.ProduceRequestData
                .PartitionProduceData().setIndex(0).setRecords(org.apache.kafka.common.record.internal.MemoryRecords
                    .withRecords(org.apache.kafka.common.compress.Compression.NONE,
                        new org.apache.kafka.common.record.internal.SimpleRecord(v))))));
        return data;
    }

    /**
     * KIP-219 on the wire, for a client that does not throttle itself: after a response with throttle_time_ms = T,
     * the broker reads nothing more from the connection for T, so the next request's answer cannot come before T has
     * passed since the throttled request was sent (a lower bound, which load cannot break). A Produce v5 client (before
     * KIP-219) gets its response itself only after T.
     */
    @Test
    void shouldMuteAThrottledConnectionAndDelayResponsesOfClientsTooOldToThrottle(@TempDir Path dir) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        SplittableRandom random = new SplittableRandom(seed);
        try (Broker b = start(dir)) {
            b.createTopicBlocking("quota-mute", 1);
            // 10 KB/s: a first request of ~115 KB is 11.5 KB/s over the 10 s window, about 1.5 s of throttle.
            alter(b, new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, "ignorer")), "producer_byte_rate",
                10_000);
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", b.port())) {
                s.setSoTimeout(120_000);
                long sentNs = System.nanoTime();
                var first = (org.apache.kafka.common.requests.ProduceResponse) exchange(s,
                    org.apache.kafka.common.protocol.ApiKeys.PRODUCE, (short) 9, 1, produceOf(random, 115_000));
                int throttleMs = first.data().throttleTimeMs();
                assertTrue(throttleMs > 0, "over its quota: " + first.data());
                assertEquals(0, first.data().responses().iterator().next().partitionResponses().get(0).errorCode(),
                    "throttled, not refused");
                // Ignoring the throttle: the next request at once. Its answer waits for the mute to end.
                exchange(s, org.apache.kafka.common.protocol.ApiKeys.API_VERSIONS, (short) 3, 2,
                    new org.apache.kafka.common.message.ApiVersionsRequestData().setClientSoftwareName("t")
                        .setClientSoftwareVersion("1"));
                long elapsedMs = (System.nanoTime() - sentNs) / 1_000_000;
                assertTrue(elapsedMs >= throttleMs, "answered " + elapsedMs + " ms after the throttled request, within"
                    + " its throttle time " + throttleMs + " ms");
            }
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", b.port())) {
                s.setSoTimeout(120_000);
                long sentNs = System.nanoTime();
                var old = (org.apache.kafka.common.requests.ProduceResponse) exchange(s,
                    org.apache.kafka.common.protocol.ApiKeys.PRODUCE, (short) 5, 3, produceOf(random, 5_000));
                int throttleMs = old.data().throttleTimeMs();
                long elapsedMs = (System.nanoTime() - sentNs) / 1_000_000;
                assertTrue(throttleMs > 0, "still over its quota: " + old.data());
                assertTrue(elapsedMs >= throttleMs, "a v5 response came " + elapsedMs + " ms after its request, within"
                    + " the throttle time " + throttleMs + " ms it carries");
            }
        }
    }

    /**
     * request_percentage (KIP-124): a client id allowed 0.01 % of a thread's time sends ApiVersions on one connection,
     * each answered before the next, until a response carries a throttle time (bounded by a request count); that
     * throttle is at most one window (Kafka bounds the request quota's), and the broker counts it under the request
     * type for that client id.
     */
    @Test
    void shouldThrottleAClientOverItsRequestTimeQuota(@TempDir Path dir) throws Exception {
        try (Broker b = start(dir)) {
            alter(b, new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, "ignorer")), "request_percentage", 0.01);
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", b.port())) {
                s.setSoTimeout(120_000);
                int throttleMs = 0;
                int n = 0;
                while (throttleMs == 0) {
                    if (++n > 1_000_000) {
                        fail("a million requests within 0.01 % of a thread's time");
                    }
                    var r = (org.apache.kafka.common.requests.ApiVersionsResponse) exchange(s,
                        org.apache.kafka.common.protocol.ApiKeys.API_VERSIONS, (short) 3, n,
                        new org.apache.kafka.common.message.ApiVersionsRequestData().setClientSoftwareName("t")
                            .setClientSoftwareVersion("1"));
                    assertEquals(0, r.data().errorCode());
                    throttleMs = r.data().throttleTimeMs();
                }
                System.out.println("throttled after " + n + " requests: " + throttleMs + " ms");
                assertTrue(throttleMs <= 1000, "the request quota's throttle is bounded by one window: " + throttleMs);
            }
            String body = scrape(b);
            String labels = "type=\"request\",user=\"\",client_id=\"ignorer\"";
            assertTrue(value(body, "isthmus_quota_throttle_time_ms_total", labels) > 0, body);
            assertTrue(value(body, "isthmus_quota_request_time_ns_total", labels) > 0, body);
            assertTrue(value(body, "isthmus_quota_throttled_responses_total", "type=\"request\"") > 0, body);
        }
    }
}
