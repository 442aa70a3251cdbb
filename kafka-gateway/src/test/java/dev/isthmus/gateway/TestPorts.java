package dev.isthmus.gateway;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Ports for brokers that tests stop and start again on the same address. A port the kernel hands out for
 * {@code bind(0)} lies in the ephemeral range, from which every outgoing connection on the machine also takes its
 * local port: a node restarted a minute later may find its port taken by some client's connection ("Address
 * already in use"), as a rolling-restart test did under load. These ports are drawn below that range instead
 * (checked free at the time, never handed out twice by this JVM). Falls back to {@code bind(0)} when the range
 * leaves no room below it.
 */
final class TestPorts {

    private static final Set<Integer> GIVEN = new HashSet<>();

    private TestPorts() {
    }

    static synchronized int free() throws IOException {
        int low = 10_000;
        int high = ephemeralLow() - 1;
        if (high - low >= 1_000) {
            for (int attempt = 0; attempt < 500; attempt++) {
                int port = ThreadLocalRandom.current().nextInt(low, high + 1);
                if (GIVEN.contains(port)) {
                    continue;
                }
                try (ServerSocket s = new ServerSocket()) {
                    s.setReuseAddress(false);
                    s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1);
                    GIVEN.add(port);
                    return port;
                } catch (IOException taken) {
                    // in use: draw again
                }
            }
        }
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            GIVEN.add(s.getLocalPort());
            return s.getLocalPort();
        }
    }

    private static int ephemeralLow() {
        try {
            String[] range = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).trim().split("\\s+");
            return Integer.parseInt(range[0]);
        } catch (IOException | RuntimeException e) {
            return 32_768; // Linux's default
        }
    }
}
