package dev.isthmus.gateway.protocol;

import java.util.ArrayList;
import java.util.List;

/** A tagged field this version of the schema does not know: kept as bytes and written back in tag order. */
public record RawTaggedField(int tag, byte[] data) {

    public static List<RawTaggedField> read(ProtocolReader r, int tag, int size, List<RawTaggedField> into) {
        if (size < 0 || size > r.remaining()) {
            throw new ProtocolException("tagged field " + tag + " claims " + size + " bytes, " + r.remaining() + " left");
        }
        List<RawTaggedField> l = into == null ? new ArrayList<>(1) : into;
        l.add(new RawTaggedField(tag, r.readBytes(size)));
        return l;
    }

    /** Writes the unknown fields from index {@code from} whose tag is below {@code limitTag}; returns the next index. */
    public static int writeBelow(ProtocolWriter w, List<RawTaggedField> fields, int from, int limitTag) {
        if (fields == null) {
            return from;
        }
        int i = from;
        // limitTag Integer.MAX_VALUE means "all the rest": tag 2^31-1 itself is a legal unknown tag.
        while (i < fields.size() && (limitTag == Integer.MAX_VALUE || fields.get(i).tag < limitTag)) {
            RawTaggedField f = fields.get(i++);
            w.writeUnsignedVarint(f.tag);
            w.writeUnsignedVarint(f.data.length);
            w.writeBytes(f.data);
        }
        return i;
    }

    public static int size(List<RawTaggedField> fields) {
        if (fields == null) {
            return 0;
        }
        int n = 0;
        for (RawTaggedField f : fields) {
            n += ByteSizes.unsignedVarint(f.tag) + ByteSizes.unsignedVarint(f.data.length) + f.data.length;
        }
        return n;
    }
}
