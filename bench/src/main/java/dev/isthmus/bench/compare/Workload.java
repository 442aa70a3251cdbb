package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogWriter;
import org.HdrHistogram.Recorder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * One workload against one broker or cluster: {@code producers} kafka-clients producers write records of
 * {@code recordBytes} with acks=all to a topic of {@code partitions} partitions, and consumers read them back as
 * they arrive: one consumer assigned every partition, or a consumer group of {@code consumers} members.
 *
 * <pre>
 *   start        start + warm-up                         end                        (drained)
 *     |--- warm-up ---|---------- measurement ------------|--- acks and deliveries ---|
 *     sends on schedule (fixed rate) or as fast as send() returns (saturation)
 * </pre>
 *
 * <p>Latency is measured from the record's <em>intended</em> send time, which is written into its first 8
 * bytes: at a fixed rate R, record g of the whole schedule is due at start + g/R whether or not the client or
 * broker kept up, so a stall delays every record behind it and all of that delay is counted (no coordinated
 * omission). With P producers, producer j sends records j, j+P, j+2P, ... of that schedule, and record g goes to
 * partition g mod partitions (round-robin, so with many partitions every produce request carries several). At
 * saturation there is no schedule; the intended time is when send() was called, so the time a record waits
 * for room in the producer's buffer before send() returns is not counted, but the time it waits inside the
 * buffer is. Two latencies per record: produce-to-ack (the producer's callback) and end-to-end
 * produce-to-consume (the consumer's poll that returns it). A record counts toward the steady-state
 * histograms when its intended time lies in the measurement window; every record goes into the per-second
 * interval histograms of the .hlog file (tags "ack" and "e2e", values in nanoseconds).
 *
 * <p>A record's value holds its intended time (bytes 0-7), its producer's sequence number (8-15) and the
 * producer's index (16-19). Consumers check that each producer's records arrive in increasing sequence in
 * every partition; a record at or below the last one seen (a repeat after a group rebalance, or a step back)
 * counts as out of order and not as consumed. A consumer group must have every partition assigned, to all its
 * members, before the clock starts; rebalances after that are counted.
 *
 * <p>Transactions ({@code txnRecords} > 0, the {@link Suite#TXN} workloads): every producer is transactional (its
 * own {@code transactional.id}, idempotent, acks=all) and wraps each run of {@code txnRecords} of its records in
 * a transaction: beginTransaction before the first, commitTransaction after the last, on the sender thread, so
 * a slow commit delays the producer's next records and that delay is charged to them as any stall is. The
 * commit latency (commitTransaction's call to its return) of every commit that starts in the window goes into a
 * third histogram (tag "commit" in the .hlog). The consumers read with {@code isolation.level=read_committed}, so
 * end to end is send to delivery after the commit. A commit that fails is counted and its transaction aborted;
 * its records, acknowledged but never delivered, show in the notes.
 *
 * <p>Security: {@code clientConfig} (empty for PLAINTEXT; SASL_SSL settings from {@link Security}) goes into every
 * producer's and consumer's configuration.
 *
 * <p>Threads: the caller's thread runs {@link #run} (progress, interval logging, /proc samples at the window's
 * edges); one sender thread per producer; each producer's I/O thread runs its callbacks; one thread per
 * consumer. The producer and consumer settings are the same for every broker ({@link #producerConfig},
 * {@link #consumerConfig}, {@link #groupConsumerConfig}).
 */
final class Workload {

    /**
     * The topic and clients of a workload.
     *
     * @param partitions  partitions of the topic
     * @param replication replication factor of the topic
     * @param producers   producers, each with its own sender thread
     * @param consumers   consumers: with {@code group}, members of one consumer group; otherwise 1, assigned
     *                    every partition
     * @param group       whether the consumers form a group (subscribe) rather than one assigned consumer
     */
    record Shape(int partitions, short replication, int producers, int consumers, boolean group) {

        /** Issue 8's shape: one partition, one producer, one assigned consumer. */
        static final Shape SINGLE = new Shape(1, (short) 1, 1, 1, false);

        Shape {
            if (partitions < 1 || replication < 1 || producers < 1 || consumers < 1 || (!group && consumers != 1)) {
                throw new IllegalArgumentException("bad workload shape: " + partitions + " partitions, replication "
                    + replication + ", " + producers + " producers, " + consumers + " consumers");
            }
        }

        /** "64 partitions, 4 producers, a consumer group of 4" for the report. */
        String describe() {
            return partitions + (partitions == 1 ? " partition" : " partitions")
                + (replication > 1 ? " (replication " + replication + ")" : "") + ", "
                + producers + (producers == 1 ? " producer" : " producers") + ", "
                + (group ? "a consumer group of " + consumers : "one consumer assigned " + (partitions == 1 ? "it" : "all"));
        }
    }

    /** Hooks called by {@link #run} on the caller's thread at the edges of the measurement window and every second. */
    interface Window {
        void measurementStarted();

        void measurementEnded();

        /** A note on the last second (e.g. CPU use), added to the progress line and to the .hlog as a comment. */
        String secondElapsed();
    }

    /**
     * What one workload measured.
     *
     * @param ack             produce-to-ack latency of records intended in the window, ns
     * @param e2e             produce-to-consume latency of records intended in the window, ns
     * @param windowNs        measurement window length
     * @param ackedInWindow   acknowledgements received during the window (throughput numerator)
     * @param sent            records handed to send()
     * @param acked           records acknowledged
     * @param consumed        records the consumers returned for the first time and in order
     * @param errors          sends that failed
     * @param reordered       records a consumer saw out of sequence (a repeat or a step back)
     * @param rebalances      consumer group rebalances (partitions revoked) after the clock started
     * @param firstError      the first failure, or null
     * @param measureStartNs  System.nanoTime() at the start of the window
     * @param measureEndNs    System.nanoTime() at its end
     * @param commit          commitTransaction latency of the commits started in the window, ns (empty without
     *                        transactions)
     * @param commitsInWindow commits that returned during the window (transactions per second numerator)
     * @param aborted         transactions aborted after a failed commit
     */
    record Result(Histogram ack, Histogram e2e, long windowNs, long ackedInWindow, long sent, long acked,
                  long consumed, long errors, long reordered, long rebalances, String firstError, long measureStartNs,
                  long measureEndNs, Histogram commit, long commitsInWindow, long aborted) {

        /** A result without transactions. */
        Result(Histogram ack, Histogram e2e, long windowNs, long ackedInWindow, long sent, long acked, long consumed,
               long errors, long reordered, long rebalances, String firstError, long measureStartNs, long measureEndNs) {
            this(ack, e2e, windowNs, ackedInWindow, sent, acked, consumed, errors, reordered, rebalances, firstError,
                measureStartNs, measureEndNs, new Histogram(SIGNIFICANT_DIGITS), 0, 0);
        }

        /** Whether the workload ran transactions (a commit was measured). */
        boolean transactional() {
            return commit.getTotalCount() > 0 || commitsInWindow > 0 || aborted > 0;
        }

        double commitsPerSec() {
            return commitsInWindow * 1e9 / windowNs;
        }

        double throughputPerSec() {
            return ackedInWindow * 1e9 / windowNs;
        }

        /** Acknowledged but never delivered within the drain timeout. */
        long undelivered() {
            return Math.max(0, acked - consumed);
        }

        /** Sent but neither acknowledged nor failed within the drain timeout. */
        long unacked() {
            return Math.max(0, sent - acked - errors);
        }

        boolean clean() {
            return errors == 0 && reordered == 0 && undelivered() == 0 && unacked() == 0 && aborted == 0;
        }
    }

    private static final int SIGNIFICANT_DIGITS = 3;
    private static final long LEAD_NS = TimeUnit.MILLISECONDS.toNanos(200);
    private static final long PROGRESS_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);
    private static final long DRAIN_POLL_NS = TimeUnit.MILLISECONDS.toNanos(10);
    /** Bytes of a record's value the workload uses: intended time, sequence, producer index. */
    static final int HEADER_BYTES = 20;

    private final String bootstrap;
    private final String topic;
    private final Shape shape;
    private final long ratePerSec;
    private final int recordBytes;
    private final long warmupNs;
    private final long durationNs;
    private final long drainTimeoutNs;
    private final long groupTimeoutNs;
    private final Path hlog;
    private final Consumer<String> progress;
    private final Map<String, Object> clientConfig;
    private final int txnRecords;

    private final Recorder ackInterval = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder e2eInterval = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder ackMeasured = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder e2eMeasured = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder commitInterval = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder commitMeasured = new Recorder(SIGNIFICANT_DIGITS);
    private final AtomicLong commitsInWindow = new AtomicLong();
    private final AtomicLong aborted = new AtomicLong();
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong acked = new AtomicLong();
    private final AtomicLong ackedInWindow = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong consumed = new AtomicLong();
    private final AtomicLong reordered = new AtomicLong();
    private final AtomicLong rebalances = new AtomicLong();
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();
    /** The last sequence number seen per (partition, producer), -1 before the first. */
    private final AtomicLongArray lastSeq;
    /** Partitions currently assigned to each group member. */
    private final AtomicIntegerArray assigned;
    private final AtomicInteger sendersDone = new AtomicInteger();
    private volatile boolean stopConsumers;
    private volatile boolean clockStarted;

    private volatile long startNs;
    private volatile long measureStartNs;
    private volatile long endNs;

    /**
     * @param ratePerSec      records per second across all producers, or 0 for saturation
     * @param groupTimeoutNs  how long a consumer group may take to have every partition assigned
     * @param progress        receives one status line about once a second
     * @param clientConfig    security settings every client adds (empty for PLAINTEXT)
     * @param txnRecords      records per transaction, 0 for no transactions
     */
    Workload(String bootstrap, String topic, Shape shape, long ratePerSec, int recordBytes, long warmupNs,
             long durationNs, long drainTimeoutNs, long groupTimeoutNs, Path hlog, Consumer<String> progress,
             Map<String, Object> clientConfig, int txnRecords) {
        if (recordBytes < HEADER_BYTES) {
            throw new IllegalArgumentException("records of " + recordBytes + " B cannot hold the workload's "
                + HEADER_BYTES + " B header");
        }
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.shape = shape;
        this.ratePerSec = ratePerSec;
        this.recordBytes = recordBytes;
        this.warmupNs = warmupNs;
        this.durationNs = durationNs;
        this.drainTimeoutNs = drainTimeoutNs;
        this.groupTimeoutNs = groupTimeoutNs;
        this.hlog = hlog;
        this.progress = progress;
        this.clientConfig = Map.copyOf(clientConfig);
        this.txnRecords = txnRecords;
        this.lastSeq = new AtomicLongArray(shape.partitions() * shape.producers());
        for (int i = 0; i < lastSeq.length(); i++) {
            lastSeq.set(i, -1);
        }
        this.assigned = new AtomicIntegerArray(shape.consumers());
    }

    /** The producer every broker gets: kafka-clients' defaults (linger.ms=5, batch.size=16384, idempotence) and acks=all. */
    static Map<String, Object> producerConfig(String bootstrap) {
        return producerConfig(bootstrap, "compare-producer");
    }

    private static Map<String, Object> producerConfig(String bootstrap, String clientId) {
        return Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            ProducerConfig.ACKS_CONFIG, "all",
            ProducerConfig.CLIENT_ID_CONFIG, clientId,
            ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName(),
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    }

    /** {@code config} with this workload's security settings, and read_committed when it runs transactions. */
    private Map<String, Object> withClient(Map<String, Object> config) {
        Map<String, Object> c = new java.util.HashMap<>(config);
        c.putAll(clientConfig);
        if (txnRecords > 0) {
            c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        }
        return c;
    }

    /** The consumer every broker gets: kafka-clients' defaults, assigned the partitions (no group). */
    static Map<String, Object> consumerConfig(String bootstrap) {
        return Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            ConsumerConfig.CLIENT_ID_CONFIG, "compare-consumer",
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
            ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName(),
            ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    }

    /**
     * A member of the consumer group every broker gets: kafka-clients' defaults (the classic group protocol,
     * auto-commit every 5 s, so a rebalance re-delivers little), reading a new group's partitions from the start.
     */
    static Map<String, Object> groupConsumerConfig(String bootstrap, String groupId, int member) {
        return Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            ConsumerConfig.CLIENT_ID_CONFIG, "compare-consumer-" + member,
            ConsumerConfig.GROUP_ID_CONFIG, groupId,
            ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
            ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName(),
            ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    }

    Result run(Window window) throws InterruptedException {
        List<KafkaProducer<byte[], byte[]>> producers = new ArrayList<>();
        List<KafkaConsumer<byte[], byte[]>> consumers = new ArrayList<>();
        List<Thread> consumerThreads = new ArrayList<>();
        try (PrintStream hlogOut = new PrintStream(hlog.toFile())) {
            for (int j = 0; j < shape.producers(); j++) {
                Map<String, Object> config = new java.util.HashMap<>(producerConfig(bootstrap,
                    shape.producers() == 1 ? "compare-producer" : "compare-producer-" + j));
                config.putAll(clientConfig);
                if (txnRecords > 0) {
                    config.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, topic + "-txn-" + j);
                }
                producers.add(new KafkaProducer<>(config));
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < shape.partitions(); p++) {
                tps.add(new TopicPartition(topic, p));
            }
            // Metadata and connections before the clock starts; consumers read from the first offset.
            for (KafkaProducer<byte[], byte[]> producer : producers) {
                producer.partitionsFor(topic);
                if (txnRecords > 0) {
                    producer.initTransactions(); // FindCoordinator and InitProducerId, before the clock
                }
            }
            if (shape.group()) {
                String groupId = topic + "-group";
                for (int k = 0; k < shape.consumers(); k++) {
                    KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(withClient(groupConsumerConfig(bootstrap, groupId, k)));
                    consumers.add(c);
                    c.subscribe(List.of(topic), new Rebalances(k));
                }
            } else {
                KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(withClient(consumerConfig(bootstrap)));
                consumers.add(c);
                c.assign(tps);
                for (TopicPartition tp : tps) {
                    c.seek(tp, 0);
                }
                c.poll(Duration.ZERO);
            }
            for (int k = 0; k < consumers.size(); k++) {
                KafkaConsumer<byte[], byte[]> c = consumers.get(k);
                consumerThreads.add(Thread.ofPlatform().name("compare-consumer-" + k).start(() -> consume(c)));
            }
            if (shape.group()) {
                awaitGroup();
            }

            HistogramLogWriter log = new HistogramLogWriter(hlogOut);
            long startEpochMs = System.currentTimeMillis() + TimeUnit.NANOSECONDS.toMillis(LEAD_NS);
            log.outputComment("bench/compare " + topic + ": " + CompareOptions.workloadName(ratePerSec) + ", "
                + shape.describe() + ", " + recordBytes + " B records, acks=all"
                + (txnRecords > 0 ? ", transactions of " + txnRecords + " records, read_committed" : "")
                + "; values in ns from the intended send time; tags ack (produce->ack), e2e (produce->consume)"
                + (txnRecords > 0 ? ", commit (commitTransaction call to return)" : ""));
            log.outputComment("warm-up " + TimeUnit.NANOSECONDS.toMillis(warmupNs) + " ms, then measurement "
                + TimeUnit.NANOSECONDS.toMillis(durationNs) + " ms");
            log.outputLogFormatVersion();
            log.outputStartTime(startEpochMs);
            log.setBaseTime(startEpochMs);
            log.outputLegend();

            startNs = System.nanoTime() + LEAD_NS;
            measureStartNs = startNs + warmupNs;
            endNs = measureStartNs + durationNs;
            clockStarted = true;

            List<Thread> senders = new ArrayList<>();
            for (int j = 0; j < producers.size(); j++) {
                KafkaProducer<byte[], byte[]> producer = producers.get(j);
                int index = j;
                senders.add(Thread.ofPlatform().name("compare-sender-" + j).start(() -> send(producer, index)));
            }

            long intervalStartMs = startEpochMs;
            Histogram ackReuse = null;
            Histogram e2eReuse = null;
            Histogram commitReuse = null;
            boolean measuring = false;
            boolean ended = false;
            long drainDeadline = Long.MAX_VALUE;
            long nextTickNs = startNs + PROGRESS_INTERVAL_NS;
            long nextDrainCheckNs = 0;
            while (true) {
                long now = System.nanoTime();
                long wakeNs = nextTickNs;
                if (!measuring) {
                    wakeNs = Math.min(wakeNs, measureStartNs);
                } else if (!ended) {
                    wakeNs = Math.min(wakeNs, endNs);
                } else {
                    wakeNs = Math.min(wakeNs, nextDrainCheckNs);
                }
                if (now < wakeNs) {
                    LockSupport.parkNanos(wakeNs - now);
                    continue;
                }
                if (!measuring && now >= measureStartNs) {
                    measuring = true;
                    window.measurementStarted();
                    log.outputComment("measurement starts");
                }
                if (measuring && !ended && now >= endNs) {
                    ended = true;
                    window.measurementEnded();
                    log.outputComment("measurement ends; draining");
                    drainDeadline = now + drainTimeoutNs;
                }
                if (now >= nextTickNs) {
                    nextTickNs += PROGRESS_INTERVAL_NS;
                    long nowMs = System.currentTimeMillis();
                    ackReuse = ackInterval.getIntervalHistogram(ackReuse);
                    e2eReuse = e2eInterval.getIntervalHistogram(e2eReuse);
                    String note = window.secondElapsed();
                    log.outputComment(String.format(Locale.ROOT, "%.3f: %s", (nowMs - startEpochMs) / 1e3, note));
                    writeInterval(log, ackReuse, "ack", intervalStartMs, nowMs);
                    writeInterval(log, e2eReuse, "e2e", intervalStartMs, nowMs);
                    if (txnRecords > 0) {
                        commitReuse = commitInterval.getIntervalHistogram(commitReuse);
                        writeInterval(log, commitReuse, "commit", intervalStartMs, nowMs);
                    }
                    intervalStartMs = nowMs;
                    progress.accept(status(now, ackReuse, e2eReuse) + ", " + note);
                }
                nextDrainCheckNs = now + DRAIN_POLL_NS;
                if (ended && sendersDone.get() == producers.size() && drained()) {
                    break;
                }
                if (ended && now >= drainDeadline) {
                    log.outputComment("drain timeout: " + status(now, ackInterval.getIntervalHistogram(),
                        e2eInterval.getIntervalHistogram()));
                    break;
                }
            }
            stopConsumers = true;
            consumers.forEach(KafkaConsumer::wakeup);
            for (Thread sender : senders) {
                sender.join(TimeUnit.NANOSECONDS.toMillis(drainTimeoutNs) + 1);
            }
            for (Thread t : consumerThreads) {
                t.join();
            }
            long nowMs = System.currentTimeMillis();
            writeInterval(log, ackInterval.getIntervalHistogram(), "ack", intervalStartMs, nowMs);
            writeInterval(log, e2eInterval.getIntervalHistogram(), "e2e", intervalStartMs, nowMs);
            if (txnRecords > 0) {
                writeInterval(log, commitInterval.getIntervalHistogram(), "commit", intervalStartMs, nowMs);
            }
            Throwable err = firstError.get();
            return new Result(ackMeasured.getIntervalHistogram(), e2eMeasured.getIntervalHistogram(), durationNs,
                ackedInWindow.get(), sent.get(), acked.get(), consumed.get(), errors.get(), reordered.get(),
                rebalances.get(), err == null ? null : err.getClass().getSimpleName() + ": " + err.getMessage(),
                measureStartNs, endNs, commitMeasured.getIntervalHistogram(), commitsInWindow.get(), aborted.get());
        } catch (FileNotFoundException e) {
            throw new CompareException("cannot write " + hlog + ": " + e.getMessage(), e);
        } finally {
            stopConsumers = true;
            consumers.forEach(KafkaConsumer::wakeup);
            for (Thread t : consumerThreads) {
                t.join();
            }
            for (KafkaProducer<byte[], byte[]> p : producers) {
                p.close(Duration.ofSeconds(5));
            }
            for (KafkaConsumer<byte[], byte[]> c : consumers) {
                c.close(Duration.ofSeconds(5));
            }
        }
    }

    /**
     * Waits until the group's members, polling in their threads, hold every partition between them, each
     * member at least one (when there are enough): the group is stable and no late joiner will move partitions.
     */
    private void awaitGroup() {
        long deadline = System.nanoTime() + groupTimeoutNs;
        while (true) {
            int total = 0;
            int empty = 0;
            for (int k = 0; k < assigned.length(); k++) {
                int n = assigned.get(k);
                total += n;
                empty += n == 0 ? 1 : 0;
            }
            boolean everyMember = shape.partitions() < shape.consumers() || empty == 0;
            if (total == shape.partitions() && everyMember) {
                return;
            }
            Throwable err = firstError.get();
            if (err != null) {
                throw new CompareException("a consumer of the group on " + topic + " failed before the group was "
                    + "formed: " + err.getClass().getSimpleName() + ": " + err.getMessage(), err);
            }
            if (System.nanoTime() > deadline) {
                throw new CompareException("the consumer group of " + shape.consumers() + " on " + topic + " did not "
                    + "get its " + shape.partitions() + " partitions assigned to every member within "
                    + TimeUnit.NANOSECONDS.toSeconds(groupTimeoutNs) + " s (" + total + " assigned, " + empty
                    + " members without any)");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    /** Keeps count of each member's partitions; runs on that member's consumer thread, inside poll(). */
    private final class Rebalances implements ConsumerRebalanceListener {
        private final int member;

        Rebalances(int member) {
            this.member = member;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            assigned.addAndGet(member, -partitions.size());
            if (clockStarted && !partitions.isEmpty()) {
                rebalances.incrementAndGet();
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            assigned.addAndGet(member, partitions.size());
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            onPartitionsRevoked(partitions);
        }
    }

    private boolean drained() {
        long a = acked.get();
        return a + errors.get() >= sent.get() && consumed.get() >= a;
    }

    private static void writeInterval(HistogramLogWriter log, Histogram h, String tag, long fromMs, long toMs) {
        h.setTag(tag);
        h.setStartTimeStamp(fromMs);
        h.setEndTimeStamp(toMs);
        log.outputIntervalHistogram(h);
    }

    private String status(long now, Histogram ack, Histogram e2e) {
        String phase;
        if (now < measureStartNs) {
            phase = String.format("warm-up %3d/%d s", TimeUnit.NANOSECONDS.toSeconds(now - startNs),
                TimeUnit.NANOSECONDS.toSeconds(warmupNs));
        } else if (now < endNs) {
            phase = String.format("measure %3d/%d s", TimeUnit.NANOSECONDS.toSeconds(now - measureStartNs),
                TimeUnit.NANOSECONDS.toSeconds(durationNs));
        } else {
            phase = "draining     ";
        }
        return String.format("%s  sent %,d  acked %,d  consumed %,d%s  last 1 s: %,d acks, ack p99 %s ms, e2e p99 %s ms",
            phase, sent.get(), acked.get(), consumed.get(), errors.get() == 0 ? "" : "  ERRORS " + errors.get(),
            ack.getTotalCount(), Table.ms(ack.getValueAtPercentile(99)), Table.ms(e2e.getValueAtPercentile(99)));
    }

    /**
     * Sender thread {@code index}: records index, index + P, index + 2P, ... of the schedule (P producers), on
     * schedule (in bursts of what is due, parked in between), or flat out; record g goes to partition g mod
     * partitions.
     */
    private void send(KafkaProducer<byte[], byte[]> producer, int index) {
        boolean inTxn = false;
        try {
            int producers = shape.producers();
            double periodNs = ratePerSec == 0 ? 0 : 1e9 / ratePerSec;
            for (long i = 0; ; i++) {
                long g = i * producers + index;
                long intended;
                if (ratePerSec == 0) {
                    intended = System.nanoTime();
                    if (i == 0 && intended < startNs) {
                        LockSupport.parkNanos(startNs - intended);
                        intended = System.nanoTime();
                    }
                } else {
                    intended = startNs + (long) (g * periodNs);
                    long now = System.nanoTime();
                    while (now < intended) {
                        LockSupport.parkNanos(intended - now);
                        now = System.nanoTime();
                    }
                }
                if (intended >= endNs) {
                    break;
                }
                if (txnRecords > 0 && !inTxn) {
                    producer.beginTransaction();
                    inTxn = true;
                }
                byte[] value = new byte[recordBytes];
                ByteBuffer.wrap(value).putLong(0, intended).putLong(8, i).putInt(16, index);
                sent.incrementAndGet();
                int partition = (int) (g % shape.partitions());
                producer.send(new ProducerRecord<>(topic, partition, null, value), new AckCallback(intended));
                if (txnRecords > 0 && (i + 1) % txnRecords == 0) {
                    inTxn = false;
                    commit(producer);
                }
            }
            if (inTxn) {
                inTxn = false;
                commit(producer); // the last, shorter transaction
            }
        } catch (RuntimeException e) {
            errors.incrementAndGet();
            firstError.compareAndSet(null, e);
        } finally {
            sendersDone.incrementAndGet();
        }
    }

    /**
     * Commits the sender's open transaction and records how long commitTransaction took (it flushes the
     * transaction's records, then waits for EndTxn). A failed commit is counted and its transaction aborted; a
     * producer that cannot abort (fenced, or in a fatal state) ends its sender with the exception.
     */
    private void commit(KafkaProducer<byte[], byte[]> producer) {
        long t0 = System.nanoTime();
        try {
            producer.commitTransaction();
        } catch (org.apache.kafka.common.KafkaException e) {
            firstError.compareAndSet(null, e);
            aborted.incrementAndGet();
            producer.abortTransaction();
            return;
        }
        long t1 = System.nanoTime();
        commitInterval.recordValue(t1 - t0);
        if (t0 >= measureStartNs && t0 < endNs) {
            commitMeasured.recordValue(t1 - t0);
        }
        if (t1 >= measureStartNs && t1 < endNs) {
            commitsInWindow.incrementAndGet();
        }
    }

    /** Records produce-to-ack latency; runs on the producer's I/O thread (or the sender's, for a send that fails at once). */
    private final class AckCallback implements Callback {
        private final long intendedNs;

        AckCallback(long intendedNs) {
            this.intendedNs = intendedNs;
        }

        @Override
        public void onCompletion(org.apache.kafka.clients.producer.RecordMetadata metadata, Exception e) {
            long now = System.nanoTime();
            if (e != null) {
                errors.incrementAndGet();
                firstError.compareAndSet(null, e);
                return;
            }
            long latencyNs = now - intendedNs;
            ackInterval.recordValue(latencyNs);
            if (intendedNs >= measureStartNs && intendedNs < endNs) {
                ackMeasured.recordValue(latencyNs);
            }
            if (now >= measureStartNs && now < endNs) {
                ackedInWindow.incrementAndGet();
            }
            acked.incrementAndGet();
        }
    }

    /**
     * A consumer thread: one clock reading per poll, since that is when the application gets the records. A
     * group member polls from the start (joining the group), before the clock starts.
     */
    private void consume(KafkaConsumer<byte[], byte[]> consumer) {
        int producers = shape.producers();
        try {
            while (!stopConsumers) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                long now = System.nanoTime();
                long fresh = 0;
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    ByteBuffer v = ByteBuffer.wrap(r.value());
                    long intended = v.getLong(0);
                    long seq = v.getLong(8);
                    int producer = v.getInt(16);
                    int slot = r.partition() * producers + producer;
                    if (producer < 0 || producer >= producers || slot >= lastSeq.length() || seq <= lastSeq.get(slot)) {
                        reordered.incrementAndGet();
                        continue;
                    }
                    lastSeq.set(slot, seq);
                    fresh++;
                    long latencyNs = now - intended;
                    e2eInterval.recordValue(latencyNs);
                    if (intended >= measureStartNs && intended < endNs) {
                        e2eMeasured.recordValue(latencyNs);
                    }
                }
                consumed.addAndGet(fresh);
            }
        } catch (org.apache.kafka.common.errors.WakeupException e) {
            // stop requested
        } catch (RuntimeException e) {
            errors.incrementAndGet();
            firstError.compareAndSet(null, e);
        }
    }
}
