package dev.isthmus.raft.storage;

import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Raft's membership entries in a Kafka log: written as KRaft's VotersRecord (control type 6) with the whole
 * configuration in a tagged field, read back exactly (simple, joint, with learners), and read in the layout written
 * before (version, then {@link ConfigurationFormat}) so that logs of earlier versions still recover. That Kafka's
 * own reader takes the record is checked in kafka-gateway (DumpLogSegmentsTest, with Kafka 4.3's tools).
 */
class RaftBatchesTest {
    private static final long TERM = 7;

    /** The batch as the log stores it: the term stamped as its partition leader epoch. */
    private static RecordBatch stored(byte[] bytes, long offset) {
        MemorySegment seg = MemorySegment.ofArray(bytes);
        RecordBatch b = new RecordBatch().wrap(seg, 0);
        b.baseOffset(offset);
        b.partitionLeaderEpoch((int) TERM);
        b.updateCrc();
        return b;
    }

    private static Entry roundTrip(Configuration c) {
        byte[] bytes = RaftBatches.encode(Entry.configuration(42, TERM, c), 1_000);
        return RaftBatches.decodeOne(stored(bytes, 42));
    }

    private static byte[] value(byte[] batch) {
        Records r = new Records();
        assertTrue(r.wrap(stored(batch, 0)) && r.next());
        return r.value().toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void shouldReadBackSimpleJointAndLearnerConfigurations() {
        List<Configuration> cs = List.of(Configuration.ofVoters(1), Configuration.ofVoters(1, 2, 3),
            Configuration.of(new int[] {1, 2, 3}, new int[] {4}),
            Configuration.ofVoters(1, 2, 3).enterJoint(Configuration.of(new int[] {2, 3, 4}, new int[] {1})),
            Configuration.ofVoters(1, 2, 3).enterJoint(Configuration.ofVoters(4, 5, 6)),
            Configuration.EMPTY);
        for (Configuration c : cs) {
            Entry e = roundTrip(c);
            assertEquals(EntryKind.CONFIGURATION, e.kind(), c.toString());
            assertEquals(42, e.baseOffset());
            assertEquals(TERM, e.term());
            assertEquals(c, e.configuration());
        }
    }

    @Test
    void shouldWriteAMembershipEntryAsKRaftsVotersRecordListingEveryVoter() {
        Configuration joint = Configuration.ofVoters(1, 2, 3).enterJoint(Configuration.of(new int[] {3, 4, 5},
            new int[] {1}));
        byte[] batch = RaftBatches.encode(Entry.configuration(0, TERM, joint), 1_000);
        RecordBatch b = stored(batch, 0);
        assertTrue(b.isControl() && !b.isTransactional());
        Records r = new Records();
        assertTrue(r.wrap(b) && r.next());
        ByteBuffer key = ByteBuffer.wrap(r.key().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(0, key.getShort(), "control key version");
        assertEquals(6, key.getShort(), "KRaft's KRAFT_VOTERS control type");
        ByteBuffer v = ByteBuffer.wrap(value(batch));
        assertEquals(0, v.getShort(), "VotersRecord's Version");
        assertEquals(5 + 1, v.get(), "compact array of the five nodes that vote while joint");
        for (int id = 1; id <= 5; id++) {
            assertEquals(id, v.getInt(), "VoterId");
            assertEquals(0, v.getLong());
            assertEquals(0, v.getLong(), "no VoterDirectoryId");
            assertEquals(1, v.get(), "no Endpoints");
            assertEquals(0, v.getShort());
            assertEquals(0, v.getShort(), "KRaftVersionFeature 0..0");
            assertEquals(0, v.get(), "the feature's tagged fields");
            assertEquals(0, v.get(), "the voter's tagged fields");
        }
        assertEquals(1, v.get(), "one tagged field");
        ByteBuffer tag = ByteBuffer.allocate(8);
        int t = RaftBatches.MEMBERSHIP_TAG;
        while ((t & ~0x7F) != 0) {
            tag.put((byte) ((t & 0x7F) | 0x80));
            t >>>= 7;
        }
        tag.put((byte) t);
        for (int i = 0; i < tag.position(); i++) {
            assertEquals(tag.get(i), v.get(), "the membership tag's uvarint");
        }
        byte[] membership = ConfigurationFormat.encode(joint);
        assertEquals(membership.length, v.get(), "its size");
        byte[] rest = new byte[v.remaining()];
        v.get(rest);
        assertArrayEquals(membership, rest, "the whole configuration, in ConfigurationFormat");
    }

    @Test
    void shouldReadMembershipEntriesOfTheEarlierLayout() {
        for (Configuration c : List.of(Configuration.ofVoters(1, 2, 3),
                Configuration.ofVoters(1, 2).enterJoint(Configuration.of(new int[] {2, 3}, new int[] {1})),
                Configuration.EMPTY)) {
            ByteBuffer v = ByteBuffer.allocate(2 + ConfigurationFormat.sizeBytes(c)).putShort((short) 0);
            ConfigurationFormat.write(v, c);
            byte[] key = ByteBuffer.allocate(4).putShort((short) 0).putShort(RaftBatches.CONFIGURATION_TYPE).array();
            byte[] buf = new byte[RecordBatch.HEADER_BYTES + 32 + v.capacity()];
            int n = new BatchBuilder(MemorySegment.ofArray(buf), 0, 0).control(true).add(1_000, key, v.array()).build();
            Entry e = RaftBatches.decodeOne(stored(java.util.Arrays.copyOf(buf, n), 9));
            assertEquals(EntryKind.CONFIGURATION, e.kind());
            assertEquals(c, e.configuration());
        }
    }

    @Test
    void shouldReadAVotersRecordWithoutTheMembershipFieldAsItsVoters() {
        ByteBuffer v = ByteBuffer.allocate(64).putShort((short) 0).put((byte) 3);
        for (int id : new int[] {2, 5}) {
            v.putInt(id).putLong(0).putLong(0).put((byte) 1).putShort((short) 0).putShort((short) 1).put((byte) 0)
                .put((byte) 0);
        }
        v.put((byte) 0);
        assertEquals(Configuration.ofVoters(2, 5), RaftBatches.readConfiguration(v.flip()));
    }

    @Test
    void shouldRefuseAVotersRecordWhoseVotersDisagreeWithItsMembership() {
        byte[] good = RaftBatches.votersRecord(Configuration.ofVoters(1, 2, 3));
        byte[] bad = good.clone();
        bad[3 + 3] = 9; // the first VoterId's low byte: 1 -> 9
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RaftBatches.readConfiguration(ByteBuffer.wrap(bad)));
        assertTrue(e.getMessage().contains("membership"), e.getMessage());
        byte[] truncated = java.util.Arrays.copyOf(good, good.length - 3);
        assertThrows(RuntimeException.class, () -> RaftBatches.readConfiguration(ByteBuffer.wrap(truncated)));
    }
}
