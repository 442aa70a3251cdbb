package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnknownProducerIdException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@code append} workload: idempotent acks=all producers write unique values (numbers from 0, padded to
 * {@code --value-bytes}) to the partitions of {@code chaos-append} in turn, at {@code --rate} writes per second
 * over all of them; an assigned consumer (reader set "assigned") and a group of two consumers
 * ("group:chaos-readers") read everything from the start. Every send is recorded at invocation and completion
 * ({@code ok} with the offset, {@code info} with the error: a failed send may still have been stored); every
 * poll that returns records is recorded with what it returned; consumers record their position resets.
 * At the end a fresh consumer reads every partition from the start to its end offset (the final read).
 *
 * <p>Threads: one per producer (the producer's own I/O thread runs the callbacks), one per consumer. A producer
 * that meets an error that leaves it unusable (a fencing or sequence error) is closed and replaced by a new one
 * under a new name ({@code producer-I.GEN}): each instance's order is checked on its own.
 */
final class AppendWorkload implements Workload {
    static final String READERS_GROUP = "chaos-readers";
    private static final int GROUP_READERS = 2;

    private final Workloads.Context ctx;
    private final String topic = Workloads.APPEND_TOPIC;
    private final AtomicBoolean producing = new AtomicBoolean(true);
    private final AtomicBoolean reading = new AtomicBoolean(true);
    private final List<Thread> producers = new ArrayList<>();
    private final List<Thread> readers = new ArrayList<>();
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong acked = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong replaced = new AtomicLong();

    AppendWorkload(Workloads.Context ctx) {
        this.ctx = ctx;
    }

    /** Creates the append topic (retrying while the cluster settles). */
    static void createTopic(Workloads.Context ctx) {
        NewTopic t = new NewTopic(Workloads.APPEND_TOPIC, ctx.options.partitions(), ctx.replication())
            .configs(Map.of("segment.bytes", Integer.toString(ctx.options.segmentBytes())));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                ctx.cluster.admin().createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return;
                }
                last = e;
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
            }
        }
        throw new ChaosException("the cluster did not create " + Workloads.APPEND_TOPIC + ": " + Workloads.error(last));
    }

    @Override
    public String name() {
        return "append";
    }

    @Override
    public void start() {
        for (int i = 0; i < ctx.options.producers(); i++) {
            int index = i;
            producers.add(thread("chaos-producer-" + i, () -> produce(index)));
        }
        readers.add(thread("chaos-reader", this::readAssigned));
        for (int i = 0; i < GROUP_READERS; i++) {
            String proc = "group-reader-" + i;
            readers.add(thread("chaos-" + proc, () -> readInGroup(proc)));
        }
    }

    private static Thread thread(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    static Properties producerConfig(String bootstrap, String clientId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"); // the torn-write fault reads values off the disk
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 100);
        p.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1000);
        p.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, 10_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return p;
    }

    static Properties consumerConfig(String bootstrap, String clientId, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
            p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 60_000);
        }
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"); // an out-of-range answer is recorded, never hidden
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000);
        p.put(ConsumerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1000);
        p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, 10_000);
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 200);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    /** One producer: paced sends to the partitions in turn, every invocation and completion recorded. */
    private void produce(int index) {
        int partitions = ctx.options.partitions();
        long intervalNs = TimeUnit.SECONDS.toNanos(1) * ctx.options.producers() / ctx.options.ratePerSec();
        int generation = 0;
        String proc = "producer-" + index;
        AtomicBoolean broken = new AtomicBoolean();
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(producerConfig(ctx.cluster.bootstrap, proc));
        long next = System.nanoTime();
        int turn = index;
        try {
            while (producing.get()) {
                long now = System.nanoTime();
                if (now < next) {
                    LockSupport.parkNanos(next - now);
                    continue;
                }
                next = now - next > TimeUnit.SECONDS.toNanos(1) ? now + intervalNs : next + intervalNs;
                if (broken.get()) {
                    p.close(Duration.ZERO);
                    replaced.incrementAndGet();
                    proc = "producer-" + index + "." + (++generation);
                    broken.set(false);
                    p = new KafkaProducer<>(producerConfig(ctx.cluster.bootstrap, proc));
                }
                long v = ctx.nextValue();
                int partition = turn++ % partitions;
                Map<String, Object> inv = History.event(proc, "invoke", "send");
                inv.put("topic", topic);
                inv.put("part", partition);
                inv.put("value", v);
                ctx.history.write(inv);
                sent.incrementAndGet();
                String by = proc;
                try {
                    p.send(new ProducerRecord<>(topic, partition, null, Workloads.encode(v, ctx.options.valueBytes())),
                        (md, ex) -> completed(by, partition, v, md, ex, broken));
                } catch (InterruptException e) {
                    completed(by, partition, v, null, e, broken);
                    break;
                } catch (KafkaException | IllegalStateException e) {
                    completed(by, partition, v, null, e, broken);
                    if (!(e instanceof TimeoutException)) {
                        broken.set(true);
                    }
                }
            }
        } finally {
            p.close(Duration.ofSeconds(35)); // waits for what is in flight (delivery timeout 30 s)
        }
    }

    private void completed(String proc, int partition, long v, RecordMetadata md, Exception ex, AtomicBoolean broken) {
        Map<String, Object> e = History.event(proc, ex == null ? "ok" : "info", "send");
        e.put("topic", topic);
        e.put("part", partition);
        e.put("value", v);
        if (ex == null) {
            e.put("offset", md.offset());
            ctx.acked(v);
            acked.incrementAndGet();
        } else {
            e.put("error", Workloads.error(ex));
            errors.incrementAndGet();
            if (ex instanceof OutOfOrderSequenceException || ex instanceof ProducerFencedException
                    || ex instanceof InvalidProducerEpochException || ex instanceof UnknownProducerIdException) {
                broken.set(true);
            }
        }
        ctx.history.write(e);
    }

    private List<TopicPartition> partitions() {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < ctx.options.partitions(); i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    /** Records a poll's records (if any) as one event. */
    static void recordPoll(History h, Workloads.Context ctx, String proc, String set, String topic, long t0,
                           ConsumerRecords<byte[], byte[]> records) {
        if (records.isEmpty()) {
            return;
        }
        Map<String, Object> e = History.event(proc, "ok", "poll");
        e.put("topic", topic);
        if (set != null) {
            e.put("reader", set);
        }
        e.put("t0", t0);
        e.put("reads", Workloads.reads(records));
        h.write(e);
        if (set != null && ctx != null) {
            for (var r : records) {
                ctx.seen(set, Workloads.decode(r.value()));
            }
        }
    }

    private void readerStart(String proc, String set) {
        Map<String, Object> e = History.event(proc, "info", "reader-start");
        e.put("reader", set);
        e.put("topic", topic);
        ctx.history.write(e);
    }

    private void resetEvent(String proc, String f, Collection<TopicPartition> parts, String from) {
        Map<String, Object> e = History.event(proc, "ok", f);
        e.put("topic", topic);
        e.put("parts", parts.stream().map(TopicPartition::partition).sorted().toList());
        if (from != null) {
            e.put("from", from);
        }
        ctx.history.write(e);
    }

    private void outOfRange(String proc, OffsetOutOfRangeException e) {
        for (Map.Entry<TopicPartition, Long> p : e.offsetOutOfRangePartitions().entrySet()) {
            Map<String, Object> ev = History.event(proc, "info", "out-of-range");
            ev.put("topic", topic);
            ev.put("part", p.getKey().partition());
            ev.put("offset", p.getValue());
            ctx.history.write(ev);
        }
    }

    private void pollError(String proc, Exception e) {
        Map<String, Object> ev = History.event(proc, "info", "poll");
        ev.put("topic", topic);
        ev.put("error", Workloads.error(e));
        ctx.history.write(ev);
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
    }

    /** The assigned reader: every partition from the start. */
    private void readAssigned() {
        String proc = "reader";
        readerStart(proc, "assigned");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerConfig(ctx.cluster.bootstrap, proc, null))) {
            List<TopicPartition> tps = partitions();
            c.assign(tps);
            c.seekToBeginning(tps);
            resetEvent(proc, "assign", tps, "beginning");
            while (reading.get()) {
                long t0 = ctx.history.now();
                try {
                    recordPoll(ctx.history, ctx, proc, "assigned", topic, t0, c.poll(Duration.ofMillis(200)));
                } catch (OffsetOutOfRangeException e) {
                    outOfRange(proc, e);
                    c.seekToBeginning(e.partitions());
                    resetEvent(proc, "assign", e.partitions(), "beginning");
                } catch (WakeupException | InterruptException e) {
                    return;
                } catch (KafkaException e) {
                    pollError(proc, e);
                }
            }
        }
    }

    /** A member of the readers' group: what it is assigned, from the committed offset (or the start). */
    private void readInGroup(String proc) {
        String set = "group:" + READERS_GROUP;
        readerStart(proc, set);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerConfig(ctx.cluster.bootstrap, proc,
                READERS_GROUP))) {
            c.subscribe(List.of(topic), new Rebalance(c, proc));
            long lastCommit = System.nanoTime();
            while (reading.get()) {
                long t0 = ctx.history.now();
                try {
                    ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(200));
                    recordPoll(ctx.history, ctx, proc, set, topic, t0, records);
                    if (System.nanoTime() - lastCommit > TimeUnit.SECONDS.toNanos(1)) {
                        commit(c, proc, c.assignment());
                        lastCommit = System.nanoTime();
                    }
                } catch (OffsetOutOfRangeException e) {
                    outOfRange(proc, e);
                    c.seekToBeginning(e.partitions());
                    resetEvent(proc, "assigned", e.partitions(), "beginning");
                } catch (WakeupException | InterruptException e) {
                    return;
                } catch (KafkaException e) {
                    pollError(proc, e);
                }
            }
        }
    }

    /** Commits the positions of {@code parts} synchronously, recording the invocation and its outcome. */
    static void commit(KafkaConsumer<byte[], byte[]> c, History h, String proc, String group, String topic,
                       Collection<TopicPartition> parts) {
        if (parts.isEmpty()) {
            return;
        }
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        Map<String, Object> byPart = new java.util.TreeMap<>();
        for (TopicPartition tp : parts) {
            long pos;
            try {
                pos = c.position(tp, Duration.ofSeconds(5));
            } catch (KafkaException e) {
                continue;
            }
            offsets.put(tp, new OffsetAndMetadata(pos));
            byPart.put(Integer.toString(tp.partition()), pos);
        }
        if (offsets.isEmpty()) {
            return;
        }
        Map<String, Object> inv = History.event(proc, "invoke", "commit");
        inv.put("group", group);
        inv.put("topic", topic);
        inv.put("offsets", byPart);
        h.write(inv);
        Map<String, Object> done;
        try {
            c.commitSync(offsets, Duration.ofSeconds(10));
            done = History.event(proc, "ok", "commit");
        } catch (org.apache.kafka.clients.consumer.CommitFailedException
                 | org.apache.kafka.common.errors.RebalanceInProgressException e) {
            done = History.event(proc, "fail", "commit");
            done.put("error", Workloads.error(e));
        } catch (KafkaException e) {
            done = History.event(proc, "info", "commit");
            done.put("error", Workloads.error(e));
        }
        done.put("group", group);
        done.put("topic", topic);
        done.put("offsets", byPart);
        h.write(done);
    }

    private void commit(KafkaConsumer<byte[], byte[]> c, String proc, Collection<TopicPartition> parts) {
        commit(c, ctx.history, proc, READERS_GROUP, topic, parts);
    }

    /**
     * Records assignments (starting at the committed offset, or the start of the partition when there is
     * none) and revocations (committing the positions first).
     */
    private final class Rebalance implements ConsumerRebalanceListener {
        private final KafkaConsumer<byte[], byte[]> c;
        private final String proc;

        Rebalance(KafkaConsumer<byte[], byte[]> c, String proc) {
            this.c = c;
            this.proc = proc;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
            commit(c, proc, parts);
            resetEvent(proc, "revoked", parts, null);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> parts) {
            resetEvent(proc, "revoked", parts, "lost");
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
            startAtCommitted(c, parts);
            resetEvent(proc, "assigned", parts, "committed");
        }
    }

    /** Seeks every partition without a committed offset to its start (auto.offset.reset is "none"). */
    static void startAtCommitted(KafkaConsumer<byte[], byte[]> c, Collection<TopicPartition> parts) {
        if (parts.isEmpty()) {
            return;
        }
        Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.copyOf(parts), Duration.ofSeconds(15));
        List<TopicPartition> none = new ArrayList<>();
        for (TopicPartition tp : parts) {
            OffsetAndMetadata m = committed.get(tp);
            if (m == null) {
                none.add(tp);
            } else {
                c.seek(tp, m.offset());
            }
        }
        if (!none.isEmpty()) {
            c.seekToBeginning(none);
        }
    }

    @Override
    public void quiesce() {
        producing.set(false);
        for (Thread t : producers) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(60));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    @Override
    public String drain(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        String set2 = "group:" + READERS_GROUP;
        long a;
        long g;
        do {
            a = ctx.missing("assigned");
            g = ctx.missing(set2);
            if (a == 0 && g == 0) {
                return "readers saw every acknowledged value";
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
        } while (System.nanoTime() < deadline);
        return String.format(Locale.ROOT, "after %.0f s the assigned reader still missed %d acknowledged value(s), "
            + "the readers' group %d", timeoutNs / 1e9, a, g);
    }

    @Override
    public void finish() {
        reading.set(false);
        for (Thread t : readers) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        finalRead(ctx, topic, partitions());
    }

    /**
     * The final read: a fresh consumer reads every partition from its start to its end offset now, recorded as
     * proc "final", then one {@code final-end} event with the end offsets and whether it got there.
     */
    static void finalRead(Workloads.Context ctx, String topic, List<TopicPartition> tps) {
        String proc = "final";
        Map<TopicPartition, Long> ends = null;
        boolean complete = false;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerConfig(ctx.cluster.bootstrap, proc, null))) {
            c.assign(tps);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (ends == null && System.nanoTime() < deadline) {
                try {
                    ends = c.endOffsets(tps, Duration.ofSeconds(10));
                } catch (KafkaException e) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
                }
            }
            if (ends != null) {
                c.seekToBeginning(tps);
                while (System.nanoTime() < deadline) {
                    boolean done = true;
                    for (TopicPartition tp : tps) {
                        if (c.position(tp, Duration.ofSeconds(10)) < ends.get(tp)) {
                            done = false;
                        }
                    }
                    if (done) {
                        complete = true;
                        break;
                    }
                    long t0 = ctx.history.now();
                    try {
                        recordPoll(ctx.history, null, proc, null, topic, t0, c.poll(Duration.ofMillis(500)));
                    } catch (OffsetOutOfRangeException e) {
                        Map<String, Object> ev = History.event(proc, "info", "out-of-range");
                        ev.put("topic", topic);
                        ev.put("part", e.partitions().iterator().next().partition());
                        ctx.history.write(ev);
                        break;
                    } catch (KafkaException e) {
                        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
                    }
                }
            }
        }
        Map<String, Object> e = History.event(proc, "ok", "final-end");
        e.put("topic", topic);
        Map<String, Object> byPart = new java.util.TreeMap<>();
        if (ends != null) {
            ends.forEach((tp, end) -> byPart.put(Integer.toString(tp.partition()), end));
        }
        e.put("ends", byPart);
        e.put("complete", complete);
        ctx.history.write(e);
    }

    @Override
    public String progress() {
        return String.format(Locale.ROOT, "sent %,d acked %,d errors %,d%s", sent.get(), acked.get(), errors.get(),
            replaced.get() == 0 ? "" : " (" + replaced.get() + " producer(s) replaced)");
    }


    @Override
    public void close() {
        producing.set(false);
        reading.set(false);
    }
}
