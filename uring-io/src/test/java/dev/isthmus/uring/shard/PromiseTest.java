package dev.isthmus.uring.shard;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PromiseTest {

    @Test
    void shouldRunListenersInOrderOnCompletionAndAtOnceWhenDone() {
        Promise<Integer> p = new Promise<>();
        List<String> seen = new ArrayList<>();
        p.whenComplete((v, f) -> seen.add("a" + v));
        p.whenComplete((v, f) -> seen.add("b" + v));
        p.whenComplete((v, f) -> seen.add("c" + v));
        assertTrue(seen.isEmpty());
        assertTrue(p.complete(7));
        assertEquals(List.of("a7", "b7", "c7"), seen);
        p.whenComplete((v, f) -> seen.add("d" + v));
        assertEquals(List.of("a7", "b7", "c7", "d7"), seen);
        assertFalse(p.complete(8), "second completion is refused");
        assertFalse(p.fail(new RuntimeException()), "failure after success is refused");
        assertEquals(7, p.value());
    }

    @Test
    void shouldChainMapAndFlatMapAndPropagateFailures() {
        Promise<Integer> src = new Promise<>();
        Promise<Integer> inner = new Promise<>();
        Promise<String> out = src.map(v -> v * 2).flatMap(v -> inner.map(w -> v + w)).map(String::valueOf);
        src.complete(20);
        assertFalse(out.isDone());
        inner.complete(2);
        assertEquals("42", out.value());

        Promise<Integer> bad = new Promise<>();
        IllegalStateException boom = new IllegalStateException("boom");
        Promise<Integer> mapped = bad.map(v -> v + 1).flatMap(v -> Promise.completed(v + 1));
        bad.fail(boom);
        assertTrue(mapped.isFailed());
        assertSame(boom, mapped.failure());

        Promise<Integer> thrower = Promise.completed(1).map(v -> {
            throw new IllegalArgumentException("in map");
        });
        assertEquals("in map", thrower.failure().getMessage());
        assertThrows(IllegalStateException.class, thrower::value);
    }

    @Test
    void shouldRecoverFromFailure() {
        Promise<Integer> p = Promise.<Integer>failed(new RuntimeException("x")).recover(f -> -1);
        assertEquals(-1, p.value());
        assertEquals(5, Promise.completed(5).recover(f -> -1).value());
    }

    @Test
    void shouldJoinAllInListOrderAndFailFast() {
        List<Promise<Integer>> ps = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            ps.add(new Promise<>());
        }
        Promise<List<Integer>> all = Promise.whenAll(ps);
        for (int i = 4; i >= 0; i--) {
            assertFalse(all.isDone());
            ps.get(i).complete(i * 10);
        }
        assertEquals(List.of(0, 10, 20, 30, 40), all.value());

        Promise<Integer> a = new Promise<>();
        Promise<Integer> b = new Promise<>();
        Promise<List<Integer>> failing = Promise.whenAll(List.of(a, b));
        b.fail(new RuntimeException("b failed"));
        assertEquals("b failed", failing.failure().getMessage());
        a.complete(1);
        assertTrue(failing.isFailed());

        Promise<Void> settled = Promise.whenAllSettled(List.of(Promise.failed(new RuntimeException()), new Promise<>()));
        assertFalse(settled.isDone());
        assertTrue(Promise.whenAll(List.<Promise<Integer>>of()).isSucceeded());
    }

    @Test
    void shouldKeepRunningListenersWhenOneThrows() {
        Promise<Integer> p = new Promise<>();
        List<Integer> seen = new ArrayList<>();
        Thread.UncaughtExceptionHandler before = Thread.currentThread().getUncaughtExceptionHandler();
        List<Throwable> uncaught = new ArrayList<>();
        Thread.currentThread().setUncaughtExceptionHandler((t, e) -> uncaught.add(e));
        try {
            p.whenComplete((v, f) -> {
                throw new IllegalStateException("listener bug");
            });
            p.whenComplete((v, f) -> seen.add(v));
            p.complete(3);
        } finally {
            Thread.currentThread().setUncaughtExceptionHandler(before);
        }
        assertEquals(List.of(3), seen);
        assertEquals(1, uncaught.size());
    }

    @Test
    void shouldHandleLongChainsWithoutLosingOrder() {
        Promise<Integer> head = new Promise<>();
        Promise<Integer> p = head;
        for (int i = 0; i < 1000; i++) {
            p = p.map(v -> v + 1);
        }
        head.complete(0);
        assertEquals(1000, p.value());
    }
}
