package dev.isthmus.bench.chaos;

import java.io.Writer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The run's history file: one JSON object per line, every operation's invocation and completion with a
 * timestamp, the nemesis's faults, and the final read. The format is described in {@code bench/README.md}
 * ("The history file") and read back by {@link Checker} and {@link Timeline}.
 *
 * <p>Every event has {@code t} (nanoseconds since the run's origin, {@link System#nanoTime()} minus
 * {@link #originNs()}: on Linux that clock is CLOCK_MONOTONIC, the same for every process of the machine, so
 * group members in child JVMs stamp their own lines on the same time line), {@code proc} (the client process
 * that did it), {@code type} ({@code invoke}, {@code ok}, {@code fail}: definitely did not happen, {@code info}:
 * may or may not have happened, or a note) and {@code f} (the operation).
 *
 * <p>Thread-safe: workload threads, the nemesis and the relays of child processes write concurrently; lines are
 * whole and, for one thread, in the order written. Timestamps are taken under the lock, so lines written by
 * this process are in time order; relayed lines were stamped by their process and may be slightly out of order.
 */
final class History implements AutoCloseable {

    private final Path file;
    private final long originNs;
    private final Writer out;
    private final String prefix;
    private final boolean flushEachLine;
    private long lines;
    private boolean closed;

    History(Path file, long originNs) {
        this(file, originNs, open(file), "", false);
    }

    private History(Path file, long originNs, Writer out, String prefix, boolean flushEachLine) {
        this.file = file;
        this.originNs = originNs;
        this.out = out;
        this.prefix = prefix;
        this.flushEachLine = flushEachLine;
    }

    private static Writer open(Path file) {
        try {
            return Files.newBufferedWriter(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the history " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * A history that prints each event as a line {@code H {json}} on {@code stream} (flushed at once): a group
     * member in a child JVM, whose lines the parent relays into the file.
     */
    static History toStream(java.io.PrintStream stream, long originNs) {
        return new History(null, originNs, new java.io.OutputStreamWriter(stream, StandardCharsets.UTF_8), "H ", true);
    }

    Path file() {
        return file;
    }

    long originNs() {
        return originNs;
    }

    /** Nanoseconds since the origin, now. */
    long now() {
        return System.nanoTime() - originNs;
    }

    /** A new event map with proc, type and f set; add fields and pass it to {@link #write}. */
    static Map<String, Object> event(String proc, String type, String f) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("t", 0L);
        m.put("proc", proc);
        m.put("type", type);
        m.put("f", f);
        return m;
    }

    /** Stamps {@code e} with the current time and appends it; returns the time. */
    synchronized long write(Map<String, Object> e) {
        long t = now();
        e.put("t", t);
        append(Json.write(e));
        return t;
    }

    /** Appends a line another process wrote and stamped (a group member), after checking it is an event. */
    synchronized void relay(String line) {
        Map<String, Object> m = Json.parseObject(line);
        if (!(m.get("t") instanceof Long) || !(m.get("proc") instanceof String) || !(m.get("f") instanceof String)) {
            throw new IllegalArgumentException("not a history event: " + Json.abbreviate(line));
        }
        append(line);
    }

    /** A note from the run itself ({@code proc} "chaos"). */
    long note(String f, Map<String, Object> fields) {
        Map<String, Object> e = event("chaos", "info", f);
        e.putAll(fields);
        return write(e);
    }

    private void append(String line) {
        if (closed) {
            return; // a late callback after the end of the run: the history is complete without it
        }
        try {
            out.write(prefix);
            out.write(line);
            out.write('\n');
            lines++;
            if (flushEachLine || lines % 4096 == 0) {
                out.flush();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the history " + file + ": " + e.getMessage(), e);
        }
    }

    synchronized void flush() {
        if (closed) {
            return;
        }
        try {
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    synchronized long lineCount() {
        return lines;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
