package dev.isthmus.bench.compare;

/**
 * One line of the side-by-side table: one workload against one broker.
 *
 * @param broker            the broker
 * @param ratePerSec        the workload's rate, 0 for saturation
 * @param result            what the clients measured
 * @param cpuPercent        the broker's CPU during the measurement window, in percent of one core
 * @param otherCpuPercent   CPU used by everything other than the broker and this client during the window
 *                          (other users of the machine), in percent of one core
 * @param peakRssBytes      the broker's peak resident set so far (VmHWM) at the end of the workload
 * @param pauses            the broker JVM's safepoint pauses during the window
 * @param hlogName          file name of the workload's histogram log in the results directory
 * @param cpuStallSeconds   seconds of the measurement window in which a CPU ran nothing for
 *                          {@link CpuGaps#STALL_NS} or longer (the machine, not the broker)
 */
record Row(BrokerKind broker, long ratePerSec, Workload.Result result, double cpuPercent, double otherCpuPercent,
           long peakRssBytes, GcLog.Pauses pauses, String hlogName, int cpuStallSeconds) {

    String workload() {
        return CompareOptions.workloadName(ratePerSec);
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
            sb.append(r.reordered()).append(" delivered out of order ");
        }
        if (ratePerSec > 0 && r.throughputPerSec() < ratePerSec * 0.98) {
            sb.append("fell behind the rate ");
        }
        if (cpuStallSeconds > 0) {
            sb.append(cpuStallSeconds).append(" s with a CPU stalled ").append(CpuGaps.STALL_NS / 1_000_000)
                .append("+ ms ");
        }
        return sb.toString().strip();
    }
}
