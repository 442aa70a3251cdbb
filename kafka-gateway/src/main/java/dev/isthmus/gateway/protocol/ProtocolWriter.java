package dev.isthmus.gateway.protocol;

/** What generated encoders write to; see {@link ProtocolReader}. */
public interface ProtocolWriter {
    void writeByte(byte v);

    void writeShort(short v);

    void writeInt(int v);

    void writeLong(long v);

    void writeUnsignedVarint(int v);

    /** Writes {@code s} as UTF-8; {@code utf8Length} is {@link ByteSizes#utf8(String)} of it. */
    void writeUtf8(String s, int utf8Length);

    /** Writes a slice, sharing rather than copying where the writer can. */
    void writeSlice(ByteSlice slice);

    void writeBytes(byte[] bytes);
}
