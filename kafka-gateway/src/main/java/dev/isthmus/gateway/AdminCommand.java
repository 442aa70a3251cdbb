package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

import java.io.IOException;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code isthmus admin}: cluster operations Kafka's tools do not cover, in the style of Redpanda's {@code rpk}
 * ({@code rpk cluster health}, {@code rpk cluster partitions move-status}, {@code rpk redpanda admin brokers
 * decommission}, {@code rpk cluster maintenance}). Human-readable tables by default, {@code --json} for scripts.
 *
 * <h2>How it reaches the cluster</h2>
 * Only through the Kafka API, with Kafka's {@link Admin} client (so {@code --command-config} carries the client's
 * TLS and SASL settings): DescribeCluster v2 with fenced brokers (the nodes registered but down), Metadata (replicas,
 * leaders, in-sync replicas), ListPartitionReassignments (moves), DescribeLogDirs (disk use), DescribeQuorum (the
 * controller group, as {@code kafka-metadata-quorum.sh describe} reads it), and DescribeConfigs /
 * IncrementalAlterConfigs of the cluster-wide broker configs {@code isthmus.maintenance.nodes},
 * {@code isthmus.decommission.nodes} and {@code isthmus.controller.voters} for the Isthmus-specific actions (why
 * configs: {@link NodeModeConfigs}). Those need ALTER on the cluster. Progress (leaders left on a node in maintenance, replicas left on a decommissioning node,
 * moves running) is computed from Metadata and ListPartitionReassignments, the same data Kafka's tools read.
 *
 * <p>One command per process; not thread-safe. {@link #run} is the testable entry (returns the exit code: 0 done,
 * 1 the cluster refused or could not be reached, 2 bad usage).
 */
public final class AdminCommand {
    static final String USAGE = """
        usage: isthmus admin [--bootstrap-server HOST:PORT] [--command-config FILE] [--json] [--timeout SECONDS] COMMAND
          cluster status              nodes (up/down, address, replicas, leaders, disk use, maintenance and
                                      decommission), the controller, partitions under-replicated, leaderless, moving
          partitions moves            reassignments running (replicas, adding, removing)
          maintenance enable NODE     NODE's partition leaders hand leadership to in-sync followers (Raft
                                      leadership transfer, no elections); it takes none until disabled (one node
                                      at a time); --wait returns once it leads nothing
          maintenance disable NODE    leadership may return to NODE (preferred leaders move back once caught up)
          maintenance status          every node: in maintenance or not, partitions it still leads
          decommission NODE           NODE takes no new replica and the controller moves every replica off it, a
                                      bounded number at a time (--max-concurrent-moves of the brokers); --wait
                                      returns once it holds none
          decommission status NODE    replicas NODE still holds, moves off it running
          recommission NODE           stops a decommission: cancels the moves off NODE still running
          controller status           the controller group (Raft): leader, voters, observers, how far each got
          controller add NODE         NODE (up, registered) becomes a controller voter: it catches up as a
                                      learner, then joins by joint consensus; --wait returns once it votes
          controller remove NODE      NODE stops voting (e.g. a dead controller node once another took its seat);
                                      a majority of the remaining voters must be up; --wait as above
        --bootstrap-server defaults to $ISTHMUS_BOOTSTRAP, else 127.0.0.1:9092. --command-config FILE: Kafka client
        properties (security.protocol, sasl.*, ssl.*). Exit 0 on success, 1 when the cluster refused or could not be
        reached, 2 on bad usage.
        """;

    private final PrintStream out;
    private final PrintStream err;
    private String bootstrap;
    private Path commandConfig;
    private boolean json;
    private boolean waitDone;
    private long timeoutMs = 60_000;

    private AdminCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** {@code isthmus admin ARGS} as a process: exits with {@link #run}'s code. */
    public static void main(String[] args) {
        quietLogging();
        System.exit(run(args, System.out, System.err));
    }

    /**
     * The Kafka client logs through SLF4J, and the launcher ships no SLF4J backend on purpose (the client's logs are
     * not for the operator: failures come back as exceptions this command turns into sentences). SLF4J then warns on
     * stderr at its first use; it is initialised here with stderr muted, so the operator sees only the command's
     * output.
     */
    private static void quietLogging() {
        PrintStream saved = System.err;
        try {
            System.setErr(new PrintStream(java.io.OutputStream.nullOutputStream()));
            Class.forName("org.slf4j.LoggerFactory").getMethod("getILoggerFactory").invoke(null);
        } catch (ReflectiveOperationException | LinkageError e) {
            // no SLF4J: nothing to quieten
        } finally {
            System.setErr(saved);
        }
    }

    /** Runs one admin command; returns the exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        return new AdminCommand(out, err).execute(args);
    }

    private static final class Usage extends Exception {
        Usage(String message) {
            super(message, null, false, false);
        }
    }

    /** The cluster refused, or answered something the command cannot go on with: one sentence for the operator. */
    private static final class Refused extends Exception {
        Refused(String message) {
            super(message, null, false, false);
        }
    }

    private int execute(String[] args) {
        List<String> words = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--bootstrap-server", "-X", "--brokers" -> bootstrap = value(args, ++i, a);
                    case "--command-config" -> commandConfig = Path.of(value(args, ++i, a));
                    case "--json" -> json = true;
                    case "--wait" -> waitDone = true;
                    case "--timeout" -> {
                        String v = value(args, ++i, a);
                        try {
                            timeoutMs = Math.multiplyExact(Long.parseLong(v), 1000L);
                        } catch (NumberFormatException | ArithmeticException e) {
                            throw new Usage("--timeout takes a number of seconds, not '" + v + "'");
                        }
                        if (timeoutMs <= 0) {
                            throw new Usage("--timeout must be at least 1 second");
                        }
                    }
                    case "--help", "-h", "help" -> {
                        out.print(USAGE);
                        return 0;
                    }
                    default -> {
                        if (a.startsWith("--")) {
                            throw new Usage("unknown option " + a);
                        }
                        words.add(a);
                    }
                }
            }
            if (bootstrap == null) {
                String env = System.getenv("ISTHMUS_BOOTSTRAP");
                bootstrap = env != null && !env.isBlank() ? env : "127.0.0.1:9092";
            }
            String command = String.join(" ", words.subList(0, Math.min(2, words.size())));
            List<String> rest = words.subList(Math.min(2, words.size()), words.size());
            return switch (command) {
                case "cluster status" -> withAdmin(words, 2, this::clusterStatus);
                case "partitions moves" -> withAdmin(words, 2, this::moves);
                case "maintenance enable", "maintenance disable" -> {
                    int n = node(rest);
                    yield withAdmin(words, 3, a -> maintenance(a, n, command.endsWith("enable")));
                }
                case "maintenance status" -> withAdmin(words, 2, this::maintenanceStatus);
                case "controller status" -> withAdmin(words, 2, this::controllerStatus);
                case "controller add", "controller remove" -> {
                    int n = node(rest);
                    yield withAdmin(words, 3, a -> controllerVoter(a, n, command.endsWith("add")));
                }
                case "decommission status" -> {
                    int n = node(rest);
                    yield withAdmin(words, 3, a -> decommissionStatus(a, n, true));
                }
                default -> {
                    if (words.size() == 2 && (words.get(0).equals("decommission") || words.get(0).equals("recommission"))) {
                        int n = node(words.subList(1, 2));
                        yield withAdmin(words, 2, a -> decommission(a, n, words.get(0).equals("decommission")));
                    }
                    throw new Usage(words.isEmpty() ? "no command given" : "unknown command '" + String.join(" ", words)
                        + "'");
                }
            };
        } catch (Usage u) {
            err.println("isthmus admin: " + u.getMessage());
            err.print(USAGE);
            return 2;
        }
    }

    private static String value(String[] args, int i, String option) throws Usage {
        if (i >= args.length) {
            throw new Usage(option + " needs a value");
        }
        return args[i];
    }

    private static int node(List<String> rest) throws Usage {
        if (rest.size() != 1) {
            throw new Usage("give one node id");
        }
        try {
            int n = Integer.parseInt(rest.get(0));
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new Usage("'" + rest.get(0) + "' is not a node id");
        }
    }

    private interface AdminAction {
        int run(Admin admin) throws Exception;
    }

    private int withAdmin(List<String> words, int expectedWords, AdminAction action) throws Usage {
        if (words.size() != expectedWords) {
            throw new Usage("'" + String.join(" ", words) + "' takes " + (expectedWords - 2 == 1 ? "one node id"
                : "no argument"));
        }
        Properties p = new Properties();
        if (commandConfig != null) {
            try (Reader r = Files.newBufferedReader(commandConfig)) {
                p.load(r);
            } catch (IOException e) {
                throw new Usage("cannot read --command-config " + commandConfig + ": " + e.getMessage());
            }
        }
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(Math.min(timeoutMs, Integer.MAX_VALUE)));
        p.putIfAbsent(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.min(timeoutMs, 30_000)));
        p.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, "isthmus-admin");
        try (Admin admin = Admin.create(p)) {
            return action.run(admin);
        } catch (Refused e) {
            err.println("isthmus admin: " + e.getMessage());
            return 1;
        } catch (ExecutionException e) {
            Throwable c = e.getCause() == null ? e : e.getCause();
            String why = c.getMessage() != null ? c.getMessage() : c.toString();
            err.println("isthmus admin: " + (c instanceof org.apache.kafka.common.errors.TimeoutException
                ? "no answer from " + bootstrap + " (" + why + ")" : why));
            return 1;
        } catch (TimeoutException e) {
            err.println("isthmus admin: no answer from " + bootstrap + " within " + timeoutMs / 1000 + " s");
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        } catch (RuntimeException e) {
            err.println("isthmus admin: " + e.getMessage());
            return 1;
        } catch (Exception e) {
            err.println("isthmus admin: " + e);
            return 1;
        }
    }

    // ------------------------------------------------------------------ reading the cluster

    /** What one look at the cluster gathers (Metadata, DescribeCluster, reassignments, node modes). */
    private record Snapshot(String clusterId, int controller, Map<Integer, Node> nodes, Set<Integer> down,
                            Map<TopicPartition, TopicPartitionInfo> partitions,
                            Map<TopicPartition, PartitionReassignment> moves, Set<Integer> maintenance,
                            Set<Integer> decommission) {
        /** Replica counts per node: every listed replica (the union during a move). */
        Map<Integer, Integer> replicas() {
            Map<Integer, Integer> m = new TreeMap<>();
            for (TopicPartitionInfo p : partitions.values()) {
                for (Node r : p.replicas()) {
                    m.merge(r.id(), 1, Integer::sum);
                }
            }
            return m;
        }

        Map<Integer, Integer> leaders() {
            Map<Integer, Integer> m = new TreeMap<>();
            for (TopicPartitionInfo p : partitions.values()) {
                if (p.leader() != null && !p.leader().isEmpty()) {
                    m.merge(p.leader().id(), 1, Integer::sum);
                }
            }
            return m;
        }

        /** kafka-topics.sh's rule: the replication factor is the replicas less those being added. */
        boolean underReplicated(TopicPartition tp) {
            TopicPartitionInfo p = partitions.get(tp);
            PartitionReassignment m = moves.get(tp);
            int rf = p.replicas().size() - (m == null ? 0 : m.addingReplicas().size());
            return p.isr().size() < rf;
        }

        static boolean leaderless(TopicPartitionInfo p) {
            return p.leader() == null || p.leader().isEmpty();
        }
    }

    private Snapshot look(Admin admin) throws Exception {
        DescribeClusterResult dc = admin.describeCluster(new DescribeClusterOptions().includeFencedBrokers(true));
        Map<Integer, Node> nodes = new TreeMap<>();
        Set<Integer> down = new TreeSet<>();
        for (Node n : dc.nodes().get(timeoutMs, TimeUnit.MILLISECONDS)) {
            nodes.put(n.id(), n);
            if (n.isFenced()) {
                down.add(n.id());
            }
        }
        Node controller = dc.controller().get(timeoutMs, TimeUnit.MILLISECONDS);
        String id = dc.clusterId().get(timeoutMs, TimeUnit.MILLISECONDS);
        Set<String> names = admin.listTopics(new ListTopicsOptions().listInternal(true)).names()
            .get(timeoutMs, TimeUnit.MILLISECONDS);
        Map<TopicPartition, TopicPartitionInfo> parts = new TreeMap<>(AdminCommand::compare);
        if (!names.isEmpty()) {
            Map<String, TopicDescription> d = admin.describeTopics(names).allTopicNames().get(timeoutMs,
                TimeUnit.MILLISECONDS);
            for (TopicDescription t : d.values()) {
                for (TopicPartitionInfo p : t.partitions()) {
                    parts.put(new TopicPartition(t.name(), p.partition()), p);
                }
            }
        }
        Map<TopicPartition, PartitionReassignment> moves = new TreeMap<>(AdminCommand::compare);
        moves.putAll(admin.listPartitionReassignments().reassignments().get(timeoutMs, TimeUnit.MILLISECONDS));
        Map<String, String> modes = nodeModes(admin);
        return new Snapshot(id, controller == null ? -1 : controller.id(), nodes, down, parts, moves,
            ids(modes.get(NodeModeConfigs.MAINTENANCE)), ids(modes.get(NodeModeConfigs.DECOMMISSION)));
    }

    private static int compare(TopicPartition a, TopicPartition b) {
        int c = a.topic().compareTo(b.topic());
        return c != 0 ? c : Integer.compare(a.partition(), b.partition());
    }

    private Map<String, String> nodeModes(Admin admin) throws Exception {
        ConfigResource cluster = new ConfigResource(ConfigResource.Type.BROKER, "");
        Config c = admin.describeConfigs(List.of(cluster)).all().get(timeoutMs, TimeUnit.MILLISECONDS).get(cluster);
        Map<String, String> out = new TreeMap<>();
        for (String name : NodeModeConfigs.NAMES) {
            ConfigEntry e = c == null ? null : c.get(name);
            if (e == null) {
                throw new Refused("the cluster does not report " + name + ": it is a single node, or not Isthmus");
            }
            out.put(name, e.value() == null ? "" : e.value());
        }
        return out;
    }

    private static Set<Integer> ids(String list) {
        Set<Integer> s = new TreeSet<>();
        if (list != null) {
            for (String t : list.split(",")) {
                if (!t.isBlank()) {
                    s.add(Integer.parseInt(t.trim()));
                }
            }
        }
        return s;
    }

    /** Disk use per live node from DescribeLogDirs: {used bytes, total bytes, usable bytes} (-1 unknown). */
    private Map<Integer, long[]> disk(Admin admin, Collection<Integer> live) {
        Map<Integer, long[]> out = new TreeMap<>();
        if (live.isEmpty()) {
            return out;
        }
        try {
            Map<Integer, Map<String, LogDirDescription>> all = admin.describeLogDirs(live).allDescriptions()
                .get(Math.min(timeoutMs, 15_000), TimeUnit.MILLISECONDS);
            all.forEach((node, dirs) -> {
                long used = 0;
                long total = 0;
                long usable = 0;
                for (LogDirDescription d : dirs.values()) {
                    for (ReplicaInfo r : d.replicaInfos().values()) {
                        used += r.size();
                    }
                    total += d.totalBytes().orElse(-1);
                    usable += d.usableBytes().orElse(-1);
                }
                out.put(node, new long[] {used, total, usable});
            });
        } catch (Exception e) {
            err.println("isthmus admin: disk use unknown: " + e.getMessage());
        }
        return out;
    }

    // ------------------------------------------------------------------ commands

    private int clusterStatus(Admin admin) throws Exception {
        Snapshot s = look(admin);
        Set<Integer> live = new TreeSet<>(s.nodes().keySet());
        live.removeAll(s.down());
        Map<Integer, long[]> disk = disk(admin, live);
        Map<Integer, Integer> replicas = s.replicas();
        Map<Integer, Integer> leaders = s.leaders();
        int under = 0;
        int leaderless = 0;
        for (var e : s.partitions().entrySet()) {
            under += s.underReplicated(e.getKey()) ? 1 : 0;
            leaderless += Snapshot.leaderless(e.getValue()) ? 1 : 0;
        }
        boolean healthy = s.down().isEmpty() && under == 0 && leaderless == 0;
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("cluster_id", s.clusterId());
            o.put("controller", s.controller());
            o.put("healthy", healthy);
            List<Object> ns = new ArrayList<>();
            for (Node n : s.nodes().values()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("id", n.id());
                m.put("address", n.host() + ":" + n.port());
                m.put("live", !s.down().contains(n.id()));
                m.put("replicas", replicas.getOrDefault(n.id(), 0));
                m.put("leaders", leaders.getOrDefault(n.id(), 0));
                long[] d = disk.get(n.id());
                m.put("disk_used_bytes", d == null ? null : d[0]);
                m.put("disk_total_bytes", d == null || d[1] < 0 ? null : d[1]);
                m.put("disk_free_bytes", d == null || d[2] < 0 ? null : d[2]);
                m.put("maintenance", s.maintenance().contains(n.id()));
                m.put("decommissioning", s.decommission().contains(n.id()));
                ns.add(m);
            }
            o.put("nodes", ns);
            o.put("partitions", s.partitions().size());
            o.put("under_replicated", under);
            o.put("leaderless", leaderless);
            o.put("moving", s.moves().size());
            out.println(Json.write(o));
            return 0;
        }
        out.println("CLUSTER");
        out.println("  id " + s.clusterId() + ", controller " + (s.controller() >= 0 ? "node " + s.controller() : "none")
            + ", " + (healthy ? "healthy" : "not healthy"));
        out.println();
        out.println("NODES");
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"ID", "STATUS", "ADDRESS", "REPLICAS", "LEADERS", "DISK-USED", "DISK-FREE", "MODE"});
        for (Node n : s.nodes().values()) {
            long[] d = disk.get(n.id());
            List<String> mode = new ArrayList<>();
            if (s.maintenance().contains(n.id())) {
                mode.add("maintenance");
            }
            if (s.decommission().contains(n.id())) {
                mode.add("decommissioning");
            }
            rows.add(new String[] {Integer.toString(n.id()), s.down().contains(n.id()) ? "down" : "up",
                n.host() + ":" + n.port(), Integer.toString(replicas.getOrDefault(n.id(), 0)),
                Integer.toString(leaders.getOrDefault(n.id(), 0)), d == null ? "-" : bytes(d[0]),
                d == null || d[2] < 0 ? "-" : bytes(d[2]), mode.isEmpty() ? "-" : String.join(",", mode)});
        }
        table(rows);
        out.println();
        out.println("PARTITIONS");
        out.println("  " + s.partitions().size() + " partitions, " + under + " under-replicated, " + leaderless
            + " leaderless, " + s.moves().size() + " moving");
        return 0;
    }

    private int moves(Admin admin) throws Exception {
        Map<TopicPartition, PartitionReassignment> moves = new TreeMap<>(AdminCommand::compare);
        moves.putAll(admin.listPartitionReassignments().reassignments().get(timeoutMs, TimeUnit.MILLISECONDS));
        if (json) {
            List<Object> l = new ArrayList<>();
            moves.forEach((tp, m) -> {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("topic", tp.topic());
                o.put("partition", tp.partition());
                o.put("replicas", m.replicas());
                o.put("adding", m.addingReplicas());
                o.put("removing", m.removingReplicas());
                l.add(o);
            });
            out.println(Json.write(l));
            return 0;
        }
        if (moves.isEmpty()) {
            out.println("No partition moves running.");
            return 0;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"});
        moves.forEach((tp, m) -> rows.add(new String[] {tp.topic(), Integer.toString(tp.partition()),
            ids(m.replicas()), ids(m.addingReplicas()), ids(m.removingReplicas())}));
        table(rows);
        return 0;
    }

    private void alterMode(Admin admin, String name, int node, boolean add) throws Exception {
        ConfigResource cluster = new ConfigResource(ConfigResource.Type.BROKER, "");
        AlterConfigOp op = new AlterConfigOp(new ConfigEntry(name, Integer.toString(node)),
            add ? AlterConfigOp.OpType.APPEND : AlterConfigOp.OpType.SUBTRACT);
        admin.incrementalAlterConfigs(Map.of(cluster, List.of(op))).all().get(timeoutMs, TimeUnit.MILLISECONDS);
    }

    private int maintenance(Admin admin, int node, boolean enable) throws Exception {
        alterMode(admin, NodeModeConfigs.MAINTENANCE, node, enable);
        if (!enable) {
            report(Map.of("node", node, "maintenance", false), "Node " + node + " left maintenance: it may lead again;"
                + " its preferred leaderships return once it is caught up.");
            return 0;
        }
        if (!waitDone) {
            int leads = look(admin).leaders().getOrDefault(node, 0);
            report(Map.of("node", node, "maintenance", true, "leaders", leads), "Node " + node + " is in maintenance:"
                + " its leaderships are moving to in-sync followers (" + leads + " partition(s) still led there; see"
                + " 'isthmus admin maintenance status').");
            return 0;
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (true) {
            int leads = look(admin).leaders().getOrDefault(node, 0);
            if (leads == 0) {
                report(Map.of("node", node, "maintenance", true, "leaders", 0), "Node " + node + " is in maintenance"
                    + " and leads no partition.");
                return 0;
            }
            if (System.nanoTime() > deadline) {
                throw new Refused("node " + node + " is in maintenance but still leads " + leads + " partition(s) after "
                    + timeoutMs / 1000 + " s (no in-sync follower could take them?)");
            }
            Thread.sleep(250);
        }
    }

    private int maintenanceStatus(Admin admin) throws Exception {
        Snapshot s = look(admin);
        Map<Integer, Integer> leaders = s.leaders();
        if (json) {
            List<Object> l = new ArrayList<>();
            for (Node n : s.nodes().values()) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("id", n.id());
                o.put("live", !s.down().contains(n.id()));
                o.put("maintenance", s.maintenance().contains(n.id()));
                o.put("leaders", leaders.getOrDefault(n.id(), 0));
                o.put("drained", s.maintenance().contains(n.id()) && leaders.getOrDefault(n.id(), 0) == 0);
                l.add(o);
            }
            out.println(Json.write(l));
            return 0;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"NODE", "STATUS", "MAINTENANCE", "LEADERS", "DRAINED"});
        for (Node n : s.nodes().values()) {
            boolean m = s.maintenance().contains(n.id());
            int leads = leaders.getOrDefault(n.id(), 0);
            rows.add(new String[] {Integer.toString(n.id()), s.down().contains(n.id()) ? "down" : "up", m ? "yes" : "no",
                Integer.toString(leads), m ? (leads == 0 ? "yes" : "no") : "-"});
        }
        table(rows);
        return 0;
    }

    private org.apache.kafka.clients.admin.QuorumInfo quorum(Admin admin) throws Exception {
        return admin.describeMetadataQuorum().quorumInfo().get(timeoutMs, TimeUnit.MILLISECONDS);
    }

    private static Set<Integer> voterIds(org.apache.kafka.clients.admin.QuorumInfo q) {
        Set<Integer> s = new TreeSet<>();
        q.voters().forEach(v -> s.add(v.replicaId()));
        return s;
    }

    private int controllerStatus(Admin admin) throws Exception {
        Snapshot s = look(admin);
        org.apache.kafka.clients.admin.QuorumInfo q = quorum(admin);
        Set<Integer> wanted = ids(nodeModes(admin).get(NodeModeConfigs.CONTROLLER_VOTERS));
        Set<Integer> voters = voterIds(q);
        boolean settled = voters.equals(wanted);
        long hw = q.highWatermark();
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("leader", q.leaderId());
            o.put("epoch", q.leaderEpoch());
            o.put("high_watermark", hw);
            o.put("voters", new ArrayList<>(voters));
            o.put("wanted_voters", new ArrayList<>(wanted));
            o.put("settled", settled);
            List<Object> members = new ArrayList<>();
            for (var r : q.voters()) {
                members.add(member(r, "voter", q, s));
            }
            for (var r : q.observers()) {
                members.add(member(r, "observer", q, s));
            }
            o.put("members", members);
            out.println(Json.write(o));
            return 0;
        }
        out.println("CONTROLLER");
        out.println("  leader node " + q.leaderId() + ", epoch " + q.leaderEpoch() + ", high watermark " + hw);
        out.println("  voters " + ids(new ArrayList<>(voters)) + (settled ? "" : "; wanted " + ids(new ArrayList<>(wanted))
            + " (changing: a new voter catches up first; a change needing a down node waits)"));
        out.println();
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"NODE", "ROLE", "STATUS", "LOG-END", "LAG"});
        List<org.apache.kafka.clients.admin.QuorumInfo.ReplicaState> all = new ArrayList<>(q.voters());
        all.addAll(q.observers());
        for (var r : all) {
            boolean voter = q.voters().contains(r);
            String role = r.replicaId() == q.leaderId() ? "leader" : voter ? "voter" : "observer";
            rows.add(new String[] {Integer.toString(r.replicaId()), role, s.down().contains(r.replicaId()) ? "down" : "up",
                r.logEndOffset() < 0 ? "-" : Long.toString(r.logEndOffset()),
                r.logEndOffset() < 0 ? "-" : Long.toString(Math.max(0, hw - r.logEndOffset()))});
        }
        table(rows);
        return 0;
    }

    private static Map<String, Object> member(org.apache.kafka.clients.admin.QuorumInfo.ReplicaState r, String role,
                                              org.apache.kafka.clients.admin.QuorumInfo q, Snapshot s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", r.replicaId());
        m.put("role", r.replicaId() == q.leaderId() ? "leader" : role);
        m.put("live", !s.down().contains(r.replicaId()));
        m.put("log_end_offset", r.logEndOffset());
        m.put("last_caught_up_ms", r.lastCaughtUpTimestamp().orElse(-1));
        return m;
    }

    private int controllerVoter(Admin admin, int node, boolean add) throws Exception {
        alterMode(admin, NodeModeConfigs.CONTROLLER_VOTERS, node, add);
        Set<Integer> wanted = ids(nodeModes(admin).get(NodeModeConfigs.CONTROLLER_VOTERS));
        String done = add ? "Node " + node + " votes in the controller" : "Node " + node + " no longer votes in the"
            + " controller";
        if (!waitDone) {
            Set<Integer> voters = voterIds(quorum(admin));
            boolean settled = voters.equals(wanted);
            report(Map.of("node", node, "voter", add, "voters", new ArrayList<>(voters), "wanted_voters",
                new ArrayList<>(wanted), "settled", settled), settled ? done + "; voters " + ids(new ArrayList<>(voters))
                + "." : "Controller voters are changing from " + ids(new ArrayList<>(voters)) + " to "
                + ids(new ArrayList<>(wanted)) + "; see 'isthmus admin controller status'.");
            return 0;
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (true) {
            Set<Integer> voters;
            try {
                voters = voterIds(quorum(admin));
            } catch (ExecutionException e) {
                voters = null; // the leader changes hands during the change: ask again
            }
            if (wanted.equals(voters)) {
                report(Map.of("node", node, "voter", add, "voters", new ArrayList<>(voters), "wanted_voters",
                    new ArrayList<>(wanted), "settled", true), done + "; voters " + ids(new ArrayList<>(voters)) + ".");
                return 0;
            }
            if (System.nanoTime() > deadline) {
                throw new Refused("the controller voters are " + (voters == null ? "unknown" : ids(new ArrayList<>(voters)))
                    + ", not yet " + ids(new ArrayList<>(wanted)) + ", after " + timeoutMs / 1000 + " s (a new voter"
                    + " still catching up, or a change that needs a node that is down; the controller leader's log says"
                    + " which)");
            }
            Thread.sleep(250);
        }
    }

    private int decommission(Admin admin, int node, boolean decommission) throws Exception {
        alterMode(admin, NodeModeConfigs.DECOMMISSION, node, decommission);
        if (decommission && !json && ids(nodeModes(admin).get(NodeModeConfigs.CONTROLLER_VOTERS)).contains(node)) {
            // Its replicas move off; its controller vote does not: that is the operator's call (a voter count to keep).
            err.println("isthmus admin: note: node " + node + " votes in the controller; before stopping it for good,"
                + " make another node a voter ('isthmus admin controller add ID') and remove this one ('isthmus admin"
                + " controller remove " + node + "')");
        }
        if (!decommission) {
            report(Map.of("node", node, "decommissioning", false), "Node " + node + " is recommissioned: the moves off"
                + " it still running were cancelled; it may take new replicas again.");
            return 0;
        }
        if (!waitDone) {
            return decommissionStatus(admin, node, false);
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (true) {
            Snapshot s = look(admin);
            int left = s.replicas().getOrDefault(node, 0);
            if (left == 0) {
                return decommissionStatus(admin, node, false);
            }
            if (System.nanoTime() > deadline) {
                throw new Refused("node " + node + " still holds " + left + " replica(s) after " + timeoutMs / 1000
                    + " s; see 'isthmus admin decommission status " + node + "'");
            }
            Thread.sleep(500);
        }
    }

    private int decommissionStatus(Admin admin, int node, boolean checkKnown) throws Exception {
        Snapshot s = look(admin);
        if (checkKnown && !s.nodes().containsKey(node)) {
            throw new Refused("node " + node + " is not a registered broker");
        }
        int left = s.replicas().getOrDefault(node, 0);
        List<TopicPartition> running = new ArrayList<>();
        s.moves().forEach((tp, m) -> {
            if (m.removingReplicas().contains(node)) {
                running.add(tp);
            }
        });
        boolean on = s.decommission().contains(node);
        String state = !on ? "not decommissioning" : left == 0 ? "done" : "in progress";
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("node", node);
            o.put("decommissioning", on);
            o.put("state", state);
            o.put("replicas_left", left);
            o.put("moves_running", running.size());
            List<String> names = new ArrayList<>();
            running.forEach(tp -> names.add(tp.toString()));
            o.put("moving", names);
            out.println(Json.write(o));
            return 0;
        }
        out.println("Node " + node + ": " + state + " (" + left + " replica(s) left, " + running.size()
            + " move(s) running)");
        if (!running.isEmpty()) {
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"});
            for (TopicPartition tp : running) {
                PartitionReassignment m = s.moves().get(tp);
                rows.add(new String[] {tp.topic(), Integer.toString(tp.partition()), ids(m.replicas()),
                    ids(m.addingReplicas()), ids(m.removingReplicas())});
            }
            table(rows);
        }
        return 0;
    }

    // ------------------------------------------------------------------ output

    private void report(Map<String, Object> fields, String sentence) {
        if (json) {
            out.println(Json.write(new TreeMap<>(fields)));
        } else {
            out.println(sentence);
        }
    }

    private static String ids(List<Integer> l) {
        StringBuilder sb = new StringBuilder();
        for (int v : l) {
            sb.append(sb.isEmpty() ? "" : ",").append(v);
        }
        return sb.isEmpty() ? "-" : sb.toString();
    }

    private static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = b;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** Prints rows as left-aligned columns (rpk's style), indented by two. */
    private void table(List<String[]> rows) {
        int[] w = new int[rows.get(0).length];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                w[i] = Math.max(w[i], r[i].length());
            }
        }
        for (String[] r : rows) {
            StringBuilder sb = new StringBuilder("  ");
            for (int i = 0; i < r.length; i++) {
                sb.append(r[i]);
                if (i < r.length - 1) {
                    sb.append(" ".repeat(w[i] - r[i].length() + 2));
                }
            }
            out.println(sb.toString().stripTrailing());
        }
    }

    /** A JSON writer for the few shapes the commands print: maps, lists, strings, numbers, booleans, null. */
    static final class Json {
        private Json() {
        }

        static String write(Object o) {
            StringBuilder sb = new StringBuilder();
            write(sb, o);
            return sb.toString();
        }

        private static void write(StringBuilder sb, Object o) {
            switch (o) {
                case null -> sb.append("null");
                case Map<?, ?> m -> {
                    sb.append('{');
                    boolean first = true;
                    for (var e : m.entrySet()) {
                        sb.append(first ? "" : ",");
                        first = false;
                        string(sb, String.valueOf(e.getKey()));
                        sb.append(':');
                        write(sb, e.getValue());
                    }
                    sb.append('}');
                }
                case Collection<?> c -> {
                    sb.append('[');
                    boolean first = true;
                    for (Object v : c) {
                        sb.append(first ? "" : ",");
                        first = false;
                        write(sb, v);
                    }
                    sb.append(']');
                }
                case Number n -> sb.append(n);
                case Boolean b -> sb.append(b);
                default -> string(sb, o.toString());
            }
        }

        private static void string(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            sb.append('"');
        }
    }
}
