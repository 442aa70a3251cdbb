package dev.isthmus.log;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pool's sharing rules on their own: idle chunks lent and taken back, waiters served in order. */
class ChunkPoolTest {

    /** Records giveBack calls; holds chunks like an appender's tail. */
    static final class Holder implements ChunkPool.IdleHolder {
        final List<Integer> givenBack = new ArrayList<>();

        @Override
        public void giveBack(int id) {
            givenBack.add(id);
        }
    }

    @Test
    void shouldCountIdleChunksAsAvailableAndTakeTheOldestBackWhenNoneIsFree() {
        try (ChunkPool pool = ChunkPool.allocate(3, 4096)) {
            Holder a = new Holder();
            Holder b = new Holder();
            int x = pool.acquireUninitialized();
            int y = pool.acquireUninitialized();
            int z = pool.acquireUninitialized();
            assertEquals(0, pool.available());
            pool.markIdle(y, b);
            pool.markIdle(x, a);
            assertEquals(2, pool.available());
            assertEquals(0, pool.free());
            // No chunk is free: the least recently idled one (y, then x) is taken back from its holder.
            assertEquals(y, pool.acquireUninitialized());
            assertEquals(List.of(y), b.givenBack);
            assertEquals(1, pool.reclaimsTotal());
            // A holder that uses its idle chunk again takes it out of the idle list: nothing left to take.
            pool.unmarkIdle(x);
            assertEquals(-1, pool.acquireUninitialized());
            assertEquals(List.of(), a.givenBack);
            pool.release(z);
            assertEquals(z, pool.acquireUninitialized());
        }
    }

    @Test
    void shouldServeWaitersInOrderAndKeepOthersBehindThem() {
        try (ChunkPool pool = ChunkPool.allocate(4, 4096)) {
            int[] held = new int[4];
            for (int i = 0; i < 4; i++) {
                held[i] = pool.acquireUninitialized();
            }
            List<String> told = new ArrayList<>();
            ChunkPool.Waiter first = new ChunkPool.Waiter(() -> told.add("first"));
            ChunkPool.Waiter second = new ChunkPool.Waiter(() -> told.add("second"));
            ChunkPool.Waiter late = new ChunkPool.Waiter(() -> told.add("late"));
            assertFalse(pool.admit(first, 2));
            assertFalse(pool.admit(second, 1));
            assertEquals(2, pool.waiting());
            assertEquals(2, pool.waitsTotal());

            pool.release(held[0]);
            pool.wakeIfPending();
            assertEquals(List.of(), told, "one chunk back: not enough for the first, and the second stays behind it");
            // A newcomer wanting the one free chunk queues behind the others instead of taking it.
            assertFalse(pool.admit(late, 1));
            assertEquals(3, pool.waiting());

            pool.release(held[1]);
            pool.release(held[2]);
            pool.wakeIfPending();
            assertEquals(List.of("first", "second"), told, "three back: the first's two, then the second's one");
            assertTrue(pool.hasWaiters(), "reserved for the two told, until they retry");
            assertFalse(pool.admit(late, 1), "the third chunk is reserved for the second");
            assertTrue(pool.admit(first, 2));
            pool.acquireUninitialized();
            pool.acquireUninitialized();
            assertTrue(pool.admit(second, 1));
            pool.acquireUninitialized();
            assertEquals(1, pool.waiting());

            pool.release(held[3]);
            pool.wakeIfPending();
            assertEquals(List.of("first", "second", "late"), told);
            assertTrue(pool.admit(late, 1));
            assertFalse(pool.hasWaiters());
        }
    }

    @Test
    void shouldGiveUpAPlaceAndAReservationOnCancel() {
        try (ChunkPool pool = ChunkPool.allocate(2, 4096)) {
            int a = pool.acquireUninitialized();
            int b = pool.acquireUninitialized();
            List<String> told = new ArrayList<>();
            ChunkPool.Waiter closing = new ChunkPool.Waiter(() -> told.add("closing"));
            ChunkPool.Waiter other = new ChunkPool.Waiter(() -> told.add("other"));
            assertFalse(pool.admit(closing, 1));
            assertFalse(pool.admit(other, 1));
            pool.release(a);
            pool.wakeIfPending();
            assertEquals(List.of("closing"), told);
            pool.cancel(closing); // told, but its log closed instead of retrying
            assertFalse(closing.waiting());
            pool.wakeIfPending();
            assertEquals(List.of("closing", "other"), told, "the reservation went to the next in line");
            assertTrue(pool.admit(other, 1));
            pool.release(b);
            assertFalse(pool.hasWaiters());
            assertEquals(2, pool.available());
        }
    }

    @Test
    void shouldPutAWaiterWhoseNeedGrewBackAtTheHead() {
        try (ChunkPool pool = ChunkPool.allocate(3, 4096)) {
            int a = pool.acquireUninitialized();
            int b = pool.acquireUninitialized();
            int c = pool.acquireUninitialized();
            List<String> told = new ArrayList<>();
            ChunkPool.Waiter w = new ChunkPool.Waiter(() -> told.add("w"));
            ChunkPool.Waiter next = new ChunkPool.Waiter(() -> told.add("next"));
            assertFalse(pool.admit(w, 1));
            assertFalse(pool.admit(next, 1));
            pool.release(a);
            pool.wakeIfPending();
            assertEquals(List.of("w"), told);
            // Meanwhile its own idle tail was taken back: it now needs 2, only 1 is there; it stays first.
            assertFalse(pool.admit(w, 2));
            pool.release(b);
            pool.wakeIfPending();
            assertEquals(List.of("w", "w"), told, "the head is served before the waiter behind it");
            assertTrue(pool.admit(w, 2));
            pool.release(c);
            pool.wakeIfPending();
            assertEquals(List.of("w", "w", "next"), told);
        }
    }

    @Test
    void shouldNotWakeInsideAnAppend() {
        try (ChunkPool pool = ChunkPool.allocate(2, 4096)) {
            int a = pool.acquireUninitialized();
            pool.acquireUninitialized();
            List<String> told = new ArrayList<>();
            ChunkPool.Waiter w = new ChunkPool.Waiter(() -> told.add("w"));
            assertFalse(pool.admit(w, 1));
            pool.enter();
            pool.release(a);
            pool.wakeIfPending();
            assertEquals(List.of(), told, "a waiter's retry never runs inside another log's append or flush");
            pool.exit();
            pool.wakeIfPending();
            assertEquals(List.of("w"), told);
        }
    }

    @Test
    void shouldServeWaitersFromTheLoopBackstop() {
        try (ChunkPool pool = ChunkPool.allocate(2, 4096)) {
            int a = pool.acquireUninitialized();
            pool.acquireUninitialized();
            List<String> told = new ArrayList<>();
            ChunkPool.Waiter w = new ChunkPool.Waiter(() -> told.add("w"));
            assertFalse(pool.admit(w, 1));
            pool.enter();
            pool.release(a); // the wake-up this release asked for was due inside an append
            pool.exit();
            pool.checkWaiters(System.nanoTime());
            assertEquals(List.of("w"), told);
        }
    }
}
