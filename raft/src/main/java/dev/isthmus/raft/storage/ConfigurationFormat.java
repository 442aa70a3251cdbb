package dev.isthmus.raft.storage;

import dev.isthmus.raft.Configuration;

import java.nio.ByteBuffer;

/**
 * The binary form of a {@link Configuration}, shared by the state file, control batches and the RPC codec:
 * four id lists (voters, outgoing voters, learners, next learners), each an i32 count and that many i32 ids,
 * big-endian. Decoding validates counts against the bytes left and the configuration's own rules.
 */
public final class ConfigurationFormat {
    private ConfigurationFormat() {
    }

    /** Bytes {@link #write} needs for {@code c}. */
    public static int sizeBytes(Configuration c) {
        return 16 + 4 * (c.voters().length + c.votersOutgoing().length + c.learners().length + c.learnersNext().length);
    }

    public static void write(ByteBuffer out, Configuration c) {
        writeIds(out, c.voters());
        writeIds(out, c.votersOutgoing());
        writeIds(out, c.learners());
        writeIds(out, c.learnersNext());
    }

    public static byte[] encode(Configuration c) {
        ByteBuffer b = ByteBuffer.allocate(sizeBytes(c));
        write(b, c);
        return b.array();
    }

    /**
     * Reads one configuration.
     *
     * @throws IllegalArgumentException when the bytes are truncated or describe an invalid membership
     */
    public static Configuration read(ByteBuffer in) {
        int[] voters = readIds(in, "voters");
        int[] outgoing = readIds(in, "outgoing voters");
        int[] learners = readIds(in, "learners");
        int[] next = readIds(in, "next learners");
        if (voters.length == 0 && outgoing.length == 0 && learners.length == 0 && next.length == 0) {
            return Configuration.EMPTY;
        }
        return new Configuration(voters, outgoing, learners, next);
    }

    private static void writeIds(ByteBuffer out, int[] ids) {
        out.putInt(ids.length);
        for (int id : ids) {
            out.putInt(id);
        }
    }

    private static int[] readIds(ByteBuffer in, String what) {
        if (in.remaining() < 4) {
            throw new IllegalArgumentException("configuration truncated before its " + what);
        }
        int n = in.getInt();
        if (n < 0 || n > in.remaining() / 4) {
            throw new IllegalArgumentException("configuration lists " + n + " " + what + " but " + in.remaining()
                + " bytes remain");
        }
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = in.getInt();
        }
        return ids;
    }
}
