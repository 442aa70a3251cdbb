package dev.isthmus.bench;

import dev.isthmus.log.ZeroedSegments;
import dev.isthmus.uring.IoEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.PriorityQueue;

/**
 * A stock of zeroed 1 GiB segment files made before a measurement, for benchmarks whose logs should write over
 * laid-out blocks (the layout fio measures over) instead of freshly fallocated space. The stock is installed on
 * the engine with a policy that calls every log busy, so a log opened on that engine rolls into a zeroed file
 * after its first append. Made entirely in {@link #make}: no refill runs while anything measures.
 */
final class ZeroedStock implements AutoCloseable {

    private record Due(long atNs, Runnable task) {
    }

    private final IoEngine engine;
    private final ZeroedSegments stock;

    private ZeroedStock(IoEngine engine, ZeroedSegments stock) {
        this.engine = engine;
        this.stock = stock;
    }

    /**
     * Makes {@code gib} zeroed 1 GiB files under {@code where} on {@code engine} (the stock must exist before the
     * log opens) and waits until they are all written and synced. {@code zeros} is an aligned zero-filled buffer.
     */
    static ZeroedStock make(IoEngine engine, Path where, int gib, MemorySegment zeros) throws IOException {
        PriorityQueue<Due> timers = new PriorityQueue<>(Comparator.comparingLong(Due::atNs));
        ZeroedSegments.Timer timer = (delayNs, task) -> timers.add(new Due(System.nanoTime() + delayNs, task));
        ZeroedSegments stock = ZeroedSegments.create(engine, where, gib, 1L << 30, zeros, timer,
            new ZeroedSegments.Policy(1, 0, 0));
        stock.readyFor(1L << 30);
        while (stock.ready() < gib) {
            if (stock.broken() != null) {
                throw new IOException("making zeroed segments failed: " + stock.broken());
            }
            while (!timers.isEmpty() && timers.peek().atNs() <= System.nanoTime()) {
                timers.poll().task().run();
            }
            engine.submitAndWait(100_000L);
        }
        return new ZeroedStock(engine, stock);
    }

    /** The stock, for the log manager the benchmark opens its log through (explicit wiring: logs get no stock otherwise). */
    ZeroedSegments segments() {
        return stock;
    }

    /** Closes the stock (files not taken stay on disk for the caller to delete) and waits until it is idle. */
    @Override
    public void close() {
        stock.close();
        while (!stock.idle()) {
            engine.submitAndWait(1_000_000L);
        }
    }
}
