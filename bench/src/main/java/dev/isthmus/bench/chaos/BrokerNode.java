package dev.isthmus.bench.chaos;

import dev.isthmus.bench.compare.BrokerProcess;
import dev.isthmus.bench.compare.Cleanup;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * One broker of the cluster: an {@code ./isthmus start} process (in its network namespace when there is one)
 * with its own data directory, started, killed, paused and restarted by the run and the nemesis. Its output
 * goes to {@code OUT/node-I.log}, appended across restarts with a line marking each start.
 *
 * <p>Lifecycle: {@link #start} may be called again after the process has exited (a restart keeps the data).
 * Every process is registered with the run's {@link Cleanup} while it runs. Used by one thread at a time
 * (the run's or the nemesis's; synchronized).
 */
final class BrokerNode {
    private static final long STOP_GRACE_SEC = 30;
    /** java.util.logging's format for the brokers: level, time with milliseconds, source, message, one line. */
    static final String LOG_FORMAT = "'-Djava.util.logging.SimpleFormatter.format=%4$s %1$tT.%1$tL %2$s: %5$s%6$s%n'";
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    final int id;
    final Path dataDir;
    final Path logFile;
    private final List<String> command;
    private final Cleanup cleanup;
    private final Path pidFile;
    private final String readyUrl;
    final String metricsUrl;
    final String bootstrap;
    private Process process;
    private boolean paused;
    private int starts;

    BrokerNode(int id, Path dataDir, Path logFile, List<String> command, Cleanup cleanup, Path pidFile, String host,
         int kafkaPort, int metricsPort) {
        this.id = id;
        this.dataDir = dataDir;
        this.logFile = logFile;
        this.command = command;
        this.cleanup = cleanup;
        this.pidFile = pidFile;
        this.readyUrl = "http://" + host + ":" + metricsPort + "/ready";
        this.metricsUrl = "http://" + host + ":" + metricsPort + "/metrics";
        this.bootstrap = host + ":" + kafkaPort;
    }

    /** Starts the process (it keeps its data directory); returns at once, see {@link #awaitReady}. */
    synchronized void start() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("node " + id + " is running");
        }
        try {
            Files.createDirectories(dataDir);
            Files.writeString(logFile, "=== bench/chaos: node " + id + " start " + (++starts) + " at " + Instant.now()
                + ": " + String.join(" ", command) + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        // One line per log record with milliseconds (the JDK's default has whole seconds over two lines): a
        // recovery's steps are read off these logs. The level stays first, as the full-disk fault reads it.
        String tool = System.getenv("JAVA_TOOL_OPTIONS");
        pb.environment().put("JAVA_TOOL_OPTIONS", (tool == null ? "" : tool + " ") + LOG_FORMAT);
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new ChaosException("cannot start node " + id + ": " + e.getMessage(), e);
        }
        paused = false;
        cleanup.add(process);
        if (pidFile != null) {
            try {
                Files.writeString(pidFile, process.pid() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** Waits until the node answers /ready; fails when it exits first or the timeout passes. */
    void awaitReady(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        while (true) {
            Process p;
            synchronized (this) {
                p = process;
            }
            if (p == null || !p.isAlive()) {
                throw new ChaosException("node " + id + " exited" + (p == null ? "" : " with code " + p.exitValue())
                    + " before it was ready: " + BrokerProcess.lastLine(logFile) + " (see " + logFile + ")");
            }
            if (ready()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new ChaosException("node " + id + " was not ready within " + TimeUnit.NANOSECONDS.toSeconds(timeoutNs)
                    + " s: " + BrokerProcess.lastLine(logFile) + " (see " + logFile + ")");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
    }

    /** Whether /ready answers 200 now. */
    boolean ready() {
        return get(readyUrl, 1000) != null;
    }

    /** The body of a 200 answer from {@code url}, or null. */
    static String get(String url, int timeoutMs) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofMillis(timeoutMs)).GET().build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            return r.statusCode() == 200 ? r.body() : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    synchronized boolean alive() {
        return process != null && process.isAlive();
    }

    synchronized boolean paused() {
        return paused;
    }

    synchronized long pid() {
        return process == null ? -1 : process.pid();
    }

    /** SIGKILL, and waits until the process is gone. */
    synchronized void kill() {
        if (process == null) {
            return;
        }
        process.destroyForcibly();
        waitGone();
    }

    /** SIGSTOP. */
    synchronized void pause() {
        if (alive() && Sys.signal(process.pid(), "STOP")) {
            paused = true;
        }
    }

    /** SIGCONT. */
    synchronized void resume() {
        if (process != null && paused) {
            Sys.signal(process.pid(), "CONT");
        }
        paused = false;
    }

    /** SIGTERM (a clean shutdown), SIGKILL after 30 s; returns the exit code. */
    synchronized int stop() {
        if (process == null) {
            return 0;
        }
        resume();
        process.destroy();
        try {
            if (!process.waitFor(STOP_GRACE_SEC, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        waitGone();
        return process.exitValue();
    }

    private void waitGone() {
        try {
            if (!process.waitFor(STOP_GRACE_SEC, TimeUnit.SECONDS)) {
                throw new ChaosException("node " + id + " (pid " + process.pid() + ") did not exit after SIGKILL");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChaosException("interrupted while stopping node " + id);
        }
        cleanup.forget(process);
        paused = false;
    }

    /** The node's Prometheus text, or null when it does not answer. */
    String metrics() {
        return get(metricsUrl, 3000);
    }

    /**
     * Log ends of every replica this node hosts, from its metrics ({@code isthmus_replica_log_end_offset}):
     * "topic-partition" -> {log end, 1 when this node leads it}; null when the node does not answer.
     */
    java.util.Map<String, long[]> logEnds() {
        String m = metrics();
        if (m == null) {
            return null;
        }
        java.util.Map<String, long[]> ends = new java.util.TreeMap<>();
        String prefix = "isthmus_replica_log_end_offset{";
        for (String line : m.split("\n")) {
            if (!line.startsWith(prefix)) {
                continue;
            }
            int close = line.indexOf('}');
            String labels = line.substring(prefix.length(), close);
            String topic = label(labels, "topic");
            String part = label(labels, "partition");
            boolean leader = "leader".equals(label(labels, "role"));
            ends.put(topic + "-" + part, new long[] {Long.parseLong(line.substring(close + 1).trim()), leader ? 1 : 0});
        }
        return ends;
    }

    private static String label(String labels, String name) {
        int i = labels.indexOf(name + "=\"");
        int j = labels.indexOf('"', i + name.length() + 2);
        return labels.substring(i + name.length() + 2, j);
    }

    /** The exit code of the last process, or -1 while it runs (or never ran). */
    synchronized int exitCode() {
        return process == null || process.isAlive() ? -1 : process.exitValue();
    }

    /**
     * The last informative line of the node's log: not a stack frame, not java.util.logging's date line, not a
     * shard-stall warning (those are about the machine).
     */
    String lastLogLine() {
        try {
            List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
            for (int i = lines.size() - 1; i >= 0; i--) {
                String l = lines.get(i).strip();
                if (l.isEmpty() || l.startsWith("at ") || (l.startsWith("...") && l.endsWith("more"))
                        || l.contains("stalled for") || l.matches("^[A-Z][a-z]{2} \\d{2}, \\d{4} .*")
                        || l.startsWith("Picked up JAVA_TOOL_OPTIONS")) {
                    continue;
                }
                return l.length() > 300 ? l.substring(0, 300) + "..." : l;
            }
        } catch (IOException | UncheckedIOException e) {
            return "(no log)";
        }
        return "(nothing in the log)";
    }

    /**
     * Lines of the node's log about running out of space ("No space left", ENOSPC): {all, SEVERE ones (a log or a
     * Raft group failed)}.
     */
    long[] noSpaceLines() {
        long[] n = new long[2];
        try (var lines = Files.lines(logFile, StandardCharsets.UTF_8)) {
            lines.filter(l -> l.contains("No space left") || l.contains("ENOSPC")).forEach(l -> {
                n[0]++;
                if (l.startsWith("SEVERE")) {
                    n[1]++;
                }
            });
        } catch (IOException | UncheckedIOException e) {
            return n;
        }
        return n;
    }

    /** The SEVERE lines of the log after line {@code skip} that mention ENOSPC, at most 3, for the record. */
    List<String> severeNoSpace(long skip) {
        List<String> out = new ArrayList<>();
        try (var lines = Files.lines(logFile, StandardCharsets.UTF_8)) {
            lines.filter(l -> l.startsWith("SEVERE") && (l.contains("ENOSPC") || l.contains("No space left")))
                .skip(skip).limit(3).forEach(l -> out.add(l.length() > 240 ? l.substring(0, 240) + "..." : l));
        } catch (IOException | UncheckedIOException e) {
            return out;
        }
        return out;
    }

    static List<String> args(String... a) {
        return new ArrayList<>(List.of(a));
    }
}
