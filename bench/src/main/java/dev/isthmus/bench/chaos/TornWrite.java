package dev.isthmus.bench.chaos;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.LongPredicate;
import java.util.zip.CRC32C;

/**
 * The torn-write fault's damage to a stopped node's data: the last segment of one partition of a topic is cut
 * at a random byte, as a crash in the middle of writing it leaves it.
 *
 * <p>Only what cannot have been acknowledged is torn. The segment's batches are read (Kafka's v2 layout: base
 * offset, length, leader epoch, magic, CRC-32C, ...) and decoded (the workload's values are uncompressed
 * decimal numbers); the batches at the end holding no acknowledged value are the tail a crash may tear. The
 * cut falls at a random byte inside that tail, and the file is truncated there. When every batch holds an
 * acknowledged value, a torn copy of the last batch (the next offset, cut at a random byte) is written after
 * it instead: a write that was in flight when the node died. Cutting acknowledged data would be a disk losing
 * what it promised was durable, which no replication protocol is built to survive on a majority, and on one node
 * would only show up as the lost writes it caused.
 *
 * <p>The node must be stopped (killed) first. Stateless apart from the random choices; the nemesis thread.
 */
final class TornWrite {
    static final int HEADER = 61;

    private TornWrite() {
    }

    /** One batch found in a segment: where it is, its offsets and the values it holds. */
    record Batch(long position, int size, long baseOffset, long lastOffset, boolean control, List<Long> values) {
    }

    /**
     * Tears one partition of {@code topic} in {@code dataDir}; {@code acked} says whether a value was acknowledged.
     * Returns a sentence saying what was done.
     */
    static String tear(Path dataDir, String topic, LongPredicate acked, Random random) throws IOException {
        Path logs = dataDir.resolve("logs");
        List<Path> dirs = new ArrayList<>();
        if (Files.isDirectory(logs)) {
            try (var s = Files.list(logs)) {
                s.filter(p -> p.getFileName().toString().matches(java.util.regex.Pattern.quote(topic) + "-\\d+"))
                    .sorted().forEach(dirs::add);
            }
        }
        Collections.shuffle(dirs, random);
        for (Path dir : dirs) {
            Path segment = lastSegment(dir);
            if (segment == null) {
                continue;
            }
            List<Batch> batches = batches(segment);
            if (batches.isEmpty()) {
                continue;
            }
            return tearSegment(segment, batches, acked, random, dir.getFileName().toString());
        }
        return "nothing to tear: no segment of " + topic + " holds a batch in " + logs;
    }

    static Path lastSegment(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d{20}\\.log")).max(Path::compareTo).orElse(null);
        }
    }

    static String tearSegment(Path segment, List<Batch> batches, LongPredicate acked, Random random, String name)
            throws IOException {
        int first = batches.size();
        while (first > 0 && batches.get(first - 1).values().stream().noneMatch(acked::test)) {
            first--;
        }
        Batch last = batches.get(batches.size() - 1);
        long validEnd = last.position() + last.size();
        try (FileChannel c = FileChannel.open(segment, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (first < batches.size()) {
                long from = batches.get(first).position();
                long cut = validEnd - from < 2 ? from : from + 1 + (long) (random.nextDouble() * (validEnd - from - 1));
                c.truncate(cut);
                c.force(true);
                return String.format(java.util.Locale.ROOT, "%s: %s cut at byte %d of %d (offsets %d..%d in %d "
                    + "unacknowledged batch(es) at the tail)", name, segment.getFileName(), cut, validEnd,
                    batches.get(first).baseOffset(), last.lastOffset(), batches.size() - first);
            }
            ByteBuffer copy = ByteBuffer.allocate(last.size());
            c.read(copy, last.position());
            copy.flip();
            copy.putLong(0, last.lastOffset() + 1);
            int keep = 1 + random.nextInt(last.size() - 1);
            copy.limit(keep);
            c.truncate(validEnd);
            c.write(copy, validEnd);
            c.force(true);
            return String.format(java.util.Locale.ROOT, "%s: %s got a torn batch (offset %d, %d of %d bytes) after "
                + "its last one at byte %d (every batch there was acknowledged)", name, segment.getFileName(),
                last.lastOffset() + 1, keep, last.size(), validEnd);
        }
    }

    /** The valid batches of a segment, from its start to the first byte that is not one. */
    static List<Batch> batches(Path segment) throws IOException {
        byte[] bytes = Files.readAllBytes(segment);
        ByteBuffer b = ByteBuffer.wrap(bytes);
        List<Batch> out = new ArrayList<>();
        int pos = 0;
        while (pos + HEADER <= bytes.length) {
            long base = b.getLong(pos);
            int length = b.getInt(pos + 8);
            int size = 12 + length;
            if (length < HEADER - 12 || pos + (long) size > bytes.length || b.get(pos + 16) != 2) {
                break;
            }
            CRC32C crc = new CRC32C();
            crc.update(bytes, pos + 21, size - 21);
            if ((int) crc.getValue() != b.getInt(pos + 17)) {
                break;
            }
            short attributes = b.getShort(pos + 21);
            int lastDelta = b.getInt(pos + 23);
            boolean control = (attributes & 0x20) != 0;
            List<Long> values = new ArrayList<>();
            if (!control && (attributes & 0x7) == 0) {
                values = values(b, pos + HEADER, b.getInt(pos + 57), pos + size);
            }
            out.add(new Batch(pos, size, base, base + lastDelta, control, values));
            pos += size;
        }
        return out;
    }

    private static List<Long> values(ByteBuffer b, int at, int count, int end) {
        List<Long> values = new ArrayList<>();
        int[] p = {at};
        for (int i = 0; i < count && p[0] < end; i++) {
            long len = varlong(b, p);
            int next = p[0] + (int) len;
            p[0]++; // attributes
            varlong(b, p); // timestamp delta
            varlong(b, p); // offset delta
            long keyLen = varlong(b, p);
            if (keyLen > 0) {
                p[0] += (int) keyLen;
            }
            long valueLen = varlong(b, p);
            if (valueLen > 0 && valueLen < 64) {
                String s = new String(b.array(), p[0], (int) valueLen, StandardCharsets.US_ASCII).trim();
                try {
                    values.add(Long.parseLong(s));
                } catch (NumberFormatException e) {
                    // not one of the workload's values
                }
            } else if (valueLen > 0) {
                int n = 0;
                while (n < valueLen && b.get(p[0] + n) != ' ') {
                    n++;
                }
                try {
                    values.add(Long.parseLong(new String(b.array(), p[0], n, StandardCharsets.US_ASCII)));
                } catch (NumberFormatException e) {
                    // not one of the workload's values
                }
            }
            p[0] = next;
        }
        return values;
    }

    /** A zig-zag varint as Kafka's records use. */
    private static long varlong(ByteBuffer b, int[] p) {
        long raw = 0;
        int shift = 0;
        while (true) {
            byte x = b.get(p[0]++);
            raw |= (long) (x & 0x7f) << shift;
            if ((x & 0x80) == 0) {
                break;
            }
            shift += 7;
            if (shift > 63) {
                throw new IllegalArgumentException("varint too long");
            }
        }
        return (raw >>> 1) ^ -(raw & 1);
    }
}
