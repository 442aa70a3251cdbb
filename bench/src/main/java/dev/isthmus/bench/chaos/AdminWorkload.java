package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.RetriableException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
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
 * <p>Threads: one, running the operations one at a time through the cluster's AdminClient.
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

    AdminWorkload(Workloads.Context ctx) {
        this.ctx = ctx;
        this.random = new Random(ctx.seed ^ 0x61646d696eL);
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
        if (thread != null) {
            try {
                thread.join(TimeUnit.SECONDS.toMillis(60));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String drain(long timeoutNs) {
        return "";
    }

    @Override
    public void finish() {
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
        return String.format(Locale.ROOT, "admin ops %d (%d acknowledged)", ops.get(), oks.get());
    }


    @Override
    public void close() {
        running.set(false);
    }
}
