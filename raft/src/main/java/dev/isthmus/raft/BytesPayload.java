package dev.isthmus.raft;

import java.util.Arrays;

/**
 * A {@link Payload} held in a heap array: controller commands, the simulator's records, small tests. Equality
 * is by content and record count. The array is not copied; callers hand it over and must not change it.
 */
public final class BytesPayload implements Payload {
    private final byte[] bytes;
    private final int recordCount;

    public BytesPayload(byte[] bytes, int recordCount) {
        if (bytes == null) {
            throw new IllegalArgumentException("payload bytes must not be null");
        }
        if (recordCount < 1) {
            throw new IllegalArgumentException("a payload holds at least one record, not " + recordCount);
        }
        this.bytes = bytes;
        this.recordCount = recordCount;
    }

    /** The bytes (not a copy; do not modify). */
    public byte[] bytes() {
        return bytes;
    }

    @Override
    public int sizeBytes() {
        return bytes.length;
    }

    @Override
    public int recordCount() {
        return recordCount;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BytesPayload p && p.recordCount == recordCount && Arrays.equals(p.bytes, bytes);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(bytes) + recordCount;
    }

    @Override
    public String toString() {
        return "BytesPayload[" + bytes.length + " bytes, " + recordCount + " records]";
    }
}
