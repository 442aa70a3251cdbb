package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.UnknownProducerIdException;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@code admin} workload: topics {@code chaos-admin-N} created (1 or 2 partitions), grown by a partition
 * and deleted while the other workloads run, every 2 to 5 s (choices drawn from the run's seed), each
 * operation recorded at invocation and completion: {@code ok}; {@code fail} when Kafka's answer says it did
 * not happen (a non-retriable error: the topic exists, does not exist, bad partition count); {@code info}
 * when it may have (a timeout, a retriable error). At the end it lists the topics and their partition counts
 * ({@code topics}, proc "final") for {@link AdminCheck}, after waiting up to 30 s for metadata to agree with
 * what was acknowledged.
 *
 * <p><b>Replica moves</b> (clusters of 3 or more nodes): the topic {@code chaos-moves} (3 partitions, replication
 * factor one less than the cluster's size, at most 3, so every partition has a node to move to) takes writes from
 * an idempotent acks=all producer at 20 per second ({@code send} events, checked with the append topic's
 * {@link AppendCheck}: lost, duplicated, reordered; a final read at the end), while every 3 to 6 s a partition's
 * replicas are moved through AlterPartitionReassignments: one replica replaced by a node that holds none, the
 * order shuffled (choices from the run's seed). Each move is recorded ({@code move}: {@code invoke} with
 * {@code part}, {@code from}, {@code to}; {@code ok}, {@code fail}, {@code info} as above) and followed until the
 * partition's replicas are the target and ListPartitionReassignments no longer lists it ({@code move-done}
 * {@code ok} with {@code ms}); one move at a time, so a move waiting for a node that is down holds the next. At the
 * end it waits up to 90 s for the last move and records every partition's replicas and ongoing reassignment
 * ({@code moves}, proc "final") for {@link MoveCheck}.
 *
 * <p>Threads: one running the topic operations one at a time through the cluster's AdminClient; on clusters of 3 or
 * more, one for the moves and one for the moved topic's producer (its callbacks on the producer's I/O thread).
 */
final class AdminWorkload implements Workload {
    static final String PREFIX = "chaos-admin-";
    private static final int MAX_TOPICS = 3;
    private static final String PROC = "admin";

    private final Workloads.Context ctx;
    private final Random random;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Map<String, Integer> known = new LinkedHashMap<>(); // acknowledged topics and their partitions
    private final Map<String, Boolean> expectExists = new HashMap<>();
    private final AtomicLong ops = new AtomicLong();
    private final AtomicLong oks = new AtomicLong();
    private int next;
    private Thread thread;

    static final String MOVES_TOPIC = "chaos-moves";
    private static final int MOVE_PARTITIONS = 3;
    private static final int MOVE_WRITES_PER_SEC = 20;
    private static final long MOVE_NOTE_NS = TimeUnit.SECONDS.toNanos(120);
    private final boolean moving;
    private final Random moveRandom;
    private final AtomicLong moves = new AtomicLong();
    private final AtomicLong movesDone = new AtomicLong();
    private final AtomicLong moveSends = new AtomicLong();
    private final AtomicLong moveAcks = new AtomicLong();
    private Thread mover;
    private Thread moveProducer;

    AdminWorkload(Workloads.Context ctx) {
        this.ctx = ctx;
        this.random = new Random(ctx.seed ^ 0x61646d696eL);
        this.moving = ctx.cluster.size >= 3;
        this.moveRandom = new Random(ctx.seed ^ 0x6d6f766573L);
    }

    @Override
    public String name() {
        return "admin";
    }

    @Override
    public void start() {
        thread = new Thread(this::run, "chaos-admin");
        thread.setDaemon(true);
        thread.start();
        if (moving) {
            createMovesTopic();
            moveProducer = new Thread(this::produceMoved, "chaos-moves-producer");
            moveProducer.setDaemon(true);
            moveProducer.start();
            mover = new Thread(this::move, "chaos-mover");
            mover.setDaemon(true);
            mover.start();
        }
    }

    /** Replication factor of the moved topic: one less than the cluster's size (a free node to move to), at most 3. */
    private int moveReplication() {
        return Math.min(3, ctx.cluster.size - 1);
    }

    private void createMovesTopic() {
        NewTopic t = new NewTopic(MOVES_TOPIC, MOVE_PARTITIONS, (short) moveReplication())
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
        throw new ChaosException("the cluster did not create " + MOVES_TOPIC + ": " + Workloads.error(last));
    }

    /** The moved topic's producer: paced idempotent sends to its partitions in turn, recorded as the append's. */
    private void produceMoved() {
        long intervalNs = TimeUnit.SECONDS.toNanos(1) / MOVE_WRITES_PER_SEC;
        int generation = 0;
        String proc = "moves-producer";
        AtomicBoolean broken = new AtomicBoolean();
        KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(AppendWorkload.producerConfig(ctx.cluster.bootstrap, proc));
        long nextNs = System.nanoTime();
        int turn = 0;
        try {
            while (running.get()) {
                long now = System.nanoTime();
                if (now < nextNs) {
                    LockSupport.parkNanos(nextNs - now);
                    continue;
                }
                nextNs = now - nextNs > TimeUnit.SECONDS.toNanos(1) ? now + intervalNs : nextNs + intervalNs;
                if (broken.get()) {
                    p.close(Duration.ZERO);
                    proc = "moves-producer." + (++generation);
                    broken.set(false);
                    p = new KafkaProducer<>(AppendWorkload.producerConfig(ctx.cluster.bootstrap, proc));
                }
                long v = ctx.nextValue();
                int partition = turn++ % MOVE_PARTITIONS;
                Map<String, Object> inv = History.event(proc, "invoke", "send");
                inv.put("topic", MOVES_TOPIC);
                inv.put("part", partition);
                inv.put("value", v);
                ctx.history.write(inv);
                moveSends.incrementAndGet();
                String by = proc;
                try {
                    p.send(new ProducerRecord<>(MOVES_TOPIC, partition, null, Workloads.encode(v, ctx.options.valueBytes())),
                        (md, ex) -> sent(by, partition, v, md == null ? -1 : md.offset(), ex, broken));
                } catch (InterruptException e) {
                    sent(by, partition, v, -1, e, broken);
                    break;
                } catch (KafkaException | IllegalStateException e) {
                    sent(by, partition, v, -1, e, broken);
                    if (!(e instanceof org.apache.kafka.common.errors.TimeoutException)) {
                        broken.set(true);
                    }
                }
            }
        } finally {
            p.close(Duration.ofSeconds(35));
        }
    }

    private void sent(String proc, int partition, long v, long offset, Exception ex, AtomicBoolean broken) {
        Map<String, Object> e = History.event(proc, ex == null ? "ok" : "info", "send");
        e.put("topic", MOVES_TOPIC);
        e.put("part", partition);
        e.put("value", v);
        if (ex == null) {
            e.put("offset", offset);
            moveAcks.incrementAndGet();
        } else {
            e.put("error", Workloads.error(ex));
            if (ex instanceof OutOfOrderSequenceException || ex instanceof ProducerFencedException
                    || ex instanceof InvalidProducerEpochException || ex instanceof UnknownProducerIdException) {
                broken.set(true);
            }
        }
        ctx.history.write(e);
    }

    /** Replicas of the moved topic's partition {@code part} by the metadata, or null when unknown. */
    private List<Integer> replicasOf(int part) {
        try {
            TopicDescription d = ctx.cluster.admin().describeTopics(List.of(MOVES_TOPIC)).allTopicNames()
                .get(10, TimeUnit.SECONDS).get(MOVES_TOPIC);
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.partition() == part) {
                    return p.replicas().stream().map(Node::id).toList();
                }
            }
        } catch (Exception e) {
            // unknown
        }
        return null;
    }

    /** The partition's ongoing reassignment as ListPartitionReassignments lists it, empty when none, null when unknown. */
    private Optional<PartitionReassignment> listed(int part) {
        TopicPartition tp = new TopicPartition(MOVES_TOPIC, part);
        try {
            Map<TopicPartition, PartitionReassignment> m = ctx.cluster.admin().listPartitionReassignments(Set.of(tp))
                .reassignments().get(10, TimeUnit.SECONDS);
            return Optional.ofNullable(m.get(tp));
        } catch (Exception e) {
            return null;
        }
    }

    /** The mover: one move at a time, each followed until it completes (or the run ends). */
    private void move() {
        while (running.get()) {
            long sleepMs = 3000 + moveRandom.nextInt(3000);
            int part = moveRandom.nextInt(MOVE_PARTITIONS);
            long pick = moveRandom.nextLong();
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(sleepMs));
            if (!running.get()) {
                return;
            }
            List<Integer> from = replicasOf(part);
            Optional<PartitionReassignment> ongoing = listed(part);
            if (from == null || ongoing == null || ongoing.isPresent()) {
                continue; // the cluster does not answer now, or the partition still moves: another time
            }
            List<Integer> to = target(from, pick);
            Map<String, Object> inv = History.event(PROC, "invoke", "move");
            inv.put("topic", MOVES_TOPIC);
            inv.put("part", part);
            inv.put("from", from);
            inv.put("to", to);
            ctx.history.write(inv);
            moves.incrementAndGet();
            ops.incrementAndGet();
            long t0 = System.nanoTime();
            Exception err = null;
            try {
                ctx.cluster.admin().alterPartitionReassignments(Map.of(new TopicPartition(MOVES_TOPIC, part),
                    Optional.of(new NewPartitionReassignment(to)))).all().get(15, TimeUnit.SECONDS);
            } catch (Exception e) {
                err = e;
            }
            String type = outcomeType(err);
            Map<String, Object> done = History.event(PROC, type, "move");
            done.put("topic", MOVES_TOPIC);
            done.put("part", part);
            done.put("from", from);
            done.put("to", to);
            if (err != null) {
                done.put("error", Workloads.error(err));
            } else {
                oks.incrementAndGet();
            }
            ctx.history.write(done);
            if (!type.equals("fail")) {
                awaitMove(part, to, t0);
            }
        }
    }

    /** {@code from} with one replica replaced by a node that holds none, in an order drawn from {@code pick}. */
    private List<Integer> target(List<Integer> from, long pick) {
        Random r = new Random(pick);
        List<Integer> free = new ArrayList<>();
        for (int i = 0; i < ctx.cluster.size; i++) {
            if (!from.contains(i)) {
                free.add(i);
            }
        }
        List<Integer> to = new ArrayList<>(from);
        if (!free.isEmpty() && !to.isEmpty()) {
            to.set(r.nextInt(to.size()), free.get(r.nextInt(free.size())));
        }
        Collections.shuffle(to, r);
        return List.copyOf(to);
    }

    /** Follows a move until the partition's replicas are {@code to} and it is no longer listed, or the run ends. */
    private void awaitMove(int part, List<Integer> to, long t0) {
        boolean noted = false;
        while (running.get()) {
            if (moveFinished(part, to)) {
                Map<String, Object> e = History.event(PROC, "ok", "move-done");
                e.put("topic", MOVES_TOPIC);
                e.put("part", part);
                e.put("replicas", to);
                e.put("ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
                ctx.history.write(e);
                movesDone.incrementAndGet();
                return;
            }
            if (!noted && System.nanoTime() - t0 > MOVE_NOTE_NS) {
                noted = true;
                Optional<PartitionReassignment> l = listed(part);
                Map<String, Object> e = History.event(PROC, "info", "move-slow");
                e.put("topic", MOVES_TOPIC);
                e.put("part", part);
                e.put("to", to);
                e.put("replicas", replicasOf(part));
                e.put("listed", l == null ? "unknown" : l.map(x -> x.toString()).orElse("no"));
                ctx.history.write(e);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
        }
    }

    private boolean moveFinished(int part, List<Integer> to) {
        Optional<PartitionReassignment> l = listed(part);
        if (l == null || l.isPresent()) {
            return false;
        }
        List<Integer> now = replicasOf(part);
        return now != null && now.size() == to.size() && now.containsAll(to);
    }

    private static String outcomeType(Exception error) {
        if (error == null) {
            return "ok";
        }
        Throwable c = error instanceof ExecutionException && error.getCause() != null ? error.getCause() : error;
        return c instanceof ApiException && !(c instanceof RetriableException) ? "fail" : "info";
    }

    private void run() {
        while (running.get()) {
            long sleepMs = 2000 + random.nextInt(3000);
            int action = random.nextInt(3);
            int which = random.nextInt(1 << 16);
            int partitions = 1 + random.nextInt(2);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(sleepMs));
            if (!running.get()) {
                return;
            }
            List<String> topics = new ArrayList<>(known.keySet());
            if (topics.isEmpty() || (action == 0 && topics.size() < MAX_TOPICS)) {
                create(PREFIX + next++, partitions);
            } else if (action == 1) {
                String t = topics.get(which % topics.size());
                grow(t, known.get(t) + 1);
            } else {
                delete(topics.get(which % topics.size()));
            }
        }
    }

    private Map<String, Object> invoke(String f, String topic, int partitions) {
        Map<String, Object> e = History.event(PROC, "invoke", f);
        e.put("topic", topic);
        e.put("partitions", partitions);
        ctx.history.write(e);
        ops.incrementAndGet();
        return e;
    }

    /** Records the outcome; returns true when acknowledged. */
    private boolean complete(String f, String topic, int partitions, Exception error) {
        String type;
        if (error == null) {
            type = "ok";
            oks.incrementAndGet();
        } else {
            Throwable c = error instanceof ExecutionException && error.getCause() != null ? error.getCause() : error;
            type = c instanceof ApiException && !(c instanceof RetriableException) ? "fail" : "info";
        }
        Map<String, Object> e = History.event(PROC, type, f);
        e.put("topic", topic);
        e.put("partitions", partitions);
        if (error != null) {
            e.put("error", Workloads.error(error));
        }
        ctx.history.write(e);
        return error == null;
    }

    private void create(String topic, int partitions) {
        invoke("create-topic", topic, partitions);
        Exception err = null;
        try {
            ctx.cluster.admin().createTopics(List.of(new NewTopic(topic, partitions, ctx.replication())))
                .all().get(15, TimeUnit.SECONDS);
        } catch (Exception e) {
            err = e;
        }
        if (complete("create-topic", topic, partitions, err)) {
            known.put(topic, partitions);
            expectExists.put(topic, true);
        } else if (!(err instanceof ExecutionException ee && ee.getCause() instanceof ApiException
                && !(ee.getCause() instanceof RetriableException))) {
            expectExists.remove(topic); // unknown now
        }
    }

    private void grow(String topic, int partitions) {
        invoke("grow-topic", topic, partitions);
        Exception err = null;
        try {
            ctx.cluster.admin().createPartitions(Map.of(topic, NewPartitions.increaseTo(partitions)))
                .all().get(15, TimeUnit.SECONDS);
        } catch (Exception e) {
            err = e;
        }
        if (complete("grow-topic", topic, partitions, err)) {
            known.put(topic, partitions);
        } else {
            known.remove(topic); // its partition count is unknown now; not grown again
        }
    }

    private void delete(String topic) {
        invoke("delete-topic", topic, 0);
        Exception err = null;
        try {
            ctx.cluster.admin().deleteTopics(List.of(topic)).all().get(15, TimeUnit.SECONDS);
        } catch (Exception e) {
            err = e;
        }
        known.remove(topic);
        if (complete("delete-topic", topic, 0, err)) {
            expectExists.put(topic, false);
        } else {
            expectExists.remove(topic);
        }
    }

    @Override
    public void quiesce() {
        running.set(false);
        for (Thread t : new Thread[] {thread, mover, moveProducer}) {
            if (t != null) {
                try {
                    t.join(TimeUnit.SECONDS.toMillis(60));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    @Override
    public String drain(long timeoutNs) {
        return "";
    }

    @Override
    public void finish() {
        if (moving) {
            finishMoves();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Map<String, Object> listing = null;
        while (System.nanoTime() < deadline) {
            listing = list();
            if (listing != null && agrees(listing)) {
                break;
            }
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
        }
        if (listing == null) {
            Map<String, Object> e = History.event("final", "info", "topics");
            e.put("error", "the cluster did not list its topics within 30 s");
            ctx.history.write(e);
            return;
        }
        Map<String, Object> e = History.event("final", "ok", "topics");
        e.put("topics", listing);
        ctx.history.write(e);
    }

    /**
     * Waits up to 90 s until no partition of the moved topic is listed as moving, then records every partition's
     * replicas and ongoing reassignment ({@code moves}), and reads the topic to its end (the final read).
     */
    private void finishMoves() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        Map<String, Object> parts = null;
        while (System.nanoTime() < deadline) {
            parts = new TreeMap<>();
            boolean settled = true;
            for (int p = 0; p < MOVE_PARTITIONS; p++) {
                List<Integer> replicas = replicasOf(p);
                Optional<PartitionReassignment> l = listed(p);
                if (replicas == null || l == null) {
                    parts = null;
                    settled = false;
                    break;
                }
                Map<String, Object> x = new TreeMap<>();
                x.put("replicas", replicas);
                if (l.isPresent()) {
                    settled = false;
                    x.put("adding", l.get().addingReplicas());
                    x.put("removing", l.get().removingReplicas());
                }
                parts.put(Integer.toString(p), x);
            }
            if (settled) {
                break;
            }
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
        }
        Map<String, Object> e = History.event("final", parts == null ? "info" : "ok", "moves");
        e.put("topic", MOVES_TOPIC);
        if (parts == null) {
            e.put("error", "the cluster did not describe " + MOVES_TOPIC + " within 90 s");
        } else {
            e.put("parts", parts);
        }
        ctx.history.write(e);
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < MOVE_PARTITIONS; p++) {
            tps.add(new TopicPartition(MOVES_TOPIC, p));
        }
        AppendWorkload.finalRead(ctx, MOVES_TOPIC, tps);
    }

    private boolean agrees(Map<String, Object> listing) {
        for (Map.Entry<String, Boolean> x : expectExists.entrySet()) {
            Object have = listing.get(x.getKey());
            if (x.getValue() != (have != null)) {
                return false;
            }
            Integer n = known.get(x.getKey());
            if (have != null && n != null && ((Number) have).intValue() < n) {
                return false;
            }
        }
        return true;
    }

    /** Topic -> partition count, or null when the cluster does not answer. */
    private Map<String, Object> list() {
        try {
            Set<String> names = ctx.cluster.admin().listTopics().names().get(10, TimeUnit.SECONDS);
            Map<String, TopicDescription> d = ctx.cluster.admin().describeTopics(names).allTopicNames()
                .get(10, TimeUnit.SECONDS);
            Map<String, Object> out = new TreeMap<>();
            d.forEach((n, t) -> out.put(n, (long) t.partitions().size()));
            return out;
        } catch (Exception e) {
            return null;
        }
    }

    @Override
    public String progress() {
        return String.format(Locale.ROOT, "admin ops %d (%d acknowledged)", ops.get(), oks.get()) + (moving
            ? String.format(Locale.ROOT, ", moves %d (%d done), moved topic acked %,d of %,d", moves.get(),
            movesDone.get(), moveAcks.get(), moveSends.get()) : "");
    }


    @Override
    public void close() {
        running.set(false);
    }
}
