package dev.isthmus.gateway;

import dev.isthmus.ffi.Errno;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where io_uring is blocked, the broker starts on the portable backend by itself and says why in one line.
 * The broker runs in a child JVM whose first act is to install a seccomp filter failing io_uring_setup with
 * EPERM or ENOSYS (what container runtimes' default profiles do), so this process keeps its io_uring; then
 * kafka-clients produce and consume through it.
 */
class PortableFallbackTest {
    private static final Pattern READY = Pattern.compile("ready on [^:]+:(\\d+) \\(\\d+ shards on ([^,]+),");

    @ParameterizedTest(name = "io_uring_setup fails with errno {0}")
    @ValueSource(ints = {1, 38}) // EPERM, ENOSYS (x86-64 and aarch64 alike)
    void shouldServeOnThePortableBackendAndSayWhyWhenSeccompBlocksIoUring(int errno, @TempDir Path dir)
        throws Exception {
        assertEquals(errno == 1 ? Errno.EPERM : Errno.ENOSYS, errno);
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
            SeccompLauncher.class.getName(), Integer.toString(errno), "start", "--listen", "127.0.0.1:0",
            "--data-dir", dir.toString(), "--smp", "2", "--memory", "256M");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<String> out = new java.util.concurrent.CopyOnWriteArrayList<>();
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            int port = -1;
            String backend = null;
            String line;
            while (port < 0 && (line = r.readLine()) != null) {
                out.add(line);
                Matcher m = READY.matcher(line);
                if (m.find()) {
                    port = Integer.parseInt(m.group(1));
                    backend = m.group(2);
                }
            }
            assertTrue(port > 0, "the broker exited before it was ready:\n" + String.join("\n", out));
            Thread drain = Thread.ofPlatform().daemon().start(() -> {
                try {
                    String l;
                    while ((l = r.readLine()) != null) {
                        out.add(l);
                    }
                } catch (Exception ignored) {
                    // the process ended
                }
            });
            assertEquals("portable I/O", backend, String.join("\n", out));

            // Kafka clients are served.
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>("fallback", "k" + i, "v" + i)).get();
                }
            }
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            List<String> values = new ArrayList<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("fallback", 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long end = System.nanoTime() + 30_000_000_000L;
                while (values.size() < 10 && System.nanoTime() < end) {
                    c.poll(Duration.ofMillis(200)).forEach(rec -> values.add(rec.value()));
                }
            }
            List<String> expected = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                expected.add("v" + i);
            }
            assertEquals(expected, values);

            p.toHandle().destroy(); // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the broker stops within a minute");
            drain.join(10_000);
            assertEquals(0, p.exitValue(), String.join("\n", out));

            // Exactly one line says which backend and why, with how to enable io_uring; no class-init failure.
            String all = String.join("\n", out);
            List<String> backendLines = out.stream().filter(l -> l.contains("I/O backend")).toList();
            assertEquals(1, backendLines.size(), all);
            String why = backendLines.get(0);
            System.out.println("errno " + errno + ", the broker said:\n" + all);
            assertTrue(why.startsWith("isthmus: I/O backend: portable (FileChannel + NIO sockets), because io_uring is"
                + " unavailable: io_uring_setup failed with " + (errno == 1 ? "EPERM" : "ENOSYS")), why);
            assertTrue(why.contains("a seccomp filter on this process"), why);
            assertTrue(why.contains("To enable it: allow the system calls io_uring_setup, io_uring_enter and"
                + " io_uring_register in the seccomp profile"), why);
            assertFalse(all.contains("NoClassDefFoundError") || all.contains("ExceptionInInitializerError")
                || all.contains("Could not initialize class"), all);
        } finally {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }
}
