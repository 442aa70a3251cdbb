package dev.isthmus.gateway.protocol;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.RandomMessages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The server path: decode from and encode to arena IoBufs split into small fragments, records zero-copy. */
@ExtendWith(ArenaLeakCheck.class)
class IoBufProtocolTest {

    @Test
    void shouldDecodeAndEncodeProduceThroughFragmentedIoBufs() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("IoBufProtocolTest seed=" + seed);
        Random rnd = new Random(seed);
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(16L << 20))) {
            for (short v = ProduceRequestData.LOWEST_VERSION; v <= ProduceRequestData.HIGHEST_VERSION; v++) {
                for (int i = 0; i < 20; i++) {
                    ProduceRequestData m = new ProduceRequestData();
                    RandomMessages.fill(m, rnd, v, 0);
                    ByteBuffer expected = ByteBufferWriter.encode(m, v);
                    // Split the frame into 1..13-byte fragments so every field straddles boundaries.
                    IoBuf frame = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE);
                    byte[] all = new byte[expected.remaining()];
                    expected.duplicate().get(all);
                    for (int pos = 0; pos < all.length; ) {
                        int n = Math.min(1 + rnd.nextInt(13), all.length - pos);
                        IoBuf piece = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE);
                        piece.append(all, pos, n);
                        frame.append(piece);
                        piece.release();
                        pos += n;
                    }
                    ProduceRequestData decoded = new ProduceRequestData();
                    IoBufProtocolReader r = new IoBufProtocolReader(frame);
                    decoded.read(r, v);
                    assertEquals(0, r.remaining());
                    IoBuf out = IoBuf.empty(arena, Subsystem.OTHER);
                    decoded.write(new IoBufProtocolWriter(out), v);
                    assertEquals(ByteBuffer.wrap(all), ByteBuffer.wrap(out.toByteArray()));
                    for (ProduceRequestData.TopicProduceData t : decoded.topicData) {
                        for (ProduceRequestData.PartitionProduceData p : t.partitionData) {
                            if (p.records != null) {
                                assertInstanceOf(IoBufSlice.class, p.records);
                                ((IoBufSlice) p.records).close();
                            }
                        }
                    }
                    out.release();
                    frame.release();
                }
            }
            IoBuf tiny = IoBuf.empty(arena, Subsystem.OTHER).appendShort(7);
            assertThrows(ProtocolException.class, () -> new IoBufProtocolReader(tiny).readInt());
            tiny.release();
        }
    }
}
