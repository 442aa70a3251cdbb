package dev.isthmus.raft.tool;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A client writing unique values to one group through whichever node leads it, 16 requests pipelined at a
 * time, remembering every acknowledged value and its offset. Errors and silent nodes send it looking for the
 * leader again; requests without an answer are simply not acknowledged (they may or may not be committed).
 */
final class Load implements AutoCloseable {
    final ProcessCluster cluster;
    final int group;
    final String prefix;
    final Map<Long, String> acked = new ConcurrentHashMap<>();
    final AtomicLong sent = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    private final Thread thread;
    private volatile boolean stop;
    private volatile Throwable failure;

    Load(ProcessCluster cluster, int group, String prefix) {
        this.cluster = cluster;
        this.group = group;
        this.prefix = prefix;
        this.thread = new Thread(this::run, "load-" + prefix);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    int ackedCount() {
        if (failure != null) {
            throw new AssertionError("load client failed", failure);
        }
        return acked.size();
    }

    long maxAckedOffset() {
        return acked.keySet().stream().mapToLong(Long::longValue).max().orElse(-1);
    }

    private void run() {
        try {
            while (!stop) {
                ProcessCluster.Node leader = cluster.leader(group);
                if (leader == null) {
                    Thread.sleep(20);
                    continue;
                }
                writeTo(leader);
            }
        } catch (InterruptedException e) {
            // stopping
        } catch (Throwable t) {
            failure = t;
        }
    }

    private void writeTo(ProcessCluster.Node node) throws InterruptedException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(node.host, node.clientPort), 2000);
            s.setSoTimeout(3000);
            Writer w = new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8);
            BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            String[] values = new String[16];
            while (!stop) {
                for (int i = 0; i < values.length; i++) {
                    values[i] = prefix + "-" + sent.incrementAndGet();
                    w.write("PUT " + group + " " + values[i] + "\n");
                }
                w.flush();
                boolean failed = false;
                for (String value : values) {
                    String line = r.readLine();
                    if (line == null) {
                        return;
                    }
                    if (line.startsWith("OK ")) {
                        String before = acked.put(Long.parseLong(line.substring(3)), value);
                        if (before != null) {
                            throw new IllegalStateException("offset " + line.substring(3) + " acknowledged for both "
                                + before + " and " + value);
                        }
                    } else {
                        errors.incrementAndGet();
                        failed = true;
                    }
                }
                if (failed) {
                    Thread.sleep(20);
                    return; // find the leader again
                }
            }
        } catch (IOException e) {
            errors.incrementAndGet();
            Thread.sleep(20);
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(30_000);
        if (failure != null) {
            throw new AssertionError("load client failed", failure);
        }
    }
}
