package dev.isthmus.raft.tool;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Three {@link RaftNodeMain} JVMs on one host, each with its own ports and data directory, optionally each in
 * its own network namespace joined by a bridge (so a node can be cut off by taking its link down). Output of
 * each node goes to {@code node<i>.log} in the test directory, printed when a wait fails.
 */
final class ProcessCluster implements AutoCloseable {
    static final long DEADLINE_NS = TimeUnit.SECONDS.toNanos(60);

    final Path dir;
    final Node[] nodes;
    final Netns netns;
    final String extraArgs;

    ProcessCluster(Path dir, int count, Netns netns, String extraArgs) throws IOException {
        this.dir = dir;
        this.netns = netns;
        this.extraArgs = extraArgs;
        this.nodes = new Node[count];
        for (int i = 0; i < count; i++) {
            String host = netns == null ? "127.0.0.1" : netns.address(i);
            nodes[i] = new Node(i, host, netns == null ? freePort() : 7000, netns == null ? freePort() : 7100);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    String peers() {
        StringBuilder b = new StringBuilder();
        for (Node n : nodes) {
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(n.id).append('=').append(n.host).append(':').append(n.rpcPort);
        }
        return b.toString();
    }

    void startAll() throws Exception {
        for (Node n : nodes) {
            n.launch();
        }
        for (Node n : nodes) {
            n.awaitReady();
        }
    }

    /** A RaftNodeMain process. */
    final class Node {
        final int id;
        final String host;
        final int rpcPort;
        final int clientPort;
        final Path data;
        final Path log;
        Process process;
        boolean paused;

        Node(int id, String host, int rpcPort, int clientPort) {
            this.id = id;
            this.host = host;
            this.rpcPort = rpcPort;
            this.clientPort = clientPort;
            this.data = dir.resolve("data" + id);
            this.log = dir.resolve("node" + id + ".log");
        }

        void launch() throws IOException {
            List<String> cmd = new ArrayList<>();
            if (netns != null) {
                cmd.addAll(List.of("ip", "netns", "exec", netns.namespace(id)));
            }
            cmd.add(ProcessHandle.current().info().command().orElse("java"));
            cmd.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC", "-Xmx160m", "-Xss1m",
                "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                RaftNodeMain.class.getName(), "--id", String.valueOf(id), "--rpc", host + ":" + rpcPort, "--client",
                host + ":" + clientPort, "--peers", peers(), "--data", data.toString(), "--shards", "2"));
            if (!extraArgs.isBlank()) {
                cmd.addAll(List.of(extraArgs.trim().split("\\s+")));
            }
            Files.writeString(log, "=== start " + String.join(" ", cmd.subList(0, Math.min(cmd.size(), 3))) + "\n",
                StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            process = pb.start();
            paused = false;
        }

        void awaitReady() throws Exception {
            await("node " + id + " ready", () -> {
                if (!process.isAlive()) {
                    throw new AssertionError("node " + id + " exited with " + process.exitValue() + ":\n" + tail(log));
                }
                try {
                    String out = Files.readString(log, StandardCharsets.UTF_8);
                    int start = out.lastIndexOf("=== start");
                    return out.indexOf("READY", start) >= 0;
                } catch (IOException e) {
                    return false;
                }
            });
        }

        void start() throws Exception {
            launch();
            awaitReady();
        }

        /** SIGKILL: nothing is flushed or closed. */
        void kill9() throws InterruptedException {
            if (paused) {
                signal("CONT");
            }
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }

        /** SIGTERM: a clean stop. */
        void stop() throws InterruptedException {
            if (process != null && process.isAlive()) {
                if (paused) {
                    signal("CONT");
                }
                process.destroy();
                if (!process.waitFor(30, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(30, TimeUnit.SECONDS);
                }
            }
        }

        void pause() throws Exception {
            signal("STOP");
            paused = true;
        }

        void resume() throws Exception {
            signal("CONT");
            paused = false;
        }

        private void signal(String sig) {
            try {
                Process k = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid())).inheritIO().start();
                if (!k.waitFor(10, TimeUnit.SECONDS) || k.exitValue() != 0) {
                    throw new AssertionError("kill -" + sig + " " + process.pid() + " failed");
                }
            } catch (IOException e) {
                throw new AssertionError(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }

        boolean alive() {
            return process != null && process.isAlive() && !paused;
        }

        /** One request on a fresh connection; null when the node does not answer in time. */
        List<String> ask(String request, String lastLinePrefix) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, clientPort), 500);
                s.setSoTimeout(5000);
                Writer w = new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8);
                w.write(request + "\n");
                w.flush();
                BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                List<String> lines = new ArrayList<>();
                String line;
                while ((line = r.readLine()) != null) {
                    lines.add(line);
                    if (lastLinePrefix == null || line.startsWith(lastLinePrefix) || line.startsWith("ERR")) {
                        return lines;
                    }
                }
                return null;
            } catch (IOException e) {
                return null;
            }
        }

        /** STATUS of group 1: {role, term, leader, hw, leo}, or null. */
        String[] status(int group) {
            if (!alive()) {
                return null;
            }
            List<String> l = ask("STATUS " + group, null);
            if (l == null || l.isEmpty() || !l.get(0).startsWith("STATUS")) {
                return null;
            }
            return l.get(0).substring(7).split(" ");
        }

        long highWatermark(int group) {
            String[] s = status(group);
            return s == null ? -1 : Long.parseLong(s[3]);
        }

        /** Every committed data record of {@code group}: offset -> value, in offset order. */
        java.util.TreeMap<Long, String> scanAll(int group) {
            java.util.TreeMap<Long, String> out = new java.util.TreeMap<>();
            long from = 0;
            long hw = highWatermark(group);
            while (from < hw) {
                List<String> l = ask("SCAN " + group + " " + from + " 5000", "END");
                if (l == null || l.isEmpty() || !l.get(l.size() - 1).startsWith("END")) {
                    throw new AssertionError("node " + id + " did not answer SCAN from " + from + ": " + l);
                }
                for (String line : l) {
                    if (line.startsWith("V ")) {
                        String[] p = line.split(" ", 3);
                        out.put(Long.parseLong(p[1]), p.length > 2 ? p[2] : "");
                    }
                }
                long next = Long.parseLong(l.get(l.size() - 1).substring(4));
                if (next <= from) {
                    throw new AssertionError("node " + id + " SCAN made no progress at " + from);
                }
                from = next;
            }
            return out;
        }
    }

    /** The node that leads {@code group} in the highest term reported by reachable nodes, or null. */
    Node leader(int group) {
        Node best = null;
        long bestTerm = -1;
        for (Node n : nodes) {
            String[] s = n.status(group);
            if (s != null && s[0].equals("LEADER") && Long.parseLong(s[1]) > bestTerm) {
                best = n;
                bestTerm = Long.parseLong(s[1]);
            }
        }
        return best;
    }

    long term(Node n, int group) {
        String[] s = n.status(group);
        return s == null ? -1 : Long.parseLong(s[1]);
    }

    void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE_NS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                StringBuilder b = new StringBuilder("timed out waiting for " + what);
                for (Node n : nodes) {
                    b.append("\n--- node ").append(n.id).append(" (").append(n.alive() ? "up" : "down/paused")
                        .append(") status ").append(java.util.Arrays.toString(n.status(1))).append(":\n").append(tail(n.log));
                }
                throw new AssertionError(b.toString());
            }
            Thread.sleep(50);
        }
    }

    static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() throws Exception {
        for (Node n : nodes) {
            try {
                n.stop();
            } catch (Exception e) {
                n.process.destroyForcibly();
            }
        }
        if (netns != null) {
            netns.close();
        }
    }

    /**
     * One network namespace per node, each with a veth pair whose host end sits on a bridge in the test's
     * namespace; the bridge has an address too, so the test reaches every node. {@link #isolate} takes a
     * node's link down: it can reach nobody and nobody reaches it.
     */
    static final class Netns implements AutoCloseable {
        final String tag;
        final int subnet;
        final int count;
        final String bridge;
        boolean up;

        private Netns(int count) {
            long r = ProcessHandle.current().pid() * 31 + System.nanoTime();
            this.tag = Long.toHexString(r & 0xFFFFF);
            this.subnet = 100 + (int) ((r >>> 8) % 150);
            this.count = count;
            this.bridge = "isb" + tag;
        }

        /** Sets the namespaces up, or returns null with the reason printed when the host does not allow it. */
        static Netns create(int count) {
            Netns n = new Netns(count);
            try {
                n.ip("link", "add", n.bridge, "type", "bridge");
                n.up = true;
                n.ip("addr", "add", "10.213." + n.subnet + ".254/24", "dev", n.bridge);
                n.ip("link", "set", n.bridge, "up");
                for (int i = 0; i < count; i++) {
                    n.ip("netns", "add", n.namespace(i));
                    n.ip("link", "add", n.hostEnd(i), "type", "veth", "peer", "name", n.nsEnd(i));
                    n.ip("link", "set", n.nsEnd(i), "netns", n.namespace(i));
                    n.ip("link", "set", n.hostEnd(i), "master", n.bridge);
                    n.ip("link", "set", n.hostEnd(i), "up");
                    n.ip("-n", n.namespace(i), "addr", "add", n.address(i) + "/24", "dev", n.nsEnd(i));
                    n.ip("-n", n.namespace(i), "link", "set", n.nsEnd(i), "up");
                    n.ip("-n", n.namespace(i), "link", "set", "lo", "up");
                }
                return n;
            } catch (Exception e) {
                System.out.println("network namespaces unavailable, partition test skipped: " + e.getMessage());
                n.close();
                return null;
            }
        }

        String namespace(int i) {
            return "isthmus-" + tag + "-" + i;
        }

        String hostEnd(int i) {
            return "isv" + tag + i;
        }

        String nsEnd(int i) {
            return "isp" + tag + i;
        }

        String address(int i) {
            return "10.213." + subnet + "." + (i + 1);
        }

        void isolate(int i) throws Exception {
            ip("link", "set", hostEnd(i), "down");
        }

        void heal(int i) throws Exception {
            ip("link", "set", hostEnd(i), "up");
        }

        void ip(String... args) throws Exception {
            List<String> cmd = new ArrayList<>();
            cmd.add("ip");
            cmd.addAll(List.of(args));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed: " + out);
            }
        }

        @Override
        public void close() {
            for (int i = 0; i < count; i++) {
                try {
                    ip("netns", "del", namespace(i));
                } catch (Exception ignored) {
                    // not created
                }
                try {
                    ip("link", "del", hostEnd(i));
                } catch (Exception ignored) {
                    // gone with its namespace
                }
            }
            if (up) {
                try {
                    ip("link", "del", bridge);
                } catch (Exception ignored) {
                    // already gone
                }
            }
        }
    }
}
