package dev.isthmus.log;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The segment reader as recovery drives it: valid batches are found and the walk stops at the first invalid byte;
 * zeros of space never written end the data.
 */
class SegmentReaderTest {
    @TempDir
    Path dir;

    record Written(List<Long> ends, List<Long> lastOffsets, byte[] bytes) {
    }

    static Written writeBatches(long seed, int batches) {
        Random random = new Random(seed);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(16 << 20);
            long pos = 0;
            long offset = 0;
            List<Long> ends = new ArrayList<>();
            List<Long> lasts = new ArrayList<>();
            for (int b = 0; b < batches; b++) {
                BatchBuilder bb = new BatchBuilder(buf, pos, offset).leaderEpoch(3);
                int records = 1 + random.nextInt(20);
                for (int r = 0; r < records; r++) {
                    byte[] value = new byte[random.nextInt(random.nextInt(10) == 0 ? 60_000 : 300)];
                    random.nextBytes(value);
                    bb.add(1_700_000_000_000L + offset + r, ("k" + random.nextInt(50)).getBytes(), value);
                }
                pos += bb.build();
                offset += records;
                ends.add(pos);
                lasts.add(offset - 1);
            }
            return new Written(ends, lasts, buf.asSlice(0, pos).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    /** How a scan ended, as recovery reads it: the data ends (limit, zeros, the file's end) or is invalid. */
    enum End { END_OF_DATA, INVALID, OTHER }

    static End end(int answer) {
        return switch (answer) {
            case SegmentReader.END, SegmentReader.ZEROS, SegmentReader.ENDS_EARLY -> End.END_OF_DATA;
            case SegmentReader.INVALID -> End.INVALID;
            default -> End.OTHER;
        };
    }

    /** Scans {@code path} as recovery does: every batch validated; {validEnd, last offset, End, batches}. */
    long[] scan(Path path) {
        try (IoEngine engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             DmaFile file = engine.openDmaFile(path, false)) {
            long[] result = {-1, -1, -1, 0};
            SegmentIndex index = new SegmentIndex(0, 4096);
            SegmentReader[] reader = new SegmentReader[1];
            Runnable walk = () -> {
                while (true) {
                    int r = reader[0].nextOrRead();
                    if (r == SegmentReader.WAIT) {
                        return;
                    }
                    if (r != SegmentReader.BATCH) {
                        result[0] = reader[0].position();
                        result[2] = end(r).ordinal();
                        if (r == SegmentReader.ERROR) {
                            System.out.println("scan read error " + dev.isthmus.ffi.Errno.describe(reader[0].errno()));
                        }
                        reader[0].close();
                        return;
                    }
                    RecordBatch batch = reader[0].batch();
                    result[1] = batch.lastOffset();
                    result[3]++;
                    index.onBatch(batch.lastOffset(), reader[0].position(), batch.sizeInBytes(), batch.maxTimestamp());
                    reader[0].advance();
                }
            };
            reader[0] = SegmentReader.windowed(arena.allocate(1 << 20, 4096), true, null, SegmentReader.Hold.NONE, walk);
            reader[0].start(file, 0, 0, file.size());
            walk.run();
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (result[0] < 0 && System.nanoTime() < deadline) {
                engine.submitAndWait(10_000_000L);
            }
            // The index built during the scan finds every batch.
            if (result[1] >= 0) {
                assertTrue(index.lookup(result[1]) < result[0]);
            }
            return result;
        }
    }

    @Test
    void shouldFindEveryBatchOfAnIntactSegment() throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Written w = writeBatches(seed, 400);
        Path p = dir.resolve("0.log");
        Files.write(p, w.bytes());
        long[] r = scan(p);
        assertEquals(w.bytes().length, r[0], "seed " + seed + " reason " + End.values()[(int) r[2]] + " batches " + r[3]);
        assertEquals(w.lastOffsets().get(399), r[1]);
        assertEquals(End.END_OF_DATA.ordinal(), r[2]);
        assertEquals(400, r[3]);
    }

    @Test
    void shouldTreatPreallocatedZerosAsTheEnd() throws Exception {
        Written w = writeBatches(7, 50);
        Path p = dir.resolve("0.log");
        Files.write(p, w.bytes());
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(w.bytes().length + (4 << 20));
        }
        long[] r = scan(p);
        assertEquals(w.bytes().length, r[0]);
        assertEquals(End.END_OF_DATA.ordinal(), r[2]);
    }

    @Test
    void shouldCutATornLastWrite() throws Exception {
        Written w = writeBatches(11, 60);
        Path p = dir.resolve("0.log");
        long cut = w.ends().get(58) + 30; // part of the last batch only
        Files.write(p, java.util.Arrays.copyOf(w.bytes(), (int) cut));
        long[] r = scan(p);
        assertEquals(w.ends().get(58), r[0], "reason " + End.values()[(int) r[2]] + " batches " + r[3]);
        assertEquals(w.lastOffsets().get(58), r[1]);
        assertEquals(End.INVALID.ordinal(), r[2]);
    }

    @Test
    void shouldStopAtACorruptCrcInTheMiddle() throws Exception {
        Written w = writeBatches(13, 80);
        byte[] bytes = w.bytes().clone();
        long victim = w.ends().get(39); // start of batch 40
        bytes[(int) victim + RecordBatch.HEADER_BYTES + 3] ^= 0x40;
        Path p = dir.resolve("0.log");
        Files.write(p, bytes);
        long[] r = scan(p);
        assertEquals(victim, r[0]);
        assertEquals(w.lastOffsets().get(39), r[1]);
        assertEquals(End.INVALID.ordinal(), r[2]);
    }

    @Test
    void shouldStopAtZeroedPagesInTheMiddle() throws Exception {
        Written w = writeBatches(17, 200);
        byte[] bytes = w.bytes().clone();
        int from = (int) (w.ends().get(99) / 4096 * 4096 + 4096);
        java.util.Arrays.fill(bytes, from, Math.min(bytes.length, from + 8192), (byte) 0);
        Path p = dir.resolve("0.log");
        Files.write(p, bytes);
        long[] r = scan(p);
        // Everything before the zeroed pages is kept, nothing after them.
        assertTrue(r[0] <= from && r[0] > w.ends().get(98), "end " + r[0]);
        assertTrue(r[0] < bytes.length);
    }

    /**
     * A cache reader (what a fetch's cache fill uses) reads a first stretch and, for a batch crossing its end, reads
     * exactly what the batch lacks into more cache fragments: walking on this way finds every batch, and the chain
     * holds the file byte for byte from where the walk started.
     */
    @Test
    void shouldExtendACacheReadByWhatABatchCrossingItsEndLacks() throws Exception {
        Written w = writeBatches(23, 300);
        Path p = dir.resolve("0.log");
        Files.write(p, w.bytes());
        try (IoEngine engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
             MemoryArena arena = MemoryArena.create(ArenaConfig.of(32L << 20));
             DmaFile file = engine.openDmaFile(p, false)) {
            SegmentReader reader = SegmentReader.cached(arena, SegmentReader.MIN_FILL_BYTES, SegmentReader.Hold.NONE,
                null);
            reader.start(file, 0, 0, file.size());
            int batches = 0;
            int reads = 0;
            while (true) {
                int r = reader.next();
                if (r == SegmentReader.BATCH) {
                    assertEquals(w.lastOffsets().get(batches), reader.lastOffset());
                    assertEquals(w.ends().get(batches), reader.position() + reader.sizeBytes());
                    batches++;
                    reader.advance();
                } else if (r == SegmentReader.NEED_READ) {
                    assertEquals(SegmentReader.WAIT, reader.read());
                    reads++;
                    while (reader.reading()) {
                        engine.submitAndWait(1_000_000L);
                    }
                    assertEquals(0, reader.errno());
                } else {
                    assertEquals(SegmentReader.END, r);
                    break;
                }
            }
            assertEquals(300, batches);
            assertTrue(reads > 1, "the walk read on " + reads + " time(s)");
            assertEquals(0, reader.bufferStart());
            IoBuf chain = reader.takeChain();
            try {
                byte[] read = new byte[w.bytes().length];
                chain.copyTo(0, MemorySegment.ofArray(read), 0, read.length);
                assertArrayEquals(w.bytes(), read);
            } finally {
                chain.release();
                reader.close();
            }
        }
    }

    @Test
    void shouldRoundTripKafkaFormatIndexes() {
        SegmentIndex index = new SegmentIndex(1000, 4096);
        long pos = 0;
        for (int i = 0; i < 1000; i++) {
            index.onBatch(1000 + i * 10L + 9, pos, 1500, 5000 + i);
            pos += 1500;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment oi = a.allocate(Math.max(1, index.offsetIndexBytes()));
            MemorySegment ti = a.allocate(Math.max(1, index.timeIndexBytes()));
            index.writeOffsetIndex(oi);
            index.writeTimeIndex(ti);
            SegmentIndex loaded = new SegmentIndex(1000, 4096);
            assertTrue(loaded.load(oi, index.offsetIndexBytes(), ti, index.timeIndexBytes(), pos));
            for (long target = 1000; target < 11000; target += 37) {
                assertEquals(index.lookup(target), loaded.lookup(target));
                long p = loaded.lookup(target);
                // the batch at p ends at or before the target's batch
                assertTrue(p / 1500 <= (target - 1000) / 10, "target " + target);
            }
            assertEquals(index.lookupTimestamp(5500), loaded.lookupTimestamp(5500));
            // A damaged index is refused.
            oi.set(ValueLayout.JAVA_INT, 8, -5);
            assertTrue(!new SegmentIndex(1000, 4096).load(oi, index.offsetIndexBytes(), ti, index.timeIndexBytes(), pos));
        }
    }
}
