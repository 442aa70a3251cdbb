package dev.isthmus.gateway;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.ByteBufferOutputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Test helper for the structure-aware fuzzer: makes a valid v2 batch (random records, keys, values, headers,
 * codec, sometimes a producer id) as kafka-clients builds it, then damages it field by field knowing the layout:
 * header counts and lengths, attributes, one record's varints (length, timestamp and offset deltas, key, value and
 * header lengths, header count), bytes inserted or cut inside a record, CRC-consistent garbage, and for compressed
 * batches either the compressed stream itself or the records under a valid stream. Unless the mutation is the CRC
 * itself, the CRC is recomputed, so the damage gets past the first check. Owner: one test thread.
 */
final class BatchMutator {
    private static final Compression[] CODECS = {Compression.NONE, Compression.gzip().build(),
        Compression.snappy().build(), Compression.lz4().build(), Compression.zstd().build()};
    private final Random rnd;
    private long nextProducerId = 50_000;

    /** A batch to send and what was done to it. */
    record Mutated(byte[] bytes, String mutation) {
    }

    BatchMutator(Random rnd) {
        this.rnd = rnd;
    }

    /** A fresh valid batch (mutation "none") or, most of the time, a damaged one. */
    Mutated next() {
        int n = 1 + rnd.nextInt(rnd.nextInt(10) == 0 ? 200 : 8);
        SimpleRecord[] records = new SimpleRecord[n];
        long now = System.currentTimeMillis();
        for (int i = 0; i < n; i++) {
            byte[] key = rnd.nextInt(5) == 0 ? null : randomBytes(rnd.nextInt(20));
            byte[] value = rnd.nextInt(10) == 0 ? null : randomBytes(rnd.nextInt(rnd.nextInt(20) == 0 ? 5000 : 100));
            Header[] headers = new Header[rnd.nextInt(3)];
            for (int h = 0; h < headers.length; h++) {
                headers[h] = new RecordHeader("h" + h, rnd.nextBoolean() ? null : randomBytes(rnd.nextInt(10)));
            }
            records[i] = new SimpleRecord(now - rnd.nextInt(100_000), key, value, headers);
        }
        Compression codec = CODECS[rnd.nextInt(CODECS.length)];
        boolean idempotent = rnd.nextInt(3) == 0;
        byte[] plain = RawBatches.bytes((idempotent ? MemoryRecords.withIdempotentRecords(Compression.NONE,
            nextProducerId++, (short) 0, 0, records) : MemoryRecords.withRecords(Compression.NONE, records)).buffer());
        byte[] header = Arrays.copyOf(plain, RawBatches.HEADER);
        byte[] body = Arrays.copyOfRange(plain, RawBatches.HEADER, plain.length);
        String what;
        boolean fixCrc = true;
        int kind = rnd.nextInt(10);
        if (kind == 0) {
            what = "none";
        } else if (kind <= 2) {
            what = mutateHeader(header);
        } else if (kind <= 6) {
            List<int[]> fields = parse(body);
            String[] out = new String[1];
            body = mutateRecords(body, fields, out);
            what = out[0];
        } else if (kind == 7) {
            what = "garbage records";
            body = randomBytes(rnd.nextInt(100));
            if (rnd.nextBoolean()) {
                Arrays.fill(body, (byte) 0xFF);
            }
        } else if (kind == 8) {
            what = "crc";
            fixCrc = false;
            body = body.clone();
            if (body.length > 0) {
                body[rnd.nextInt(body.length)] ^= (byte) (1 + rnd.nextInt(255));
            } else {
                header[RawBatches.CRC] ^= 1;
            }
        } else {
            what = "compressed stream damage";
            if (codec == CODECS[0]) {
                codec = CODECS[1 + rnd.nextInt(4)];
            }
        }
        byte[] stored = codec == CODECS[0] ? body : compress(codec, body);
        if (what.equals("compressed stream damage")) {
            stored = stored.clone();
            switch (rnd.nextInt(3)) {
                case 0 -> stored = Arrays.copyOf(stored, rnd.nextInt(Math.max(1, stored.length)));
                case 1 -> stored[rnd.nextInt(stored.length)] ^= (byte) (1 + rnd.nextInt(255));
                default -> stored[rnd.nextInt(Math.min(stored.length, 16))] ^= (byte) (1 + rnd.nextInt(255));
            }
        }
        byte[] batch = new byte[RawBatches.HEADER + stored.length];
        System.arraycopy(header, 0, batch, 0, RawBatches.HEADER);
        System.arraycopy(stored, 0, batch, RawBatches.HEADER, stored.length);
        ByteBuffer b = ByteBuffer.wrap(batch);
        if (!what.startsWith("header batchLength")) {
            b.putInt(8, batch.length - 12);
        }
        int attributes = b.getShort(RawBatches.ATTRIBUTES);
        if (!what.startsWith("header attributes")) {
            b.putShort(RawBatches.ATTRIBUTES, (short) ((attributes & ~7) | codecId(codec)));
        }
        if (fixCrc) {
            RawBatches.fixCrc(batch);
        }
        return new Mutated(batch, what + " (" + n + " records, " + codec.type().name + ")");
    }

    private static int codecId(Compression c) {
        return c.type().id;
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    private static byte[] compress(Compression c, byte[] records) {
        ByteBufferOutputStream out = new ByteBufferOutputStream(256);
        try (OutputStream s = c.wrapForOutput(out, (byte) 2)) {
            s.write(records);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return RawBatches.bytes(out.buffer().flip());
    }

    private int interestingInt(int original) {
        return switch (rnd.nextInt(10)) {
            case 0 -> 0;
            case 1 -> -1;
            case 2 -> Integer.MAX_VALUE;
            case 3 -> Integer.MIN_VALUE;
            case 4 -> original + 1;
            case 5 -> original - 1;
            case 6 -> -2;
            case 7 -> original * 2 + 1;
            default -> rnd.nextInt();
        };
    }

    private String mutateHeader(byte[] h) {
        ByteBuffer b = ByteBuffer.wrap(h);
        switch (rnd.nextInt(8)) {
            case 0 -> {
                int v = interestingInt(b.getInt(RawBatches.RECORDS_COUNT));
                b.putInt(RawBatches.RECORDS_COUNT, v);
                return "header recordsCount=" + v;
            }
            case 1 -> {
                int v = interestingInt(b.getInt(RawBatches.LAST_OFFSET_DELTA));
                b.putInt(RawBatches.LAST_OFFSET_DELTA, v);
                return "header lastOffsetDelta=" + v;
            }
            case 2 -> {
                int count = interestingInt(b.getInt(RawBatches.RECORDS_COUNT));
                b.putInt(RawBatches.RECORDS_COUNT, count);
                b.putInt(RawBatches.LAST_OFFSET_DELTA, count - 1);
                return "header consistent count lie " + count;
            }
            case 3 -> {
                int v = interestingInt(b.getInt(8));
                b.putInt(8, v);
                return "header batchLength=" + v;
            }
            case 4 -> {
                int v = 1 << rnd.nextInt(16);
                b.putShort(RawBatches.ATTRIBUTES, (short) (b.getShort(RawBatches.ATTRIBUTES) ^ v));
                return "header attributes ^" + v;
            }
            case 5 -> {
                h[16] = (byte) rnd.nextInt(4);
                return "header magic=" + h[16];
            }
            case 6 -> {
                long v = rnd.nextBoolean() ? -1 : rnd.nextLong();
                b.putLong(27, v);
                return "header baseTimestamp=" + v;
            }
            default -> {
                b.putInt(53, interestingInt(b.getInt(53)));
                b.putLong(43, rnd.nextBoolean() ? b.getLong(43) : rnd.nextInt(5));
                return "header producer fields";
            }
        }
    }

    /** Field positions of each record: {start, end, varint positions...} as [kind, pos, size] triples. */
    private static List<int[]> parse(byte[] body) {
        List<int[]> fields = new ArrayList<>();
        int pos = 0;
        while (pos < body.length) {
            int start = pos;
            int[] len = varint(body, pos);
            fields.add(new int[] {0, pos, len[1], start});
            pos += len[1];
            int end = pos + len[0];
            pos++; // attributes
            int[] ts = varlong(body, pos);
            fields.add(new int[] {1, pos, ts[1], start});
            pos += ts[1];
            int[] od = varint(body, pos);
            fields.add(new int[] {2, pos, od[1], start});
            pos += od[1];
            int[] kl = varint(body, pos);
            fields.add(new int[] {3, pos, kl[1], start});
            pos += kl[1] + Math.max(0, kl[0]);
            int[] vl = varint(body, pos);
            fields.add(new int[] {4, pos, vl[1], start});
            pos += vl[1] + Math.max(0, vl[0]);
            int[] hc = varint(body, pos);
            fields.add(new int[] {5, pos, hc[1], start});
            pos = end;
        }
        return fields;
    }

    private static final String[] FIELD = {"length", "timestampDelta", "offsetDelta", "keyLength", "valueLength",
        "headerCount"};

    private byte[] mutateRecords(byte[] body, List<int[]> fields, String[] what) {
        if (fields.isEmpty()) {
            what[0] = "records empty";
            return body;
        }
        int[] f = fields.get(rnd.nextInt(fields.size()));
        int choice = rnd.nextInt(5);
        if (choice <= 2) {
            int[] old = f[0] == 1 ? varlong(body, f[1]) : varint(body, f[1]);
            int v = interestingInt(old[0]);
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            o.write(body, 0, f[1]);
            RawBatches.varint(o, v);
            o.write(body, f[1] + f[2], body.length - f[1] - f[2]);
            what[0] = "record field " + FIELD[f[0]] + " at " + f[1] + " := " + v;
            return o.toByteArray();
        }
        if (choice == 3) {
            int at = f[3] + rnd.nextInt(Math.max(1, body.length - f[3]));
            int n = 1 + rnd.nextInt(4);
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            o.write(body, 0, at);
            if (rnd.nextBoolean()) {
                o.writeBytes(randomBytes(n));
                o.write(body, at, body.length - at);
                what[0] = "record bytes inserted at " + at;
            } else {
                o.write(body, Math.min(body.length, at + n), Math.max(0, body.length - at - n));
                what[0] = "record bytes cut at " + at;
            }
            return o.toByteArray();
        }
        byte[] b = body.clone();
        int at = rnd.nextInt(b.length);
        b[at] = (byte) (rnd.nextBoolean() ? 0xFF : rnd.nextInt(256));
        what[0] = "record byte " + at + " replaced";
        return b;
    }

    /** {value, size} of the zig-zag varint at {@code pos} (tolerant: stops at 5 bytes or the end). */
    private static int[] varint(byte[] b, int pos) {
        int raw = 0;
        int i = 0;
        while (pos + i < b.length && i < 5) {
            int x = b[pos + i] & 0xFF;
            raw |= (x & 0x7F) << (7 * i);
            i++;
            if ((x & 0x80) == 0) {
                break;
            }
        }
        return new int[] {(raw >>> 1) ^ -(raw & 1), Math.max(1, i)};
    }

    private static int[] varlong(byte[] b, int pos) {
        long raw = 0;
        int i = 0;
        while (pos + i < b.length && i < 10) {
            int x = b[pos + i] & 0xFF;
            raw |= (long) (x & 0x7F) << (7 * i);
            i++;
            if ((x & 0x80) == 0) {
                break;
            }
        }
        return new int[] {(int) ((raw >>> 1) ^ -(raw & 1)), Math.max(1, i)};
    }
}
