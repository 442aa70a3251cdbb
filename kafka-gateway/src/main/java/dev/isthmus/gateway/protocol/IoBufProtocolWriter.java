package dev.isthmus.gateway.protocol;

import dev.isthmus.arena.IoBuf;

import java.nio.charset.StandardCharsets;

/**
 * A {@link ProtocolWriter} that appends to an arena {@link IoBuf}: {@link IoBufSlice}s (record batches from
 * the log or the batch cache) are appended by sharing their fragments, so a Fetch response carries its
 * records to the socket without a copy.
 */
public final class IoBufProtocolWriter implements ProtocolWriter {
    private final IoBuf out;

    public IoBufProtocolWriter(IoBuf out) {
        this.out = out;
    }

    public IoBuf buffer() {
        return out;
    }

    @Override
    public void writeByte(byte v) {
        out.appendByte(v);
    }

    @Override
    public void writeShort(short v) {
        out.appendShort(v);
    }

    @Override
    public void writeInt(int v) {
        out.appendInt(v);
    }

    @Override
    public void writeLong(long v) {
        out.appendLong(v);
    }

    @Override
    public void writeUnsignedVarint(int v) {
        out.appendUnsignedVarint(v);
    }

    @Override
    public void writeUtf8(String s, int utf8Length) {
        if (utf8Length == s.length() && isAscii(s)) {
            // Topic names, ids and messages are ASCII: one byte per char, no byte[] per string.
            for (int i = 0; i < utf8Length; i++) {
                out.appendByte(s.charAt(i));
            }
            return;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length != utf8Length) {
            throw new IllegalStateException("UTF-8 length mismatch: " + b.length + " != " + utf8Length);
        }
        out.append(b);
    }

    private static boolean isAscii(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) >= 0x80) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void writeSlice(ByteSlice slice) {
        if (slice instanceof IoBufSlice s) {
            out.append(s.buf());
            return;
        }
        byte[] b = new byte[slice.length()];
        slice.copyTo(0, b, 0, b.length);
        out.append(b);
    }

    @Override
    public void writeBytes(byte[] bytes) {
        out.append(bytes);
    }
}
