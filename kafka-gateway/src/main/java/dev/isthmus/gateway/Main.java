package dev.isthmus.gateway;

import dev.isthmus.uring.IoBackend;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;

/**
 * {@code isthmus start [--port 9092] [--host 127.0.0.1] [--smp N] [--memory 1G] [--data ./data]
 * [--node-id 0] [--pin] [--portable]}: starts a broker in the foreground until interrupted.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0 || !args[0].equals("start")) {
            System.err.println("usage: isthmus start [--port 9092] [--host 127.0.0.1] [--smp N] [--memory 1G]"
                + " [--data ./data] [--node-id 0] [--pin] [--portable]");
            System.exit(2);
        }
        BrokerConfig c = BrokerConfig.defaults();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--port" -> c = c.withPort(Integer.parseInt(value(args, ++i, a)));
                case "--smp" -> c = c.withShards(Integer.parseInt(value(args, ++i, a)));
                case "--memory" -> c = c.withMemory(parseBytes(value(args, ++i, a)));
                case "--data" -> c = c.withDataDir(Path.of(value(args, ++i, a)));
                case "--node-id" -> c = c.withNodeId(Integer.parseInt(value(args, ++i, a)));
                case "--pin" -> c = c.withPin(true);
                case "--portable" -> c = c.withBackend(IoBackend.PORTABLE);
                case "--host" -> c = new BrokerConfig(value(args, ++i, a), c.port(), c.nodeId(), c.shards(),
                    c.memoryBytes(), c.dataDir(), c.pin(), c.backend(), c.maxRequestBytes(), c.defaultPartitions(),
                    c.autoCreateTopics());
                default -> {
                    System.err.println("isthmus: unknown option " + a);
                    System.exit(2);
                }
            }
        }
        Broker broker;
        try {
            broker = Broker.start(c);
        } catch (Exception e) {
            System.err.println("isthmus: " + e.getMessage());
            System.exit(1);
            return;
        }
        System.out.println("Isthmus broker " + c.nodeId() + " ready on " + c.host() + ":" + broker.port() + " ("
            + broker.group().size() + " shards, " + (c.memoryBytes() >> 20) + " MiB, data in "
            + c.dataDir().toAbsolutePath() + "). Ctrl-C stops it.");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            broker.close();
            stopped.countDown();
        }, "isthmus-shutdown"));
        stopped.await();
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            System.err.println("isthmus: " + option + " needs a value");
            System.exit(2);
        }
        return args[i];
    }

    /** 512M, 2G, 1073741824. */
    static long parseBytes(String s) {
        String v = s.trim().toUpperCase(Locale.ROOT);
        long mul = 1;
        if (v.endsWith("K")) {
            mul = 1L << 10;
        } else if (v.endsWith("M")) {
            mul = 1L << 20;
        } else if (v.endsWith("G")) {
            mul = 1L << 30;
        }
        if (mul != 1) {
            v = v.substring(0, v.length() - 1);
        }
        return Long.parseLong(v) * mul;
    }
}
