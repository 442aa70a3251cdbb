package dev.isthmus.gateway.protocol;

/**
 * What generated decoders read from: big-endian primitives, Kafka varints, UTF-8 strings and zero-copy byte
 * slices. Implemented over a {@link java.nio.ByteBuffer} ({@link ByteBufferReader}) and over an arena
 * {@code IoBuf} (the server's path). Reading past the end throws {@link ProtocolException}.
 */
public interface ProtocolReader {
    byte readByte();

    short readShort();

    int readInt();

    long readLong();

    int readUnsignedVarint();

    /** {@code length} bytes decoded as UTF-8. */
    String readUtf8(int length);

    /** The next {@code length} bytes without copying. */
    ByteSlice readSlice(int length);

    /** The next {@code length} bytes, copied (small values such as unknown tagged fields). */
    byte[] readBytes(int length);

    /** Bytes left in the frame. */
    int remaining();

    /** Throws unless {@code count} elements of at least one byte each can still be in the frame. */
    default void checkCount(int count, String field) {
        if (count > remaining()) {
            throw new ProtocolException(field + " claims " + count + " elements but only " + remaining()
                + " bytes are left in the frame");
        }
    }
}
