package dev.isthmus.log;

import org.apache.kafka.common.compress.Compression.Builder;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.BufferSupplier;
import org.apache.kafka.common.utils.ByteBufferOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Compression} against kafka-clients' own codecs, both ways: what Kafka's producer compresses we decompress
 * to the same bytes, what we compress Kafka's consumer reads back (as a stream and as a whole batch), and the
 * bytes we write are the bytes Kafka writes. Randomized inputs print their seed and take -Disthmus.seed=N.
 */
class CompressionTest {
    private static final long SEED = Long.getLong("isthmus.seed", System.nanoTime());

    static {
        System.out.println("CompressionTest seed " + SEED + " (replay with -Disthmus.seed=" + SEED + ")");
    }

    private static org.apache.kafka.common.compress.Compression kafka(Compression c) {
        Builder<?> b = switch (c) {
            case NONE -> null;
            case GZIP -> org.apache.kafka.common.compress.Compression.gzip();
            case SNAPPY -> org.apache.kafka.common.compress.Compression.snappy();
            case LZ4 -> org.apache.kafka.common.compress.Compression.lz4();
            case ZSTD -> org.apache.kafka.common.compress.Compression.zstd();
        };
        return b == null ? org.apache.kafka.common.compress.Compression.NONE : b.build();
    }

    /** Inputs of several shapes: empty, tiny, text, random (incompressible), and larger than one block of every codec. */
    private static byte[][] inputs() {
        Random r = new Random(SEED);
        byte[] random = new byte[300_000];
        r.nextBytes(random);
        StringBuilder text = new StringBuilder();
        while (text.length() < 1_000_000) {
            text.append("record ").append(r.nextInt(1000)).append(" of a partition, ").append(r.nextLong()).append('\n');
        }
        byte[] zeros = new byte[5 << 20];
        return new byte[][] {new byte[0], {42}, "hello, isthmus".getBytes(StandardCharsets.UTF_8),
            text.toString().getBytes(StandardCharsets.UTF_8), random, zeros};
    }

    private static byte[] kafkaCompress(Compression c, byte[] input) throws Exception {
        ByteBufferOutputStream buf = new ByteBufferOutputStream(1024);
        try (OutputStream out = kafka(c).wrapForOutput(buf, (byte) 2)) {
            out.write(input);
        }
        ByteBuffer b = buf.buffer().flip();
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        return bytes;
    }

    private static byte[] kafkaDecompress(Compression c, byte[] compressed) throws Exception {
        try (InputStream in = kafka(c).wrapForInput(ByteBuffer.wrap(compressed), (byte) 2, BufferSupplier.NO_CACHING)) {
            return in.readAllBytes();
        }
    }

    private static byte[] ours(Compression c, byte[] compressed, int max) {
        Compression.Output out = new Compression.Output(16);
        int n = c.decompress(MemorySegment.ofArray(compressed), out, max);
        return Arrays.copyOf(out.bytes(), n);
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldDecompressWhatKafkaCompresses(Compression c) throws Exception {
        for (byte[] input : inputs()) {
            byte[] compressed = kafkaCompress(c, input);
            assertArrayEquals(input, ours(c, compressed, input.length), c + " of " + input.length + " bytes");
        }
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldCompressWhatKafkaDecompresses(Compression c) throws Exception {
        Compression.Output out = new Compression.Output();
        for (byte[] input : inputs()) {
            int n = c.compress(input, 0, input.length, out);
            byte[] compressed = Arrays.copyOf(out.bytes(), n);
            assertArrayEquals(input, kafkaDecompress(c, compressed), c + " of " + input.length + " bytes");
            assertArrayEquals(input, ours(c, compressed, input.length));
        }
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldWriteTheBytesKafkaWrites(Compression c) throws Exception {
        Compression.Output out = new Compression.Output();
        for (byte[] input : inputs()) {
            int n = c.compress(input, 0, input.length, out);
            assertArrayEquals(kafkaCompress(c, input), Arrays.copyOf(out.bytes(), n), c + " of " + input.length + " bytes");
        }
    }

    /** A whole batch: Kafka's producer format compressed by kafka-clients; its records area decompresses to the
     * records area of the same batch built uncompressed; and a batch we compress is read by kafka-clients. */
    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldRoundTripWholeBatchesWithKafkaClients(Compression c) {
        SimpleRecord[] records = new SimpleRecord[200];
        for (int i = 0; i < records.length; i++) {
            records[i] = new SimpleRecord(1_700_000_000_000L + i, ("k" + i).getBytes(StandardCharsets.UTF_8),
                ("value " + i + " ".repeat(i % 17)).getBytes(StandardCharsets.UTF_8));
        }
        MemoryRecords plain = MemoryRecords.withRecords(org.apache.kafka.common.compress.Compression.NONE, records);
        MemoryRecords packed = MemoryRecords.withRecords(kafka(c), records);
        byte[] plainBytes = bytes(plain.buffer());
        byte[] packedBytes = bytes(packed.buffer());
        assertEquals(c.id, packedBytes[RecordBatch.ATTRIBUTES + 1] & RecordBatch.COMPRESSION_MASK);
        byte[] plainRecords = Arrays.copyOfRange(plainBytes, RecordBatch.HEADER_BYTES, plainBytes.length);
        byte[] packedRecords = Arrays.copyOfRange(packedBytes, RecordBatch.HEADER_BYTES, packedBytes.length);
        assertArrayEquals(plainRecords, ours(c, packedRecords, 1 << 20));

        // Ours: the uncompressed batch's records compressed here, under the plain header with the codec set.
        Compression.Output out = new Compression.Output();
        int n = c.compress(plainRecords, 0, plainRecords.length, out);
        byte[] batch = new byte[RecordBatch.HEADER_BYTES + n];
        System.arraycopy(plainBytes, 0, batch, 0, RecordBatch.HEADER_BYTES);
        System.arraycopy(out.bytes(), 0, batch, RecordBatch.HEADER_BYTES, n);
        RecordBatch view = new RecordBatch().wrap(MemorySegment.ofArray(batch), 0);
        MemorySegment seg = MemorySegment.ofArray(batch);
        seg.set(RecordBatch.INT, RecordBatch.BATCH_LENGTH, batch.length - RecordBatch.LOG_OVERHEAD);
        seg.set(RecordBatch.SHORT, RecordBatch.ATTRIBUTES, (short) (view.attributes() | c.id));
        view.updateCrc();
        MemoryRecords read = MemoryRecords.readableRecords(ByteBuffer.wrap(batch));
        int i = 0;
        for (org.apache.kafka.common.record.internal.RecordBatch b : read.batches()) {
            b.ensureValid();
            assertEquals(CompressionType.forId(c.id), b.compressionType());
            for (org.apache.kafka.common.record.internal.Record r : b) {
                assertEquals(records[i].timestamp(), r.timestamp());
                assertEquals(records[i].value(), r.value());
                assertEquals(i, r.offset());
                i++;
            }
        }
        assertEquals(records.length, i);
    }

    private static byte[] bytes(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldRefuseABombPastTheBoundWithoutInflatingIt(Compression c) throws Exception {
        byte[] zeros = new byte[16 << 20];
        byte[] bomb = kafkaCompress(c, zeros);
        assertTrue(bomb.length < zeros.length / 20, c + " bomb of " + bomb.length + " bytes");
        Compression.Output out = new Compression.Output(16);
        LogException e = assertThrows(LogException.class, () -> c.decompress(MemorySegment.ofArray(bomb), out, 1 << 20));
        assertEquals(LogException.Kind.MESSAGE_TOO_LARGE, e.kind());
        // The output never grew far past the bound (an LZ4 block of 4 MiB at most, 64 KiB as Kafka writes them).
        assertTrue(out.bytes().length <= (1 << 20) + (4 << 20) + (1 << 17), "output grew to " + out.bytes().length);
        // Exactly the bound is fine.
        assertEquals(1 << 20, ours(c, kafkaCompress(c, new byte[1 << 20]), 1 << 20).length);
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldAnswerCorruptMessageForDamagedStreams(Compression c) throws Exception {
        Random r = new Random(SEED ^ c.id);
        byte[] good = kafkaCompress(c, inputs()[3]);
        int corrupt = 0;
        for (int trial = 0; trial < 200; trial++) {
            byte[] bad = good.clone();
            switch (trial % 4) {
                case 0 -> bad = Arrays.copyOf(bad, r.nextInt(bad.length)); // truncated
                case 1 -> bad[r.nextInt(Math.min(bad.length, 64))] ^= (byte) (1 + r.nextInt(255)); // header damage
                case 2 -> bad[r.nextInt(bad.length)] ^= (byte) (1 + r.nextInt(255)); // anywhere
                default -> {
                    bad = new byte[r.nextInt(200)];
                    r.nextBytes(bad); // garbage
                }
            }
            try {
                ours(c, bad, 4 << 20);
            } catch (LogException e) {
                assertTrue(e.kind() == LogException.Kind.CORRUPT_MESSAGE || e.kind() == LogException.Kind.MESSAGE_TOO_LARGE,
                    e.kind() + ": " + e.getMessage());
                corrupt++;
            }
        }
        assertTrue(corrupt > 50, c + ": only " + corrupt + " of 200 damaged streams refused");
    }

    @Test
    void shouldRefuseAnLz4FrameWithDependentBlocksOrTrailingBytes() throws Exception {
        byte[] good = kafkaCompress(Compression.LZ4, "some records".getBytes(StandardCharsets.UTF_8));
        byte[] trailing = Arrays.copyOf(good, good.length + 3);
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, assertThrows(LogException.class,
            () -> ours(Compression.LZ4, trailing, 1 << 20)).kind());
        byte[] dependent = good.clone();
        dependent[4] &= ~0x20;
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, assertThrows(LogException.class,
            () -> ours(Compression.LZ4, dependent, 1 << 20)).kind());
    }

    @Test
    void shouldReadConcatenatedGzipMembersAsJavaDoes() throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (String part : new String[] {"first ", "second"}) {
            try (GZIPOutputStream g = new GZIPOutputStream(all)) { // closing a ByteArrayOutputStream is a no-op
                g.write(part.getBytes(StandardCharsets.UTF_8));
            }
        }
        assertEquals("first second", new String(ours(Compression.GZIP, all.toByteArray(), 100), StandardCharsets.UTF_8));
    }

    @Test
    void shouldNameCodecsAsKafkaConfigsDo() {
        for (Compression c : Compression.values()) {
            assertSame(c, Compression.ofId(c.id));
            assertSame(c, Compression.ofName(c.configName));
            assertEquals(CompressionType.forId(c.id).name, c.configName);
        }
        assertSame(Compression.NONE, Compression.ofName("uncompressed"));
        assertNull(Compression.ofName("producer"));
        assertNull(Compression.ofId(5));
        assertNull(Compression.ofId(-1));
    }
}
