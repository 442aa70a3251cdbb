package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.errors.WakeupException;

import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@code txn} workload (issue 19's Jepsen-style check): transactional kafka-clients producers, each with a
 * transactional id of its own ({@code chaos-txn-I}), run transactions of 1 to 4 unique values (numbers from the
 * run's counter, as the append workload's) over random partitions of {@code chaos-txn}, and commit or abort each
 * at random (the choices drawn from the run's seed; about 30% aborted), about {@code --rate}/20 transactions per
 * second in all. Two read_committed consumers and one read_uncommitted consumer, each assigned every partition
 * from the start, record everything they read; at the end a fresh read_committed consumer reads every partition
 * to its last stable offset, after waiting for it to reach the high watermark (no transaction left open).
 *
 * <p>What it records ({@link TxnCheck} reads it):
 * <ul>
 *   <li>{@code txn} {@code invoke}: {@code id}, {@code tid} (transactional id), {@code intent} (commit or abort),
 *       {@code writes} {@code [[partition, value], ...]}, before the first send;</li>
 *   <li>{@code txn-end} {@code invoke}: {@code id}, {@code action} (commit or abort), just before
 *       {@code commitTransaction} or {@code abortTransaction} is called (a read_committed read of the
 *       transaction's data before this is a read of uncommitted data);</li>
 *   <li>{@code txn} completion: {@code ok} with {@code outcome} "committed" (commitTransaction returned);
 *       {@code fail} with "aborted" (the producer never asked for a commit: an abort, or an error before the
 *       commit, so no coordinator may commit it); {@code info} with "unknown" (the commit was asked for and did
 *       not return: timed out after retries, fenced, or an error; it may have committed, and must then be whole);
 *       and {@code offsets} {@code [[partition, value, offset], ...]} of the sends acknowledged;</li>
 *   <li>{@code txn-poll} {@code ok}: {@code reader} (its proc), {@code isolation}, {@code t0}, {@code reads}
 *       {@code [[partition, offset, value], ...]}; {@code txn-assign} when a reader's positions start afresh;
 *       {@code out-of-range} as the append readers record it;</li>
 *   <li>{@code txn-final-end} ({@code proc} "txn-final"): {@code ends} (the last stable offset the final read
 *       reached per partition), {@code hw} (the high watermarks), {@code complete}.</li>
 * </ul>
 *
 * <p>A producer whose commit outcome is unknown, or that meets a fatal error (fenced, out of order sequence), is
 * closed and replaced by a new instance with the same transactional id ({@code proc} {@code txn-I.GEN}): its
 * {@code initTransactions} completes or aborts what the old one left open, as Kafka's coordinator does.
 *
 * <p>Threads: one per producer, one per reader; the producers' I/O threads run the send callbacks.
 */
final class TxnWorkload implements Workload {
    static final String TOPIC = "chaos-txn";
    static final String READ_COMMITTED = "read_committed";
    static final String READ_UNCOMMITTED = "read_uncommitted";
    static final String FINAL = "txn-final";
    private static final int PRODUCERS = 2;
    private static final int RC_READERS = 2;
    private static final int MAX_WRITES = 4;
    private static final double ABORT_SHARE = 0.3;
    private static final int END_ATTEMPTS = 3;
    private static final int INIT_ATTEMPTS = 6;
    private static final int TXN_TIMEOUT_MS = 20_000;

    private final Workloads.Context ctx;
    private final int partitions;
    private final AtomicBoolean producing = new AtomicBoolean(true);
    private final AtomicBoolean reading = new AtomicBoolean(true);
    private final List<Thread> producers = new ArrayList<>();
    private final List<Thread> readers = new ArrayList<>();
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong committed = new AtomicLong();
    private final AtomicLong aborted = new AtomicLong();
    private final AtomicLong unknown = new AtomicLong();
    private final AtomicLong replaced = new AtomicLong();
    private final BitSet committedValues = new BitSet();
    private final Map<String, BitSet> seen = new ConcurrentHashMap<>();

    TxnWorkload(Workloads.Context ctx) {
        this.ctx = ctx;
        this.partitions = ctx.options.partitions();
    }

    @Override
    public String name() {
        return "txn";
    }

    /** Creates the transactional topic (retrying while the cluster settles). */
    private void createTopic() {
        NewTopic t = new NewTopic(TOPIC, partitions, ctx.replication())
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
        throw new ChaosException("the cluster did not create " + TOPIC + ": " + Workloads.error(last));
    }

    @Override
    public void start() {
        createTopic();
        for (int i = 0; i < RC_READERS; i++) {
            String proc = "txn-rc-" + i;
            readers.add(thread("chaos-" + proc, () -> read(proc, READ_COMMITTED)));
        }
        readers.add(thread("chaos-txn-ru", () -> read("txn-ru", READ_UNCOMMITTED)));
        for (int i = 0; i < PRODUCERS; i++) {
            int index = i;
            producers.add(thread("chaos-txn-" + i, () -> produce(index)));
        }
    }

    private static Thread thread(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    static Properties producerConfig(String bootstrap, String clientId, String transactionalId) {
        Properties p = AppendWorkload.producerConfig(bootstrap, clientId);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        // A transaction its producer left open (a replaced producer's) is aborted by the coordinator after this.
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, TXN_TIMEOUT_MS);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        return p;
    }

    /** One producer: paced transactions, each recorded from its invocation to its outcome. */
    private void produce(int index) {
        Random random = new Random(ctx.seed ^ 0x74786eL ^ (index + 1) * 0x9E3779B97F4A7C15L);
        String tid = "chaos-txn-" + index;
        int generation = 0;
        String proc = "txn-" + index;
        long intervalNs = TimeUnit.SECONDS.toNanos(1) * PRODUCERS * 20 / Math.max(20, ctx.options.ratePerSec());
        KafkaProducer<byte[], byte[]> p = null;
        long next = System.nanoTime();
        try {
            while (producing.get()) {
                long now = System.nanoTime();
                if (now < next) {
                    LockSupport.parkNanos(next - now);
                    continue;
                }
                next = now - next > TimeUnit.SECONDS.toNanos(1) ? now + intervalNs : next + intervalNs;
                if (p == null) {
                    p = open(proc, tid);
                    if (p == null) {
                        replaced.incrementAndGet();
                        proc = "txn-" + index + "." + (++generation);
                        LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
                        continue;
                    }
                }
                int n = 1 + random.nextInt(MAX_WRITES);
                boolean abort = random.nextDouble() < ABORT_SHARE;
                int[] parts = new int[n];
                long[] values = new long[n];
                for (int i = 0; i < n; i++) {
                    parts[i] = random.nextInt(partitions);
                    values[i] = ctx.nextValue();
                }
                if (!transaction(p, proc, tid, abort, parts, values)) {
                    p.close(Duration.ZERO);
                    p = null;
                    replaced.incrementAndGet();
                    proc = "txn-" + index + "." + (++generation);
                }
            }
        } catch (InterruptException e) {
            // closing
        } finally {
            if (p != null) {
                p.close(Duration.ofSeconds(5));
            }
        }
    }

    /** A new producer with its transactions initialised, or null when that did not work (recorded). */
    private KafkaProducer<byte[], byte[]> open(String proc, String tid) {
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(producerConfig(ctx.cluster.bootstrap, proc, tid));
        Map<String, Object> inv = History.event(proc, "invoke", "txn-init");
        inv.put("tid", tid);
        ctx.history.write(inv);
        Exception last = null;
        for (int attempt = 0; attempt < INIT_ATTEMPTS && producing.get(); attempt++) {
            try {
                p.initTransactions();
                Map<String, Object> ok = History.event(proc, "ok", "txn-init");
                ok.put("tid", tid);
                ctx.history.write(ok);
                return p;
            } catch (TimeoutException e) {
                last = e; // initTransactions may be called again after a timeout
            } catch (KafkaException e) {
                last = e;
                break;
            }
        }
        Map<String, Object> info = History.event(proc, "info", "txn-init");
        info.put("tid", tid);
        info.put("error", last == null ? "stopped" : Workloads.error(last));
        ctx.history.write(info);
        p.close(Duration.ZERO);
        return null;
    }

    /**
     * Runs one transaction and records it. Returns false when the producer must be replaced (its commit outcome is
     * unknown, or it met a fatal error).
     */
    private boolean transaction(KafkaProducer<byte[], byte[]> p, String proc, String tid, boolean abort, int[] parts,
                                long[] values) {
        long id = nextId.getAndIncrement();
        Map<String, Object> inv = History.event(proc, "invoke", "txn");
        inv.put("id", id);
        inv.put("tid", tid);
        inv.put("intent", abort ? "abort" : "commit");
        List<Object> writes = new ArrayList<>();
        for (int i = 0; i < parts.length; i++) {
            writes.add(List.of(parts[i], values[i]));
        }
        inv.put("writes", writes);
        ctx.history.write(inv);
        List<Object> acks = new ArrayList<>();
        boolean commitAsked = false;
        boolean endAsked = false;
        boolean usable = true;
        String outcome;
        Exception error = null;
        try {
            p.beginTransaction();
            for (int i = 0; i < parts.length; i++) {
                int part = parts[i];
                long v = values[i];
                p.send(new ProducerRecord<>(TOPIC, part, null, Workloads.encode(v, ctx.options.valueBytes())),
                    (md, ex) -> {
                        if (ex == null) {
                            synchronized (acks) {
                                acks.add(List.of(part, v, md.offset()));
                            }
                        }
                    });
            }
            endInvoke(proc, id, abort ? "abort" : "commit");
            endAsked = true;
            if (abort) {
                end(p, false);
                outcome = "aborted";
            } else {
                commitAsked = true;
                end(p, true);
                outcome = "committed";
            }
        } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException
                 | UnsupportedVersionException | IllegalStateException e) {
            error = e;
            usable = false;
            outcome = commitAsked ? "unknown" : "aborted";
        } catch (InterruptException e) {
            error = e;
            usable = false;
            outcome = commitAsked ? "unknown" : "aborted";
        } catch (KafkaException e) {
            // Timed out after retries, or an abortable error: abort what can be (never committed unless asked for).
            error = e;
            outcome = commitAsked ? "unknown" : "aborted";
            if (commitAsked) {
                usable = false; // the outcome is unknown: a new instance's initTransactions settles it
            } else {
                if (!endAsked) {
                    endInvoke(proc, id, "abort");
                }
                try {
                    end(p, false);
                } catch (KafkaException e2) {
                    usable = false;
                }
            }
        }
        Map<String, Object> done = History.event(proc, switch (outcome) {
            case "committed" -> "ok";
            case "aborted" -> "fail";
            default -> "info";
        }, "txn");
        done.put("id", id);
        done.put("tid", tid);
        done.put("outcome", outcome);
        synchronized (acks) {
            done.put("offsets", new ArrayList<>(acks));
        }
        if (error != null) {
            done.put("error", Workloads.error(error));
        }
        ctx.history.write(done);
        switch (outcome) {
            case "committed" -> {
                committed.incrementAndGet();
                synchronized (committedValues) {
                    for (long v : values) {
                        committedValues.set((int) v);
                    }
                }
            }
            case "aborted" -> aborted.incrementAndGet();
            default -> unknown.incrementAndGet();
        }
        return usable;
    }

    private void endInvoke(String proc, long id, String action) {
        Map<String, Object> e = History.event(proc, "invoke", "txn-end");
        e.put("id", id);
        e.put("action", action);
        ctx.history.write(e);
    }

    /** Commits or aborts, calling again after a timeout (kafka-clients allows it) up to {@link #END_ATTEMPTS} times. */
    private static void end(KafkaProducer<byte[], byte[]> p, boolean commit) {
        for (int attempt = 1; ; attempt++) {
            try {
                if (commit) {
                    p.commitTransaction();
                } else {
                    p.abortTransaction();
                }
                return;
            } catch (TimeoutException e) {
                if (attempt >= END_ATTEMPTS) {
                    throw e;
                }
            }
        }
    }

    /** One reader: every partition from the start, at {@code isolation}; every poll that returns records recorded. */
    private void read(String proc, String isolation) {
        Map<String, Object> start = History.event(proc, "info", "txn-reader-start");
        start.put("reader", proc);
        start.put("isolation", isolation);
        start.put("topic", TOPIC);
        ctx.history.write(start);
        Properties config = AppendWorkload.consumerConfig(ctx.cluster.bootstrap, proc, null);
        config.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        BitSet mine = seen.computeIfAbsent(proc, k -> new BitSet());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(config)) {
            List<TopicPartition> tps = partitions();
            c.assign(tps);
            c.seekToBeginning(tps);
            assignEvent(proc, tps);
            while (reading.get()) {
                long t0 = ctx.history.now();
                try {
                    ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(200));
                    if (records.isEmpty()) {
                        continue;
                    }
                    Map<String, Object> e = History.event(proc, "ok", "txn-poll");
                    e.put("topic", TOPIC);
                    e.put("reader", proc);
                    e.put("isolation", isolation);
                    e.put("t0", t0);
                    e.put("reads", Workloads.reads(records));
                    ctx.history.write(e);
                    synchronized (mine) {
                        for (var r : records) {
                            long v = Workloads.decode(r.value());
                            if (v >= 0 && v <= Integer.MAX_VALUE) {
                                mine.set((int) v);
                            }
                        }
                    }
                } catch (OffsetOutOfRangeException e) {
                    for (Map.Entry<TopicPartition, Long> x : e.offsetOutOfRangePartitions().entrySet()) {
                        Map<String, Object> ev = History.event(proc, "info", "out-of-range");
                        ev.put("topic", TOPIC);
                        ev.put("part", x.getKey().partition());
                        ev.put("offset", x.getValue());
                        ctx.history.write(ev);
                    }
                    c.seekToBeginning(e.partitions());
                    assignEvent(proc, e.partitions());
                } catch (WakeupException | InterruptException e) {
                    return;
                } catch (KafkaException e) {
                    Map<String, Object> ev = History.event(proc, "info", "txn-poll");
                    ev.put("topic", TOPIC);
                    ev.put("error", Workloads.error(e));
                    ctx.history.write(ev);
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
                }
            }
        }
    }

    private void assignEvent(String proc, java.util.Collection<TopicPartition> tps) {
        Map<String, Object> e = History.event(proc, "ok", "txn-assign");
        e.put("topic", TOPIC);
        e.put("parts", tps.stream().map(TopicPartition::partition).sorted().toList());
        ctx.history.write(e);
    }

    private List<TopicPartition> partitions() {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < partitions; i++) {
            tps.add(new TopicPartition(TOPIC, i));
        }
        return tps;
    }

    @Override
    public void quiesce() {
        producing.set(false);
        for (Thread t : producers) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(90));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Committed values a read_committed reader has not read yet, the most of any reader. */
    private long missing() {
        BitSet c;
        synchronized (committedValues) {
            c = (BitSet) committedValues.clone();
        }
        long worst = 0;
        for (int i = 0; i < RC_READERS; i++) {
            BitSet m = seen.computeIfAbsent("txn-rc-" + i, k -> new BitSet());
            BitSet x = (BitSet) c.clone();
            synchronized (m) {
                x.andNot(m);
            }
            worst = Math.max(worst, x.cardinality());
        }
        return worst;
    }

    @Override
    public String drain(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        long m;
        do {
            m = missing();
            if (m == 0) {
                return "";
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
        } while (System.nanoTime() < deadline);
        return String.format(Locale.ROOT, "after %.0f s a read_committed reader still missed %d committed value(s)",
            timeoutNs / 1e9, m);
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
        finalRead();
    }

    /** Latest offsets of every partition at {@code level}, or null when the cluster does not answer. */
    private Map<Integer, Long> latest(IsolationLevel level) {
        Map<TopicPartition, OffsetSpec> q = new HashMap<>();
        for (TopicPartition tp : partitions()) {
            q.put(tp, OffsetSpec.latest());
        }
        try {
            var r = ctx.cluster.admin().listOffsets(q, new ListOffsetsOptions(level)).all().get(10, TimeUnit.SECONDS);
            Map<Integer, Long> out = new TreeMap<>();
            r.forEach((tp, info) -> out.put(tp.partition(), info.offset()));
            return out;
        } catch (Exception e) {
            return null;
        }
    }

    /**
     * The final read: waits (up to 90 s) until every partition's last stable offset has reached its high watermark
     * (every transaction ended; an abandoned one is aborted by the coordinator after the transaction timeout), then
     * a fresh read_committed consumer reads every partition from its start to the last stable offset.
     */
    private void finalRead() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        Map<Integer, Long> lso = null;
        Map<Integer, Long> hw = null;
        while (System.nanoTime() < deadline) {
            Map<Integer, Long> h = latest(IsolationLevel.READ_UNCOMMITTED);
            Map<Integer, Long> l = latest(IsolationLevel.READ_COMMITTED);
            if (h != null && l != null) {
                hw = h;
                lso = l;
                if (h.equals(l)) {
                    break;
                }
            }
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
        }
        boolean complete = false;
        if (lso != null) {
            Properties config = AppendWorkload.consumerConfig(ctx.cluster.bootstrap, FINAL, null);
            config.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, READ_COMMITTED);
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(config)) {
                List<TopicPartition> tps = partitions();
                c.assign(tps);
                c.seekToBeginning(tps);
                long readDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (System.nanoTime() < readDeadline) {
                    boolean done = true;
                    try {
                        for (TopicPartition tp : tps) {
                            if (c.position(tp, Duration.ofSeconds(10)) < lso.get(tp.partition())) {
                                done = false;
                            }
                        }
                    } catch (KafkaException e) {
                        done = false;
                    }
                    if (done) {
                        complete = true;
                        break;
                    }
                    long t0 = ctx.history.now();
                    try {
                        ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(500));
                        if (!records.isEmpty()) {
                            Map<String, Object> e = History.event(FINAL, "ok", "txn-poll");
                            e.put("topic", TOPIC);
                            e.put("reader", FINAL);
                            e.put("isolation", READ_COMMITTED);
                            e.put("t0", t0);
                            e.put("reads", Workloads.reads(records));
                            ctx.history.write(e);
                        }
                    } catch (KafkaException e) {
                        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
                    }
                }
            }
        }
        Map<String, Object> e = History.event(FINAL, "ok", "txn-final-end");
        e.put("topic", TOPIC);
        Map<String, Object> ends = new TreeMap<>();
        Map<String, Object> hws = new TreeMap<>();
        if (lso != null) {
            lso.forEach((p, o) -> ends.put(Integer.toString(p), o));
            hw.forEach((p, o) -> hws.put(Integer.toString(p), o));
        }
        e.put("ends", ends);
        e.put("hw", hws);
        e.put("complete", complete);
        ctx.history.write(e);
    }

    @Override
    public String progress() {
        return String.format(Locale.ROOT, "txns committed %,d aborted %,d unknown %,d%s", committed.get(), aborted.get(),
            unknown.get(), replaced.get() == 0 ? "" : " (" + replaced.get() + " txn producer(s) replaced)");
    }

    @Override
    public void close() {
        producing.set(false);
        reading.set(false);
    }
}
