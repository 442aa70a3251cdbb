package dev.isthmus.bench.compare;

import com.sun.tools.attach.AttachNotSupportedException;
import com.sun.tools.attach.VirtualMachine;

import javax.management.MBeanServerConnection;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import java.io.IOException;
import java.lang.management.ManagementFactory;

/**
 * Heap bytes a broker JVM allocates, read from the outside: attaches to the broker process (the JDK's attach
 * API), starts its local JMX agent ({@code VirtualMachine.startLocalManagementAgent}, loopback only, no port
 * opened to the network) and reads {@code com.sun.management.ThreadMXBean.getTotalThreadAllocatedBytes()}:
 * HotSpot's exact per-thread allocation counters (every TLAB and every allocation outside one), summed over the
 * live threads plus those that have ended. Two readings around a measurement window give the heap allocated
 * in it by every thread of the broker, whatever the garbage collector; JFR's allocation events would give a
 * sampled estimate instead, and a profiler inside the broker would change what it measures.
 *
 * <p>A reading is one JMX call, which itself allocates in the broker (the RMI server thread's work):
 * {@link #readCostBytes()} is that cost, measured at attach as the smallest difference of back-to-back readings,
 * and {@link #allocatedSince} subtracts it. Used by the run's thread only; {@link #close} drops the JMX
 * connection (the agent stays up in the broker, idle, until it exits).
 */
final class HeapMeter implements AutoCloseable {

    private static final int CALIBRATION_READS = 6;

    private final JMXConnector connector;
    private final com.sun.management.ThreadMXBean threads;
    private final long readCostBytes;

    private HeapMeter(JMXConnector connector, com.sun.management.ThreadMXBean threads) {
        this.connector = connector;
        this.threads = threads;
        long cost = Long.MAX_VALUE;
        long last = allocatedBytes();
        for (int i = 0; i < CALIBRATION_READS; i++) {
            long now = allocatedBytes();
            cost = Math.min(cost, Math.max(0, now - last));
            last = now;
        }
        this.readCostBytes = cost;
    }

    /**
     * Attaches to the JVM of {@code pid}; throws a {@link CompareException} whose sentence says why it cannot
     * (the column then reads "-").
     */
    static HeapMeter attach(long pid) {
        String url;
        try {
            VirtualMachine vm = VirtualMachine.attach(Long.toString(pid));
            try {
                url = vm.startLocalManagementAgent();
            } finally {
                vm.detach();
            }
        } catch (AttachNotSupportedException | IOException | RuntimeException e) {
            throw new CompareException("cannot attach to JVM " + pid + " to read its heap allocation: "
                + e.getClass().getSimpleName() + ": " + e.getMessage(), e);
        }
        JMXConnector c = null;
        try {
            c = JMXConnectorFactory.connect(new JMXServiceURL(url));
            MBeanServerConnection mbs = c.getMBeanServerConnection();
            com.sun.management.ThreadMXBean t = ManagementFactory.newPlatformMXBeanProxy(mbs,
                ManagementFactory.THREAD_MXBEAN_NAME, com.sun.management.ThreadMXBean.class);
            if (!t.isThreadAllocatedMemorySupported() || !t.isThreadAllocatedMemoryEnabled()) {
                throw new CompareException("JVM " + pid + " does not count allocated bytes per thread "
                    + "(ThreadMXBean.isThreadAllocatedMemoryEnabled is false)");
            }
            HeapMeter m = new HeapMeter(c, t);
            if (m.allocatedBytes() < 0) {
                throw new CompareException("JVM " + pid + " answers -1 for its total allocated bytes");
            }
            return m;
        } catch (IOException | RuntimeException e) {
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // already failing
                }
            }
            if (e instanceof CompareException ce) {
                throw ce;
            }
            throw new CompareException("cannot read the heap allocation of JVM " + pid + " over JMX: "
                + e.getClass().getSimpleName() + ": " + e.getMessage(), e);
        }
    }

    /** Bytes the JVM's threads have allocated on the heap since it started (exited threads included). */
    long allocatedBytes() {
        return threads.getTotalThreadAllocatedBytes();
    }

    /** What one reading allocates in the broker, bytes. */
    long readCostBytes() {
        return readCostBytes;
    }

    /** Bytes allocated between the reading {@code earlier} and a reading now, less one reading's own cost. */
    long allocatedSince(long earlier) {
        return Math.max(0, allocatedBytes() - earlier - readCostBytes);
    }

    @Override
    public void close() {
        try {
            connector.close();
        } catch (IOException e) {
            // the broker may be gone already
        }
    }
}
