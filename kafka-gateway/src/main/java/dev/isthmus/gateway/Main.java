package dev.isthmus.gateway;

import dev.isthmus.uring.IoBackend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code isthmus start [options]}: starts a broker in the foreground until SIGTERM/SIGINT, which drains
 * connections, flushes every log and exits 0. Every option can also be given in a {@code --config FILE} of
 * {@code name = value} lines (the option names without the dashes); options on the command line win.
 * Bad configuration prints one sentence and exits 2.
 */
public final class Main {
    static final String USAGE = """
        usage: isthmus start [options]
               isthmus admin [--bootstrap-server HOST:PORT] COMMAND   (cluster status, partitions moves,
                             maintenance, decommission, recommission; 'isthmus admin --help')
          --config FILE            read options from FILE (lines "name = value"; '#' comments); FILE may
                                   also set Kafka's client quota windows quota.window.num (11) and
                                   quota.window.size.seconds (1), and broker defaults of topic configs (log.retention.hours,
                                   log.retention.ms, log.segment.bytes, log.cleanup.policy, message.max.bytes,
                                   compression.type, min.insync.replicas, ...) and num.partitions,
                                   auto.create.topics.enable, socket.request.max.bytes, and the transaction
                                   coordinator's transaction.state.log.num.partitions (50),
                                   transaction.max.timeout.ms (900000), transactional.id.expiration.ms
                                   (604800000), transaction.abort.timed.out.transaction.cleanup.interval.ms
                                   (10000), transaction.remove.expired.transaction.cleanup.interval.ms
                                   (3600000) and transaction.version (2: the feature level advertised)
          --listen HOST:PORT       Kafka listener (default 127.0.0.1:9092)
          --advertise HOST:PORT    address given to clients in Metadata (default: the listener's)
          --listeners NAME://HOST:PORT,...  named Kafka listeners instead of --listen, each with its
                                   security protocol: a listener named PLAINTEXT, SSL, SASL_PLAINTEXT or
                                   SASL_SSL speaks it, others need --listener-security-protocol-map;
                                   Metadata answers with the addresses of the listener a client came in on
          --advertised-listeners NAME://HOST:PORT,...  what clients of each listener are told (default:
                                   the listener's own address)
          --listener-security-protocol-map NAME:PROTOCOL,...  e.g. INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL
          TLS and SASL take Kafka's setting names, in the --config file or as options:
            ssl.keystore.location FILE (PKCS12, JKS or PEM: key and certificate chain), ssl.keystore.type,
            ssl.keystore.password, ssl.key.password, ssl.truststore.location/type/password,
            ssl.client.auth (none, requested, required = mTLS), ssl.enabled.protocols (TLSv1.2,TLSv1.3),
            ssl.cipher.suites, ssl.principal.mapping.rules (DEFAULT), ssl.reload.interval.ms (60000: the
            key and trust files are checked and reloaded without a restart; 0 = never),
            ssl.allow.dn.changes, ssl.allow.san.changes;
            sasl.enabled.mechanisms (PLAIN,SCRAM-SHA-256,SCRAM-SHA-512), connections.max.reauth.ms (0 =
            sessions never end), sasl.server.max.receive.size, connection.failed.authentication.delay.ms;
            sasl.admin.user NAME: a bootstrap user for PLAIN and SCRAM, its password from
            sasl.admin.password or the environment variable ISTHMUS_SASL_ADMIN_PASSWORD (more SCRAM users:
            kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=...]' --entity-type users; they are
            kept in the cluster's replicated state, and one of the bootstrap user's name replaces it);
            OAUTHBEARER (add it to sasl.enabled.mechanisms): sasl.oauthbearer.jwks.endpoint.url https://...
            or file:PATH (the issuer's JSON Web Key Set; RS256/384/512 and ES256/384/512 tokens; fetched
            again every sasl.oauthbearer.jwks.endpoint.refresh.ms, 3600000, and on an unknown key id; an
            https endpoint's certificate is checked against ssl.truststore.location if set, else the JDK's),
            sasl.oauthbearer.expected.audience (a,b), sasl.oauthbearer.expected.issuer,
            sasl.oauthbearer.sub.claim.name (sub), sasl.oauthbearer.clock.skew.seconds (30);
            sasl.oauthbearer.allow.unsecured.tokens B: accept unsigned tokens, for tests only (false)
          TLS between nodes (the --rpc-listen port: replication, controller, markers):
            rpc.security.protocol PLAINTEXT (default) or SSL; rpc.ssl.keystore.location/type/password,
            rpc.ssl.key.password, rpc.ssl.truststore.location/type/password, rpc.ssl.enabled.protocols,
            rpc.ssl.cipher.suites, rpc.ssl.reload.interval.ms, rpc.ssl.allow.dn.changes/san.changes each
            default to the ssl.* setting of the same name; rpc.ssl.client.auth (required: every node
            presents a certificate its peer trusts), rpc.ssl.endpoint.identification.algorithm (https:
            a node's certificate must name the host of its RPC address; empty = no check)
          --data-dir DIR           data directory (default ./data)
          --smp N                  shard threads (default: the CPUs this process may use)
          --memory SIZE            native memory, e.g. 512M, 2G (default 1G): the shards' arenas, mapped in
                                   full at start and faulted in by a background thread once the broker
                                   serves, after 1/8 (16-256 MiB) kept for the JVM's own native memory
          --node-id N              this node's id (default 0)
          --seeds ID@HOST:PORT,... RPC addresses of the controller nodes, the same list on every node
                                   (cluster mode; a plain HOST:PORT is node ID = its position, from 0)
          --rpc-listen HOST:PORT   node-to-node RPC listener (cluster mode; default: none, single node)
          --metrics-listen HOST:PORT  Prometheus metrics and /health over HTTP (default: off)
          --default-partitions N   partitions of auto-created topics (default 1)
          --auto-create-topics B   create topics named in Metadata requests (default true)
          --max-request-bytes SIZE largest request accepted (default 100M); a topic's max.message.bytes may
                                   be at most this less 64 KiB (a produce request carries a whole batch)
          --max-connections N      connections accepted (default 10000)
          --max-connection-buffered-bytes SIZE  unanswered bytes one connection may hold (default 128M); a
                                   Fetch counts its max_bytes before it starts; beyond the bound requests
                                   wait and the broker stops reading from the connection
          --request-receive-timeout DURATION  time a client has to send the whole of a request it
                                   started, e.g. 30s, 500ms (default 30s); time the broker held it
                                   back does not count; a client too slow is disconnected
          --connection-receive-share PERCENT  the part of its shard's receive memory for large
                                   requests one connection may hold (default 50); beyond it the
                                   connection is read no further until its requests are done
          --zeroed-segments N      segment files per shard kept written with zeros for busy logs, so that
                                   their fdatasyncs write no extent metadata (default 1; 0 = none; each
                                   takes a segment's size of disk, 1 GiB, once a log writes in volume)
          --max-partitions-per-shard N  partition replicas each shard may host; CreateTopics and
                                   CreatePartitions beyond N x shards x brokers are refused (default 1000)
          --replica-lag-time-max-ms MS  a follower that has not held its leader's whole log for this long
                                   leaves the in-sync replicas (default 30000; Kafka's replica.lag.time.max.ms)
          --shutdown-handoff-ms MS on SIGTERM in a cluster, hand the leadership of every partition and of the
                                   controller to in-sync followers first, for at most MS (default 10000; 0 = off)
          --max-concurrent-moves N  replica moves off decommissioning nodes run at a time (default 8)
          --auto-leader-rebalance B  give leadership back to each partition's preferred replica once it
                                   is caught up (default true; false: leaders stay until kafka-leader-election)
          --rack NAME              this node's rack (Kafka's broker.rack; default none): new partitions put
                                   their replicas on distinct racks where possible, and consumers with a
                                   matching client.rack fetch from this node's in-sync replicas (KIP-392)
          --partition-balancer B   when a node joins, move replicas from the fullest nodes to the emptiest
                                   until each holds within one of the others, 4 partitions moving at a
                                   time at most (default true)
          --authorizer NAME        enforce Kafka ACLs: 'acl' or Kafka's class name
                                   org.apache.kafka.metadata.authorizer.StandardAuthorizer (as
                                   authorizer.class.name in --config); default none: everything is allowed
                                   and the ACL APIs answer SECURITY_DISABLED
          --super-users PRINCIPALS principals allowed everything, ';'-separated: 'User:admin;User:ops'
                                   (super.users)
          --allow-everyone-if-no-acl-found B  allow requests on resources no ACL names (default false;
                                   allow.everyone.if.no.acl.found)
          --pin                    pin shard threads to CPUs
          --portable               use the portable I/O backend (FileChannel + NIO) instead of io_uring;
                                   without it the broker uses io_uring where the kernel allows it and
                                   falls back to the portable backend with one line saying why
        """;

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        StartupPhases.mainEntered();
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            System.out.print(USAGE);
            System.exit(args.length == 0 ? 2 : 0);
        }
        if (args[0].equals("admin")) {
            AdminCommand.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (!args[0].equals("start")) {
            System.err.println("isthmus: unknown command '" + args[0] + "'; try 'isthmus start', 'isthmus admin --help'"
                + " or 'isthmus --help'");
            System.exit(2);
        }
        BrokerConfig c;
        try {
            c = parse(Arrays.copyOfRange(args, 1, args.length));
        } catch (IllegalArgumentException e) {
            System.err.println("isthmus: " + e.getMessage());
            System.exit(2);
            return;
        }
        if (c == null) {
            System.out.print(USAGE);
            return;
        }
        // The I/O backend: io_uring where it can be used, else the portable one with one line saying why and how
        // to enable io_uring (the probe is a value; it never throws). --portable chooses the portable one.
        IoBackend.Choice io = c.backend().choose();
        if (io.fellBack()) {
            System.err.println("isthmus: " + io.line());
        }
        Broker broker;
        try {
            broker = Broker.start(c);
        } catch (Exception e) {
            System.err.println("isthmus: " + e.getMessage());
            System.exit(1);
            return;
        }
        System.out.println("Isthmus broker " + c.nodeId() + " ready on " + c.host() + ":" + broker.port() + " ("
            + broker.group().size() + " shards on " + (io.backend() == IoBackend.IO_URING ? "io_uring" : "portable I/O")
            + ", " + (c.memoryBytes() >> 20) + " MiB, data in "
            + c.dataDir().toAbsolutePath() + ")" + (broker.metricsPort() > 0
            ? ", metrics on http://" + c.metricsHost() + ":" + broker.metricsPort() + "/metrics" : "")
            + ". Ctrl-C stops it.");
        // SIGTERM and SIGINT hand leaderships to in-sync followers (in a cluster), drain connections, flush and close
        // every log, and exit 0 (a JVM shutdown hook alone would exit 143). A second signal while stopping is
        // ignored; a crash still leaves recoverable logs.
        CountDownLatch stopped = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean stopping = new java.util.concurrent.atomic.AtomicBoolean();
        Runnable stop = () -> {
            if (stopping.compareAndSet(false, true)) {
                broker.shutdown(); // in a cluster, hands its leaderships over first
                System.out.println("Isthmus broker " + c.nodeId() + " stopped cleanly.");
                System.out.flush();
                stopped.countDown();
            }
        };
        for (String name : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> Thread.ofPlatform().name("isthmus-stop")
                .start(stop));
        }
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "isthmus-shutdown"));
        stopped.await();
        System.exit(0);
    }

    /**
     * Parses the options after {@code start}. Returns null for {@code --help}; throws
     * {@link IllegalArgumentException} with one sentence for bad configuration.
     */
    public static BrokerConfig parse(String[] args) {
        Map<String, String> options = new LinkedHashMap<>();
        List<String[]> fromArgs = new ArrayList<>();
        Path configFile = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                return null;
            }
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "' (options start with --)");
            }
            String name = a.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (name.equals("pin") || name.equals("portable")) {
                value = "true";
            } else {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("--" + name + " needs a value");
                }
                value = args[++i];
            }
            if (name.equals("config")) {
                configFile = Path.of(value);
            } else {
                fromArgs.add(new String[] {name, value});
            }
        }
        if (configFile != null) {
            readConfigFile(configFile, options);
        }
        for (String[] kv : fromArgs) {
            options.put(kv[0], kv[1]);
        }
        BrokerConfig.Builder b = BrokerConfig.builder();
        Map<String, String> security = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : options.entrySet()) {
            String key = SECURITY_ALIASES.getOrDefault(e.getKey(), e.getKey());
            if (SECURITY_OPTIONS.contains(key)) {
                security.put(key, e.getValue().trim());
            } else {
                apply(b, e.getKey(), e.getValue().trim());
            }
        }
        BrokerConfig plain = b.build(); // --listen, for --advertised-listeners without --listeners
        b.security(security(security, System.getenv(ADMIN_PASSWORD_ENV), new HostPort(plain.host(), plain.port())));
        return b.build();
    }

    /** The environment variable that may hold the bootstrap SASL user's password (instead of the config file). */
    static final String ADMIN_PASSWORD_ENV = "ISTHMUS_SASL_ADMIN_PASSWORD";

    /** Command-line spellings of the security settings, mapped to Kafka's names (which work as options too). */
    private static final Map<String, String> SECURITY_ALIASES = Map.of(
        "advertised-listeners", "advertised.listeners",
        "listener-security-protocol-map", "listener.security.protocol.map");

    private static final java.util.Set<String> SECURITY_OPTIONS = java.util.Set.of("listeners", "advertised.listeners",
        "listener.security.protocol.map", "ssl.keystore.location", "ssl.keystore.type", "ssl.keystore.password",
        "ssl.key.password", "ssl.truststore.location", "ssl.truststore.type", "ssl.truststore.password",
        "ssl.client.auth", "ssl.enabled.protocols", "ssl.cipher.suites", "ssl.principal.mapping.rules",
        "ssl.reload.interval.ms", "ssl.allow.dn.changes", "ssl.allow.san.changes", "sasl.enabled.mechanisms",
        "connections.max.reauth.ms", "sasl.server.max.receive.size", "connection.failed.authentication.delay.ms",
        "sasl.admin.user", "sasl.admin.password", "sasl.admin.iterations", "sasl.oauthbearer.jwks.endpoint.url",
        "sasl.oauthbearer.jwks.endpoint.refresh.ms", "sasl.oauthbearer.expected.audience",
        "sasl.oauthbearer.expected.issuer", "sasl.oauthbearer.sub.claim.name", "sasl.oauthbearer.clock.skew.seconds",
        "sasl.oauthbearer.allow.unsecured.tokens", "rpc.security.protocol", "rpc.ssl.keystore.location",
        "rpc.ssl.keystore.type", "rpc.ssl.keystore.password", "rpc.ssl.key.password", "rpc.ssl.truststore.location",
        "rpc.ssl.truststore.type", "rpc.ssl.truststore.password", "rpc.ssl.client.auth", "rpc.ssl.enabled.protocols",
        "rpc.ssl.cipher.suites", "rpc.ssl.reload.interval.ms", "rpc.ssl.allow.dn.changes", "rpc.ssl.allow.san.changes",
        "rpc.ssl.endpoint.identification.algorithm");

    /** Builds the security settings from Kafka-named options; {@code envPassword} is the admin password's fallback. */
    static dev.isthmus.gateway.security.SecuritySettings security(Map<String, String> o, String envPassword,
                                                                  HostPort listen) {
        var d = dev.isthmus.gateway.security.SecuritySettings.DEFAULTS;
        List<dev.isthmus.gateway.security.ListenerConfig> listeners = List.of();
        if (o.containsKey("listeners")) {
            listeners = dev.isthmus.gateway.security.ListenerConfig.parse(o.get("listeners"),
                o.get("advertised.listeners"), o.get("listener.security.protocol.map"));
        } else if (o.containsKey("advertised.listeners") || o.containsKey("listener.security.protocol.map")) {
            // Without --listeners they apply to the one listener of --listen, named PLAINTEXT (map entries for other
            // names are allowed, as Kafka allows them).
            listeners = List.of(dev.isthmus.gateway.security.ListenerConfig.parse("PLAINTEXT://" + hostForUrl(listen)
                + ":" + listen.port(), o.get("advertised.listeners"), o.get("listener.security.protocol.map")).get(0));
        }
        var tls = tls(o::get, "", d.tls().clientAuth());
        var a = d.sasl();
        String password = o.containsKey("sasl.admin.password") ? o.get("sasl.admin.password") : envPassword;
        var sasl = new dev.isthmus.gateway.security.SaslSettings(
            o.containsKey("sasl.enabled.mechanisms") ? list(o.get("sasl.enabled.mechanisms")) : a.enabledMechanisms(),
            o.containsKey("connections.max.reauth.ms") ? longValue("connections.max.reauth.ms",
                o.get("connections.max.reauth.ms")) : a.reauthMs(),
            o.containsKey("sasl.server.max.receive.size") ? integer("sasl.server.max.receive.size",
                o.get("sasl.server.max.receive.size")) : a.maxReceiveBytes(),
            o.containsKey("connection.failed.authentication.delay.ms") ? longValue(
                "connection.failed.authentication.delay.ms", o.get("connection.failed.authentication.delay.ms"))
                : a.failedAuthDelayMs(),
            o.get("sasl.admin.user"), o.containsKey("sasl.admin.user") ? password : null,
            o.containsKey("sasl.admin.iterations") ? integer("sasl.admin.iterations", o.get("sasl.admin.iterations"))
                : a.adminIterations(), oauthBearer(o));
        return new dev.isthmus.gateway.security.SecuritySettings(listeners, tls, sasl, rpcTls(o));
    }

    /**
     * TLS settings by Kafka's names: {@code get} looks a name up (null = unset), {@code prefix} is put before each
     * name in error messages, {@code clientAuth} is the default of {@code ssl.client.auth}.
     */
    private static dev.isthmus.gateway.security.TlsSettings tls(java.util.function.Function<String, String> get,
                                                                String prefix,
                                                                dev.isthmus.gateway.security.TlsSettings.ClientAuth
                                                                    clientAuth) {
        var t = dev.isthmus.gateway.security.TlsSettings.DEFAULTS;
        String keystore = get.apply("ssl.keystore.location");
        String truststore = get.apply("ssl.truststore.location");
        String auth = get.apply("ssl.client.auth");
        String protocols = get.apply("ssl.enabled.protocols");
        String ciphers = get.apply("ssl.cipher.suites");
        String reload = get.apply("ssl.reload.interval.ms");
        String dn = get.apply("ssl.allow.dn.changes");
        String san = get.apply("ssl.allow.san.changes");
        String rules = get.apply("ssl.principal.mapping.rules");
        return new dev.isthmus.gateway.security.TlsSettings(
            keystore != null ? Path.of(keystore) : null,
            get.apply("ssl.keystore.type"), get.apply("ssl.keystore.password"), get.apply("ssl.key.password"),
            truststore != null ? Path.of(truststore) : null,
            get.apply("ssl.truststore.type"), get.apply("ssl.truststore.password"),
            auth != null ? dev.isthmus.gateway.security.TlsSettings.ClientAuth.parse(auth) : clientAuth,
            protocols != null ? list(protocols) : t.enabledProtocols(),
            ciphers != null ? list(ciphers) : t.cipherSuites(),
            rules != null ? rules : t.principalMappingRules(),
            reload != null ? integer(prefix + "ssl.reload.interval.ms", reload) : t.reloadIntervalMs(),
            dn != null && bool(prefix + "ssl.allow.dn.changes", dn),
            san != null && bool(prefix + "ssl.allow.san.changes", san));
    }

    /**
     * The RPC port's TLS ({@code rpc.security.protocol=SSL}): each {@code rpc.ssl.X} setting, else the listeners'
     * {@code ssl.X}; client auth defaults to required (mutual TLS between nodes). Null for PLAINTEXT (the default).
     */
    private static dev.isthmus.gateway.security.RpcTlsSettings rpcTls(Map<String, String> o) {
        String protocol = o.getOrDefault("rpc.security.protocol", "PLAINTEXT").trim().toUpperCase(Locale.ROOT);
        switch (protocol) {
            case "PLAINTEXT" -> {
                for (String k : o.keySet()) {
                    if (k.startsWith("rpc.ssl.")) {
                        throw new IllegalArgumentException(k + " is set but rpc.security.protocol is PLAINTEXT (set"
                            + " rpc.security.protocol=SSL for TLS between nodes)");
                    }
                }
                return null;
            }
            case "SSL" -> {
                java.util.function.Function<String, String> get = k -> {
                    if (k.equals("ssl.principal.mapping.rules")) {
                        return null; // a peer node's certificate maps to no principal
                    }
                    String v = o.get("rpc." + k);
                    if (v != null || k.equals("ssl.client.auth")) {
                        return v;
                    }
                    return o.get(k);
                };
                return new dev.isthmus.gateway.security.RpcTlsSettings(tls(get, "rpc.",
                    dev.isthmus.gateway.security.TlsSettings.ClientAuth.REQUIRED),
                    o.getOrDefault("rpc.ssl.endpoint.identification.algorithm", "https"));
            }
            default -> throw new IllegalArgumentException("rpc.security.protocol must be PLAINTEXT or SSL, got '"
                + o.get("rpc.security.protocol") + "'");
        }
    }

    /** OAUTHBEARER's settings from Kafka's {@code sasl.oauthbearer.*} names. */
    private static dev.isthmus.gateway.security.OAuthBearerSettings oauthBearer(Map<String, String> o) {
        var d = dev.isthmus.gateway.security.OAuthBearerSettings.DEFAULTS;
        String url = o.get("sasl.oauthbearer.jwks.endpoint.url");
        boolean https = url != null && dev.isthmus.gateway.security.OAuthBearerSettings.isHttps(url);
        return new dev.isthmus.gateway.security.OAuthBearerSettings(
            url != null && !https ? dev.isthmus.gateway.security.OAuthBearerSettings.jwksFile(url) : d.jwksFile(),
            o.containsKey("sasl.oauthbearer.jwks.endpoint.refresh.ms") ? longValue(
                "sasl.oauthbearer.jwks.endpoint.refresh.ms", o.get("sasl.oauthbearer.jwks.endpoint.refresh.ms"))
                : d.jwksRefreshMs(),
            o.containsKey("sasl.oauthbearer.expected.audience") ? list(o.get("sasl.oauthbearer.expected.audience"))
                : d.expectedAudience(),
            o.getOrDefault("sasl.oauthbearer.expected.issuer", d.expectedIssuer()),
            o.getOrDefault("sasl.oauthbearer.sub.claim.name", d.subClaimName()),
            o.containsKey("sasl.oauthbearer.clock.skew.seconds") ? integer("sasl.oauthbearer.clock.skew.seconds",
                o.get("sasl.oauthbearer.clock.skew.seconds")) : d.clockSkewSeconds(),
            o.containsKey("sasl.oauthbearer.allow.unsecured.tokens") && bool("sasl.oauthbearer.allow.unsecured.tokens",
                o.get("sasl.oauthbearer.allow.unsecured.tokens")),
            https ? dev.isthmus.gateway.security.OAuthBearerSettings.jwksUrl(url) : null);
    }

    private static List<String> list(String v) {
        List<String> out = new ArrayList<>();
        for (String x : v.split(",")) {
            if (!x.isBlank()) {
                out.add(x.trim());
            }
        }
        return out;
    }

    private static long longValue(String option, String v) {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + option + " expects a whole number, got '" + v + "'");
        }
    }

    private static void readConfigFile(Path file, Map<String, String> into) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read config file " + file + ": " + e.getMessage());
        }
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int eq = line.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException(file + " line " + (n + 1) + ": expected 'name = value', got '"
                    + line + "'");
            }
            String name = line.substring(0, eq).strip();
            if (name.startsWith("--")) {
                name = name.substring(2);
            }
            into.put(name, line.substring(eq + 1).strip());
        }
    }

    private static void apply(BrokerConfig.Builder b, String name, String v) {
        switch (name) {
            case "listen" -> {
                HostPort hp = hostPort(name, v);
                b.host(hp.host).port(hp.port);
            }
            case "advertise" -> {
                HostPort hp = hostPort(name, v);
                b.advertised(hp.host, hp.port);
            }
            case "metrics-listen" -> {
                HostPort hp = hostPort(name, v);
                b.metrics(hp.host, hp.port);
            }
            case "rpc-listen" -> {
                HostPort hp = hostPort(name, v);
                b.rpc(hp.host, hp.port);
            }
            case "seeds" -> {
                List<String> seeds = new ArrayList<>();
                for (String s : v.split(",")) {
                    if (!s.isBlank()) {
                        String entry = s.trim();
                        int at = entry.indexOf('@');
                        String id = Integer.toString(seeds.size());
                        if (at >= 0) {
                            id = entry.substring(0, at);
                            entry = entry.substring(at + 1);
                            if (!id.matches("[0-9]{1,9}")) {
                                throw new IllegalArgumentException("--seeds entry '" + s.trim()
                                    + "' has a bad node id; expected ID@HOST:PORT");
                            }
                        }
                        HostPort hp = hostPort(name, entry);
                        seeds.add(id + "@" + hp.host + ":" + hp.port);
                    }
                }
                b.seeds(seeds);
            }
            case "data-dir", "data" -> b.dataDir(Path.of(v));
            case "smp" -> b.shards(integer(name, v));
            case "memory" -> b.memoryBytes(parseBytes(name, v));
            case "node-id" -> b.nodeId(integer(name, v));
            case "default-partitions" -> b.defaultPartitions(integer(name, v));
            case "auto-create-topics" -> b.autoCreateTopics(bool(name, v));
            case "max-request-bytes" -> b.maxRequestBytes(Math.toIntExact(Math.min(parseBytes(name, v),
                Integer.MAX_VALUE)));
            case "max-connections" -> b.maxConnections(integer(name, v));
            case "max-connection-buffered-bytes" -> b.maxConnectionBufferedBytes(parseBytes(name, v));
            case "pin" -> b.pin(bool(name, v));
            case "zeroed-segments" -> b.zeroedSegments(integer(name, v));
            case "max-partitions-per-shard" -> b.maxPartitionsPerShard(integer(name, v));
            case "replica-lag-time-max-ms", "replica.lag.time.max.ms" -> b.replicaLagTimeMaxMs(integer(name, v));
            case "shutdown-handoff-ms" -> b.shutdownHandoffMs(integer(name, v));
            case "max-concurrent-moves" -> b.maxConcurrentMoves(integer(name, v));
            case "auto-leader-rebalance" -> b.autoLeaderRebalance(bool(name, v));
            case "rack", "broker.rack" -> b.rack(v);
            case "partition-balancer" -> b.partitionBalancer(bool(name, v));
            case "request-receive-timeout" -> b.requestReceiveTimeoutMs(parseMillis(name, v));
            case "connection-receive-share" -> b.connectionReceiveSharePercent(integer(name, v.endsWith("%")
                ? v.substring(0, v.length() - 1) : v));
            case "authorizer", "authorizer.class.name" ->
                b.authorizer(b.authorizer.withEnabled(dev.isthmus.gateway.auth.AuthorizerConfig.parseAuthorizer(name, v)));
            case "super-users", "super.users" ->
                b.authorizer(b.authorizer.withSuperUsers(dev.isthmus.gateway.auth.AuthorizerConfig.parseSuperUsers(v)));
            case "allow-everyone-if-no-acl-found", "allow.everyone.if.no.acl.found" ->
                b.authorizer(b.authorizer.withAllowEveryoneIfNoAclFound(bool(name, v)));
            case "portable" -> b.backend(bool(name, v) ? IoBackend.PORTABLE : IoBackend.AUTO);
            // Older spellings kept so existing scripts still work.
            case "port" -> b.port(integer(name, v));
            case "host" -> b.host(v);
            // Kafka's names for the same settings, so a server.properties line can be kept as it is.
            case "num.partitions" -> b.defaultPartitions(integer(name, v));
            case "quota.window.num" -> b.quotaWindowSamples(integer(name, v));
            case "quota.window.size.seconds" -> b.quotaWindowSeconds(integer(name, v));
            case "auto.create.topics.enable" -> b.autoCreateTopics(bool(name, v));
            case "socket.request.max.bytes" -> b.maxRequestBytes(integer(name, v));
            default -> {
                if (dev.isthmus.gateway.txn.TxnConfig.NAMES.contains(name)) {
                    b.transactionSetting(name, v); // transaction.max.timeout.ms, transactional.id.expiration.ms, ...
                    return;
                }
                if (!TopicConfigs.BY_BROKER_NAME.containsKey(name)) {
                    throw new IllegalArgumentException("unknown option --" + name + " (see isthmus --help)");
                }
                b.topicDefault(name, v); // a broker default of a topic config (log.retention.hours, ...)
            }
        }
    }

    private record HostPort(String host, int port) {
    }

    private static String hostForUrl(HostPort hp) {
        return hp.host().contains(":") ? "[" + hp.host() + "]" : hp.host();
    }

    private static HostPort hostPort(String option, String v) {
        int colon = v.lastIndexOf(':');
        if (colon <= 0 || colon == v.length() - 1) {
            throw new IllegalArgumentException("--" + option + " expects HOST:PORT, got '" + v + "'");
        }
        String host = v.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port = integer(option, v.substring(colon + 1));
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--" + option + " port must be in [0, 65535], got " + port);
        }
        return new HostPort(host, port);
    }

    private static int integer(String option, String v) {
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + option + " expects a whole number, got '" + v + "'");
        }
    }

    private static boolean bool(String option, String v) {
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "true", "yes", "on", "1" -> true;
            case "false", "no", "off", "0" -> false;
            default -> throw new IllegalArgumentException("--" + option + " expects true or false, got '" + v + "'");
        };
    }

    /** 30s, 500ms, 2m, or a whole number of milliseconds. */
    static long parseMillis(String option, String s) {
        String v = s.trim().toLowerCase(Locale.ROOT);
        long mul = 1;
        if (v.endsWith("ms")) {
            v = v.substring(0, v.length() - 2);
        } else if (v.endsWith("s")) {
            mul = 1000;
            v = v.substring(0, v.length() - 1);
        } else if (v.endsWith("m")) {
            mul = 60_000;
            v = v.substring(0, v.length() - 1);
        }
        try {
            long n = Long.parseLong(v.trim());
            if (n <= 0) {
                throw new IllegalArgumentException("--" + option + " must be positive, got '" + s + "'");
            }
            return Math.multiplyExact(n, mul);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("--" + option + " expects a duration like 30s or 500ms, got '" + s + "'");
        }
    }

    /** 512M, 2G, 64k, 1073741824. */
    static long parseBytes(String option, String s) {
        String v = s.trim().toUpperCase(Locale.ROOT);
        if (v.endsWith("B")) {
            v = v.substring(0, v.length() - 1);
        }
        if (v.endsWith("I")) {
            v = v.substring(0, v.length() - 1);
        }
        long mul = 1;
        if (v.endsWith("K")) {
            mul = 1L << 10;
        } else if (v.endsWith("M")) {
            mul = 1L << 20;
        } else if (v.endsWith("G")) {
            mul = 1L << 30;
        } else if (v.endsWith("T")) {
            mul = 1L << 40;
        }
        if (mul != 1) {
            v = v.substring(0, v.length() - 1);
        }
        try {
            long n = Long.parseLong(v.trim());
            if (n <= 0) {
                throw new IllegalArgumentException("--" + option + " must be positive, got '" + s + "'");
            }
            return Math.multiplyExact(n, mul);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("--" + option + " expects a size like 512M or 2G, got '" + s + "'");
        }
    }
}
