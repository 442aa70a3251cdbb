package dev.isthmus.bench.chaos;

import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Makes the workloads by name, and the context they share. The extension point for new workloads (see
 * {@link Workload}).
 */
final class Workloads {
    static final String APPEND_TOPIC = "chaos-append";

    private Workloads() {
    }

    /**
     * What every workload of one cluster's run shares: options, cluster, history, its own seed, where to write
     * logs, the counter that numbers values and the set of acknowledged ones (read by the torn-write fault).
     * Thread-safe.
     */
    static final class Context {
        final ChaosOptions options;
        final Cluster cluster;
        final History history;
        final long seed;
        final Path outDir;
        final PrintStream out;
        private final AtomicLong nextValue = new AtomicLong();
        private final BitSet acked = new BitSet();
        private final Map<String, BitSet> seen = new ConcurrentHashMap<>();

        Context(ChaosOptions options, Cluster cluster, History history, long seed, Path outDir, PrintStream out) {
            this.options = options;
            this.cluster = cluster;
            this.history = history;
            this.seed = seed;
            this.outDir = outDir;
            this.out = out;
        }

        long nextValue() {
            return nextValue.getAndIncrement();
        }

        long valuesIssued() {
            return nextValue.get();
        }

        void acked(long value) {
            synchronized (acked) {
                acked.set((int) value);
            }
        }

        boolean isAcked(long value) {
            if (value < 0 || value > Integer.MAX_VALUE) {
                return false;
            }
            synchronized (acked) {
                return acked.get((int) value);
            }
        }

        /** A copy of the acknowledged values. */
        BitSet ackedValues() {
            synchronized (acked) {
                return (BitSet) acked.clone();
            }
        }

        /** {@code set} (a reader set: "assigned", "group:NAME") has seen {@code value}. */
        void seen(String set, long value) {
            if (value < 0 || value > Integer.MAX_VALUE) {
                return;
            }
            BitSet b = seen.computeIfAbsent(set, k -> new BitSet());
            synchronized (b) {
                b.set((int) value);
            }
        }

        /** Acknowledged values {@code set} has not seen yet. */
        long missing(String set) {
            BitSet a = ackedValues();
            BitSet b = seen.computeIfAbsent(set, k -> new BitSet());
            synchronized (b) {
                a.andNot(b);
            }
            return a.cardinality();
        }

        /** Replication factor of new topics: 3, or the cluster's size when smaller. */
        short replication() {
            return (short) Math.min(3, cluster.size);
        }
    }

    /** A record value: the number in decimal, padded with spaces to {@code size} bytes. */
    static byte[] encode(long value, int size) {
        byte[] digits = Long.toString(value).getBytes(StandardCharsets.US_ASCII);
        byte[] b = new byte[Math.max(size, digits.length)];
        java.util.Arrays.fill(b, (byte) ' ');
        System.arraycopy(digits, 0, b, 0, digits.length);
        return b;
    }

    /** The number in a record value, or -1 when it holds none. */
    static long decode(byte[] b) {
        if (b == null) {
            return -1;
        }
        long v = 0;
        int i = 0;
        for (; i < b.length && b[i] >= '0' && b[i] <= '9' && i < 19; i++) {
            v = v * 10 + (b[i] - '0');
        }
        return i == 0 ? -1 : v;
    }

    /** A poll event's "reads": [partition, offset, value] for each record. */
    static List<Object> reads(Iterable<org.apache.kafka.clients.consumer.ConsumerRecord<byte[], byte[]>> records) {
        List<Object> out = new ArrayList<>();
        for (var r : records) {
            out.add(List.of(r.partition(), r.offset(), decode(r.value())));
        }
        return out;
    }

    /** "Class: message" of an exception (its cause for an ExecutionException), at most 200 characters. */
    static String error(Throwable t) {
        Throwable c = t instanceof java.util.concurrent.ExecutionException && t.getCause() != null ? t.getCause() : t;
        String s = c.getClass().getSimpleName() + (c.getMessage() == null ? "" : ": " + c.getMessage());
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    static Workload create(String name, Context ctx) {
        return switch (name) {
            case "append" -> new AppendWorkload(ctx);
            case "group" -> new GroupWorkload(ctx);
            case "txn" -> new TxnWorkload(ctx);
            case "admin" -> new AdminWorkload(ctx);
            default -> throw new IllegalArgumentException("no workload named " + name);
        };
    }
}
