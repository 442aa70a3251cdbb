package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@code group} workload: a consumer group ({@code chaos-members}) reading the append topic and committing
 * its positions after every poll, while members join, leave cleanly and crash. Each member is a
 * {@link GroupMember} in a JVM of its own, so a crash is a real SIGKILL (no LeaveGroup; the coordinator
 * notices by the session timeout). Every few seconds (drawn from the run's seed) the churn thread starts a
 * member (up to 3), asks one to leave, or kills one, keeping at least one alive. An observer reads the
 * group's committed offsets once a second ({@code committed} events, with the read's invocation time
 * {@code t0}) for {@link CommitCheck}; the members' reads form the reader set "group:chaos-members".
 *
 * <p>Threads: the churn thread, the observer thread, and per member one thread relaying its stdout into the
 * history and one its stderr into {@code OUT/member-N.log}.
 */
final class GroupWorkload implements Workload {
    static final String GROUP = "chaos-members";
    private static final int MAX_MEMBERS = 3;

    private final Workloads.Context ctx;
    private final Random random;
    private final List<Member> members = new ArrayList<>();
    private final AtomicBoolean churning = new AtomicBoolean(true);
    private final AtomicBoolean observing = new AtomicBoolean(true);
    private final AtomicLong joins = new AtomicLong();
    private final AtomicLong leaves = new AtomicLong();
    private final AtomicLong crashes = new AtomicLong();
    private final AtomicLong relayErrors = new AtomicLong();
    private int nextMember;
    private Thread churn;
    private Thread observer;

    /** One member process and its relays. */
    private record Member(String proc, Process process, OutputStream stdin) {
    }

    GroupWorkload(Workloads.Context ctx) {
        this.ctx = ctx;
        this.random = new Random(ctx.seed ^ 0x67726f7570L);
    }

    @Override
    public String name() {
        return "group";
    }

    @Override
    public void start() {
        Map<String, Object> e = History.event("group", "info", "reader-start");
        e.put("reader", "group:" + GROUP);
        e.put("topic", Workloads.APPEND_TOPIC);
        ctx.history.write(e);
        join();
        join();
        churn = new Thread(this::churn, "chaos-group-churn");
        churn.setDaemon(true);
        churn.start();
        observer = new Thread(this::observe, "chaos-group-observer");
        observer.setDaemon(true);
        observer.start();
    }

    private void event(String f, String proc) {
        Map<String, Object> e = History.event("group", "info", f);
        e.put("member", proc);
        ctx.history.write(e);
    }

    private synchronized void join() {
        String proc = "member-" + nextMember++;
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = List.of(java.toString(), "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", System.getProperty("java.class.path"), GroupMember.class.getName(), ctx.cluster.bootstrap,
            Workloads.APPEND_TOPIC, GROUP, proc, Long.toString(ctx.history.originNs()));
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(
                ctx.outDir.resolve(proc + ".log").toFile())).start();
        } catch (IOException e) {
            throw new ChaosException("cannot start group member " + proc + ": " + e.getMessage(), e);
        }
        Member m = new Member(proc, p, p.getOutputStream());
        members.add(m);
        joins.incrementAndGet();
        event("member-join", proc);
        Thread relay = new Thread(() -> relay(m), "chaos-relay-" + proc);
        relay.setDaemon(true);
        relay.start();
    }

    private void relay(Member m) {
        String set = "group:" + GROUP;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(m.process().getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (!line.startsWith("H ")) {
                    continue;
                }
                String json = line.substring(2);
                try {
                    ctx.history.relay(json);
                    if (json.contains("\"f\":\"poll\"") && json.contains("\"reads\"")) {
                        for (Object o : Event.parse(json, 0).list("reads")) {
                            ctx.seen(set, (Long) ((List<?>) o).get(2));
                        }
                    }
                } catch (IllegalArgumentException e) {
                    relayErrors.incrementAndGet();
                }
            }
        } catch (IOException e) {
            // the member is gone
        }
    }

    private synchronized List<Member> alive() {
        List<Member> a = new ArrayList<>();
        for (Member m : members) {
            if (m.process().isAlive()) {
                a.add(m);
            }
        }
        return a;
    }

    private void leave(Member m) {
        try {
            m.stdin().write("leave\n".getBytes(StandardCharsets.US_ASCII));
            m.stdin().flush();
        } catch (IOException e) {
            // already gone
        }
    }

    private void churn() {
        while (churning.get()) {
            long sleepMs = 3000 + random.nextInt(5000);
            int action = random.nextInt(3);
            int which = random.nextInt(1 << 16);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(sleepMs));
            if (!churning.get()) {
                return;
            }
            List<Member> alive = alive();
            if (alive.isEmpty() || (action == 0 && alive.size() < MAX_MEMBERS)) {
                join();
            } else if (alive.size() > 1) {
                Member m = alive.get(which % alive.size());
                if (action == 1) {
                    event("member-leave", m.proc());
                    leaves.incrementAndGet();
                    leave(m);
                } else {
                    event("member-crash", m.proc());
                    crashes.incrementAndGet();
                    m.process().destroyForcibly();
                }
            }
        }
    }

    private void observe() {
        while (observing.get()) {
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
            long t0 = ctx.history.now();
            try {
                Map<TopicPartition, OffsetAndMetadata> offsets = ctx.cluster.admin().listConsumerGroupOffsets(GROUP)
                    .partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
                Map<String, Object> byPart = new TreeMap<>();
                offsets.forEach((tp, om) -> {
                    if (om != null && tp.topic().equals(Workloads.APPEND_TOPIC)) {
                        byPart.put(Integer.toString(tp.partition()), om.offset());
                    }
                });
                if (byPart.isEmpty()) {
                    continue;
                }
                Map<String, Object> e = History.event("observer", "ok", "committed");
                e.put("group", GROUP);
                e.put("topic", Workloads.APPEND_TOPIC);
                e.put("offsets", byPart);
                e.put("t0", t0);
                ctx.history.write(e);
            } catch (Exception e) {
                // the coordinator is moving or down: the next read will tell
            }
        }
    }

    @Override
    public void quiesce() {
        churning.set(false);
        if (churn != null) {
            try {
                churn.join(TimeUnit.SECONDS.toMillis(15));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (alive().isEmpty()) {
            join();
        }
    }

    @Override
    public String drain(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        long missing;
        do {
            missing = ctx.missing("group:" + GROUP);
            if (missing == 0) {
                return "the members saw every acknowledged value";
            }
            if (alive().isEmpty()) {
                join();
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
        } while (System.nanoTime() < deadline);
        return String.format(Locale.ROOT, "after %.0f s the group's members still missed %d acknowledged value(s)",
            timeoutNs / 1e9, missing);
    }

    @Override
    public void finish() {
        observing.set(false);
        for (Member m : alive()) {
            leave(m);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        for (Member m : alive()) {
            try {
                m.process().waitFor(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        // One last look at the committed offsets, after the members' last commits.
        observing.set(true);
        observeOnce();
        observing.set(false);
    }

    private void observeOnce() {
        long t0 = ctx.history.now();
        try {
            Map<TopicPartition, OffsetAndMetadata> offsets = ctx.cluster.admin().listConsumerGroupOffsets(GROUP)
                .partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
            Map<String, Object> byPart = new TreeMap<>();
            offsets.forEach((tp, om) -> {
                if (om != null && tp.topic().equals(Workloads.APPEND_TOPIC)) {
                    byPart.put(Integer.toString(tp.partition()), om.offset());
                }
            });
            Map<String, Object> e = History.event("observer", "ok", "committed");
            e.put("group", GROUP);
            e.put("topic", Workloads.APPEND_TOPIC);
            e.put("offsets", byPart);
            e.put("t0", t0);
            ctx.history.write(e);
        } catch (Exception e) {
            // recorded nothing: nothing to compare
        }
    }

    @Override
    public String progress() {
        return String.format(Locale.ROOT, "members %d alive, %d joined, %d left, %d crashed", alive().size(),
            joins.get(), leaves.get(), crashes.get());
    }


    @Override
    public void close() {
        churning.set(false);
        observing.set(false);
        for (Member m : alive()) {
            m.process().destroyForcibly();
        }
    }
}
