package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One member of the {@code group} workload's consumer group, in a JVM of its own so that the workload can
 * crash it for real (SIGKILL: no LeaveGroup, no last commit; the coordinator finds out by the session
 * timeout). It subscribes to the topic, starts each assigned partition at its committed offset (or the start),
 * commits its positions after every poll that returned records and on revocation, and prints each history
 * event as one line {@code H {json}} on stdout, stamped on the parent's time line ({@code System.nanoTime()} is
 * CLOCK_MONOTONIC on Linux, the same for every process). It leaves the group cleanly when a line
 * {@code leave} (or end of input) arrives on stdin.
 *
 * <p>{@code java -cp ... dev.isthmus.bench.chaos.GroupMember BOOTSTRAP TOPIC GROUP PROC ORIGIN_NS}
 *
 * <p>Threads: main polls and commits; one thread reads stdin.
 */
public final class GroupMember {

    private GroupMember() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: GroupMember BOOTSTRAP TOPIC GROUP PROC ORIGIN_NS");
            System.exit(2);
        }
        dev.isthmus.bench.compare.Compare.silenceClientLogging();
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        String proc = args[3];
        long origin = Long.parseLong(args[4]);
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
            StandardCharsets.UTF_8);
        Emitter emit = new Emitter(out, origin);
        AtomicBoolean leave = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null && !line.trim().equals("leave")) {
                    // only "leave" means anything
                }
            } catch (Exception e) {
                // end of input: leave
            }
            leave.set(true);
        }, "member-stdin");
        stdin.setDaemon(true);
        stdin.start();
        String set = "group:" + group;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(AppendWorkload.consumerConfig(bootstrap, proc, group))) {
            History h = emit.history();
            c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    AppendWorkload.commit(c, h, proc, group, topic, parts);
                    reset(h, proc, "revoked", topic, parts, null);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    reset(h, proc, "revoked", topic, parts, "lost");
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    AppendWorkload.startAtCommitted(c, parts);
                    reset(h, proc, "assigned", topic, parts, "committed");
                }
            });
            Map<String, Object> joined = History.event(proc, "info", "member-up");
            joined.put("group", group);
            joined.put("reader", set);
            joined.put("topic", topic);
            h.write(joined);
            while (!leave.get()) {
                long t0 = h.now();
                try {
                    ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(200));
                    AppendWorkload.recordPoll(h, null, proc, set, topic, t0, records);
                    if (!records.isEmpty()) {
                        AppendWorkload.commit(c, h, proc, group, topic, records.partitions());
                    }
                } catch (OffsetOutOfRangeException e) {
                    for (Map.Entry<TopicPartition, Long> p : e.offsetOutOfRangePartitions().entrySet()) {
                        Map<String, Object> ev = History.event(proc, "info", "out-of-range");
                        ev.put("topic", topic);
                        ev.put("part", p.getKey().partition());
                        ev.put("offset", p.getValue());
                        h.write(ev);
                    }
                    c.seekToBeginning(e.partitions());
                    reset(h, proc, "assigned", topic, e.partitions(), "beginning");
                } catch (KafkaException e) {
                    Map<String, Object> ev = History.event(proc, "info", "poll");
                    ev.put("topic", topic);
                    ev.put("error", Workloads.error(e));
                    h.write(ev);
                    Thread.sleep(200);
                }
            }
        }
        Map<String, Object> left = History.event(proc, "info", "member-left");
        left.put("group", group);
        emit.history().write(left);
        out.flush();
        System.exit(0);
    }

    static void reset(History h, String proc, String f, String topic, Collection<TopicPartition> parts, String from) {
        Map<String, Object> e = History.event(proc, "ok", f);
        e.put("topic", topic);
        e.put("parts", parts.stream().map(TopicPartition::partition).sorted().toList());
        if (from != null) {
            e.put("from", from);
        }
        h.write(e);
    }

    /** A {@link History} that prints each line with an "H " prefix instead of writing a file. */
    private static final class Emitter {
        private final History history;

        Emitter(PrintStream out, long origin) {
            this.history = History.toStream(out, origin);
        }

        History history() {
            return history;
        }
    }
}
