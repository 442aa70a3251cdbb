package dev.isthmus.uring.shard;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeoutException;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * A single-threaded promise: the asynchronous result type of the shard runtime (Seastar's future/promise
 * folded into one object, as in Netty's {@code Promise}).
 *
 * <h2>Threading</h2>
 * A promise belongs to one shard: it is created, completed and listened to on that shard's thread only, so it
 * has no volatile fields, no locks and no CAS. Results produced on another shard reach it through
 * {@link Shard#submitTo}, which completes the caller's promise back on the caller's shard. Code on non-shard
 * threads uses {@link ShardGroup#call} (a {@link java.util.concurrent.CompletableFuture}) instead.
 *
 * <h2>Continuations</h2>
 * A listener added to a completed promise runs at once; otherwise it runs inside {@link #complete} or
 * {@link #fail}, in the order listeners were added. The first listener is held in a field, so the common
 * chain (one continuation per stage) allocates one promise and one lambda per stage and no list. A listener
 * that throws is a bug; the throwable is reported to the shard's uncaught-exception handler (when on a shard)
 * and the remaining listeners still run.
 *
 * <p>There is deliberately no blocking {@code get()}: blocking on a shard thread is a bug.
 *
 * @param <T> the value type
 */
public final class Promise<T> {

    /** Receives the outcome: exactly one of {@code value} (possibly null) or {@code failure} is meaningful. */
    @FunctionalInterface
    public interface Listener<T> {
        void onComplete(T value, Throwable failure);
    }

    private static final byte PENDING = 0;
    private static final byte SUCCEEDED = 1;
    private static final byte FAILED = 2;

    private byte state = PENDING;
    private T value;
    private Throwable failure;
    private Listener<? super T> first;
    private ArrayList<Listener<? super T>> more;

    public Promise() {
    }

    public static <T> Promise<T> completed(T value) {
        Promise<T> p = new Promise<>();
        p.complete(value);
        return p;
    }

    public static <T> Promise<T> failed(Throwable failure) {
        Promise<T> p = new Promise<>();
        p.fail(failure);
        return p;
    }

    /** Completes with {@code value}; returns false (and changes nothing) if already complete. */
    public boolean complete(T value) {
        if (state != PENDING) {
            return false;
        }
        this.value = value;
        state = SUCCEEDED;
        fire();
        return true;
    }

    /** Fails with {@code failure}; returns false (and changes nothing) if already complete. */
    public boolean fail(Throwable failure) {
        if (failure == null) {
            throw new NullPointerException("failure");
        }
        if (state != PENDING) {
            return false;
        }
        this.failure = failure;
        state = FAILED;
        fire();
        return true;
    }

    public boolean isDone() {
        return state != PENDING;
    }

    public boolean isSucceeded() {
        return state == SUCCEEDED;
    }

    public boolean isFailed() {
        return state == FAILED;
    }

    /** The value of a succeeded promise. */
    public T value() {
        if (state != SUCCEEDED) {
            throw new IllegalStateException(state == PENDING ? "promise is still pending" : "promise failed", failure);
        }
        return value;
    }

    /** The failure of a failed promise, or null. */
    public Throwable failure() {
        return failure;
    }

    /** Adds a listener: runs now if complete, otherwise on completion. Returns this promise. */
    public Promise<T> whenComplete(Listener<? super T> listener) {
        if (state != PENDING) {
            invoke(listener);
        } else if (first == null) {
            first = listener;
        } else {
            if (more == null) {
                more = new ArrayList<>(2);
            }
            more.add(listener);
        }
        return this;
    }

    /** A promise of {@code fn(value)}; failures (including one thrown by {@code fn}) pass through. */
    public <U> Promise<U> map(Function<? super T, ? extends U> fn) {
        Promise<U> next = new Promise<>();
        whenComplete((v, f) -> {
            if (f != null) {
                next.fail(f);
                return;
            }
            U u;
            try {
                u = fn.apply(v);
            } catch (Throwable t) {
                next.fail(t);
                return;
            }
            next.complete(u);
        });
        return next;
    }

    /** A promise of the promise {@code fn(value)} returns; failures pass through. */
    public <U> Promise<U> flatMap(Function<? super T, Promise<U>> fn) {
        Promise<U> next = new Promise<>();
        whenComplete((v, f) -> {
            if (f != null) {
                next.fail(f);
                return;
            }
            Promise<U> inner;
            try {
                inner = fn.apply(v);
            } catch (Throwable t) {
                next.fail(t);
                return;
            }
            inner.whenComplete(next::completeWith);
        });
        return next;
    }

    /** A promise that replaces a failure by {@code fn(failure)}; values pass through. */
    public Promise<T> recover(Function<? super Throwable, ? extends T> fn) {
        Promise<T> next = new Promise<>();
        whenComplete((v, f) -> {
            if (f == null) {
                next.complete(v);
                return;
            }
            T r;
            try {
                r = fn.apply(f);
            } catch (Throwable t) {
                next.fail(t);
                return;
            }
            next.complete(r);
        });
        return next;
    }

    /**
     * A promise of {@code fn(value, failure)}, called with whichever outcome this promise has (exactly one of the
     * two meaningful, as for a {@link Listener}): {@link #map} and {@link #recover} in one stage, so a data path that
     * needs both allocates one promise and one lambda instead of two of each. A throw from {@code fn} fails it.
     */
    public <U> Promise<U> handle(java.util.function.BiFunction<? super T, Throwable, ? extends U> fn) {
        Promise<U> next = new Promise<>();
        whenComplete((v, f) -> {
            U u;
            try {
                u = fn.apply(v, f);
            } catch (Throwable t) {
                next.fail(t);
                return;
            }
            next.complete(u);
        });
        return next;
    }

    /** Completes this promise the way {@code value}/{@code failure} say (a {@link Listener} shape). */
    public void completeWith(T value, Throwable failure) {
        if (failure != null) {
            fail(failure);
        } else {
            complete(value);
        }
    }

    /**
     * A promise that follows this one but fails with {@link TimeoutException} if this one is not complete
     * within {@code timeoutNs} on {@code shard}'s timers. The timer is cancelled when this completes.
     */
    public Promise<T> withTimeout(Shard shard, long timeoutNs) {
        if (state != PENDING) {
            return this;
        }
        Promise<T> next = new Promise<>();
        long timer = shard.schedule(timeoutNs, () -> next.fail(new TimeoutException("timed out after "
            + timeoutNs / 1_000_000.0 + " ms")));
        whenComplete((v, f) -> {
            shard.cancelTimer(timer);
            next.completeWith(v, f);
        });
        return next;
    }

    /**
     * A promise of every value, in order, once all succeeded; it fails with the first failure (in list order
     * of completion) as soon as one fails.
     */
    public static <T> Promise<List<T>> whenAll(List<Promise<T>> promises) {
        Promise<List<T>> all = new Promise<>();
        int n = promises.size();
        if (n == 0) {
            all.complete(List.of());
            return all;
        }
        Object[] values = new Object[n];
        int[] remaining = {n};
        for (int i = 0; i < n; i++) {
            int index = i;
            promises.get(i).whenComplete((v, f) -> {
                if (f != null) {
                    all.fail(f);
                    return;
                }
                values[index] = v;
                if (--remaining[0] == 0 && !all.isDone()) {
                    @SuppressWarnings("unchecked")
                    List<T> list = (List<T>) java.util.Arrays.asList(values);
                    all.complete(list);
                }
            });
        }
        return all;
    }

    /** Completes (with null) when every promise is complete, whatever the outcomes; never fails. */
    public static Promise<Void> whenAllSettled(List<? extends Promise<?>> promises) {
        Promise<Void> all = new Promise<>();
        int[] remaining = {promises.size()};
        if (remaining[0] == 0) {
            all.complete(null);
            return all;
        }
        BiConsumer<Object, Throwable> done = (v, f) -> {
            if (--remaining[0] == 0) {
                all.complete(null);
            }
        };
        for (Promise<?> p : promises) {
            p.whenComplete(done::accept);
        }
        return all;
    }

    private void fire() {
        Listener<? super T> l = first;
        first = null;
        if (l != null) {
            invoke(l);
        }
        ArrayList<Listener<? super T>> rest = more;
        more = null;
        if (rest != null) {
            for (int i = 0; i < rest.size(); i++) {
                invoke(rest.get(i));
            }
        }
    }

    private void invoke(Listener<? super T> l) {
        try {
            l.onComplete(value, failure);
        } catch (Throwable t) {
            Shard s = Shard.currentOrNull();
            if (s != null) {
                s.reportUncaught(t);
            } else {
                Thread.currentThread().getUncaughtExceptionHandler().uncaughtException(Thread.currentThread(), t);
            }
        }
    }

    @Override
    public String toString() {
        return switch (state) {
            case PENDING -> "Promise[pending]";
            case SUCCEEDED -> "Promise[" + value + "]";
            default -> "Promise[failed: " + failure + "]";
        };
    }
}
