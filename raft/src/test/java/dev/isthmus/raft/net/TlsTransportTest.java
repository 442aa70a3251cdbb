package dev.isthmus.raft.net;

import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transport over mutual TLS between two nodes in one JVM (two shard groups): RPC requests of 1 byte to 3 MiB
 * (frames spanning many TLS records and several ciphertext sends) cross and come back intact, in both directions;
 * the RPC port refuses a plaintext peer and a TLS client without a certificate, and completes a handshake with a
 * trusted certificate. The key is made at test time with keytool (EC P-256, SAN 127.0.0.1).
 */
@Timeout(120)
class TlsTransportTest {
    private static final String PASSWORD = "test-only-password";
    private static final int ECHO = 77;

    private final ShardGroup[] groups = new ShardGroup[2];
    private final RaftTransport[] nodes = new RaftTransport[2];
    private ExecutorService tasks;

    @AfterEach
    void tearDown() {
        for (int i = 0; i < 2; i++) {
            if (nodes[i] != null) {
                nodes[i].close();
            }
            if (groups[i] != null) {
                groups[i].close();
            }
        }
        if (tasks != null) {
            tasks.shutdownNow();
        }
    }

    static Path keyStore(Path dir) throws Exception {
        Path ks = dir.resolve("node.p12");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
            "-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=node,O=isthmus",
            "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-keystore", ks.toString(), "-storetype", "PKCS12",
            "-storepass", PASSWORD).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "keytool: " + out);
        return ks;
    }

    static SSLContext context(Path ks) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(ks)) {
            store.load(in, PASSWORD.toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(store, PASSWORD.toCharArray());
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(store); // the self-signed certificate trusts itself
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    /** Mutual TLS, TLS 1.3 or 1.2 as given, with the client checking the peer's address against the certificate. */
    static TransportTls tls(SSLContext ctx, ExecutorService tasks, String protocol) {
        return new TransportTls() {
            @Override
            public SSLEngine serverEngine() {
                SSLEngine e = ctx.createSSLEngine();
                e.setUseClientMode(false);
                e.setNeedClientAuth(true);
                e.setEnabledProtocols(new String[] {protocol});
                return e;
            }

            @Override
            public SSLEngine clientEngine(InetSocketAddress peer) {
                SSLEngine e = ctx.createSSLEngine(peer.getHostString(), peer.getPort());
                e.setUseClientMode(true);
                SSLParameters p = e.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                p.setProtocols(new String[] {protocol});
                e.setSSLParameters(p);
                return e;
            }

            @Override
            public java.util.concurrent.Executor tasks() {
                return tasks;
            }
        };
    }

    /** Starts two nodes with two shards each; node 1 knows node 0's address and dials it. */
    private void startNodes(TransportTls tls) throws Exception {
        TransportConfig config = TransportConfig.defaults("tls-test").withTimeouts(2000, 100, 10_000);
        for (int i = 0; i < 2; i++) {
            groups[i] = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null);
        }
        nodes[0] = RaftTransport.start(groups[0], 0, config, new InetSocketAddress("127.0.0.1", 0), null, Map.of(),
            id -> m -> { }, tls);
        nodes[1] = RaftTransport.start(groups[1], 1, config, new InetSocketAddress("127.0.0.1", 0), null,
            Map.of(0, nodes[0].boundAddress()), id -> m -> { }, tls);
        // Each node echoes requests of service ECHO from shard 1.
        for (int n = 0; n < 2; n++) {
            RaftTransport t = nodes[n];
            groups[n].call(1, s -> {
                ShardTransport st = t.onShard(1);
                st.registerService(ECHO, new ShardTransport.RpcHandler() {
                    @Override
                    public void onRequest(RpcMessage r) {
                        st.sendRpc(r.reply(0, r.body()));
                    }
                }, true);
                return null;
            }).get(10, TimeUnit.SECONDS);
        }
    }

    /** Sends {@code bodies} from node {@code from}'s shard 0 to the other node and waits for every echo. */
    private void echo(int from, List<byte[]> bodies) throws Exception {
        Map<Long, byte[]> answers = new ConcurrentHashMap<>();
        RaftTransport t = nodes[from];
        int to = 1 - from;
        groups[from].call(0, s -> {
            t.onShard(0).registerService(ECHO, new ShardTransport.RpcHandler() {
                @Override
                public void onResponse(RpcMessage r) {
                    answers.put(r.requestId(), r.body());
                }
            }, false);
            return null;
        }).get(10, TimeUnit.SECONDS);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (answers.size() < bodies.size()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("node " + from + " got " + answers.size() + " of " + bodies.size()
                    + " echoes; metrics " + t.metrics().get(10, TimeUnit.SECONDS));
            }
            // RPCs before the connection is up are dropped: send what is missing again.
            groups[from].call(0, s -> {
                for (int i = 0; i < bodies.size(); i++) {
                    if (!answers.containsKey((long) i)) {
                        t.onShard(0).sendRpc(new RpcMessage(from, to, false, ECHO, 0, i, 0, bodies.get(i)));
                    }
                }
                return null;
            }).get(10, TimeUnit.SECONDS);
            Thread.sleep(200);
        }
        for (int i = 0; i < bodies.size(); i++) {
            assertArrayEquals(bodies.get(i), answers.get((long) i), "echo of request " + i);
        }
    }

    private static List<byte[]> bodies(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] sizes = {1, 100, 16 * 1024 - 30, 16 * 1024 + 7, 70_000, 300_000, 3 << 20};
        return Arrays.stream(sizes).mapToObj(n -> {
            byte[] b = new byte[n];
            for (int i = 0; i < n; i++) {
                b[i] = (byte) r.nextInt();
            }
            return b;
        }).toList();
    }

    @Test
    void shouldCarryRpcBothWaysOverMutualTls13(@TempDir Path dir) throws Exception {
        tasks = Executors.newFixedThreadPool(2);
        SSLContext ctx = context(keyStore(dir));
        startNodes(tls(ctx, tasks, "TLSv1.3"));
        echo(1, bodies(1));
        echo(0, bodies(2));
        TransportMetrics m = nodes[0].metrics().get(10, TimeUnit.SECONDS);
        assertEquals(0, m.corruptFrames(), m.toString());
    }

    @Test
    void shouldCarryRpcOverTls12(@TempDir Path dir) throws Exception {
        tasks = Executors.newFixedThreadPool(2);
        SSLContext ctx = context(keyStore(dir));
        startNodes(tls(ctx, tasks, "TLSv1.2"));
        echo(1, bodies(3));
    }

    @Test
    void shouldRefuseAPlaintextPeerAndAClientWithoutCertificateOnTheRpcPort(@TempDir Path dir) throws Exception {
        tasks = Executors.newFixedThreadPool(2);
        SSLContext ctx = context(keyStore(dir));
        startNodes(tls(ctx, tasks, "TLSv1.3"));
        InetSocketAddress rpc = nodes[0].boundAddress();
        // A plaintext peer's hello is not a TLS record: the node answers with a TLS alert at most, and closes.
        try (Socket s = new Socket(rpc.getAddress(), rpc.getPort())) {
            s.setSoTimeout(30_000);
            s.getOutputStream().write(TransportFrames.encode(new TransportFrames.Hello(5, 0, 1, "tls-test",
                "127.0.0.1", 1)));
            byte[] answer = s.getInputStream().readAllBytes(); // until the node closes
            assertTrue(answer.length == 0 || answer[0] == 21, "at most a TLS alert record (type 21), never a hello: "
                + Arrays.toString(answer));
        } catch (java.net.SocketException reset) {
            // closed with a reset: refused as well
        }
        // A TLS client that trusts the node but has no certificate of its own fails the handshake (mutual TLS).
        SSLContext trustOnly = SSLContext.getInstance("TLS");
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(dir.resolve("node.p12"))) {
            store.load(in, PASSWORD.toCharArray());
        }
        tmf.init(store);
        trustOnly.init(null, tmf.getTrustManagers(), null);
        try (SSLSocket s = (SSLSocket) trustOnly.getSocketFactory().createSocket(rpc.getAddress(), rpc.getPort())) {
            s.setSoTimeout(30_000);
            assertThrows(java.io.IOException.class, () -> {
                s.startHandshake();
                s.getOutputStream().write(1); // TLS 1.3: the refusal may come after the client's Finished
                s.getOutputStream().flush();
                if (s.getInputStream().read() != -1) {
                    throw new AssertionError("the node answered a client without a certificate");
                }
                throw new SSLException("closed");
            });
        }
        // With the node's certificate the handshake completes (the node then waits for a hello).
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(rpc.getAddress(), rpc.getPort())) {
            s.setSoTimeout(30_000);
            s.startHandshake();
            assertEquals("TLSv1.3", s.getSession().getProtocol());
        }
    }
}
