package dev.isthmus.gateway;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A cluster of broker processes on 127.0.0.1 formed from one seed list, as {@link ClusterTest} starts them
 * ({@code java ... Main start --node-id N --seeds ...}), with a metrics port each, for tests that stop, kill and
 * restart nodes. Each node's output is kept (prefixed with its id) for failure reports and for checks on what a
 * node printed. Not thread-safe except {@link #output()}.
 */
final class BrokerProcesses implements AutoCloseable {
    /** {@code sparePort}: a free port for a second listener, named {@code {sparePort}} in the extra arguments. */
    record Node(int id, int kafkaPort, int rpcPort, int metricsPort, Path dir, int sparePort) {
    }

    private final List<Node> nodes = new ArrayList<>();
    private Process[] procs;
    private final Path dir;
    private final String seeds;
    private final List<String> extraArgs;
    private final java.util.function.IntFunction<List<String>> nodeArgs;
    private final List<String> output = new ArrayList<>();

    /**
     * Starts {@code count} nodes in {@code dir} with {@code extraArgs} added to every command line ({@code {kafkaPort}}
     * and {@code {sparePort}} in them stand for the node's ports).
     */
    BrokerProcesses(int count, Path dir, List<String> extraArgs) throws Exception {
        this(count, dir, extraArgs, id -> List.of());
    }

    /** As above, with {@code nodeArgs.apply(id)} added to node {@code id}'s command line too (e.g. its --rack). */
    BrokerProcesses(int count, Path dir, List<String> extraArgs, java.util.function.IntFunction<List<String>> nodeArgs)
            throws Exception {
        this(count, count, dir, extraArgs, nodeArgs);
    }

    /**
     * {@code count} nodes of which the first {@code seedCount} are the controller voters (the seed list) and are
     * started now; the others join later, when {@link #start} starts them (a node added to a running cluster).
     */
    BrokerProcesses(int count, int seedCount, Path dir, List<String> extraArgs,
                    java.util.function.IntFunction<List<String>> nodeArgs) throws Exception {
        this.procs = new Process[count];
        this.dir = dir;
        this.extraArgs = List.copyOf(extraArgs);
        this.nodeArgs = nodeArgs;
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < count; i++) {
            Node n = new Node(i, freePort(), freePort(), freePort(), dir.resolve("node-" + i), freePort());
            nodes.add(n);
            if (i < seedCount) {
                s.append(i == 0 ? "" : ",").append(i).append("@127.0.0.1:").append(n.rpcPort);
            }
        }
        this.seeds = s.toString();
        for (int i = 0; i < seedCount; i++) {
            start(i);
        }
    }

    /**
     * Starts one more node that is not a seed (a node joining the running cluster: its --seeds are the existing
     * controller nodes, whose command lines do not change); returns its id.
     */
    int addNode() throws Exception {
        int id = nodes.size();
        nodes.add(new Node(id, freePort(), freePort(), freePort(), dir.resolve("node-" + id), freePort()));
        procs = java.util.Arrays.copyOf(procs, nodes.size());
        start(id);
        return id;
    }

    static int freePort() throws Exception {
        return TestPorts.free();
    }

    Node node(int id) {
        return nodes.get(id);
    }

    int size() {
        return nodes.size();
    }

    Process process(int id) {
        return procs[id];
    }

    /** Every node's Kafka address. */
    String bootstrap() {
        return String.join(",", nodes.stream().map(n -> "127.0.0.1:" + n.kafkaPort).toList());
    }

    /** The Kafka addresses of every node but {@code except}. */
    String bootstrapExcept(int except) {
        return String.join(",", nodes.stream().filter(n -> n.id != except).map(n -> "127.0.0.1:" + n.kafkaPort).toList());
    }

    /** (Re)starts node {@code id}'s process with its data directory. */
    void start(int id) throws Exception {
        Node n = nodes.get(id);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
            Main.class.getName(), "start", "--node-id", Integer.toString(n.id), "--listen", "127.0.0.1:" + n.kafkaPort,
            "--rpc-listen", "127.0.0.1:" + n.rpcPort, "--seeds", seeds, "--data-dir", n.dir.toString(), "--smp", "1",
            "--memory", "192M", "--metrics-listen", "127.0.0.1:" + n.metricsPort));
        for (String a : extraArgs) {
            cmd.add(a.replace("{kafkaPort}", Integer.toString(n.kafkaPort)).replace("{sparePort}",
                Integer.toString(n.sparePort)));
        }
        cmd.addAll(nodeArgs.apply(id));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        procs[id] = p;
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        Thread drain = new Thread(() -> {
            try {
                String l;
                while ((l = r.readLine()) != null) {
                    synchronized (output) {
                        output.add("node " + n.id + ": " + l);
                    }
                }
            } catch (Exception ignored) {
                // the process ended
            }
        }, "node-" + id + "-output");
        drain.setDaemon(true);
        drain.start();
    }

    /** Sends SIGTERM to node {@code id} and waits for its exit; returns the exit code. */
    int terminate(int id) throws Exception {
        Process p = procs[id];
        p.toHandle().destroy(); // SIGTERM (Process.destroy would also close our end of its output)
        if (!p.waitFor(90, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            throw new AssertionError("node " + id + " did not stop within 90 s of SIGTERM");
        }
        return p.exitValue();
    }

    /** SIGKILL to node {@code id}, waiting for its end. */
    void kill(int id) throws Exception {
        procs[id].destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }

    /** Node {@code id}'s Prometheus text (GET /metrics). */
    String metrics(int id) throws Exception {
        HttpClient c = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + nodes.get(id).metricsPort
            + "/metrics")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        return r.body();
    }

    /** The value of the unlabelled series {@code name} in Prometheus text, or the sum of its labelled series. */
    static double metric(String text, String name) {
        double sum = 0;
        boolean found = false;
        for (String line : text.split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                found = true;
            }
        }
        if (!found) {
            throw new AssertionError("no series " + name + " in the metrics");
        }
        return sum;
    }

    /** A copy of every node's output so far. */
    List<String> output() {
        synchronized (output) {
            return new ArrayList<>(output);
        }
    }

    /** The last lines of the nodes' output (for failure reports). */
    String tail(int lines) {
        List<String> all = output();
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    /** The Kafka addresses of the nodes started so far. */
    String bootstrapStarted() {
        List<String> out = new ArrayList<>();
        for (Node n : nodes) {
            if (procs[n.id] != null) {
                out.add("127.0.0.1:" + n.kafkaPort);
            }
        }
        return String.join(",", out);
    }

    @Override
    public void close() throws Exception {
        for (Process p : procs) {
            if (p != null) {
                p.destroyForcibly();
                p.waitFor(30, TimeUnit.SECONDS);
            }
        }
    }
}
