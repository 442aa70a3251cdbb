package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The training run of the {@code isthmus} launcher's ahead-of-time cache (JDK 25's AOT cache, JEP 483 and 514): a
 * broker started in a scratch directory, a topic created, idempotent records produced and read back with
 * kafka-clients, a clean stop, then a second start on the same directory after its partitions' clean-shutdown markers
 * are removed (as after a kill, so log recovery runs), and a clean stop again. The JVM records the classes this
 * loads and links, and the launcher's later starts map them from the cache instead of loading them from the jars:
 * most of a broker's start-up CPU on a small machine is that loading (issue 22's restart budget).
 *
 * <p>Run by the launcher as {@code java -XX:AOTCacheOutput=FILE ... dev.isthmus.gateway.AotTraining DIR} when the
 * cache is missing or older than the jars; the directory is deleted afterwards. Single-threaded from its own point
 * of view; the broker's threads are its own. Not part of a running broker.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: AotTraining SCRATCH_DIR");
            System.exit(2);
        }
        Path dir = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(dir);
        try {
            run(dir, true);
            // As after kill -9: every log's clean-shutdown marker gone, so the second start recovers each log.
            try (Stream<Path> files = Files.walk(dir.resolve("logs"))) {
                for (Path p : files.filter(p -> p.getFileName().toString().equals("clean-shutdown")).toList()) {
                    Files.delete(p);
                }
            }
            run(dir, false);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        System.exit(0);
    }

    private static void run(Path dir, boolean create) throws Exception {
        BrokerConfig c = Main.parse(new String[] {"--listen", "127.0.0.1:0", "--data-dir", dir.toString(),
            "--smp", "1", "--memory", "128M", "--zeroed-segments", "0"});
        Broker broker = Broker.start(c);
        try {
            String bootstrap = "127.0.0.1:" + broker.port();
            if (create) {
                try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                    admin.createTopics(List.of(new NewTopic("aot-training", 2, (short) 1))).all()
                        .get(30, TimeUnit.SECONDS);
                }
            }
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true, ProducerConfig.LINGER_MS_CONFIG, 1),
                new ByteArraySerializer(), new ByteArraySerializer())) {
                for (int i = 0; i < 2000; i++) {
                    p.send(new ProducerRecord<>("aot-training", i % 2, ("k" + i).getBytes(), new byte[100]));
                }
                p.flush();
            }
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ConsumerConfig.GROUP_ID_CONFIG, "aot-training",
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"), new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
                consumer.subscribe(List.of("aot-training"));
                int read = 0;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (read < 2000 && System.nanoTime() < deadline) {
                    ConsumerRecords<byte[], byte[]> r = consumer.poll(Duration.ofMillis(200));
                    read += r.count();
                }
                consumer.commitSync();
            }
        } finally {
            broker.close();
        }
    }
}
