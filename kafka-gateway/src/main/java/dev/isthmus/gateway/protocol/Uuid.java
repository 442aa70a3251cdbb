package dev.isthmus.gateway.protocol;

import java.util.Base64;
import java.nio.ByteBuffer;

/** Kafka's 128-bit UUID (topic ids); {@link #toString()} is Kafka's URL-safe base64 form. */
public record Uuid(long msb, long lsb) {
    public static final Uuid ZERO = new Uuid(0, 0);

    public static Uuid read(ProtocolReader r) {
        long m = r.readLong();
        long l = r.readLong();
        return m == 0 && l == 0 ? ZERO : new Uuid(m, l);
    }

    public static void write(ProtocolWriter w, Uuid u) {
        Uuid v = u == null ? ZERO : u;
        w.writeLong(v.msb);
        w.writeLong(v.lsb);
    }

    /** A random version-4 UUID that is neither zero nor Kafka's reserved metadata-topic id. */
    public static Uuid random() {
        java.util.UUID u = java.util.UUID.randomUUID();
        return new Uuid(u.getMostSignificantBits(), u.getLeastSignificantBits());
    }

    @Override
    public String toString() {
        ByteBuffer b = ByteBuffer.allocate(16).putLong(msb).putLong(lsb);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b.array());
    }
}
