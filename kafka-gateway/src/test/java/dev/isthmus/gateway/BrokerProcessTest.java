package dev.isthmus.gateway;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The broker as a process: `isthmus start`, one-sentence configuration errors, and SIGTERM = clean stop, exit 0. */
class BrokerProcessTest {
    private static final Pattern READY = Pattern.compile("ready on [^:]+:(\\d+)");
    private static final List<Thread> drains = new java.util.concurrent.CopyOnWriteArrayList<>();

    private static ProcessBuilder broker(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
            Main.class.getName(), "start"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    /** Starts the broker and returns its port once it prints its ready line. */
    private static int awaitReady(Process p, List<String> output) throws Exception {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) {
            output.add(line);
            Matcher m = READY.matcher(line);
            if (m.find()) {
                Thread drain = new Thread(() -> {
                    try {
                        String l;
                        while ((l = r.readLine()) != null) {
                            synchronized (output) {
                                output.add(l);
                            }
                        }
                    } catch (Exception ignored) {
                        // the process ended
                    }
                });
                drain.setDaemon(true);
                drain.start();
                drains.add(drain);
                return Integer.parseInt(m.group(1));
            }
        }
        throw new AssertionError("the broker exited before it was ready: " + output);
    }

    @Test
    void shouldStopCleanlyOnSigtermAndKeepData(@TempDir Path dir) throws Exception {
        String[] args = {"--listen", "127.0.0.1:0", "--data-dir", dir.toString(), "--smp", "2", "--memory", "256M"};
        Process p = broker(args).start();
        List<String> out = new ArrayList<>();
        try {
            int port = awaitReady(p, out);
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                producer.send(new ProducerRecord<>("kept", "before SIGTERM")).get();
            }
            p.toHandle().destroy(); // SIGTERM (Process.destroy would also close our end of its output)
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the broker stops within a minute");
            for (Thread t : drains) {
                t.join(10_000); // the output to its end
            }
            assertEquals(0, p.exitValue(), String.join("\n", out));
            synchronized (out) {
                assertTrue(out.stream().anyMatch(l -> l.contains("stopped cleanly")), String.join("\n", out));
            }
        } finally {
            p.destroyForcibly();
        }
        Process again = broker(args).start();
        try {
            int port = awaitReady(again, new ArrayList<>());
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("kept", 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                List<String> values = new ArrayList<>();
                long end = System.nanoTime() + 30_000_000_000L;
                while (values.isEmpty() && System.nanoTime() < end) {
                    c.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
                }
                assertEquals(List.of("before SIGTERM"), values);
            }
        } finally {
            again.destroy();
            again.waitFor(60, TimeUnit.SECONDS);
            again.destroyForcibly();
        }
    }

    /**
     * A single node started with the defaults (only its Kafka port chosen, so that tests do not collide on 9092) holds
     * exactly one listening socket, on that port, and no UDP socket: no RPC port, no metrics port, nothing its
     * configuration does not name. The sockets are the process's own: the inodes of its {@code /proc/PID/fd} links,
     * looked up in {@code /proc/PID/net/{tcp,tcp6,udp,udp6}}.
     */
    @Test
    void shouldListenOnlyOnTheConfiguredPortAsASingleNodeWithDefaults(@TempDir Path dir) throws Exception {
        int kafkaPort = TestPorts.free();
        Process p = broker("--listen", "127.0.0.1:" + kafkaPort, "--data-dir", dir.toString(), "--smp", "2",
            "--memory", "256M").start();
        try {
            assertEquals(kafkaPort, awaitReady(p, new ArrayList<>()));
            java.util.Set<String> inodes = new java.util.HashSet<>();
            try (var fds = java.nio.file.Files.list(Path.of("/proc", Long.toString(p.pid()), "fd"))) {
                for (Path fd : fds.toList()) {
                    try {
                        String target = java.nio.file.Files.readSymbolicLink(fd).toString();
                        if (target.startsWith("socket:[")) {
                            inodes.add(target.substring(8, target.length() - 1));
                        }
                    } catch (java.io.IOException gone) {
                        // closed while listed
                    }
                }
            }
            List<Integer> listening = new ArrayList<>();
            List<String> udp = new ArrayList<>();
            for (String table : new String[] {"tcp", "tcp6", "udp", "udp6"}) {
                List<String> rows = java.nio.file.Files.readAllLines(Path.of("/proc", Long.toString(p.pid()), "net",
                    table));
                for (String row : rows.subList(1, rows.size())) {
                    String[] f = row.trim().split("\\s+");
                    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                    if (!inodes.contains(f[9])) {
                        continue;
                    }
                    int port = Integer.parseInt(f[1].substring(f[1].indexOf(':') + 1), 16);
                    if (table.startsWith("udp")) {
                        udp.add(table + " port " + port);
                    } else if (f[3].equals("0A")) { // LISTEN
                        listening.add(port);
                    }
                }
            }
            // The Kafka port (one listening socket per shard with SO_REUSEPORT), nothing else.
            assertTrue(!listening.isEmpty(), "no listening socket found for the process");
            assertEquals(java.util.Set.of(kafkaPort), new java.util.HashSet<>(listening),
                "the process's listening TCP ports: " + listening);
            assertEquals(List.of(), udp, "the process's UDP sockets");
        } finally {
            p.destroy();
            p.waitFor(60, TimeUnit.SECONDS);
            p.destroyForcibly();
        }
    }

    @Test
    void shouldRefuseBadConfigurationWithOneSentence(@TempDir Path dir) throws Exception {
        Process p = broker("--smp", "zero", "--data-dir", dir.toString()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue());
        assertEquals("isthmus: --smp expects a whole number, got 'zero'\n", out);
    }
}
