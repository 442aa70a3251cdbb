package dev.isthmus.bench.compare;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The device probe of bench/compare: fio's JSON read right, the in-process probe on a real file, fio when installed. */
class FsyncProbeTest {

    /** The parts of `fio --output-format=json --percentile_list=50:99:99.9` (fio 3.33) the probe reads, and a decoy. */
    private static final String FIO_JSON = """
        fio: this warning line comes before the JSON
        {
          "fio version" : "fio-3.33",
          "jobs" : [
            {
              "jobname" : "fdatasync-probe",
              "job options" : {
                "ioengine" : "sync",
                "fdatasync" : "1"
              },
              "write" : {
                "lat_ns" : {
                  "min" : 1, "max" : 2, "mean" : 1.5, "stddev" : 0.0, "N" : 7
                }
              },
              "sync" : {
                "total_ios" : 0,
                "lat_ns" : {
                  "min" : 107361,
                  "max" : 117426961,
                  "mean" : 2502673.684486,
                  "stddev" : 6571554.224415,
                  "N" : 954,
                  "percentile" : {
                    "50.000000" : 798720,
                    "99.000000" : 26869760,
                    "99.900000" : 116916224
                  }
                }
              },
              "job_runtime" : 3040
            }
          ]
        }
        """;

    @Test
    void shouldReadTheFdatasyncLatencyOfFiosJson() {
        FsyncProbe.Result r = FsyncProbe.parseFio(FIO_JSON);
        assertEquals(new FsyncProbe.Result("fio", 954, 798_720, 26_869_760, 116_916_224, 117_426_961), r);
        assertEquals("4 KiB O_DIRECT write + fdatasync at depth 1 for 3 s (fio, 954 syncs): fdatasync p50 0.80 p99 26.9 "
            + "p99.9 117 max 117 ms", r.describe(TimeUnit.SECONDS.toNanos(3)));
        CompareException e = assertThrows(CompareException.class, () -> FsyncProbe.parseFio("fio: bad option\n"));
        assertEquals("fio's output has no fdatasync (\"sync\") latency: fio: bad option", e.getMessage());
    }

    @Test
    void shouldMeasureFdatasyncInProcessAndLeaveNoFile(@TempDir Path dir) throws IOException {
        FsyncProbe.Result r = FsyncProbe.run(dir, TimeUnit.MILLISECONDS.toNanos(300), "java");
        assertEquals("java", r.tool());
        assertTrue(r.count() > 0, "fdatasync calls: " + r.count());
        assertTrue(r.p50Ns() > 0 && r.p50Ns() <= r.p99Ns() && r.p99Ns() <= r.p999Ns() && r.p999Ns() <= r.maxNs(), r.toString());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(0, left.count(), "the probe's file is removed");
        }
    }

    @Test
    void shouldRunFioWhenItIsInstalled(@TempDir Path dir) throws IOException {
        assumeTrue(FsyncProbe.fioInstalled(), "fio is not installed (apt-get install fio)");
        FsyncProbe.Result r = FsyncProbe.run(dir, TimeUnit.SECONDS.toNanos(1), "auto");
        assertEquals("fio", r.tool());
        assertTrue(r.count() > 0 && r.p999Ns() > 0, r.toString());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(0, left.count(), "fio's file is removed");
        }
    }
}
