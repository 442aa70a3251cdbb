package dev.isthmus.raft.net;

import dev.isthmus.raft.codec.RaftCodec;
import dev.isthmus.raft.codec.RaftCodecException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TransportFramesTest {
    final RaftCodec codec = RaftCodec.defaults();

    Object roundTrip(Object f) {
        byte[] bytes = TransportFrames.encode(f);
        assertEquals(TransportFrames.frameBytes(f), bytes.length);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        int frame = codec.frameLength(in);
        assertEquals(bytes.length, frame);
        assertTrue(TransportFrames.isTransportType(TransportFrames.peekType(in)));
        Object back = TransportFrames.decode(in, frame);
        assertEquals(0, in.remaining());
        return back;
    }

    @Test
    void shouldRoundTripHelloPingAndRpcFrames() {
        TransportFrames.Hello h = new TransportFrames.Hello(3, 7, 123456789L, "cluster-ä", "node7.example", 19092);
        assertEquals(h, roundTrip(h));
        TransportFrames.Ping p = new TransportFrames.Ping(1, 2, 99);
        assertEquals(p, roundTrip(p));
        RpcMessage r = new RpcMessage(4, 5, true, 1, 3, 77, 41, new byte[]{1, 2, 3});
        RpcMessage back = (RpcMessage) roundTrip(r);
        assertEquals(r.requestId(), back.requestId());
        assertEquals(r.originShard(), back.originShard());
        assertEquals(r.code(), back.code());
        assertTrue(back.response());
        assertArrayEquals(r.body(), back.body());
    }

    @Test
    void shouldRejectCorruptOrTruncatedFrames() {
        byte[] bytes = TransportFrames.encode(new RpcMessage(1, 2, false, 1, 0, 5, 0, new byte[100]));
        for (int i : new int[]{12, 20, bytes.length - 1}) {
            byte[] bad = bytes.clone();
            bad[i] ^= 0x40;
            RaftCodecException e = assertThrows(RaftCodecException.class,
                () -> TransportFrames.decode(ByteBuffer.wrap(bad), bad.length));
            assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());
        }
        byte[] wrongMagic = bytes.clone();
        wrongMagic[4] = 'X';
        assertTrue(assertThrows(RaftCodecException.class, () -> TransportFrames.decode(ByteBuffer.wrap(wrongMagic),
            wrongMagic.length)).getMessage().contains("magic"));
        byte[] version = bytes.clone();
        version[6] = 9;
        assertTrue(assertThrows(RaftCodecException.class, () -> TransportFrames.decode(ByteBuffer.wrap(version),
            version.length)).getMessage().contains("version 9"));
    }
}
