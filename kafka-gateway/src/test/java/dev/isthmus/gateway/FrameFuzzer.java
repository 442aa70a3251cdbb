package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.ProtocolStruct;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.RandomMessages;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

/**
 * Test helper: seeded request frames for the fuzz tests. A frame starts as a valid request of a random API and
 * version filled by the generated {@link RandomMessages}, aimed at things that exist (topic names, partitions,
 * a group, real record batches) so requests get past the first lookup, then is damaged: bit flips, byte
 * overwrites, truncation (with the length fixed up, so the frame is complete but short), a lying length
 * prefix, a wrong API key or version, a huge element count written over an int or varint, or replaced by
 * random bytes. Deterministic for a given {@link Random}.
 */
final class FrameFuzzer {
    /** Topics the aimed requests name; tests create the first ones. */
    static final List<String> TOPICS = List.of("fuzz", "fuzz-2", "missing");
    static final String GROUP = "fuzz-group";

    /** A frame and how it was made. {@code lengthLiesUp}: its prefix claims more bytes than follow. */
    record Fuzzed(byte[] bytes, String how, ApiKeys api, short version, boolean intact, boolean lengthLiesUp) {
        String hex() {
            return HexFormat.of().formatHex(bytes);
        }

        @Override
        public String toString() {
            return how + " (" + bytes.length + " bytes): " + (bytes.length <= 4096 ? hex() : hex().substring(0, 8192) + "...");
        }
    }

    private final Random rnd;
    /** The API versions to start from: {lowest, highest} per API, or null for an API not to use. */
    private final Function<ApiKeys, short[]> ranges;
    private final ApiKeys[] apis;

    FrameFuzzer(Random rnd, Function<ApiKeys, short[]> ranges) {
        this.rnd = rnd;
        this.ranges = ranges;
        this.apis = java.util.Arrays.stream(ApiKeys.values()).filter(a -> ranges.apply(a) != null && ranges.apply(a)[0] <= ranges.apply(a)[1])
            .toArray(ApiKeys[]::new);
    }

    /** Every version of every schema (the decoder's own range). */
    static short[] schemaRange(ApiKeys api) {
        return new short[] {api.lowestVersion, api.highestVersion};
    }

    /** A valid request, aimed, not damaged. */
    Fuzzed valid(int correlationId) {
        ApiKeys api = apis[rnd.nextInt(apis.length)];
        short[] r = ranges.apply(api);
        short version = (short) (r[0] + rnd.nextInt(r[1] - r[0] + 1));
        ProtocolMessage m = api.newRequest();
        RandomMessages.fill(m, rnd, version, 0);
        aim(m, 0);
        byte[] f = WireClient.frame(api, version, correlationId, m);
        return new Fuzzed(f, api + " v" + version, api, version, true, false);
    }

    /** A valid request, then (most of the time) damaged. */
    Fuzzed next(int correlationId) {
        Fuzzed v = valid(correlationId);
        byte[] f = v.bytes.clone();
        int kind = rnd.nextInt(16) - 4; // kinds -4..1: intact, so handlers see plenty of well-formed requests
        String how;
        boolean liesUp = false;
        switch (kind) {
            case -4, -3, -2, -1, 0, 1 -> {
                return v;
            }
            case 2, 3 -> {
                int flips = 1 + rnd.nextInt(8);
                for (int i = 0; i < flips; i++) {
                    int at = 4 + rnd.nextInt(f.length - 4);
                    f[at] ^= (byte) (1 << rnd.nextInt(8));
                }
                how = flips + " bit flip(s)";
            }
            case 4 -> {
                int n = 1 + rnd.nextInt(4);
                for (int i = 0; i < n; i++) {
                    f[4 + rnd.nextInt(f.length - 4)] = (byte) (rnd.nextBoolean() ? 0xff : rnd.nextInt(256));
                }
                how = n + " byte(s) overwritten";
            }
            case 5 -> {
                int keep = 4 + rnd.nextInt(f.length - 4);
                f = java.util.Arrays.copyOf(f, keep);
                ByteBuffer.wrap(f).putInt(0, keep - 4);
                how = "truncated to " + (keep - 4) + " body bytes";
            }
            case 6 -> {
                int actual = f.length - 4;
                int lie = switch (rnd.nextInt(4)) {
                    case 0 -> actual + 1 + rnd.nextInt(64);
                    case 1 -> Math.max(0, actual - 1 - rnd.nextInt(Math.max(1, actual)));
                    case 2 -> rnd.nextInt();
                    default -> Integer.MAX_VALUE - rnd.nextInt(16);
                };
                ByteBuffer.wrap(f).putInt(0, lie);
                liesUp = lie > actual;
                how = "length prefix " + lie + " for " + actual + " bytes";
            }
            case 7 -> {
                short key = switch (rnd.nextInt(3)) {
                    case 0 -> (short) rnd.nextInt(100);
                    case 1 -> (short) (-1 - rnd.nextInt(10));
                    default -> (short) rnd.nextInt();
                };
                ByteBuffer.wrap(f).putShort(4, key);
                how = "api key " + key;
            }
            case 8 -> {
                short version = switch (rnd.nextInt(3)) {
                    case 0 -> (short) (v.version + 1 + rnd.nextInt(3));
                    case 1 -> (short) -1;
                    default -> (short) rnd.nextInt();
                };
                ByteBuffer.wrap(f).putShort(6, version);
                how = "version " + version;
            }
            case 9 -> {
                // A huge count over an int (legacy arrays, bytes, records) or a varint (compact arrays).
                if (f.length < 16) {
                    return v;
                }
                int at = 12 + rnd.nextInt(f.length - 15);
                if (rnd.nextBoolean()) {
                    ByteBuffer.wrap(f).putInt(at, rnd.nextBoolean() ? Integer.MAX_VALUE : 0x10000000 + rnd.nextInt(1 << 20));
                    how = "huge int count at " + at;
                } else {
                    byte[] varint = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07};
                    System.arraycopy(varint, 0, f, at, Math.min(varint.length, f.length - at));
                    how = "huge varint count at " + at;
                }
            }
            case 10 -> {
                // Bytes inserted in the middle, length kept consistent.
                int at = 4 + rnd.nextInt(f.length - 4);
                byte[] extra = new byte[1 + rnd.nextInt(16)];
                rnd.nextBytes(extra);
                byte[] g = new byte[f.length + extra.length];
                System.arraycopy(f, 0, g, 0, at);
                System.arraycopy(extra, 0, g, at, extra.length);
                System.arraycopy(f, at, g, at + extra.length, f.length - at);
                ByteBuffer.wrap(g).putInt(0, g.length - 4);
                f = g;
                how = extra.length + " byte(s) inserted at " + at;
            }
            default -> {
                byte[] g = new byte[8 + rnd.nextInt(200)];
                rnd.nextBytes(g);
                ByteBuffer.wrap(g).putInt(0, g.length - 4);
                // Keep a real API key and version half of the time so the body decoder sees the garbage.
                if (rnd.nextBoolean()) {
                    System.arraycopy(v.bytes, 4, g, 4, 4);
                }
                f = g;
                how = "random bytes";
            }
        }
        return new Fuzzed(f, v.how + ", " + how, v.api, v.version, false, liesUp);
    }

    // ------------------------------------------------------------------ aiming

    /** Points a random message at what exists, so handlers go beyond "unknown topic". */
    private void aim(Object o, int depth) {
        if (o == null || depth > 6) {
            return;
        }
        for (Field f : o.getClass().getFields()) {
            if (Modifier.isStatic(f.getModifiers())) {
                continue;
            }
            try {
                aimField(o, f, depth);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private void aimField(Object o, Field f, int depth) throws IllegalAccessException {
        String n = f.getName();
        Class<?> t = f.getType();
        Object value = f.get(o);
        if (t == String.class) {
            if ((n.equals("name") || n.equals("topic") || n.equals("topicName")) && rnd.nextInt(4) != 0) {
                f.set(o, TOPICS.get(rnd.nextInt(TOPICS.size())));
            } else if (n.equals("groupId") && rnd.nextInt(3) != 0) {
                f.set(o, GROUP);
            }
        } else if (t == int.class) {
            switch (n) {
                case "partitionIndex", "partition", "index" -> f.setInt(o, rnd.nextInt(4) - (rnd.nextInt(20) == 0 ? 2 : 0));
                case "maxWaitMs" -> f.setInt(o, rnd.nextInt(50));
                case "timeoutMs" -> f.setInt(o, rnd.nextInt(2000));
                case "rebalanceTimeoutMs" -> f.setInt(o, 100 + rnd.nextInt(900));
                case "sessionTimeoutMs" -> f.setInt(o, rnd.nextBoolean() ? 6000 + rnd.nextInt(4000) : f.getInt(o));
                case "numPartitions", "count" -> f.setInt(o, rnd.nextInt(8) - 1);
                default -> {
                }
            }
        } else if (t == short.class && n.equals("acks")) {
            short[] acks = {-1, 0, 1, 2};
            f.setShort(o, acks[rnd.nextInt(acks.length)]);
        } else if (t == ByteSlice.class && n.equals("records") && rnd.nextInt(3) != 0) {
            f.set(o, ByteSlice.of(batch()));
        } else if (value instanceof List<?> l) {
            for (Object e : l) {
                if (e instanceof ProtocolStruct) {
                    aim(e, depth + 1);
                }
            }
        } else if (value instanceof ProtocolStruct) {
            aim(value, depth + 1);
        }
    }

    /** A real magic-2 batch of a few records (sometimes idempotent), as a producer sends it. */
    private byte[] batch() {
        SimpleRecord[] records = new SimpleRecord[1 + rnd.nextInt(5)];
        for (int i = 0; i < records.length; i++) {
            byte[] value = new byte[rnd.nextInt(64)];
            rnd.nextBytes(value);
            records[i] = new SimpleRecord(1_700_000_000_000L + rnd.nextInt(1 << 30), ("k" + i).getBytes(), value);
        }
        Compression c = switch (rnd.nextInt(4)) {
            case 0 -> Compression.gzip().build();
            case 1 -> Compression.lz4().build();
            default -> Compression.NONE;
        };
        MemoryRecords m = rnd.nextBoolean() ? MemoryRecords.withRecords(c, records)
            : MemoryRecords.withIdempotentRecords(c, 1000 + rnd.nextInt(4), (short) 0, rnd.nextInt(3), records);
        ByteBuffer b = m.buffer();
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
