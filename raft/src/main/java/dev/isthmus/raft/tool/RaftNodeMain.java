package dev.isthmus.raft.tool;

import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.server.RaftException;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.RaftServerConfig;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.raft.server.StoragePools;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A Raft node as a process, for real-process tests and manual experiments: a {@link RaftServer} on its own
 * shard group hosting {@code --groups} replicated logs (groups 1..G, voters = every node) and a line protocol on
 * {@code --client} for a test client. The controller (cluster metadata) is the Kafka layer's and is not hosted
 * here; kafka-gateway's process tests cover it across processes.
 *
 * <pre>
 *   java --enable-native-access=ALL-UNNAMED -cp ... dev.isthmus.raft.tool.RaftNodeMain \
 *       --id 0 --rpc 127.0.0.1:7000 --client 127.0.0.1:7100 --peers 0=127.0.0.1:7000,1=...,2=... \
 *       --data /tmp/n0 [--shards 2] [--groups 1] [--cluster raft-test] \
 *       [--heartbeat-ms 50] [--election-ms 300,600]
 *
 *   PUT g value         -> OK offset | ERR code leader message     (replicates one record; pipelining allowed)
 *   STATUS g            -> STATUS role term leader highWatermark logEnd
 *   SCAN g from max     -> V offset value ... then END next        (committed entries only)
 *   METRICS             -> METRICS transport counters
 * </pre>
 * Prints {@code READY rpc=<port> client=<port>} once both ports listen. SIGTERM closes everything cleanly;
 * tests also kill it with SIGKILL and pause it with SIGSTOP. The client protocol runs on plain threads: it is
 * test scaffolding, not a data path.
 */
public final class RaftNodeMain {
    private final RaftServer server;
    private final ShardGroup shards;
    private final int groups;

    private RaftNodeMain(RaftServer server, ShardGroup shards, int groups) {
        this.server = server;
        this.shards = shards;
        this.groups = groups;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        int id = Integer.parseInt(required(a, "id"));
        InetSocketAddress rpc = address(required(a, "rpc"));
        InetSocketAddress client = address(required(a, "client"));
        Map<Integer, InetSocketAddress> peers = new HashMap<>();
        for (String p : required(a, "peers").split(",")) {
            String[] kv = p.split("=", 2);
            if (kv.length != 2) {
                throw usage("--peers takes id=host:port,... (got '" + p + "')");
            }
            peers.put(Integer.parseInt(kv[0].trim()), address(kv[1].trim()));
        }
        peers.remove(id);
        int shardCount = Integer.parseInt(a.getOrDefault("shards", "2"));
        int groups = Integer.parseInt(a.getOrDefault("groups", "1"));
        String cluster = a.getOrDefault("cluster", "raft-test");
        long heartbeat = Long.parseLong(a.getOrDefault("heartbeat-ms", "50"));
        String[] election = a.getOrDefault("election-ms", "300,600").split(",");
        RaftConfig raft = RaftConfig.builder().heartbeatIntervalMs(heartbeat)
            .electionTimeoutMs(Long.parseLong(election[0]), Long.parseLong(election[1]))
            .retransmitTimeoutMs(Math.max(4 * heartbeat, 100)).build();
        Set<Integer> all = new TreeSet<>(peers.keySet());
        all.add(id);
        RaftServerConfig config = RaftServerConfig.of(id, cluster, rpc, peers, Set.of(),
                Path.of(required(a, "data")))
            .withRaft(raft)
            .withTransport(TransportConfig.defaults(cluster).withTimeouts(1000, heartbeat,
                Math.max(2000, 3 * Long.parseLong(election[1]))).withBackoff(20, 500))
            .withLog(LogConfig.defaults().withSegmentBytes(8L << 20).withFallocateStep(1L << 20),
                LogEngineRaftLog.Options.defaults());
        ShardGroup shards = ShardGroup.start(ShardGroupConfig.of(shardCount).withPin(false), null);
        RaftServer server = RaftServer.start(shards, config, StoragePools.allocate(shardCount, 32, 256 * 1024, 4,
            config.logConfig().readWindowBytes()));
        RaftNodeMain node = new RaftNodeMain(server, shards, groups);
        int[] voters = all.stream().mapToInt(Integer::intValue).toArray();
        for (long g = 1; g <= groups; g++) {
            long gid = g;
            server.onShard(node.shardOf(g), s -> s.addGroup(gid, Configuration.ofVoters(voters), StateMachine.NONE,
                GroupListener.NONE)).get(60, TimeUnit.SECONDS);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            shards.close();
        }, "raft-node-shutdown"));
        ServerSocket listener = new ServerSocket();
        listener.bind(client);
        System.out.println("READY rpc=" + server.rpcAddress().getPort() + " client=" + listener.getLocalPort());
        System.out.flush();
        while (true) {
            Socket s = listener.accept();
            Thread t = new Thread(() -> node.serve(s), "client-" + s.getPort());
            t.setDaemon(true);
            t.start();
        }
    }

    int shardOf(long group) {
        return (int) (group % shards.size());
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw usage("unexpected argument '" + args[i] + "'");
            }
            String k = args[i].substring(2);
            if (i + 1 < args.length) {
                m.put(k, args[++i]);
            } else {
                throw usage("--" + k + " needs a value");
            }
        }
        return m;
    }

    private static String required(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) {
            throw usage("--" + k + " is required");
        }
        return v;
    }

    private static InetSocketAddress address(String hp) {
        int c = hp.lastIndexOf(':');
        if (c < 0) {
            throw usage("'" + hp + "' is not host:port");
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(hp.substring(0, c)), Integer.parseInt(hp.substring(c + 1)));
        } catch (IOException | NumberFormatException e) {
            throw usage("'" + hp + "' is not host:port: " + e.getMessage());
        }
    }

    private static IllegalArgumentException usage(String problem) {
        return new IllegalArgumentException(problem + "; usage: RaftNodeMain --id N --rpc host:port --client host:port"
            + " --peers id=host:port,... --data DIR [--shards N] [--groups N] [--cluster NAME]"
            + " [--heartbeat-ms N] [--election-ms MIN,MAX]");
    }

    // ===================================================================================== client protocol

    /** Reads commands, runs them (several at once), writes the answers in order. */
    private void serve(Socket s) {
        BlockingQueue<CompletableFuture<String>> answers = new ArrayBlockingQueue<>(1024);
        Thread writer = new Thread(() -> {
            try (BufferedWriter out = new BufferedWriter(new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8))) {
                while (true) {
                    CompletableFuture<String> f = answers.take();
                    String line;
                    try {
                        line = f.get();
                    } catch (Exception e) {
                        line = "ERR -100 -1 " + oneLine(e.getCause() != null ? e.getCause() : e);
                    }
                    if (line == null) {
                        return;
                    }
                    out.write(line);
                    out.write('\n');
                    if (answers.isEmpty()) {
                        out.flush();
                    }
                }
            } catch (IOException | InterruptedException e) {
                // client went away
            }
        }, "client-writer-" + s.getPort());
        writer.setDaemon(true);
        writer.start();
        try (s; BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                answers.put(run(line.trim()));
            }
        } catch (IOException | InterruptedException e) {
            // client went away
        } finally {
            answers.offer(CompletableFuture.completedFuture(null));
        }
    }

    private static String oneLine(Throwable t) {
        return String.valueOf(t.getMessage()).replace('\n', ' ');
    }

    private CompletableFuture<String> run(String line) {
        String[] w = line.split(" ", 3);
        try {
            return switch (w[0]) {
                case "PUT" -> put(Long.parseLong(w[1]), w.length > 2 ? w[2] : "");
                case "STATUS" -> status(Long.parseLong(w[1]));
                case "SCAN" -> {
                    String[] r = line.split(" ");
                    yield scan(Long.parseLong(r[1]), Long.parseLong(r[2]), Integer.parseInt(r[3]));
                }
                case "METRICS" -> server.transportMetrics().thenApply(m -> "METRICS " + m);
                default -> CompletableFuture.completedFuture("ERR -101 -1 unknown command '" + w[0] + "'");
            };
        } catch (RuntimeException e) {
            return CompletableFuture.completedFuture("ERR -102 -1 bad command '" + line + "': " + oneLine(e));
        }
    }

    private void checkGroup(long g) {
        if (g < 1 || g > groups) {
            throw new IllegalArgumentException("group " + g + " is not hosted (1.." + groups + ")");
        }
    }

    private CompletableFuture<String> put(long g, String value) {
        checkGroup(g);
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        return server.onShard(shardOf(g), s -> {
            ReplicatedLog rl = s.group(g);
            return rl.replicate(KafkaBatchPayload.ofValues(System.currentTimeMillis(), v))
                .map(base -> "OK " + base)
                .recover(t -> t instanceof RaftException re ? "ERR " + re.code() + " " + re.leaderId() + " "
                    + oneLine(re) : "ERR -100 -1 " + oneLine(t));
        });
    }

    private CompletableFuture<String> status(long g) {
        checkGroup(g);
        return server.onShard(shardOf(g), s -> {
            ReplicatedLog rl = s.group(g);
            return Promise.completed("STATUS " + rl.raft().role() + " " + rl.term() + " " + rl.leaderId() + " "
                + rl.highWatermark() + " " + rl.logEndOffset());
        });
    }

    /** Committed data records from {@code from}: one line per record, then END with the next offset to ask. */
    private CompletableFuture<String> scan(long g, long from, int max) {
        checkGroup(g);
        return server.onShard(shardOf(g), s -> {
            ReplicatedLog rl = s.group(g);
            long hw = rl.highWatermark();
            long start = Math.max(from, rl.log().logStartOffset());
            if (start >= hw) {
                return Promise.completed("END " + start);
            }
            Promise<String> p = new Promise<>();
            rl.log().read(start, hw, 1 << 20, new dev.isthmus.log.Log.ReadHandler() {
                @Override
                public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                    StringBuilder b = new StringBuilder();
                    long next = start;
                    long pos = 0;
                    int n = 0;
                    RecordBatch batch = new RecordBatch();
                    Records records = new Records();
                    while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize() && n < max) {
                        batch.wrap(bytes, pos);
                        if (!batch.isControl() && records.wrap(batch)) {
                            while (records.next()) {
                                if (records.offset() >= start) {
                                    MemorySegment v = records.value();
                                    b.append("V ").append(records.offset()).append(' ')
                                        .append(v == null ? "" : new String(v.toArray(ValueLayout.JAVA_BYTE),
                                            StandardCharsets.UTF_8)).append('\n');
                                    n++;
                                }
                            }
                        }
                        next = batch.lastOffset() + 1;
                        pos += batch.sizeInBytes();
                    }
                    p.complete(b.append("END ").append(Math.max(next, start)).toString());
                }

                @Override
                public void onError(LogException error) {
                    p.complete("ERR -103 -1 " + oneLine(error));
                }
            });
            return p;
        });
    }
}
