package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.Uuid;

import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The incremental fetch sessions (KIP-227) of one shard, with Kafka's {@code FetchSessionCache} rules.
 *
 * <p>A consumer's first fetch (session id 0, epoch 0) is a full fetch listing every partition; its response
 * carries a new session id when the cache has room, and the session remembers each partition's fetch offset,
 * byte limit and the high watermark and log start offset last sent. Later fetches of the session (epoch 1, 2,
 * ...) list only the partitions whose fetch parameters changed, and {@code forgotten_topics_data} for those
 * dropped; the broker fetches every partition of the session and answers only those with new data, a changed
 * high watermark or log start offset, or an error. A full fetch naming a session closes it (and opens a new
 * one at epoch 0); epoch -1 (FINAL) closes it and fetches without a session.
 *
 * <h2>Where sessions live</h2>
 * On the shard of the connection that made them: a client sends all fetches of one session on one connection,
 * which stays on the shard that accepted it. A client that reconnects and lands on another shard gets
 * FETCH_SESSION_ID_NOT_FOUND and starts a new session with a full fetch, as Kafka clients do after any session
 * error. Session ids are random, unique per broker: each shard draws from its own slice of the positive ints
 * (as Kafka's cache shards do), so an id names the shard that made it.
 *
 * <h2>Bound and eviction (Kafka's rules)</h2>
 * At most {@code slots} sessions: the broker's {@code max.incremental.fetch.session.cache.slots} (Kafka's
 * default 1000) split evenly between the shards, as Kafka splits it between its cache shards. A new session
 * when the cache is full first evicts the least recently used session if it was unused for longer than
 * {@link #EVICTION_MS} ({@code min.incremental.fetch.session.eviction.ms}); otherwise it may evict the smallest
 * session (fewest partitions, then lowest id) among those older than {@link #EVICTION_MS}, and only when that
 * one has fewer partitions than the new one; otherwise no session is created (the response carries session id
 * 0 and the client goes on with full fetches). Kafka judges a session's age at its last use; this cache judges
 * it at eviction time, which evicts nothing Kafka would keep longer than one fetch interval. Creation is rare,
 * so eviction scans the sessions instead of keeping sorted indexes.
 *
 * <h2>Threads</h2>
 * Owner shard only: no locks, no volatile fields. Times are milliseconds passed in by the caller.
 */
final class FetchSessions {
    /** Kafka's {@code max.incremental.fetch.session.cache.slots} default (per broker). */
    static final int DEFAULT_SLOTS_PER_BROKER = 1000;
    /** Kafka's {@code min.incremental.fetch.session.eviction.ms} default. */
    static final long EVICTION_MS = 120_000;

    /** One partition of a session: what the client asked for last and what it was told last. */
    static final class Cached {
        /** The topic id (sessions of Fetch v13+), else null. */
        final Uuid topicId;
        /** The topic name (sessions of Fetch v12 and older), else null. */
        final String topicName;
        final int partition;
        long fetchOffset;
        int maxBytes;
        int currentLeaderEpoch;
        /** The high watermark last sent to the client, -1 after an error (so the partition is sent again). */
        long highWatermark = -1;
        /** The log start offset last sent to the client. */
        long logStartOffset = -1;
        /**
         * The partition object the last fetch found on the partition's shard, so the next one need not look it up:
         * kept here by the connection's shard, dereferenced only on the partition's shard, checked there before
         * use (a partition that stopped leading is looked up again).
         */
        Partition partitionHint;

        Cached(Uuid topicId, String topicName, int partition) {
            this.topicId = topicId;
            this.topicName = topicName;
            this.partition = partition;
        }

        Key key() {
            return new Key(topicId, topicName, partition);
        }
    }

    /** A session's partition key: (topic id, partition) in id sessions, (topic name, partition) otherwise. */
    record Key(Uuid topicId, String topicName, int partition) {
    }

    /** One session. Its partitions keep their order; a partition that returned data moves to the end (fairness). */
    static final class Session {
        final int id;
        /** The epoch the next fetch of this session must carry. */
        int epoch = 1;
        final boolean usesTopicIds;
        final long creationMs;
        long lastUsedMs;
        final LinkedHashMap<Key, Cached> partitions;

        Session(int id, boolean usesTopicIds, long nowMs, LinkedHashMap<Key, Cached> partitions) {
            this.id = id;
            this.usesTopicIds = usesTopicIds;
            this.creationMs = nowMs;
            this.lastUsedMs = nowMs;
            this.partitions = partitions;
        }

        int size() {
            return partitions.size();
        }

        /** Moves a partition that returned data behind the others, so the next fetches serve the others first. */
        void moveToEnd(Cached c) {
            Key k = c.key();
            if (partitions.remove(k) != null) {
                partitions.put(k, c);
            }
        }
    }

    /** Kafka's {@code FetchMetadata.nextEpoch}: 1 follows Integer.MAX_VALUE; 0 and -1 are never used again. */
    static int nextEpoch(int epoch) {
        return epoch < 0 ? epoch : epoch == Integer.MAX_VALUE ? 1 : epoch + 1;
    }

    private final Map<Integer, Session> sessions = new HashMap<>();
    private final int slots;
    private final int idBase;
    private final int idRange;
    private final SplittableRandom random;
    private long evictions;

    /**
     * @param slots      the most sessions this shard keeps (>= 0; 0 makes every fetch sessionless)
     * @param shard      this shard's id, which picks the slice of ids it draws from
     * @param shardCount shards of the broker
     * @param seed       seed of the id generator
     */
    FetchSessions(int slots, int shard, int shardCount, long seed) {
        if (slots < 0 || shard < 0 || shard >= shardCount) {
            throw new IllegalArgumentException("bad fetch session cache: " + slots + " slots, shard " + shard + " of "
                + shardCount);
        }
        this.slots = slots;
        this.idRange = Integer.MAX_VALUE / shardCount;
        this.idBase = shard * idRange;
        this.random = new SplittableRandom(seed);
    }

    /** The slots of each shard for a broker-wide bound of {@code brokerSlots} (at least one per shard). */
    static int slotsPerShard(int brokerSlots, int shards) {
        return Math.max(1, brokerSlots / shards);
    }

    /** The session with this id, or null. */
    Session get(int id) {
        return sessions.get(id);
    }

    /**
     * The response that told the client about session {@code id}'s partitions was not sent (a fetch over its client
     * quota is answered without them): forget what was sent, so the next incremental fetch lists every partition
     * again with its high watermark and log start offset (as Kafka's session, never updated on that path, does).
     */
    void unsent(int id) {
        Session s = sessions.get(id);
        if (s != null) {
            for (Cached c : s.partitions.values()) {
                c.highWatermark = -1;
                c.logStartOffset = -1;
            }
        }
    }

    /** Removes the session with this id; true when there was one. */
    boolean remove(int id) {
        return sessions.remove(id) != null;
    }

    /** A fetch used {@code s} at {@code nowMs}. */
    void touch(Session s, long nowMs) {
        s.lastUsedMs = nowMs;
    }

    /**
     * Creates a session of {@code partitions} when there is room, evicting as Kafka does when the cache is full;
     * returns it, or null when no session was created (then the fetch is answered with session id 0).
     */
    Session create(long nowMs, boolean usesTopicIds, LinkedHashMap<Key, Cached> partitions) {
        if (sessions.size() >= slots && !tryEvict(nowMs, partitions.size())) {
            return null;
        }
        int id;
        do {
            id = idBase + 1 + random.nextInt(idRange - 1);
        } while (sessions.containsKey(id));
        Session s = new Session(id, usesTopicIds, nowMs, partitions);
        sessions.put(id, s);
        return s;
    }

    /** Kafka's {@code FetchSessionCache.tryEvict} for a new, unprivileged session of {@code size} partitions. */
    private boolean tryEvict(long nowMs, int size) {
        if (sessions.isEmpty()) {
            return false;
        }
        Session lru = null;
        Session smallest = null;
        for (Session s : sessions.values()) {
            if (lru == null || s.lastUsedMs < lru.lastUsedMs || s.lastUsedMs == lru.lastUsedMs && s.id < lru.id) {
                lru = s;
            }
            if (nowMs - s.creationMs > EVICTION_MS && (smallest == null || s.size() < smallest.size()
                || s.size() == smallest.size() && s.id < smallest.id)) {
                smallest = s;
            }
        }
        Session victim;
        if (nowMs - lru.lastUsedMs > EVICTION_MS) {
            victim = lru;
        } else if (smallest != null && size > smallest.size()) {
            // Kafka compares (size, id) with the new session's id taken as 0: only a strictly larger one wins.
            victim = smallest;
        } else {
            return false;
        }
        sessions.remove(victim.id);
        evictions++;
        return true;
    }

    /** Sessions kept now. */
    int size() {
        return sessions.size();
    }

    /** Partitions over all sessions kept now. */
    long partitions() {
        long n = 0;
        for (Iterator<Session> it = sessions.values().iterator(); it.hasNext(); ) {
            n += it.next().size();
        }
        return n;
    }

    /** Sessions evicted so far to make room for new ones. */
    long evictions() {
        return evictions;
    }

    int slots() {
        return slots;
    }
}
