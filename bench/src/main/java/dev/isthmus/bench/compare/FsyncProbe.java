package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The device's own durable-write latency, measured in the same run as the brokers and on the same file
 * system (issue 18 judges Isthmus's end-to-end p99.9 against it): 4 KiB O_DIRECT writes at queue depth 1, each
 * followed by an fdatasync, sequentially over a 16 MiB file laid out before the clock starts (so an fdatasync
 * flushes the device's cache and writes no extent metadata), for a given duration. The figure is the latency
 * of the fdatasync calls.
 *
 * <ul>
 * <li>{@code fio}, when installed ({@code apt-get install fio}): {@code fio --rw=write --bs=4k --direct=1
 *     --ioengine=sync --fdatasync=1 --size=16m --time_based --runtime=N}, its JSON's {@code sync} latency
 *     percentiles.</li>
 * <li>{@code java}, otherwise: the same loop in this process ({@code FileChannel} with
 *     {@code ExtendedOpenOption.DIRECT}, {@code write} then {@code force(false)}, which is fdatasync), timed
 *     into an HdrHistogram.</li>
 * </ul>
 * Stateless; runs on the caller's thread and blocks for the duration.
 */
final class FsyncProbe {

    static final int BLOCK_BYTES = 4096;
    static final long FILE_BYTES = 16L << 20;
    private static final long FIO_GRACE_SEC = 60;

    /**
     * What the probe measured.
     *
     * @param tool    "fio" or "java"
     * @param count   fdatasync calls measured
     * @param p50Ns   median fdatasync latency
     * @param p99Ns   99th percentile
     * @param p999Ns  99.9th percentile
     * @param maxNs   the slowest
     */
    record Result(String tool, long count, long p50Ns, long p99Ns, long p999Ns, long maxNs) {

        /** "4 KiB write + fdatasync (fio, 9,312 syncs): p50 0.80 p99 2.10 p99.9 2.80 max 9.10 ms". */
        String describe(long durationNs) {
            double s = durationNs / 1e9;
            return String.format(Locale.ROOT, "4 KiB O_DIRECT write + fdatasync at depth 1 for %s s (%s, %,d syncs): "
                    + "fdatasync p50 %s p99 %s p99.9 %s max %s ms",
                s == Math.rint(s) ? Long.toString((long) s) : String.format(Locale.ROOT, "%.1f", s), tool,
                count, Table.ms(p50Ns), Table.ms(p99Ns), Table.ms(p999Ns), Table.ms(maxNs));
        }
    }

    private FsyncProbe() {
    }

    /** Whether fio is on the PATH. */
    static boolean fioInstalled() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "fio"))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Runs the probe in {@code dir} for {@code durationNs} with {@code tool} (auto, fio, java); throws a
     * {@link CompareException} with one sentence when it cannot.
     */
    static Result run(Path dir, long durationNs, String tool) {
        boolean fio = switch (tool) {
            case "fio" -> {
                if (!fioInstalled()) {
                    throw new CompareException("--fsync-tool fio: fio is not installed (apt-get install fio)");
                }
                yield true;
            }
            case "java" -> false;
            default -> fioInstalled();
        };
        return fio ? fio(dir, durationNs) : java(dir, durationNs);
    }

    static Result fio(Path dir, long durationNs) {
        long seconds = Math.max(1, TimeUnit.NANOSECONDS.toSeconds(durationNs));
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=fdatasync-probe", "--directory=" + dir,
            "--filename=isthmus-compare-fsync-probe", "--rw=write", "--bs=" + BLOCK_BYTES, "--direct=1",
            "--ioengine=sync", "--fdatasync=1", "--size=" + (FILE_BYTES >> 20) + "m", "--time_based",
            "--runtime=" + seconds + "s", "--unlink=1", "--output-format=json", "--percentile_list=50:99:99.9"));
        String out;
        int exit;
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            byte[] bytes = p.getInputStream().readAllBytes();
            if (!p.waitFor(seconds + FIO_GRACE_SEC, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new CompareException("fio did not finish its " + seconds + " s fdatasync probe in " + dir);
            }
            out = new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
            exit = p.exitValue();
        } catch (IOException e) {
            throw new CompareException("cannot run fio: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted during the fdatasync probe");
        } finally {
            try {
                Files.deleteIfExists(dir.resolve("isthmus-compare-fsync-probe"));
            } catch (IOException ignored) {
                // fio's --unlink removes it; this is for a fio that was killed
            }
        }
        if (exit != 0) {
            throw new CompareException("fio's fdatasync probe in " + dir + " failed (exit " + exit + "): "
                + out.strip().lines().reduce((a, b) -> b).orElse("no output"));
        }
        return parseFio(out);
    }

    private static final Pattern SYNC = Pattern.compile("\"sync\"\\s*:\\s*\\{.*?\"lat_ns\"\\s*:\\s*\\{(.*?)}\\s*}", Pattern.DOTALL);

    /** The {@code sync} latency of fio's JSON output (anything before the JSON, such as warnings, is skipped). */
    static Result parseFio(String out) {
        Matcher m = SYNC.matcher(out);
        if (!m.find()) {
            throw new CompareException("fio's output has no fdatasync (\"sync\") latency: "
                + out.strip().lines().findFirst().orElse("no output"));
        }
        String lat = m.group(1);
        long n = number(lat, "N");
        if (n == 0) {
            throw new CompareException("fio's fdatasync probe made no fdatasync call");
        }
        return new Result("fio", n, number(lat, "50.000000"), number(lat, "99.000000"), number(lat, "99.900000"),
            number(lat, "max"));
    }

    private static long number(String json, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\"\\s*:\\s*([0-9.]+)").matcher(json);
        if (!m.find()) {
            throw new CompareException("fio's fdatasync latency lacks \"" + key + "\"");
        }
        return (long) Double.parseDouble(m.group(1));
    }

    static Result java(Path dir, long durationNs) {
        Path file = dir.resolve("isthmus-compare-fsync-probe");
        Histogram h = new Histogram(3);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT)) {
            ByteBuffer block = ByteBuffer.allocateDirect(2 * BLOCK_BYTES).alignedSlice(BLOCK_BYTES).limit(BLOCK_BYTES);
            long blocks = FILE_BYTES / BLOCK_BYTES;
            for (long b = 0; b < blocks; b++) { // lay the file out: later writes land on written blocks
                block.clear().limit(BLOCK_BYTES);
                write(ch, block, b * BLOCK_BYTES);
            }
            ch.force(true);
            long end = System.nanoTime() + durationNs;
            for (long i = 0; System.nanoTime() < end; i++) {
                block.clear().limit(BLOCK_BYTES);
                block.putLong(0, i);
                write(ch, block, (i % blocks) * BLOCK_BYTES);
                long t0 = System.nanoTime();
                ch.force(false);
                h.recordValue(System.nanoTime() - t0);
            }
        } catch (IOException | UnsupportedOperationException e) {
            throw new CompareException("the in-process fdatasync probe cannot write O_DIRECT in " + dir + ": "
                + e.getClass().getSimpleName() + ": " + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(file);
            } catch (IOException ignored) {
                // the run's clean-up removes --tmp-dir's directory anyway
            }
        }
        return new Result("java", h.getTotalCount(), h.getValueAtPercentile(50), h.getValueAtPercentile(99),
            h.getValueAtPercentile(99.9), h.getMaxValue());
    }

    private static void write(FileChannel ch, ByteBuffer block, long position) throws IOException {
        long at = position;
        while (block.hasRemaining()) {
            at += ch.write(block, at);
        }
    }
}
