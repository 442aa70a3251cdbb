package dev.isthmus.bench.compare;

/**
 * One line of the side-by-side table: one workload against one broker (or one cluster of it).
 *
 * @param broker            the broker
 * @param spec              the workload
 * @param result            what the clients measured
 * @param cpuPercent        the broker's CPU during the measurement window, in percent of one core (a cluster's
 *                          three processes summed)
 * @param otherCpuPercent   CPU used by everything other than the broker and this client during the window
 *                          (other users of the machine), in percent of one core
 * @param peakRssBytes      the broker's peak resident set so far (VmHWM) at the end of the workload (a
 *                          cluster's three summed)
 * @param pauses            the broker JVM's safepoint pauses during the window (a cluster's, all three JVMs)
 * @param hlogName          file name of the workload's histogram log in the results directory
 * @param cpuStallSeconds   seconds of the measurement window in which a CPU ran nothing for
 *                          {@link CpuGaps#STALL_NS} or longer (the machine, not the broker)
 * @param brokerCpuNs       CPU time the broker used during the window (utime + stime)
 * @param heapBytes         heap the broker JVM allocated during the window ({@link HeapMeter}), or -1 when it
 *                          could not be read
 */
record Row(BrokerKind broker, Spec spec, Workload.Result result, double cpuPercent, double otherCpuPercent,
           long peakRssBytes, GcLog.Pauses pauses, String hlogName, int cpuStallSeconds, long brokerCpuNs,
           long heapBytes) {

    String workload() {
        return spec.name();
    }

    long ratePerSec() {
        return spec.ratePerSec();
    }

    Suite suite() {
        return spec.suite();
    }

    /** The same row with the window's JVM pauses, known once the broker has exited and its log is complete. */
    Row withPauses(GcLog.Pauses p) {
        return new Row(broker, spec, result, cpuPercent, otherCpuPercent, peakRssBytes, p, hlogName, cpuStallSeconds,
            brokerCpuNs, heapBytes);
    }

    /** Broker CPU-seconds per million records acknowledged in the window; NaN without records. */
    double cpuSecondsPerMillion() {
        long n = result.ackedInWindow();
        return n == 0 ? Double.NaN : brokerCpuNs / 1e9 / (n / 1e6);
    }

    /** Heap bytes the broker allocated per record acknowledged in the window; NaN when unknown or no records. */
    double heapBytesPerRecord() {
        long n = result.ackedInWindow();
        return n == 0 || heapBytes < 0 ? Double.NaN : (double) heapBytes / n;
    }

    /** Whether no second of the window had a stalled CPU. */
    boolean cleanWindow() {
        return cpuStallSeconds == 0;
    }

    /** Anything that went wrong, for the notes column; empty when the run was clean. */
    String notes() {
        Workload.Result r = result;
        StringBuilder sb = new StringBuilder();
        if (r.errors() > 0) {
            sb.append(r.errors()).append(" failed sends (first: ").append(r.firstError()).append(") ");
        }
        if (r.unacked() > 0) {
            sb.append(r.unacked()).append(" never acknowledged ");
        }
        if (r.undelivered() > 0) {
            sb.append(r.undelivered()).append(" acknowledged but not delivered ");
        }
        if (r.reordered() > 0) {
            sb.append(r.reordered()).append(" delivered out of order or again ");
        }
        if (r.aborted() > 0) {
            sb.append(r.aborted()).append(" transactions aborted after a failed commit (first error: ")
                .append(r.firstError()).append(") ");
        }
        if (r.rebalances() > 0) {
            sb.append(r.rebalances()).append(" group rebalances ");
        }
        if (ratePerSec() > 0 && r.throughputPerSec() < ratePerSec() * 0.98) {
            sb.append("fell behind the rate ");
        }
        if (cpuStallSeconds > 0) {
            sb.append(cpuStallSeconds).append(" s with a CPU stalled ").append(CpuGaps.STALL_NS / 1_000_000)
                .append("+ ms ");
        }
        return sb.toString().strip();
    }
}
