package dev.isthmus.gateway.protocol;

import java.util.List;

/** Shared pieces of the generated codecs: strings, bytes and sizes in legacy and flexible (compact) form. */
public final class Codec {
    private Codec() {
    }

    public static String readString(ProtocolReader r, boolean flexible, boolean nullable, String field) {
        int len = flexible ? r.readUnsignedVarint() - 1 : r.readShort();
        if (len < 0) {
            if (!nullable) {
                throw new ProtocolException("non-nullable string " + field + " was serialized as null");
            }
            return null;
        }
        if (len > r.remaining()) {
            throw new ProtocolException("string " + field + " of " + len + " bytes runs past the frame");
        }
        return r.readUtf8(len);
    }

    public static void writeString(ProtocolWriter w, String s, boolean flexible, boolean nullable, String field) {
        if (s == null) {
            if (!nullable) {
                throw new ProtocolException("null string " + field + " in a version where it is not nullable");
            }
            if (flexible) {
                w.writeUnsignedVarint(0);
            } else {
                w.writeShort((short) -1);
            }
            return;
        }
        int len = ByteSizes.utf8(s);
        if (flexible) {
            w.writeUnsignedVarint(len + 1);
        } else {
            if (len > Short.MAX_VALUE) {
                throw new ProtocolException("string " + field + " of " + len + " bytes is longer than 32767");
            }
            w.writeShort((short) len);
        }
        w.writeUtf8(s, len);
    }

    public static ByteSlice readBytes(ProtocolReader r, boolean flexible, boolean nullable, String field) {
        int len = flexible ? r.readUnsignedVarint() - 1 : r.readInt();
        if (len < 0) {
            if (!nullable) {
                throw new ProtocolException("non-nullable bytes " + field + " was serialized as null");
            }
            return null;
        }
        if (len > r.remaining()) {
            throw new ProtocolException("bytes " + field + " of " + len + " bytes runs past the frame");
        }
        return r.readSlice(len);
    }

    public static void writeBytes(ProtocolWriter w, ByteSlice b, boolean flexible, boolean nullable, String field) {
        if (b == null) {
            if (!nullable) {
                throw new ProtocolException("null bytes " + field + " in a version where it is not nullable");
            }
            if (flexible) {
                w.writeUnsignedVarint(0);
            } else {
                w.writeInt(-1);
            }
            return;
        }
        if (flexible) {
            w.writeUnsignedVarint(b.length() + 1);
        } else {
            w.writeInt(b.length());
        }
        w.writeSlice(b);
    }

    public static int stringSize(String s, boolean flexible) {
        if (s == null) {
            return flexible ? 1 : 2;
        }
        int len = ByteSizes.utf8(s);
        return (flexible ? ByteSizes.unsignedVarint(len + 1) : 2) + len;
    }

    public static int bytesSize(ByteSlice b, boolean flexible) {
        if (b == null) {
            return flexible ? 1 : 4;
        }
        return (flexible ? ByteSizes.unsignedVarint(b.length() + 1) : 4) + b.length();
    }

    public static int structListSize(List<? extends ProtocolStruct> list, short version) {
        int n = 0;
        for (int i = 0; i < list.size(); i++) {
            n += list.get(i).size(version);
        }
        return n;
    }

    public static int stringListSize(List<String> list, boolean flexible) {
        int n = 0;
        for (int i = 0; i < list.size(); i++) {
            n += stringSize(list.get(i), flexible);
        }
        return n;
    }
}
