package dev.isthmus.bench.chaos;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The torn-write fault on segments written in Kafka's v2 batch layout (by kafka-clients' own MemoryRecords):
 * it finds the batches and their values, cuts only inside the tail of batches holding no acknowledged value,
 * and when every batch holds one leaves a torn copy of the next batch after the last instead.
 */
class TornWriteTest {

    /** A segment of batches of 3 values each: 0-2, 3-5, ... at offsets from 0, then 4 KiB of zeros. */
    private static Path segment(Path dir, int batches) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long v = 0;
        for (int b = 0; b < batches; b++) {
            SimpleRecord[] rs = new SimpleRecord[3];
            for (int i = 0; i < 3; i++) {
                rs[i] = new SimpleRecord(1000L, null, Workloads.encode(v++, 64));
            }
            MemoryRecords m = MemoryRecords.withRecords(b * 3L, Compression.NONE, rs);
            ByteBuffer buf = m.buffer();
            out.write(buf.array(), buf.arrayOffset() + buf.position(), buf.remaining());
        }
        out.write(new byte[4096]);
        Path logs = Files.createDirectories(dir.resolve("logs/chaos-append-0"));
        Path seg = logs.resolve("00000000000000000000.log");
        Files.write(seg, out.toByteArray());
        return seg;
    }

    @Test
    void shouldReadTheBatchesAndTheirValues(@TempDir Path dir) throws Exception {
        List<TornWrite.Batch> batches = TornWrite.batches(segment(dir, 4));
        assertEquals(4, batches.size());
        assertEquals(List.of(9L, 10L, 11L), batches.get(3).values());
        assertEquals(9, batches.get(3).baseOffset());
        assertEquals(11, batches.get(3).lastOffset());
        assertEquals(0, batches.get(0).position());
    }

    @Test
    void shouldCutOnlyInsideTheUnacknowledgedTail(@TempDir Path dir) throws Exception {
        for (int seed = 0; seed < 20; seed++) {
            Path d = dir.resolve("run-" + seed);
            Path seg = segment(d, 5);
            List<TornWrite.Batch> before = TornWrite.batches(seg);
            Set<Long> acked = Set.of(0L, 1L, 2L, 3L, 4L, 5L, 7L); // batches 0..2 hold acknowledged values
            String what = TornWrite.tear(d, "chaos-append", acked::contains, new Random(seed));
            long cut = Files.size(seg);
            long tailStart = before.get(3).position();
            long end = before.get(4).position() + before.get(4).size();
            assertTrue(cut > tailStart && cut < end, "seed " + seed + ": cut at " + cut + ", tail " + tailStart + ".." + end
                + ": " + what);
            List<TornWrite.Batch> after = TornWrite.batches(seg);
            assertTrue(after.size() == 3 || after.size() == 4, "the acknowledged batches are whole: " + after.size());
            assertTrue(what.contains("unacknowledged"), what);
        }
    }

    @Test
    void shouldLeaveATornNextBatchWhenEveryBatchWasAcknowledged(@TempDir Path dir) throws Exception {
        Path seg = segment(dir, 3);
        List<TornWrite.Batch> before = TornWrite.batches(seg);
        TornWrite.Batch last = before.get(2);
        long end = last.position() + last.size();
        String what = TornWrite.tear(dir, "chaos-append", v -> true, new Random(7));
        long size = Files.size(seg);
        assertTrue(size > end && size < end + last.size(), "a partial batch after the last one: " + size + ": " + what);
        assertEquals(before, TornWrite.batches(seg), "the acknowledged batches are untouched, the torn one is not valid");
        assertEquals(last.lastOffset() + 1, ByteBuffer.wrap(Files.readAllBytes(seg)).getLong((int) end),
            "the torn batch claims the next offset");
    }
}
