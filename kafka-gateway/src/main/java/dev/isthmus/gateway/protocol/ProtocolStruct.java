package dev.isthmus.gateway.protocol;

/** A generated message or nested struct: decodes, encodes and sizes itself for a version. */
public interface ProtocolStruct {
    /** Replaces every field with what {@code r} holds for {@code version}. */
    void read(ProtocolReader r, short version);

    /** Writes the fields {@code version} has (exactly {@link #size} bytes). */
    void write(ProtocolWriter w, short version);

    /** The encoded size in {@code version}. */
    int size(short version);

    /** True when every field has its default value. */
    boolean isDefault();
}
