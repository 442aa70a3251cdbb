package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.cluster.ClientQuotaAlteration;
import dev.isthmus.gateway.cluster.ClientQuotaEntity;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Map;
import java.util.SortedMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Client quota enforcement of one broker, with Kafka's semantics ({@code ClientQuotaManager},
 * {@code ClientRequestQuotaManager}, KIP-13/124/219): produce bytes, fetch bytes and request time are measured per
 * quota entity over sampled windows, and a request that takes its entity over the quota is answered with
 * {@code throttle_time_ms} = how long until the rate over the window is back at the quota, after which the
 * connection is not read for that long ({@link Connection}).
 *
 * <h2>Which quota applies (Kafka's order)</h2>
 * For each quota type separately (only entities that set that type's key count), the first of: user + client id,
 * user + default client id, user, default user + client id, default user + default client id, default user,
 * client id, default client id. The <em>sensor</em> a request is measured in is named by Kafka's metric tags for
 * that match: (user, client id) for the user + client-id forms, (user, "") for a user quota, ("", client id) for a
 * client-id quota or none. So a quota on {@code user=alice} is shared by all of alice's clients, a default user
 * quota is one quota per user, and a client-id quota is shared by every user of that client id. The quotas come
 * from the controller's replicated state ({@link dev.isthmus.gateway.cluster.ClusterState#quotas()}); shard 0
 * installs a new {@link Resolver} (immutable) whenever they change, and each connection re-resolves its entity
 * when it sees a new resolver or client id.
 *
 * <h2>Per broker, across shards (the choice)</h2>
 * Kafka's quotas are per broker. A client's connections land on any shard (the kernel spreads them), and one
 * connection lives on one shard, so splitting a quota into quota / shards per shard would cap a single-connection
 * producer at a fraction of its quota. Instead every sensor is shared by the shards of the broker: its window is an
 * array of one slot per sample, each one {@code long} packing the window number it belongs to (low
 * {@value #TAG_BITS} bits) and the amount recorded in it, updated with compare-and-set and read with plain
 * volatile reads: no lock, no cross-shard call, on any shard. A slot that holds an older window is reset by the
 * first record of the new window (one CAS). Concurrent records on different shards may interleave; each CAS applies
 * whole, so nothing recorded is lost and the rate any shard reads is at most one in-flight record stale.
 *
 * <h2>Measurement (Kafka's {@code Rate} over {@code SampledStat})</h2>
 * {@code quota.window.num} samples of {@code quota.window.size.seconds} each (the broker's settings; Kafka's
 * defaults 11 and 1 s). Windows are aligned to the monotonic clock. The rate is the sum of the live samples divided by the time since the oldest
 * live sample began, counted as at least samples - 1 windows, as Kafka's {@code Rate.windowSize} does so a
 * new client is not throttled by its first burst. Throttle time when the rate passes the quota:
 * {@code (rate - quota) / quota * window}, Kafka's {@code QuotaUtils.throttleTime}; for request time it is
 * bounded by one window, as Kafka bounds it. Produce counts the request's bytes when answered, Fetch the
 * response's bytes (a fetch is capped beforehand at what an empty window allows, {@link #fetchCapBytes}, and a
 * fetch that would pass the quota is answered without records, its bytes un-recorded, as Kafka does), request
 * time counts the time the request spent on its connection's shard (its handler's synchronous part and the
 * encoding of its response; work it handed to other shards is not counted).
 *
 * <h2>Bounds</h2>
 * A sensor per quota type and metric-tag pair; entities without a quota get one only while fewer than
 * {@link #MAX_UNLIMITED_SENSORS} exist (their bytes are then not itemised in the metrics, nothing else changes).
 * Creating a sensor beyond that bound first drops sensors unused for {@link #SENSOR_EXPIRY_NS} (Kafka expires
 * quota sensors after an hour). Sensor creation uses {@link ConcurrentHashMap#putIfAbsent}, which may take the map
 * bin's monitor for a moment, once per new entity; recording never does.
 *
 * <p>One instance per broker; every method may be called from any shard thread (and the metrics thread reads).
 */
final class ClientQuotas {
    /** Kafka's {@code quota.window.num} default. */
    static final int WINDOW_SAMPLES = 11;
    /** Kafka's {@code quota.window.size.seconds} default. */
    static final long WINDOW_NS = TimeUnit.SECONDS.toNanos(1);
    static final int MAX_UNLIMITED_SENSORS = 10_000;
    static final long SENSOR_EXPIRY_NS = TimeUnit.HOURS.toNanos(1);
    private static final int TAG_BITS = 20;
    private static final long TAG_MASK = (1L << TAG_BITS) - 1;
    /** The most one slot holds (44 bits: 16 TiB, or 4.8 hours of nanoseconds). */
    private static final long MAX_SLOT_VALUE = (1L << (64 - TAG_BITS)) - 1;

    /** The quota types, with Kafka's quota keys and metric type names. */
    enum Type {
        PRODUCE(ClientQuotaAlteration.PRODUCER_BYTE_RATE, "produce"),
        FETCH(ClientQuotaAlteration.CONSUMER_BYTE_RATE, "fetch"),
        REQUEST(ClientQuotaAlteration.REQUEST_PERCENTAGE, "request");

        final String key;
        final String label;

        Type(String key, String label) {
            this.key = key;
            this.label = label;
        }
    }

    private static final Type[] TYPES = Type.values();

    private volatile Resolver resolver = Resolver.EMPTY;
    @SuppressWarnings("unchecked")
    private final ConcurrentHashMap<Tags, Sensor>[] sensors = new ConcurrentHashMap[TYPES.length];
    /** Responses that carried a throttle time, per type (metrics). */
    private final AtomicLong[] throttled = new AtomicLong[TYPES.length];

    /** Samples per window ({@code quota.window.num}) and each sample's length. */
    final int samples;
    final long windowNs;

    /** Kafka's defaults: 11 samples of 1 s. */
    ClientQuotas() {
        this(WINDOW_SAMPLES, 1);
    }

    /**
     * {@code samples} samples ({@code quota.window.num}, at least 2: one is always being filled) of
     * {@code windowSeconds} each ({@code quota.window.size.seconds}, at least 1).
     */
    ClientQuotas(int samples, long windowSeconds) {
        if (samples < 2 || samples > 1000) {
            throw new IllegalArgumentException("quota.window.num must be 2 to 1000, got " + samples);
        }
        if (windowSeconds < 1 || windowSeconds > 3600) {
            throw new IllegalArgumentException("quota.window.size.seconds must be 1 to 3600, got " + windowSeconds);
        }
        this.samples = samples;
        this.windowNs = TimeUnit.SECONDS.toNanos(windowSeconds);
        for (int i = 0; i < TYPES.length; i++) {
            sensors[i] = new ConcurrentHashMap<>();
            throttled[i] = new AtomicLong();
        }
    }

    // ====================================================================================== configuration

    /** Shard 0: the controller's quotas changed (by identity); connections re-resolve at their next request. */
    void install(SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas) {
        if (resolver.quotas != quotas) {
            resolver = new Resolver(quotas, resolver.version + 1);
        }
    }

    /** Metric tags: user ("" when the quota is not per user) and client id ("" when not per client id). */
    record Tags(String user, String clientId) {
    }

    /** The quota of one type that applies to a (user, client id), and the sensor tags it is measured under. */
    record Match(Tags tags, double limit) {
        boolean limited() {
            return limit < Double.POSITIVE_INFINITY;
        }
    }

    /**
     * The configured quotas, immutable, resolved with Kafka's order ({@code DefaultQuotaCallback}). Built once per
     * change of the controller's quotas; read by any shard.
     */
    static final class Resolver {
        static final Resolver EMPTY = new Resolver(java.util.Collections.emptySortedMap(), 0);
        final SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas;
        final long version;

        Resolver(SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas, long version) {
            this.quotas = quotas;
            this.version = version;
        }

        private Double get(ClientQuotaEntity e, Type type) {
            Map<String, Double> m = quotas.get(e);
            return m == null ? null : m.get(type.key);
        }

        /** Kafka's precedence for {@code user} (the principal's name) and {@code clientId}, for one type. */
        Match resolve(String user, String clientId, Type type) {
            if (!quotas.isEmpty()) {
                Double q;
                Tags userClient = new Tags(user, clientId);
                if ((q = get(ClientQuotaEntity.userClientId(user, clientId), type)) != null
                    || (q = get(ClientQuotaEntity.userClientId(user, null), type)) != null) {
                    return new Match(userClient, q);
                }
                if ((q = get(ClientQuotaEntity.user(user), type)) != null) {
                    return new Match(new Tags(user, ""), q);
                }
                if ((q = get(ClientQuotaEntity.userClientId(null, clientId), type)) != null
                    || (q = get(ClientQuotaEntity.userClientId(null, null), type)) != null) {
                    return new Match(userClient, q);
                }
                if ((q = get(ClientQuotaEntity.user(null), type)) != null) {
                    return new Match(new Tags(user, ""), q);
                }
                if ((q = get(ClientQuotaEntity.clientId(clientId), type)) != null
                    || (q = get(ClientQuotaEntity.clientId(null), type)) != null) {
                    return new Match(new Tags("", clientId), q);
                }
            }
            return new Match(new Tags("", clientId), Double.POSITIVE_INFINITY);
        }
    }

    // ====================================================================================== per connection

    /**
     * What a connection's requests are measured in: the sensors and limits of its (user, client id) under one
     * resolver. Owned by the connection's shard; replaced when the resolver or the client id changes.
     */
    static final class Session {
        final Resolver resolver;
        final String user;
        final String clientId;
        final Sensor[] sensors = new Sensor[TYPES.length];
        final double[] limits = new double[TYPES.length];

        private Session(Resolver resolver, String user, String clientId) {
            this.resolver = resolver;
            this.user = user;
            this.clientId = clientId;
        }

        boolean limited(Type t) {
            return limits[t.ordinal()] < Double.POSITIVE_INFINITY;
        }
    }

    /** {@code cached} if it is still right for this user and client id, else a fresh session. */
    Session session(Session cached, String user, String clientId) {
        String client = clientId == null ? "" : clientId;
        Resolver r = resolver;
        if (cached != null && cached.resolver == r && cached.clientId.equals(client) && cached.user.equals(user)) {
            return cached;
        }
        Session s = new Session(r, user, client);
        for (Type t : TYPES) {
            Match m = r.resolve(user, client, t);
            s.limits[t.ordinal()] = m.limit();
            s.sensors[t.ordinal()] = sensor(t, m);
        }
        return s;
    }

    private Sensor sensor(Type t, Match m) {
        ConcurrentHashMap<Tags, Sensor> map = sensors[t.ordinal()];
        Sensor s = map.get(m.tags());
        if (s != null) {
            s.lastUsedNs = System.nanoTime();
            return s;
        }
        if (map.size() >= MAX_UNLIMITED_SENSORS) {
            long now = System.nanoTime();
            map.values().removeIf(x -> now - x.lastUsedNs > SENSOR_EXPIRY_NS);
            if (!m.limited() && map.size() >= MAX_UNLIMITED_SENSORS) {
                return null; // not itemised; nothing to enforce
            }
        }
        Sensor fresh = new Sensor(t, m.tags(), samples, windowNs);
        Sensor had = map.putIfAbsent(m.tags(), fresh);
        return had != null ? had : fresh;
    }

    /**
     * Records {@code amount} (bytes, or nanoseconds for {@link Type#REQUEST}) for {@code s}'s entity and returns the
     * throttle time in ms that the entity's quota asks for now, 0 when within it (or unlimited).
     */
    int record(Session s, Type t, long amount, long nowNs) {
        Sensor sensor = s.sensors[t.ordinal()];
        if (sensor == null) {
            return 0;
        }
        sensor.total.addAndGet(amount);
        sensor.lastUsedNs = nowNs;
        double limit = s.limits[t.ordinal()];
        if (limit == Double.POSITIVE_INFINITY) {
            return 0;
        }
        sensor.add(amount, nowNs);
        long ms = sensor.throttleMs(limit, nowNs);
        if (t == Type.REQUEST) {
            ms = Math.min(ms, TimeUnit.NANOSECONDS.toMillis(windowNs)); // Kafka bounds this one to a window
        }
        return (int) Math.min(Integer.MAX_VALUE, ms);
    }

    /** Takes back what {@link #record} added (a throttled fetch is answered without its records). */
    void unrecord(Session s, Type t, long amount, long nowNs) {
        Sensor sensor = s.sensors[t.ordinal()];
        if (sensor != null) {
            sensor.total.addAndGet(-amount);
            if (s.limited(t)) {
                sensor.add(-amount, nowNs);
            }
        }
    }

    /** Counts a response that carried {@code ms} of throttle time because of {@code t}'s quota. */
    void throttled(Session s, Type t, int ms) {
        throttled[t.ordinal()].incrementAndGet();
        Sensor sensor = s.sensors[t.ordinal()];
        if (sensor != null) {
            sensor.throttleMs.addAndGet(ms);
            sensor.throttledResponses.incrementAndGet();
        }
    }

    /**
     * The most a fetch of this session may return: what the consumer quota allows over an empty window (Kafka's
     * {@code getMaxValueInQuotaWindow}: quota x (samples - 1) x window), or {@code Integer.MAX_VALUE} without a quota.
     */
    int fetchCapBytes(Session s) {
        double limit = s.limits[Type.FETCH.ordinal()];
        if (limit == Double.POSITIVE_INFINITY) {
            return Integer.MAX_VALUE;
        }
        double cap = limit * (samples - 1) * windowNs / 1e9;
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, cap));
    }

    /** Any thread: every sensor of {@code t} (metrics). */
    Iterable<Sensor> sensors(Type t) {
        return sensors[t.ordinal()].values();
    }

    /** Any thread: responses throttled because of {@code t}'s quota. */
    long throttledResponses(Type t) {
        return throttled[t.ordinal()].get();
    }

    /** Any thread: the limit that applies to {@code tags} for {@code t} now, or infinity. */
    double limit(Type t, Tags tags) {
        return resolver.resolve(tags.user(), tags.clientId(), t).limit();
    }

    /**
     * Whether a response of {@code api} at {@code version} tells the client to throttle itself (KIP-219): Kafka's
     * {@code AbstractResponse.shouldClientThrottle}. Older versions are delayed by the broker instead.
     */
    static boolean clientThrottles(ApiKeys api, short version) {
        return switch (api) {
            case PRODUCE, METADATA -> version >= 6;
            case FETCH -> version >= 8;
            case LIST_OFFSETS, JOIN_GROUP, CREATE_TOPICS -> version >= 3;
            case OFFSET_COMMIT, OFFSET_FETCH -> version >= 4;
            case FIND_COORDINATOR, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS, API_VERSIONS,
                 DELETE_TOPICS, DESCRIBE_CONFIGS, OFFSET_FOR_LEADER_EPOCH -> version >= 2;
            case SASL_HANDSHAKE, SASL_AUTHENTICATE -> false;
            default -> api.id >= ApiKeys.DELETE_GROUPS.id || version >= 1; // APIs newer than KIP-219 always
        };
    }

    /**
     * A throttled fetch's answer (Kafka's {@code FetchContext.getThrottledResponse}): the same error and session id,
     * no partitions. The records {@code f} held are released.
     */
    static FetchResponseData throttledFetch(FetchResponseData f) {
        Broker.releaseSlices(f);
        FetchResponseData r = new FetchResponseData();
        r.errorCode = f.errorCode;
        r.sessionId = f.sessionId;
        return r;
    }

    private static final ClassValue<VarHandle> THROTTLE_FIELD = new ClassValue<>() {
        @Override
        protected VarHandle computeValue(Class<?> type) {
            try {
                return MethodHandles.publicLookup().findVarHandle(type, "throttleTimeMs", int.class);
            } catch (ReflectiveOperationException e) {
                return null; // a response without throttle_time_ms
            }
        }
    };

    /** Sets a response's {@code throttle_time_ms} (every generated response that has one: a public int field). */
    static void setThrottleTimeMs(ProtocolMessage body, int ms) {
        VarHandle h = THROTTLE_FIELD.get(body.getClass());
        if (h != null) {
            h.set(body, ms);
        }
    }

    /** Requests never counted against the request-time quota: SASL (before the principal is known), cluster actions. */
    static boolean requestQuotaExempt(ApiKeys api) {
        return api == ApiKeys.SASL_HANDSHAKE || api == ApiKeys.SASL_AUTHENTICATE || api == ApiKeys.WRITE_TXN_MARKERS;
    }

    // ====================================================================================== the sampled window

    /**
     * One entity's measurement of one quota type, shared by every shard. {@link #add} and the reads are lock-free
     * (see the class comment); the counters for the metrics are plain atomics.
     */
    static final class Sensor {
        final Type type;
        final Tags tags;
        /** Per slot: window number (low TAG_BITS bits) | amount << TAG_BITS. */
        private final AtomicLongArray slots;
        private final int samples;
        private final long windowNs;
        /** Everything recorded (bytes, or nanoseconds of request time), also while unlimited. */
        final AtomicLong total = new AtomicLong();
        final AtomicLong throttleMs = new AtomicLong();
        final AtomicLong throttledResponses = new AtomicLong();
        volatile long lastUsedNs = System.nanoTime();

        /** With Kafka's default windows (tests). */
        Sensor(Type type, Tags tags) {
            this(type, tags, WINDOW_SAMPLES, WINDOW_NS);
        }

        Sensor(Type type, Tags tags, int samples, long windowNs) {
            this.type = type;
            this.tags = tags;
            this.samples = samples;
            this.windowNs = windowNs;
            this.slots = new AtomicLongArray(samples);
            long expired = (Math.floorDiv(System.nanoTime(), windowNs) - samples) & TAG_MASK;
            for (int i = 0; i < samples; i++) {
                slots.set(i, expired); // empty, in a window that has passed
            }
        }

        void add(long amount, long nowNs) {
            long window = Math.floorDiv(nowNs, windowNs);
            int slot = (int) Math.floorMod(window, (long) samples);
            long tag = window & TAG_MASK;
            while (true) {
                long cur = slots.get(slot);
                long value = (cur & TAG_MASK) == tag ? cur >>> TAG_BITS : 0;
                if (amount < 0 && (cur & TAG_MASK) != tag) {
                    return; // the window it was recorded in has passed: nothing to take back
                }
                long next = Math.max(0, Math.min(MAX_SLOT_VALUE, value + amount));
                if (slots.compareAndSet(slot, cur, next << TAG_BITS | tag)) {
                    return;
                }
            }
        }

        /** The amount in the live samples and the time they span, as Kafka's {@code Rate.windowSize} counts it. */
        private long[] window(long nowNs) {
            long window = Math.floorDiv(nowNs, windowNs);
            long total = 0;
            long oldest = window;
            for (int i = 0; i < samples; i++) {
                long cur = slots.get(i);
                long age = (window - (cur & TAG_MASK)) & TAG_MASK;
                if (age < samples) {
                    total += cur >>> TAG_BITS;
                    oldest = Math.min(oldest, window - age);
                }
            }
            long elapsedNs = nowNs - oldest * windowNs;
            long full = elapsedNs / windowNs;
            if (full < samples - 1) {
                elapsedNs += (samples - 1 - full) * windowNs;
            }
            return new long[] {total, Math.max(elapsedNs, 1)};
        }

        /** The rate now: bytes per second, or for request time the percentage of one thread's time. */
        double rate(long nowNs) {
            long[] w = window(nowNs);
            double perSecond = w[0] * 1e9 / w[1];
            return type == Type.REQUEST ? perSecond / 1e9 * 100 : perSecond;
        }

        /** Kafka's {@code QuotaUtils.throttleTime}: how long until the rate is back at {@code limit}; 0 within it. */
        long throttleMs(double limit, long nowNs) {
            long[] w = window(nowNs);
            double perSecond = w[0] * 1e9 / w[1];
            double rate = type == Type.REQUEST ? perSecond / 1e9 * 100 : perSecond;
            if (rate <= limit) {
                return 0;
            }
            return Math.round((rate - limit) / limit * (w[1] / 1e6));
        }
    }
}
