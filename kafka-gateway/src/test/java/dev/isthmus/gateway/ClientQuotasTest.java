package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import dev.isthmus.gateway.cluster.ClientQuotaEntity;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kafka's quota resolution order, metric tags and throttle-time arithmetic, with explicit clocks. */
class ClientQuotasTest {
    private static final String P = "producer_byte_rate";
    private static final long SECOND = 1_000_000_000L;

    private static SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas(Object... entityValue) {
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> m = new TreeMap<>();
        for (int i = 0; i < entityValue.length; i += 2) {
            m.put((ClientQuotaEntity) entityValue[i], new TreeMap<>(Map.of(P, (Double) entityValue[i + 1])));
        }
        return m;
    }

    @Test
    void shouldResolveQuotasInKafkasOrderWithKafkasMetricTags() {
        // Every level set, each with its own value: removing the winner each time walks Kafka's order.
        List<ClientQuotaEntity> order = List.of(
            ClientQuotaEntity.userClientId("alice", "c1"),
            ClientQuotaEntity.userClientId("alice", null),
            ClientQuotaEntity.user("alice"),
            ClientQuotaEntity.userClientId(null, "c1"),
            ClientQuotaEntity.userClientId(null, null),
            ClientQuotaEntity.user(null),
            ClientQuotaEntity.clientId("c1"),
            ClientQuotaEntity.clientId(null));
        List<ClientQuotas.Tags> tags = List.of(
            new ClientQuotas.Tags("alice", "c1"), new ClientQuotas.Tags("alice", "c1"), new ClientQuotas.Tags("alice", ""),
            new ClientQuotas.Tags("alice", "c1"), new ClientQuotas.Tags("alice", "c1"), new ClientQuotas.Tags("alice", ""),
            new ClientQuotas.Tags("", "c1"), new ClientQuotas.Tags("", "c1"));
        for (int first = 0; first < order.size(); first++) {
            TreeMap<ClientQuotaEntity, SortedMap<String, Double>> q = new TreeMap<>();
            for (int i = first; i < order.size(); i++) {
                q.put(order.get(i), new TreeMap<>(Map.of(P, 1000.0 + i)));
            }
            ClientQuotas.Match m = new ClientQuotas.Resolver(q, 1).resolve("alice", "c1", ClientQuotas.Type.PRODUCE);
            assertEquals(1000.0 + first, m.limit(), "level " + (first + 1) + ": " + order.get(first));
            assertEquals(tags.get(first), m.tags(), "level " + (first + 1));
        }
        ClientQuotas.Match none = new ClientQuotas.Resolver(quotas(ClientQuotaEntity.user("bob"), 5.0), 1)
            .resolve("alice", "c1", ClientQuotas.Type.PRODUCE);
        assertFalse(none.limited());
        assertEquals(new ClientQuotas.Tags("", "c1"), none.tags());
    }

    @Test
    void shouldResolveEachQuotaTypeFromTheEntitiesThatSetIt() {
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> q = new TreeMap<>();
        q.put(ClientQuotaEntity.user("alice"), new TreeMap<>(Map.of("consumer_byte_rate", 10.0)));
        q.put(ClientQuotaEntity.clientId("c1"), new TreeMap<>(Map.of(P, 20.0)));
        ClientQuotas.Resolver r = new ClientQuotas.Resolver(q, 1);
        assertEquals(20.0, r.resolve("alice", "c1", ClientQuotas.Type.PRODUCE).limit(),
            "the user entity does not set the produce quota, so the client id's applies");
        assertEquals(10.0, r.resolve("alice", "c1", ClientQuotas.Type.FETCH).limit());
        assertFalse(r.resolve("alice", "c1", ClientQuotas.Type.REQUEST).limited());
    }

    @Test
    void shouldThrottleByKafkasFormulaOverTheSampledWindow() {
        ClientQuotas.Sensor s = new ClientQuotas.Sensor(ClientQuotas.Type.PRODUCE, new ClientQuotas.Tags("", "c"));
        long t0 = 1_000 * SECOND; // a window boundary
        // A new sensor's window counts as at least 10 windows (samples - 1): 10 MB in its first second is 1 MB/s.
        s.add(10_000_000, t0);
        assertEquals(0, s.throttleMs(1_000_000, t0), "exactly at the quota");
        s.add(1_000_000, t0 + SECOND / 2);
        // 11 MB over 0.5 s counted as 10.5 s (Kafka adds the 10 windows it lacks): (11 / 10.5 - 1) x 10.5 s = 500 ms.
        assertEquals(500, s.throttleMs(1_000_000, t0 + SECOND / 2));
        assertEquals(11_000_000 / 10.5, s.rate(t0 + SECOND / 2), 1e-6);
        // After 11 windows the first sample has expired.
        assertEquals(0, s.throttleMs(1_000_000, t0 + 11 * SECOND + 1));
        assertEquals(0, s.rate(t0 + 12 * SECOND), 1e-9);
        // Taking back what was added in the current window.
        ClientQuotas.Sensor f = new ClientQuotas.Sensor(ClientQuotas.Type.FETCH, new ClientQuotas.Tags("", "c"));
        f.add(20_000_000, t0);
        assertTrue(f.throttleMs(1_000_000, t0) > 0);
        f.add(-20_000_000, t0);
        assertEquals(0, f.throttleMs(1_000_000, t0));
    }

    @Test
    void shouldMeasureOverTheConfiguredWindows() {
        // quota.window.num = 4 samples of quota.window.size.seconds = 2: a new sensor counts as 3 x 2 s = 6 s.
        ClientQuotas q = new ClientQuotas(4, 2);
        ClientQuotas.Sensor s = new ClientQuotas.Sensor(ClientQuotas.Type.PRODUCE, new ClientQuotas.Tags("", "c"),
            q.samples, q.windowNs);
        long t0 = 1_000 * SECOND; // a window boundary (of 2 s too)
        s.add(6_000_000, t0);
        assertEquals(1_000_000, s.rate(t0), 1e-6, "6 MB over the 6 s a new sensor counts");
        assertEquals(0, s.throttleMs(1_000_000, t0));
        s.add(1_500_000, t0 + SECOND);
        // 7.5 MB over the 1 s since the oldest sample began plus the 3 windows a new sensor lacks: (7.5 / 7 - 1) x 7 s.
        assertEquals(500, s.throttleMs(1_000_000, t0 + SECOND));
        assertEquals(0, s.rate(t0 + 8 * SECOND + 1), 1e-9, "4 samples of 2 s later, both have expired");
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> fetch = new TreeMap<>();
        fetch.put(ClientQuotaEntity.clientId(null), new TreeMap<>(Map.of("consumer_byte_rate", 1000.0)));
        q.install(fetch);
        assertEquals(6_000, q.fetchCapBytes(q.session(null, "u", "c")), "quota x (samples - 1) x window");
        assertThrows(IllegalArgumentException.class, () -> new ClientQuotas(1, 1));
        assertThrows(IllegalArgumentException.class, () -> new ClientQuotas(11, 0));
        BrokerConfig c = Main.parse(new String[] {"--quota.window.num", "5", "--quota.window.size.seconds", "3"});
        assertEquals(5, c.quotaWindowSamples());
        assertEquals(3, c.quotaWindowSeconds());
        assertEquals(11, Main.parse(new String[0]).quotaWindowSamples(), "Kafka's default");
        assertEquals("quota.window.num must be 2 to 1000, got 1", assertThrows(IllegalArgumentException.class,
            () -> Main.parse(new String[] {"--quota.window.num", "1"})).getMessage());
    }

    @Test
    void shouldMeasureRequestTimeAsAPercentageOfOneThread() {
        ClientQuotas.Sensor s = new ClientQuotas.Sensor(ClientQuotas.Type.REQUEST, new ClientQuotas.Tags("u", ""));
        long t0 = 2_000 * SECOND;
        s.add(SECOND, t0); // one second of shard time within a 10 s window: 10 %
        assertEquals(10.0, s.rate(t0), 1e-9);
        assertEquals(0, s.throttleMs(10.0, t0));
        assertEquals(10_000, s.throttleMs(5.0, t0), "(10 - 5) / 5 x 10 s");
    }

    @Test
    void shouldShareOneSensorPerEntityAcrossSessionsAndCapFetches() {
        ClientQuotas q = new ClientQuotas();
        q.install(quotas(ClientQuotaEntity.user("alice"), 1_048_576.0));
        ClientQuotas.Session a = q.session(null, "alice", "c1");
        ClientQuotas.Session b = q.session(null, "alice", "c2");
        assertSame(a.sensors[ClientQuotas.Type.PRODUCE.ordinal()], b.sensors[ClientQuotas.Type.PRODUCE.ordinal()],
            "a user quota is shared by the user's clients");
        assertSame(a, q.session(a, "alice", "c1"), "a session is kept while nothing changed");
        assertNotSame(a, q.session(a, "alice", "c9"), "a new client id resolves again");
        assertEquals(Integer.MAX_VALUE, q.fetchCapBytes(a), "no consumer quota: no cap");
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> fetch = new TreeMap<>();
        fetch.put(ClientQuotaEntity.clientId(null), new TreeMap<>(Map.of("consumer_byte_rate", 1000.0)));
        q.install(fetch);
        ClientQuotas.Session c = q.session(a, "alice", "c1");
        assertNotSame(a, c, "new quotas: resolved again");
        assertEquals(10_000, q.fetchCapBytes(c), "quota x (samples - 1) x window");
        long now = System.nanoTime();
        int ms = q.record(c, ClientQuotas.Type.FETCH, 30_000, now);
        assertTrue(ms > 0, "30 KB against 1 KB/s");
        q.throttled(c, ClientQuotas.Type.FETCH, ms);
        ClientQuotas.Sensor sensor = c.sensors[ClientQuotas.Type.FETCH.ordinal()];
        assertEquals(new ClientQuotas.Tags("", "c1"), sensor.tags);
        assertEquals(30_000, sensor.total.get());
        assertEquals(ms, sensor.throttleMs.get());
        assertEquals(1, q.throttledResponses(ClientQuotas.Type.FETCH));
    }

    @Test
    void shouldSetThrottleTimeOnResponsesAndEmptyAThrottledFetch() {
        ProduceResponseData p = new ProduceResponseData();
        ClientQuotas.setThrottleTimeMs(p, 123);
        assertEquals(123, p.throttleTimeMs);
        FetchResponseData f = new FetchResponseData();
        f.sessionId = 77;
        f.responses.add(new FetchResponseData.FetchableTopicResponse());
        FetchResponseData t = ClientQuotas.throttledFetch(f);
        assertEquals(77, t.sessionId);
        assertTrue(t.responses.isEmpty());
        assertTrue(ClientQuotas.clientThrottles(ApiKeys.PRODUCE, (short) 6));
        assertFalse(ClientQuotas.clientThrottles(ApiKeys.PRODUCE, (short) 5));
        assertTrue(ClientQuotas.clientThrottles(ApiKeys.FETCH, (short) 8));
        assertFalse(ClientQuotas.clientThrottles(ApiKeys.FETCH, (short) 7));
        assertTrue(ClientQuotas.clientThrottles(ApiKeys.DESCRIBE_CLIENT_QUOTAS, (short) 0));
    }
}
