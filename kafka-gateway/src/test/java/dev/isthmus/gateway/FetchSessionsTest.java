package dev.isthmus.gateway;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The session cache's bound and Kafka's eviction rules, stepped with explicit times. */
class FetchSessionsTest {
    private static LinkedHashMap<FetchSessions.Key, FetchSessions.Cached> partitions(int n) {
        LinkedHashMap<FetchSessions.Key, FetchSessions.Cached> m = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            FetchSessions.Cached c = new FetchSessions.Cached(null, "t", i);
            m.put(c.key(), c);
        }
        return m;
    }

    @Test
    void shouldCreateNoSessionWhenFullAndNoneIsStaleOrSmallerAndOldEnough() {
        FetchSessions cache = new FetchSessions(2, 0, 1, 1);
        assertNotNull(cache.create(0, false, partitions(3)));
        assertNotNull(cache.create(0, false, partitions(5)));
        assertNull(cache.create(1_000, false, partitions(100)), "both sessions are young and in use");
        assertEquals(2, cache.size());
        assertEquals(0, cache.evictions());
    }

    @Test
    void shouldEvictTheSmallestOldSessionForALargerOne() {
        FetchSessions cache = new FetchSessions(2, 0, 1, 1);
        FetchSessions.Session small = cache.create(0, false, partitions(3));
        FetchSessions.Session large = cache.create(0, false, partitions(5));
        cache.touch(small, 125_000);
        cache.touch(large, 125_000);
        // Not stale (used 5 s ago), but both are older than the eviction time: the smaller one goes.
        FetchSessions.Session bigger = cache.create(130_000, false, partitions(4));
        assertNotNull(bigger);
        assertNull(cache.get(small.id));
        assertNotNull(cache.get(large.id));
        // A new session no larger than the smallest evictable one does not evict it.
        assertNull(cache.create(130_001, false, partitions(5)), "5 partitions do not beat 5");
        assertEquals(1, cache.evictions());
    }

    @Test
    void shouldEvictTheLeastRecentlyUsedSessionOnceStale() {
        FetchSessions cache = new FetchSessions(2, 0, 1, 1);
        FetchSessions.Session a = cache.create(0, false, partitions(50));
        FetchSessions.Session b = cache.create(0, false, partitions(50));
        cache.touch(a, 100_000);
        cache.touch(b, 10_000);
        // b was last used 120.001 s ago: stale, evicted even for a session of one partition.
        FetchSessions.Session c = cache.create(130_001, false, partitions(1));
        assertNotNull(c);
        assertNull(cache.get(b.id));
        assertNotNull(cache.get(a.id));
    }

    @Test
    void shouldNeverCreateWithNoSlots() {
        FetchSessions cache = new FetchSessions(0, 0, 1, 1);
        assertNull(cache.create(0, false, partitions(1)));
    }

    @Test
    void shouldDrawUniqueNonZeroIdsFromTheShardsOwnSlice() {
        int shards = 4;
        for (int shard = 0; shard < shards; shard++) {
            FetchSessions cache = new FetchSessions(500, shard, shards, 7);
            int range = Integer.MAX_VALUE / shards;
            Set<Integer> ids = new HashSet<>();
            for (int i = 0; i < 500; i++) {
                FetchSessions.Session s = cache.create(0, true, partitions(1));
                assertTrue(s.id > shard * range && s.id < (shard + 1) * range, "id " + s.id + " of shard " + shard);
                assertTrue(ids.add(s.id));
                assertEquals(1, s.epoch, "a new session's next fetch carries epoch 1");
            }
        }
    }

    @Test
    void shouldWrapTheEpochToOneAfterTheLargest() {
        assertEquals(2, FetchSessions.nextEpoch(1));
        assertEquals(1, FetchSessions.nextEpoch(Integer.MAX_VALUE));
        assertEquals(-1, FetchSessions.nextEpoch(-1));
    }

    @Test
    void shouldSplitTheBrokersSlotsBetweenShards() {
        assertEquals(1000, FetchSessions.slotsPerShard(1000, 1));
        assertEquals(250, FetchSessions.slotsPerShard(1000, 4));
        assertEquals(1, FetchSessions.slotsPerShard(1000, 2000));
    }

    @Test
    void shouldMoveAPartitionThatReturnedDataToTheEnd() {
        FetchSessions cache = new FetchSessions(1, 0, 1, 1);
        FetchSessions.Session s = cache.create(0, false, partitions(3));
        FetchSessions.Cached first = s.partitions.values().iterator().next();
        s.moveToEnd(first);
        assertEquals(java.util.List.of(1, 2, 0), s.partitions.values().stream().map(c -> c.partition).toList());
    }

    @Test
    void shouldSendEveryPartitionAgainAfterAResponseThatWasNotSent() {
        FetchSessions cache = new FetchSessions(2, 0, 1, 1);
        FetchSessions.Session s = cache.create(0, false, partitions(3));
        for (FetchSessions.Cached c : s.partitions.values()) {
            c.highWatermark = 10;
            c.logStartOffset = 2;
        }
        cache.unsent(s.id);
        for (FetchSessions.Cached c : s.partitions.values()) {
            assertEquals(-1, c.highWatermark, "a throttled fetch's partitions are sent again");
            assertEquals(-1, c.logStartOffset);
        }
        cache.unsent(12345); // an unknown session: nothing to do
    }
}
