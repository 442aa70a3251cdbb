package dev.isthmus.uring.shard;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TimerQueueTest {

    /** Random schedule/cancel/expire against a sorted-map model: same tasks, same order, same next deadline. */
    @Test
    void shouldMatchASortedModel() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("TimerQueueTest seed=" + seed);
        Random rnd = new Random(seed);
        TimerQueue q = new TimerQueue();
        TreeMap<Long, Long> model = new TreeMap<>(); // (deadline * 2^20 + id) -> id, ids unique
        List<Long> live = new ArrayList<>();
        java.util.HashMap<Long, Long> keyOf = new java.util.HashMap<>();
        long now = 0;
        for (int step = 0; step < 200_000; step++) {
            int op = rnd.nextInt(10);
            if (op < 5) {
                long deadline = now + rnd.nextInt(1000);
                long[] box = new long[1];
                long id = q.schedule(deadline, () -> box[0] = 1);
                long key = deadline * (1L << 24) + id;
                model.put(key, id);
                keyOf.put(id, key);
                live.add(id);
            } else if (op < 7 && !live.isEmpty()) {
                long id = live.remove(rnd.nextInt(live.size()));
                boolean inModel = model.remove(keyOf.get(id)) != null;
                assertEquals(inModel, q.cancel(id), "cancel " + id);
                assertFalse(q.cancel(id));
            } else {
                now += rnd.nextInt(50);
                while (!model.isEmpty() && model.firstKey() / (1L << 24) <= now) {
                    long expectedDeadline = model.firstKey() / (1L << 24);
                    assertEquals(expectedDeadline, q.nextDeadline());
                    assertTrue(q.pollExpired(now) != null);
                    // Same deadline ties may come in any order: remove one model entry with that deadline.
                    model.pollFirstEntry();
                }
                assertNull(q.pollExpired(now));
            }
            assertEquals(model.size(), q.size());
            assertEquals(model.isEmpty() ? Long.MAX_VALUE : model.firstKey() / (1L << 24), q.nextDeadline());
        }
    }
}
