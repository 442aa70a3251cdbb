package dev.isthmus.raft.storage;

import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * How Raft entries look in a Kafka log. A {@link EntryKind#DATA} entry is its {@link KafkaBatchPayload} as
 * is. The two Raft-internal kinds are control batches (attribute bit 5, which every Kafka consumer skips)
 * holding one record whose key is Kafka's control-record key (version i16 = 0, type i16) and whose value is
 * ours:
 * <pre>
 *   LEADER_CHANGE   type 2 (KRaft's LeaderChange type)   value: Kafka's LeaderChangeMessage, version 0 (below)
 *   CONFIGURATION   type 6 (KRaft's KRAFT_VOTERS type)   value: Kafka's VotersRecord, version 0 (below)
 *   PREFIX_TRUNCATION type 100 (Isthmus's, outside Kafka's)  value: version i16 = 0, newStartOffset i64
 * </pre>
 * Control batches of other types (transaction markers written through Raft as data) stay DATA entries. The
 * Raft term is the batch's partitionLeaderEpoch, stamped by the log on append.
 * <p>The no-op's value is what KRaft writes there, {@code LeaderChangeMessage} version 0 (a flexible version), so
 * Kafka's tools ({@code kafka-dump-log.sh --deep-iteration}) read every record of a partition's segments:
 * <pre>
 *   Version i16 = 0 | LeaderId i32 | Voters compact array | GrantingVoters compact array | tagged fields uvarint 0
 *   Voter: VoterId i32 | tagged fields uvarint 0      compact array: uvarint (count + 1), then the elements
 * </pre>
 * What it records is {@link Entry.LeaderChange} (LeaderId -1 and no voters when the entry carries none). Readers
 * take the value of a no-op as it is: logs written before it was a LeaderChangeMessage hold only the version.
 *
 * <p>A membership entry's value is what KRaft writes for its voter set, {@code VotersRecord} version 0 (flexible),
 * so that Kafka's tools read a partition that had a reassignment too. It lists every node that votes in the
 * configuration (both sets while it is joint), and carries the whole {@link Configuration} (outgoing voters,
 * learners and next learners, which KRaft's record cannot say) in a tagged field of its own, which Kafka's reader
 * keeps as an unknown tagged field and skips:
 * <pre>
 *   Version i16 = 0 | Voters compact array | tagged fields: uvarint 1, tag {@value #MEMBERSHIP_TAG}, uvarint size,
 *                                                          {@link ConfigurationFormat} of the whole configuration
 *   Voter: VoterId i32 | VoterDirectoryId uuid (16 zero bytes) | Endpoints compact array (empty) |
 *          KRaftVersionFeature { MinSupportedVersion i16 = 0 | MaxSupportedVersion i16 = 0 | tagged fields 0 } |
 *          tagged fields uvarint 0
 * </pre>
 * Entries written before (version i16 = 0, then {@link ConfigurationFormat}) are still read: there the byte after
 * the version is the high byte of an i32 voter count, always 0, while a VotersRecord's voter array starts with
 * uvarint (count + 1), never 0. A VotersRecord without the membership field reads as a simple configuration of
 * its voters.
 */
public final class RaftBatches {
    /** Control type of a leader's no-op. */
    public static final short LEADER_CHANGE_TYPE = 2;
    /** Control type of a membership entry. */
    public static final short CONFIGURATION_TYPE = 6;
    /** Control type of a prefix truncation (not one of Kafka's; consumers skip every control batch). */
    public static final short PREFIX_TRUNCATION_TYPE = 100;
    /**
     * Tag of the VotersRecord field holding the whole membership: an Isthmus field, numbered far from the small
     * tags Kafka gives its own tagged fields (from 0), and read by Kafka as an unknown tagged field.
     */
    static final int MEMBERSHIP_TAG = 10_000;
    private static final short VERSION = 0;

    private RaftBatches() {
    }

    /** The bytes to append for {@code e} (a fresh array for control entries; the payload's own for DATA). */
    public static byte[] encode(Entry e, long timestampMs) {
        return switch (e.kind()) {
            case DATA -> {
                if (!(e.payload() instanceof KafkaBatchPayload p)) {
                    throw new IllegalArgumentException("a Kafka log stores KafkaBatchPayload entries, not "
                        + e.payload().getClass().getName() + " (wrap controller commands with KafkaBatchPayload.ofValues)");
                }
                yield p.bytes();
            }
            case LEADER_CHANGE -> control(LEADER_CHANGE_TYPE, leaderChangeMessage(e.leaderChange()), timestampMs);
            case CONFIGURATION -> control(CONFIGURATION_TYPE, votersRecord(e.configuration()), timestampMs);
            case PREFIX_TRUNCATION -> control(PREFIX_TRUNCATION_TYPE,
                ByteBuffer.allocate(10).putShort(VERSION).putLong(e.newStartOffset()).array(), timestampMs);
        };
    }

    /** Bytes of one voter in a VotersRecord: id, directory id, no endpoints, KRaft version 0..0, no tagged fields. */
    private static final int VOTER_BYTES = 4 + 16 + 1 + 2 + 2 + 1 + 1;

    /** Kafka's VotersRecord (version 0) for {@code c}, with the whole configuration in its membership field. */
    static byte[] votersRecord(Configuration c) {
        int[] voters = c.allVoters();
        byte[] membership = ConfigurationFormat.encode(c);
        ByteBuffer b = ByteBuffer.allocate(2 + 5 + voters.length * VOTER_BYTES + 1 + 5 + 5 + membership.length);
        b.putShort(VERSION);
        putUnsignedVarint(b, voters.length + 1);
        for (int id : voters) {
            b.putInt(id);
            b.putLong(0).putLong(0); // VoterDirectoryId: none (Uuid.ZERO_UUID)
            putUnsignedVarint(b, 1); // Endpoints: empty
            b.putShort((short) 0).putShort((short) 0); // KRaftVersionFeature 0..0
            putUnsignedVarint(b, 0); // its tagged fields
            putUnsignedVarint(b, 0); // the voter's tagged fields
        }
        putUnsignedVarint(b, 1);
        putUnsignedVarint(b, MEMBERSHIP_TAG);
        putUnsignedVarint(b, membership.length);
        b.put(membership);
        return java.util.Arrays.copyOf(b.array(), b.position());
    }

    /**
     * The configuration a membership entry's value records, in either layout (see the class comment).
     *
     * @throws IllegalArgumentException when the value is neither
     */
    static Configuration readConfiguration(ByteBuffer v) {
        short version = v.getShort();
        if (version != VERSION) {
            throw new IllegalArgumentException("unknown version " + version);
        }
        if (v.remaining() > 0 && v.get(v.position()) == 0) {
            return ConfigurationFormat.read(v); // the layout before the VotersRecord: an i32 voter count first
        }
        int n = unsignedVarint(v) - 1;
        if (n < 0 || n > v.remaining() / VOTER_BYTES) {
            throw new IllegalArgumentException("VotersRecord lists " + n + " voters in " + v.remaining() + " bytes");
        }
        int[] voters = new int[n];
        for (int i = 0; i < n; i++) {
            voters[i] = v.getInt();
            v.position(v.position() + 16); // VoterDirectoryId
            int endpoints = unsignedVarint(v) - 1;
            if (endpoints < 0) {
                throw new IllegalArgumentException("voter " + voters[i] + " has a null endpoint array");
            }
            for (int j = 0; j < endpoints; j++) {
                skipCompactString(v); // Name
                skipCompactString(v); // Host
                v.getShort(); // Port
                skipTaggedFields(v);
            }
            v.getShort(); // KRaftVersionFeature.MinSupportedVersion
            v.getShort(); // KRaftVersionFeature.MaxSupportedVersion
            skipTaggedFields(v);
            skipTaggedFields(v);
        }
        Configuration membership = null;
        int tagged = unsignedVarint(v);
        for (int i = 0; i < tagged; i++) {
            int tag = unsignedVarint(v);
            int size = unsignedVarint(v);
            if (size < 0 || size > v.remaining()) {
                throw new IllegalArgumentException("tagged field " + tag + " of " + size + " bytes in " + v.remaining());
            }
            if (tag == MEMBERSHIP_TAG) {
                ByteBuffer field = v.slice(v.position(), size);
                membership = ConfigurationFormat.read(field);
                if (field.hasRemaining()) {
                    throw new IllegalArgumentException("membership field has " + field.remaining() + " bytes left over");
                }
            }
            v.position(v.position() + size);
        }
        if (membership == null) {
            return voters.length == 0 ? Configuration.EMPTY : Configuration.ofVoters(voters);
        }
        if (!java.util.Arrays.equals(membership.allVoters(), java.util.Arrays.stream(voters).sorted().toArray())) {
            throw new IllegalArgumentException("VotersRecord lists voters " + java.util.Arrays.toString(voters)
                + " but its membership field " + membership);
        }
        return membership;
    }

    private static void skipCompactString(ByteBuffer b) {
        int length = unsignedVarint(b) - 1;
        if (length < 0 || length > b.remaining()) {
            throw new IllegalArgumentException("string of " + length + " bytes in " + b.remaining());
        }
        b.position(b.position() + length);
    }

    /** Kafka's LeaderChangeMessage (version 0) recording {@code info} (null: leader -1, no voters). */
    static byte[] leaderChangeMessage(Entry.LeaderChange info) {
        int leader = info == null ? -1 : info.leaderId();
        int[] voters = info == null ? new int[0] : info.voters();
        int[] granting = info == null ? new int[0] : info.grantingVoters();
        ByteBuffer b = ByteBuffer.allocate(2 + 4 + 2 * 5 + 5 * (voters.length + granting.length) + 1);
        b.putShort(VERSION).putInt(leader);
        voterArray(b, voters);
        voterArray(b, granting);
        putUnsignedVarint(b, 0); // no tagged fields
        return java.util.Arrays.copyOf(b.array(), b.position());
    }

    private static void voterArray(ByteBuffer b, int[] ids) {
        putUnsignedVarint(b, ids.length + 1);
        for (int id : ids) {
            b.putInt(id);
            putUnsignedVarint(b, 0);
        }
    }

    private static void putUnsignedVarint(ByteBuffer b, int v) {
        while ((v & ~0x7F) != 0) {
            b.put((byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        b.put((byte) v);
    }

    private static int unsignedVarint(ByteBuffer b) {
        int v = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            byte x = b.get();
            v |= (x & 0x7F) << shift;
            if ((x & 0x80) == 0) {
                return v;
            }
        }
        throw new IllegalArgumentException("varint longer than 5 bytes");
    }

    private static int[] voterArray(ByteBuffer b) {
        int n = unsignedVarint(b) - 1;
        if (n < 0 || n > b.remaining() / 5) {
            throw new IllegalArgumentException("voter array of " + n);
        }
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = b.getInt();
            skipTaggedFields(b);
        }
        return ids;
    }

    private static void skipTaggedFields(ByteBuffer b) {
        int n = unsignedVarint(b);
        for (int i = 0; i < n; i++) {
            unsignedVarint(b); // tag
            int size = unsignedVarint(b);
            b.position(b.position() + size);
        }
    }

    /**
     * What the value of a no-op records, or null: a value written before the no-op was a LeaderChangeMessage (its
     * version alone), or one that does not read as one (a no-op's value has no part in Raft).
     */
    static Entry.LeaderChange readLeaderChange(MemorySegment value) {
        if (value == null || value.byteSize() < 2 + 4 + 2) {
            return null;
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(value.toArray(ValueLayout.JAVA_BYTE));
            if (b.getShort() != VERSION) {
                return null;
            }
            int leader = b.getInt();
            int[] voters = voterArray(b);
            int[] granting = voterArray(b);
            return new Entry.LeaderChange(leader, voters, granting);
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static byte[] control(short type, byte[] value, long timestampMs) {
        byte[] key = ByteBuffer.allocate(4).putShort(VERSION).putShort(type).array();
        byte[] buf = new byte[RecordBatch.HEADER_BYTES + 32 + value.length];
        int n = new BatchBuilder(MemorySegment.ofArray(buf), 0, 0).control(true).add(timestampMs, key, value).build();
        return java.util.Arrays.copyOf(buf, n);
    }

    /**
     * Decodes the whole batches in {@code bytes[0, length)} into entries appended to {@code out}.
     *
     * @throws IllegalArgumentException for a batch that is not a Raft entry (epoch below 1, malformed control)
     */
    public static void decode(MemorySegment bytes, long length, List<Entry> out) {
        RecordBatch b = new RecordBatch();
        long pos = 0;
        while (pos + RecordBatch.LOG_OVERHEAD <= length) {
            b.wrap(bytes, pos);
            int size = b.sizeInBytes();
            if (size < RecordBatch.HEADER_BYTES || pos + size > length) {
                break;
            }
            out.add(decodeOne(b));
            pos += size;
        }
    }

    /**
     * Decodes the whole batches of {@code chain} (a batch-cache read) into entries appended to {@code out}. A data
     * entry's payload shares the chain's fragments (no copy; {@code out} holds one reference each, and the chain may be
     * released at once); a Raft control entry (leader change, configuration, prefix truncation) is decoded from a heap
     * copy of its small batch.
     *
     * @throws IllegalArgumentException for a batch that is not a Raft entry (epoch below 1, malformed control); the
     *                                  entries this call added are released and removed
     */
    public static void decodeShared(dev.isthmus.arena.IoBuf chain, List<Entry> out) {
        long length = chain.size();
        long pos = 0;
        int start = out.size();
        try {
            while (pos + RecordBatch.LOG_OVERHEAD <= length) {
                int size = chain.getInt(pos + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD;
                if (size < RecordBatch.HEADER_BYTES || pos + size > length) {
                    break;
                }
                short attributes = chain.getShort(pos + RecordBatch.ATTRIBUTES);
                if ((attributes & RecordBatch.CONTROL_BIT) != 0 && (attributes & RecordBatch.TRANSACTIONAL_BIT) == 0) {
                    byte[] copy = new byte[size];
                    chain.copyTo(pos, copy, 0, size);
                    out.add(decodeOne(new RecordBatch().wrap(MemorySegment.ofArray(copy), 0)));
                } else {
                    long term = chain.getInt(pos + RecordBatch.PARTITION_LEADER_EPOCH);
                    long base = chain.getLong(pos + RecordBatch.BASE_OFFSET);
                    if (term < 1) {
                        throw new IllegalArgumentException("batch at offset " + base + " has leader epoch " + term
                            + "; a Raft log's batches carry their term (>= 1)");
                    }
                    out.add(Entry.data(base, term, KafkaBatchPayload.shareOf(chain, pos, size)));
                }
                pos += size;
            }
        } catch (RuntimeException e) {
            for (int i = out.size() - 1; i >= start; i--) {
                Entry done = out.remove(i);
                if (done.payload() != null) {
                    done.payload().release();
                }
            }
            throw e;
        }
    }

    /** The entry held in the batch {@code b} points at. */
    public static Entry decodeOne(RecordBatch b) {
        long term = b.partitionLeaderEpoch();
        if (term < 1) {
            throw new IllegalArgumentException("batch at offset " + b.baseOffset() + " has leader epoch " + term
                + "; a Raft log's batches carry their term (>= 1)");
        }
        if (b.isControl() && !b.isTransactional()) {
            Records r = new Records();
            if (r.wrap(b) && r.next() && r.keyLength() == 4) {
                MemorySegment key = r.key();
                short type = key.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 2);
                if (type == LEADER_CHANGE_TYPE) {
                    Entry.LeaderChange info = readLeaderChange(r.value());
                    return info == null ? Entry.leaderChange(b.baseOffset(), term)
                        : Entry.leaderChange(b.baseOffset(), term, info);
                }
                if (type == CONFIGURATION_TYPE) {
                    ByteBuffer v = ByteBuffer.wrap(r.value().toArray(ValueLayout.JAVA_BYTE));
                    Configuration c;
                    try {
                        c = readConfiguration(v);
                    } catch (RuntimeException e) { // IllegalArgumentException, BufferUnderflowException
                        throw new IllegalArgumentException("configuration entry at " + b.baseOffset()
                            + " does not read: " + e.getMessage(), e);
                    }
                    return Entry.configuration(b.baseOffset(), term, c);
                }
                if (type == PREFIX_TRUNCATION_TYPE) {
                    ByteBuffer v = ByteBuffer.wrap(r.value().toArray(ValueLayout.JAVA_BYTE));
                    short version = v.getShort();
                    if (version != VERSION || v.remaining() != 8) {
                        throw new IllegalArgumentException("prefix truncation entry at " + b.baseOffset()
                            + " has unknown version " + version + " or " + v.remaining() + " value bytes");
                    }
                    return Entry.prefixTruncation(b.baseOffset(), term, v.getLong());
                }
            }
        }
        byte[] copy = b.segment().asSlice(b.position(), b.sizeInBytes()).toArray(ValueLayout.JAVA_BYTE);
        return Entry.data(b.baseOffset(), term, new KafkaBatchPayload(copy));
    }
}
