package dev.isthmus.bench.compare;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Readings from Linux's /proc: a process's CPU time ({@code /proc/PID/stat} utime + stime), its resident set
 * and peak resident set ({@code /proc/PID/status} VmRSS and VmHWM), and the whole machine's busy CPU time
 * ({@code /proc/stat}). Stateless; any thread.
 */
public final class ProcStats {

    /** Clock ticks per second of /proc's CPU times (USER_HZ); 100 on every Linux this runs on, checked once. */
    static final long TICKS_PER_SEC = ticksPerSec();

    /**
     * One reading of a process and the machine.
     *
     * @param atNs            System.nanoTime() of the reading
     * @param processCpuNs    user + system CPU time of the process so far (0 if it is gone)
     * @param rssBytes        resident set now
     * @param peakRssBytes    peak resident set so far (VmHWM)
     * @param machineBusyNs   CPU time all CPUs spent not idle (user, nice, system, irq, softirq, steal)
     */
    record Sample(long atNs, long processCpuNs, long rssBytes, long peakRssBytes, long machineBusyNs) {

        /** CPU used by the process between {@code earlier} and this, in percent of one core. */
        double cpuPercentSince(Sample earlier) {
            long wallNs = atNs - earlier.atNs;
            return wallNs <= 0 ? 0 : 100.0 * (processCpuNs - earlier.processCpuNs) / wallNs;
        }
    }

    private ProcStats() {
    }

    static Sample sample(long pid) {
        long now = System.nanoTime();
        return new Sample(now, processCpuNs(pid), statusKb(pid, "VmRSS:") * 1024, statusKb(pid, "VmHWM:") * 1024,
            machineBusyNs());
    }

    /** One reading of several processes (a cluster's brokers), their CPU times and resident sets summed. */
    static Sample sample(long[] pids) {
        long now = System.nanoTime();
        long cpu = 0;
        long rss = 0;
        long peak = 0;
        for (long pid : pids) {
            cpu += processCpuNs(pid);
            rss += statusKb(pid, "VmRSS:") * 1024;
            peak += statusKb(pid, "VmHWM:") * 1024;
        }
        return new Sample(now, cpu, rss, peak, machineBusyNs());
    }

    /** utime + stime of {@code pid}, or 0 when it is gone. */
    public static long processCpuNs(long pid) {
        String stat = read(Path.of("/proc", Long.toString(pid), "stat"));
        if (stat == null) {
            return 0;
        }
        // "pid (comm) state ppid ..." where comm may hold spaces and ')': fields count from the last ')'.
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" +");
        // f[0] is field 3 (state); utime is field 14, stime field 15.
        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
        return ticks * TimeUnit.SECONDS.toNanos(1) / TICKS_PER_SEC;
    }

    /** A "Name:   N kB" line of /proc/PID/status in kB, or 0 when absent. */
    static long statusKb(long pid, String name) {
        String status = read(Path.of("/proc", Long.toString(pid), "status"));
        if (status == null) {
            return 0;
        }
        for (String line : status.split("\n")) {
            if (line.startsWith(name)) {
                String[] f = line.substring(name.length()).trim().split(" +");
                return Long.parseLong(f[0]);
            }
        }
        return 0;
    }

    /** Busy CPU time of the whole machine (all CPUs) from the first line of /proc/stat. */
    public static long machineBusyNs() {
        String stat = read(Path.of("/proc/stat"));
        if (stat == null) {
            return 0;
        }
        String[] f = stat.substring(0, stat.indexOf('\n')).trim().split(" +");
        // cpu user nice system idle iowait irq softirq steal ...
        long busy = 0;
        for (int i = 1; i < Math.min(f.length, 9); i++) {
            if (i != 4 && i != 5) {
                busy += Long.parseLong(f[i]);
            }
        }
        return busy * TimeUnit.SECONDS.toNanos(1) / TICKS_PER_SEC;
    }

    /**
     * Counters of one block device from /sys/dev/block/MAJOR:MINOR/stat (the device, or partition, holding a
     * directory); all zero when they cannot be read.
     *
     * @param writes       write requests completed
     * @param flushes      flush requests completed (what fdatasync turns into)
     * @param flushMs      time spent on flush requests, ms
     * @param busyMs       time the device had requests in flight (io_ticks), ms
     */
    record Disk(long writes, long flushes, long flushMs, long busyMs) {

        /** "disk 830 w/s, 205 flush/s (1.21 ms avg), 38% busy" over {@code wallNs} since {@code earlier}. */
        String describeSince(Disk earlier, long wallNs) {
            double sec = Math.max(1e-9, wallNs / 1e9);
            long f = flushes - earlier.flushes;
            return String.format(java.util.Locale.ROOT, "disk %.0f w/s, %.0f flush/s (%s ms avg), %.0f%% busy",
                (writes - earlier.writes) / sec, f / sec,
                f == 0 ? "-" : String.format(java.util.Locale.ROOT, "%.2f", (double) (flushMs - earlier.flushMs) / f),
                Math.min(100, (busyMs - earlier.busyMs) / sec / 10));
        }
    }

    /** The counters of the block device that holds {@code dir}. */
    static Disk disk(Path dir) {
        try {
            long dev = ((Number) Files.getAttribute(dir, "unix:dev")).longValue();
            long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
            long minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
            String stat = read(Path.of("/sys/dev/block/" + major + ":" + minor + "/stat"));
            if (stat == null) {
                return new Disk(0, 0, 0, 0);
            }
            String[] f = stat.trim().split(" +");
            // 0 reads, 1 merged, 2 sectors, 3 ms, 4 writes, 5 merged, 6 sectors, 7 ms, 8 in flight, 9 io_ticks,
            // 10 queue ms, 11-14 discards, 15 flushes, 16 flush ms
            long flushes = f.length > 16 ? Long.parseLong(f[15]) : 0;
            long flushMs = f.length > 16 ? Long.parseLong(f[16]) : 0;
            return new Disk(Long.parseLong(f[4]), flushes, flushMs, Long.parseLong(f[9]));
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return new Disk(0, 0, 0, 0);
        }
    }

    /** The 1-minute load average, or -1. */
    static double loadAverage1m() {
        String s = read(Path.of("/proc/loadavg"));
        return s == null ? -1 : Double.parseDouble(s.trim().split(" +")[0]);
    }

    /** "load 0.52 0.40 0.31" from /proc/loadavg. */
    public static String loadAverages() {
        String s = read(Path.of("/proc/loadavg"));
        if (s == null) {
            return "load unknown";
        }
        String[] f = s.trim().split(" +");
        return "load " + f[0] + " " + f[1] + " " + f[2];
    }

    /** "2 x AMD EPYC, 23.4 GiB, Linux 6.1.0-..." for the report. */
    public static String machine() {
        String cpuModel = "unknown CPU";
        String cpuinfo = read(Path.of("/proc/cpuinfo"));
        if (cpuinfo != null) {
            for (String line : cpuinfo.split("\n")) {
                if (line.startsWith("model name")) {
                    cpuModel = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        }
        long memKb = 0;
        String meminfo = read(Path.of("/proc/meminfo"));
        if (meminfo != null && meminfo.startsWith("MemTotal:")) {
            memKb = Long.parseLong(meminfo.substring(9, meminfo.indexOf('\n')).trim().split(" +")[0]);
        }
        String kernel = read(Path.of("/proc/sys/kernel/osrelease"));
        return Runtime.getRuntime().availableProcessors() + " x " + cpuModel + ", "
            + String.format("%.1f GiB", memKb / (1024.0 * 1024.0)) + ", Linux " + (kernel == null ? "?" : kernel.trim())
            + ", Java " + Runtime.version();
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return null;
        }
    }

    private static long ticksPerSec() {
        try {
            Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            p.waitFor();
            long v = Long.parseLong(out);
            return v > 0 ? v : 100;
        } catch (IOException | NumberFormatException e) {
            return 100;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 100;
        }
    }
}
