package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link BatchValidator} on batches built here byte by byte (the records area written field by field, so each
 * test can break exactly one thing), checked against the error code, the message and the record errors Kafka
 * gives. Batches are presented as fragment chains split at awkward places, as requests arrive.
 */
class BatchValidatorTest {
    static final long NOW = 1_700_000_000_000L;
    static final BatchValidator.Rules RULES = new BatchValidator.Rules(1 << 20, 32 << 20, false, false,
        Long.MAX_VALUE, 3_600_000L, false);

    private final BatchValidator validator = new BatchValidator();

    /** Writes one record's fields; {@code body} lets a test write anything. */
    static final class RecordsWriter {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        RecordsWriter record(int offsetDelta, long timestampDelta, byte[] key, byte[] value, byte[][] headers) {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.write(0);
            varlong(body, timestampDelta);
            varint(body, offsetDelta);
            bytes(body, key);
            bytes(body, value);
            varint(body, headers.length / 2);
            for (int h = 0; h < headers.length; h += 2) {
                bytes(body, headers[h]);
                bytes(body, headers[h + 1]);
            }
            varint(out, body.size());
            out.writeBytes(body.toByteArray());
            return this;
        }

        RecordsWriter record(int offsetDelta) {
            return record(offsetDelta, offsetDelta, ("k" + offsetDelta).getBytes(StandardCharsets.UTF_8),
                ("v" + offsetDelta).getBytes(StandardCharsets.UTF_8), new byte[0][]);
        }

        RecordsWriter raw(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }

        static void bytes(ByteArrayOutputStream o, byte[] b) {
            if (b == null) {
                varint(o, -1);
            } else {
                varint(o, b.length);
                o.writeBytes(b);
            }
        }

        static void varint(ByteArrayOutputStream o, int v) {
            varlong(o, v);
        }

        static void varlong(ByteArrayOutputStream o, long v) {
            long z = (v << 1) ^ (v >> 63);
            while ((z & ~0x7FL) != 0) {
                o.write((int) ((z & 0x7F) | 0x80));
                z >>>= 7;
            }
            o.write((int) z);
        }
    }

    /** A v2 batch around {@code records} (codec applied here), with a correct CRC. */
    static byte[] batch(byte[] records, int count, int lastOffsetDelta, int attributes, long producerId, int baseSequence) {
        Compression c = Compression.ofId(attributes & 7);
        byte[] body = records;
        if (c != null && c != Compression.NONE) {
            Compression.Output out = new Compression.Output();
            int n = c.compress(records, 0, records.length, out);
            body = Arrays.copyOf(out.bytes(), n);
        }
        ByteBuffer b = ByteBuffer.allocate(RecordBatch.HEADER_BYTES + body.length);
        b.putLong(0).putInt(b.capacity() - 12).putInt(-1).put((byte) 2).putInt(0).putShort((short) attributes)
            .putInt(lastOffsetDelta).putLong(NOW).putLong(NOW + lastOffsetDelta).putLong(producerId)
            .putShort((short) (producerId >= 0 ? 0 : -1)).putInt(baseSequence).putInt(count).put(body);
        byte[] a = b.array();
        fixCrc(a);
        return a;
    }

    static byte[] batch(byte[] records, int count) {
        return batch(records, count, count - 1, 0, -1, -1);
    }

    static void fixCrc(byte[] a) {
        CRC32C crc = new CRC32C();
        crc.update(a, RecordBatch.ATTRIBUTES, a.length - RecordBatch.ATTRIBUTES);
        ByteBuffer.wrap(a).putInt(RecordBatch.CRC, (int) crc.getValue());
    }

    static byte[] good(int n) {
        RecordsWriter w = new RecordsWriter();
        for (int i = 0; i < n; i++) {
            w.record(i);
        }
        return w.bytes();
    }

    /** The batch as a chain of fragments cut every {@code cut} bytes (a request split across receive buffers). */
    static IoBuf chain(byte[] a, int cut) {
        IoBuf c = IoBuf.wrap(MemorySegment.ofArray(Arrays.copyOfRange(a, 0, Math.min(cut, a.length))));
        for (int at = cut; at < a.length; at += cut) {
            c.append(IoBuf.wrap(MemorySegment.ofArray(Arrays.copyOfRange(a, at, Math.min(a.length, at + cut)))));
        }
        return c;
    }

    short validate(byte[] a, BatchValidator.Rules rules) {
        short first = validator.validate(IoBuf.wrap(MemorySegment.ofArray(a)), 0, a.length, rules, NOW);
        for (int cut : new int[] {1, 7, 61, 64}) {
            String m = validator.message();
            short again = validator.validate(chain(a, cut), 0, a.length, rules, NOW);
            assertEquals(first, again, "the same answer for a chain cut every " + cut + " bytes");
            assertEquals(m, validator.message());
        }
        return first;
    }

    short validate(byte[] a) {
        return validate(a, RULES);
    }

    @Test
    void shouldAcceptWellFormedBatchesAndReportTheirMaxTimestamp() {
        byte[] headers = new RecordsWriter().record(0, 5, null, "v".getBytes(), new byte[][] {"h".getBytes(), null})
            .record(1, 3, new byte[0], null, new byte[][] {"a".getBytes(), "b".getBytes(), "c".getBytes(), new byte[0]})
            .bytes();
        assertEquals(BatchValidator.NONE, validate(batch(headers, 2)), validator.message());
        assertEquals(2, validator.recordCount());
        assertEquals(NOW + 5, validator.maxTimestamp());
        assertNull(validator.records(), "nothing decompressed");
        assertEquals(BatchValidator.NONE, validate(batch(good(500), 500)), validator.message());
        assertEquals(NOW + 499, validator.maxTimestamp());
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldDecompressAndWalkCompressedBatches(Compression c) {
        byte[] records = good(300);
        assertEquals(BatchValidator.NONE, validate(batch(records, 300, 299, c.id, -1, -1)), validator.message());
        assertEquals(c.id, validator.codec());
        assertEquals(300, validator.recordCount());
        assertEquals(records.length, validator.records().size());
        // A compressed count lie is caught after decompression.
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(3), 5, 4, c.id, -1, -1)));
        assertEquals(1, validator.recordErrorCount());
        assertEquals(3, validator.recordErrorIndex(0));
        // Garbage that is not the codec's stream.
        byte[] bad = batch(good(3), 3, 2, c.id, -1, -1);
        Arrays.fill(bad, RecordBatch.HEADER_BYTES, bad.length, (byte) 0x5A);
        fixCrc(bad);
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(bad));
        assertTrue(validator.message().contains(c.configName), validator.message());
    }

    @ParameterizedTest
    @EnumSource(value = Compression.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void shouldRefuseACompressedBatchInflatingPastTheBound(Compression c) {
        RecordsWriter w = new RecordsWriter();
        for (int i = 0; i < 20; i++) {
            w.record(i, 0, null, new byte[100_000], new byte[0][]);
        }
        byte[] b = batch(w.bytes(), 20, 19, c.id, -1, -1);
        BatchValidator.Rules tight = new BatchValidator.Rules(1 << 20, 1 << 20, false, false, Long.MAX_VALUE,
            Long.MAX_VALUE, false);
        assertEquals(BatchValidator.MESSAGE_TOO_LARGE, validate(b, tight));
        assertEquals(BatchValidator.NONE, validate(b, RULES), validator.message());
    }

    /** Finding 1 of issue 23: a consistent header, a valid CRC, and 40 bytes of 0xFF as records. */
    @Test
    void shouldRefuseCrcConsistentGarbageAsCorruptMessage() {
        byte[] ff = new byte[40];
        Arrays.fill(ff, (byte) 0xFF);
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(ff, 1)));
        assertTrue(validator.message().contains("varint"), validator.message());
        assertEquals(0, validator.recordErrorCount());
    }

    /** Finding 2 of issue 23: recordsCount 5 and lastOffsetDelta 4 with one record inside. */
    @Test
    void shouldRefuseARecordCountLieWithTheFirstMissingRecord() {
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(1), 5)));
        assertEquals(1, validator.recordErrorCount());
        assertEquals(1, validator.recordErrorIndex(0));
        assertTrue(validator.recordErrorMessage(0).contains("1 of its 5"), validator.recordErrorMessage(0));
        // The other way round: more records than declared leaves bytes after the last one.
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(3), 2)));
        assertTrue(validator.message().contains("remain"), validator.message());
    }

    /** Findings 3 and 4 of issue 23: a count of 2^31-1 with one record inside. */
    @Test
    void shouldRefuseAHugeDeclaredCount() {
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(1), Integer.MAX_VALUE)));
        assertEquals(1, validator.recordErrorIndex(0));
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(1), 1, Integer.MAX_VALUE, 0, -1, -1)),
            "recordsCount != lastOffsetDelta + 1 (in long arithmetic)");
    }

    @Test
    void shouldCheckHeaderFieldsAsKafkaDoes() {
        byte[] ok = batch(good(2), 2);
        byte[] crc = ok.clone();
        crc[crc.length - 1] ^= 1;
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(crc));
        assertTrue(validator.message().contains("CRC"));
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(Arrays.copyOf(ok, 40)));
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(Arrays.copyOf(ok, ok.length - 1)), "truncated batch");
        byte[] twice = new byte[ok.length * 2];
        System.arraycopy(ok, 0, twice, 0, ok.length);
        System.arraycopy(ok, 0, twice, ok.length, ok.length);
        assertEquals(BatchValidator.INVALID_RECORD, validate(twice), "two batches");
        byte[] magic = ok.clone();
        magic[RecordBatch.MAGIC] = 1;
        assertEquals(BatchValidator.UNSUPPORTED_FOR_MESSAGE_FORMAT, validate(magic));
        assertEquals(BatchValidator.MESSAGE_TOO_LARGE, validate(ok, new BatchValidator.Rules(ok.length - 1, 1 << 20,
            false, false, Long.MAX_VALUE, Long.MAX_VALUE, false)));
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(good(2), 2, 1, 5, -1, -1)), "codec 5");
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(2), 2, 1, RecordBatch.CONTROL_BIT, -1, -1)));
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(2), 2, 1, 0x40, -1, -1)), "delete horizon");
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(2), 2, 1, 0x100, -1, -1)), "unknown bit");
        assertEquals(BatchValidator.INVALID_TXN_STATE,
            validate(batch(good(2), 2, 1, RecordBatch.TRANSACTIONAL_BIT, 7, 0)));
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(2), 0, -1, 0, -1, -1)));
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(good(2), 2, 1, 0, 7, -1)), "pid without sequence");
        assertEquals(BatchValidator.NONE, validate(batch(good(2), 2, 1, 0, 7, 0)), validator.message());
    }

    @Test
    void shouldRefuseMalformedRecordStructureAsCorruptMessage() {
        // A length varint past the batch end.
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(new RecordsWriter().record(0).raw(new byte[] {
            (byte) 0x80}).bytes(), 2)));
        // A record length overrunning the batch.
        byte[] r = good(1);
        r[0] = (byte) (r[0] + 20);
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(r, 1)));
        // A record whose length says more than its fields take (a byte of slack at its end).
        RecordsWriter w = new RecordsWriter();
        byte[] one = good(1);
        byte[] slack = Arrays.copyOf(one, one.length + 1);
        slack[0] = (byte) (slack[0] + 2); // zig-zag: +1 in value
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(slack, 1)));
        assertTrue(validator.message().contains("fields take"), validator.message());
        // A key longer than its record.
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(0);
        RecordsWriter.varlong(body, 0);
        RecordsWriter.varint(body, 0);
        RecordsWriter.varint(body, 50);
        body.writeBytes(new byte[5]);
        ByteArrayOutputStream rec = new ByteArrayOutputStream();
        RecordsWriter.varint(rec, body.size());
        rec.writeBytes(body.toByteArray());
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(w.raw(rec.toByteArray()).bytes(), 1)));
        // A value length of -2.
        body.reset();
        body.write(0);
        RecordsWriter.varlong(body, 0);
        RecordsWriter.varint(body, 0);
        RecordsWriter.varint(body, -1);
        RecordsWriter.varint(body, -2);
        RecordsWriter.varint(body, 0);
        rec.reset();
        RecordsWriter.varint(rec, body.size());
        rec.writeBytes(body.toByteArray());
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(rec.toByteArray(), 1)));
        // A six-byte varint (Kafka allows five for an int).
        body.reset();
        body.write(0);
        RecordsWriter.varlong(body, 0);
        body.writeBytes(new byte[] {(byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0});
        RecordsWriter.varint(body, -1);
        RecordsWriter.varint(body, -1);
        RecordsWriter.varint(body, 0);
        rec.reset();
        RecordsWriter.varint(rec, body.size());
        rec.writeBytes(body.toByteArray());
        assertEquals(BatchValidator.CORRUPT_MESSAGE, validate(batch(rec.toByteArray(), 1)));
    }

    @Test
    void shouldCollectPerRecordErrorsWithTheirIndexes() {
        // Offset deltas 0, 1, 5, 2: records 2 and 3 are out of order.
        byte[] r = new RecordsWriter().record(0).record(1).record(5).record(2).bytes();
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(r, 4)));
        assertEquals(2, validator.recordErrorCount());
        assertEquals(2, validator.recordErrorIndex(0));
        assertEquals(3, validator.recordErrorIndex(1));
        assertTrue(validator.message().startsWith("One or more records have been rejected"), validator.message());
        // A compacted topic refuses records without a key, each one named.
        byte[] keyless = new RecordsWriter().record(0).record(1, 0, null, "x".getBytes(), new byte[0][])
            .record(2, 0, null, null, new byte[0][]).bytes();
        BatchValidator.Rules compact = new BatchValidator.Rules(1 << 20, 1 << 20, true, false, Long.MAX_VALUE,
            Long.MAX_VALUE, false);
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(keyless, 3), compact));
        assertEquals(2, validator.recordErrorCount());
        assertEquals(1, validator.recordErrorIndex(0));
        assertEquals(BatchValidator.NONE, validate(batch(keyless, 3)), "keys are optional elsewhere");
        // Negative header counts are INVALID_RECORD, with the record's index.
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(0);
        RecordsWriter.varlong(body, 0);
        RecordsWriter.varint(body, 1);
        RecordsWriter.varint(body, -1);
        RecordsWriter.varint(body, -1);
        RecordsWriter.varint(body, -3);
        ByteArrayOutputStream rec = new ByteArrayOutputStream();
        rec.writeBytes(good(1));
        RecordsWriter.varint(rec, body.size());
        rec.writeBytes(body.toByteArray());
        assertEquals(BatchValidator.INVALID_RECORD, validate(batch(rec.toByteArray(), 2)));
        assertEquals(1, validator.recordErrorIndex(0));
    }

    @Test
    void shouldCheckTimestampsAgainstTheTopicBounds() {
        byte[] r = new RecordsWriter().record(0, 0, null, null, new byte[0][])
            .record(1, 7_200_000L, null, null, new byte[0][]) // two hours ahead of NOW
            .record(2, -NOW - 1, null, null, new byte[0][]) // timestamp -1: no timestamp, never checked
            .bytes();
        assertEquals(BatchValidator.INVALID_TIMESTAMP, validate(batch(r, 3)), "after.max.ms is an hour");
        assertEquals(1, validator.recordErrorCount());
        assertEquals(1, validator.recordErrorIndex(0));
        BatchValidator.Rules loose = new BatchValidator.Rules(1 << 20, 1 << 20, false, false, Long.MAX_VALUE,
            Long.MAX_VALUE, false);
        assertEquals(BatchValidator.NONE, validate(batch(r, 3), loose));
        assertEquals(NOW + 7_200_000L, validator.maxTimestamp());
        BatchValidator.Rules recentOnly = new BatchValidator.Rules(1 << 20, 1 << 20, false, false, 1000,
            Long.MAX_VALUE, false);
        byte[] old = new RecordsWriter().record(0, -5000, null, null, new byte[0][]).bytes();
        assertEquals(BatchValidator.INVALID_TIMESTAMP, validate(batch(old, 1), recentOnly));
        // A LogAppendTime topic does not check producers' timestamps...
        BatchValidator.Rules appendTime = new BatchValidator.Rules(1 << 20, 1 << 20, false, true, 0, 0, false);
        assertEquals(BatchValidator.NONE, validate(batch(r, 3), appendTime));
        // ...but no producer may set the LogAppendTime type itself.
        assertEquals(BatchValidator.INVALID_TIMESTAMP,
            validate(batch(good(2), 2, 1, RecordBatch.TIMESTAMP_TYPE_BIT, -1, -1), appendTime));
        assertEquals(2, validator.recordErrorCount());
    }

    @Test
    void shouldValidateWithoutAllocatingOnTheUncompressedPath() {
        byte[] a = batch(good(200), 200);
        IoBuf c = chain(a, 4096);
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean)
            java.lang.management.ManagementFactory.getThreadMXBean();
        // Until the JIT has compiled the walk (escape analysis removes the interpreter's boxes), rounds allocate;
        // a compiled round of 5000 batches must allocate (next to) nothing.
        long best = Long.MAX_VALUE;
        for (int round = 0; round < 40 && best > 1024; round++) {
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 5000; i++) {
                validator.validate(c, 0, a.length, RULES, NOW);
            }
            best = Math.min(best, mx.getCurrentThreadAllocatedBytes() - before);
        }
        assertEquals(BatchValidator.NONE, validator.errorCode());
        assertTrue(best <= 1024, "validating 5000 batches allocated at best " + best + " bytes");
    }

    @ParameterizedTest
    @EnumSource(Compression.class)
    void shouldRecompressKeepingEveryHeaderFieldButCodecLengthAndCrc(Compression target) {
        byte[] src = batch(good(50), 50, 49, Compression.GZIP.id, 77, 10);
        assertEquals(BatchValidator.NONE, validate(src));
        Compression.Output out = validator.recompress(IoBuf.wrap(MemorySegment.ofArray(src)), 0, target);
        byte[] rebuilt = Arrays.copyOf(out.bytes(), out.size());
        RecordBatch b = new RecordBatch().wrap(MemorySegment.ofArray(rebuilt), 0);
        assertEquals(RecordBatch.Check.OK, b.check(rebuilt.length, true));
        assertEquals(target.id, b.compression());
        assertEquals(49, b.lastOffsetDelta());
        assertEquals(77, b.producerId());
        assertEquals(10, b.baseSequence());
        assertEquals(NOW, b.baseTimestamp());
        assertEquals(BatchValidator.NONE, validate(rebuilt), validator.message());
        assertEquals(50, validator.recordCount());
        // From uncompressed too.
        byte[] plain = batch(good(50), 50);
        assertEquals(BatchValidator.NONE, validate(plain));
        out = validator.recompress(IoBuf.wrap(MemorySegment.ofArray(plain)), 0, target);
        byte[] again = Arrays.copyOf(out.bytes(), out.size());
        assertEquals(BatchValidator.NONE, validate(again), validator.message());
        if (target == Compression.NONE) {
            assertEquals(plain.length, again.length);
        }
    }

    @Test
    void shouldStampTheTimestampTypeAndMaxTimestampWithANewCrc() {
        byte[] a = batch(good(3), 3);
        IoBuf c = chain(a, 10);
        assertFalse(BatchValidator.stampTimestamps(c, 0, false, NOW + 2), "already right");
        assertTrue(BatchValidator.stampTimestamps(c, 0, true, NOW + 99));
        byte[] stamped = c.toByteArray();
        RecordBatch b = new RecordBatch().wrap(MemorySegment.ofArray(stamped), 0);
        assertEquals(RecordBatch.Check.OK, b.check(stamped.length, true));
        assertEquals(NOW + 99, b.maxTimestamp());
        assertTrue((b.attributes() & RecordBatch.TIMESTAMP_TYPE_BIT) != 0);
        Records records = new Records();
        assertTrue(records.wrap(b));
        while (records.next()) {
            assertEquals(NOW + 99, records.timestamp(), "every record of a LogAppendTime batch has its time");
        }
    }
}
