package dev.isthmus.raft.net;

import dev.isthmus.raft.codec.RaftCodec;
import dev.isthmus.raft.codec.RaftCodecException;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * The transport's own frames, interleaved on a connection with {@link RaftCodec}'s Raft message frames and
 * sharing their header, so one cutter serves the stream:
 *
 * <pre>
 *   0  frameBytes  i32   bytes after this field
 *   4  magic       i16   0x5246 ("RF")
 *   6  version     i8    {@link RaftCodec#VERSION}
 *   7  type        i8    1..9 Raft messages (RaftCodec), 16 HELLO, 17 PING, 18 RPC
 *   8  crc32c      i32   over bytes [12, 4 + frameBytes)
 *   12 body
 *
 *   HELLO  from i32, to i32, connectionId i64, clusterId (u16 length + UTF-8), host (u16 + UTF-8), port i32
 *   PING   from i32, to i32, sentAtMs i64
 *   RPC    from i32, to i32, response i8, service i16, originShard i16, requestId i64, code i32,
 *          bodyLength i32, body
 * </pre>
 * The dialer of a connection sends HELLO first, naming the node it believes it reached and its own advertised
 * RPC address; the acceptor checks the cluster id and that it is the node named, then answers with its own
 * HELLO. Nothing else is sent before the hellos are exchanged. Stateless.
 */
public final class TransportFrames {
    public static final byte HELLO = 16;
    public static final byte PING = 17;
    public static final byte RPC = 18;
    private static final int MAX_STRING_BYTES = 1024;

    private TransportFrames() {
    }

    /** The first frame each side of a connection sends. */
    public record Hello(int from, int to, long connectionId, String clusterId, String host, int port) {
    }

    /** A keep-alive sent on a connection that has been quiet for a ping interval. */
    public record Ping(int from, int to, long sentAtMs) {
    }

    /** Type byte of the frame at {@code in}'s position; the caller checked that 8 bytes are there. */
    public static byte peekType(ByteBuffer in) {
        return in.get(in.position() + 7);
    }

    /** True for the transport's own frame types (everything else goes to {@link RaftCodec}). */
    public static boolean isTransportType(byte type) {
        return type == HELLO || type == PING || type == RPC;
    }

    /** Size of {@code frame} (a {@link Hello}, {@link Ping} or {@link RpcMessage}) with its header. */
    public static int frameBytes(Object frame) {
        return RaftCodec.HEADER_BYTES + switch (frame) {
            case Hello h -> 4 + 4 + 8 + 2 + utf8(h.clusterId()).length + 2 + utf8(h.host()).length + 4;
            case Ping p -> 4 + 4 + 8;
            case RpcMessage r -> 4 + 4 + 1 + 2 + 2 + 8 + 4 + 4 + r.body().length;
            default -> throw new IllegalArgumentException("not a transport frame: " + frame);
        };
    }

    /** Writes {@code frame} at {@code out}'s position (which advances past it). */
    public static void encode(Object frame, ByteBuffer out) {
        int size = frameBytes(frame);
        ByteBuffer b = out.duplicate().order(ByteOrder.BIG_ENDIAN);
        int start = b.position();
        byte type = switch (frame) {
            case Hello h -> HELLO;
            case Ping p -> PING;
            case RpcMessage r -> RPC;
            default -> throw new IllegalArgumentException("not a transport frame: " + frame);
        };
        b.putInt(size - 4).putShort(RaftCodec.MAGIC).put(RaftCodec.VERSION).put(type).putInt(0);
        switch (frame) {
            case Hello h -> {
                b.putInt(h.from()).putInt(h.to()).putLong(h.connectionId());
                putString(b, h.clusterId());
                putString(b, h.host());
                b.putInt(h.port());
            }
            case Ping p -> b.putInt(p.from()).putInt(p.to()).putLong(p.sentAtMs());
            case RpcMessage r -> b.putInt(r.from()).putInt(r.to()).put((byte) (r.response() ? 1 : 0))
                .putShort((short) r.service()).putShort((short) r.originShard()).putLong(r.requestId())
                .putInt(r.code()).putInt(r.body().length).put(r.body());
            default -> throw new IllegalArgumentException("not a transport frame: " + frame);
        }
        if (b.position() - start != size) {
            throw new IllegalStateException("transport frame " + frame.getClass().getSimpleName() + " is "
                + (b.position() - start) + " bytes, computed " + size);
        }
        b.putInt(start + 8, crc(b, start + RaftCodec.HEADER_BYTES, size - RaftCodec.HEADER_BYTES));
        out.position(b.position());
    }

    /** Encodes into a new array (tests, the hello). */
    public static byte[] encode(Object frame) {
        ByteBuffer b = ByteBuffer.allocate(frameBytes(frame));
        encode(frame, b);
        return b.array();
    }

    /**
     * Decodes the complete transport frame of {@code frameBytes} bytes at {@code in}'s position and advances
     * past it.
     *
     * @throws RaftCodecException for a corrupt or inconsistent frame, naming the problem
     */
    public static Object decode(ByteBuffer in, int frameBytes) {
        ByteBuffer b = in.slice(in.position(), frameBytes).order(ByteOrder.BIG_ENDIAN);
        if (b.getShort(4) != RaftCodec.MAGIC) {
            throw new RaftCodecException("frame has magic 0x" + Integer.toHexString(b.getShort(4) & 0xFFFF)
                + ", not an Isthmus RPC frame");
        }
        if (b.get(6) != RaftCodec.VERSION) {
            throw new RaftCodecException("frame has version " + b.get(6) + "; this node speaks version "
                + RaftCodec.VERSION);
        }
        byte type = b.get(7);
        if (crc(b, RaftCodec.HEADER_BYTES, frameBytes - RaftCodec.HEADER_BYTES) != b.getInt(8)) {
            throw new RaftCodecException("transport frame of type " + type + " (" + frameBytes
                + " bytes) fails its CRC32C");
        }
        b.position(RaftCodec.HEADER_BYTES);
        Object frame;
        try {
            frame = switch (type) {
                case HELLO -> new Hello(b.getInt(), b.getInt(), b.getLong(), getString(b), getString(b), b.getInt());
                case PING -> new Ping(b.getInt(), b.getInt(), b.getLong());
                case RPC -> {
                    int from = b.getInt();
                    int to = b.getInt();
                    byte response = b.get();
                    if (response != 0 && response != 1) {
                        throw new RaftCodecException("rpc frame has response flag " + response);
                    }
                    int service = b.getShort();
                    int origin = b.getShort();
                    long requestId = b.getLong();
                    int code = b.getInt();
                    int n = b.getInt();
                    if (n < 0 || n > b.remaining()) {
                        throw new RaftCodecException("rpc body of " + n + " bytes does not fit the " + b.remaining()
                            + " bytes left");
                    }
                    byte[] body = new byte[n];
                    b.get(body);
                    yield new RpcMessage(from, to, response == 1, service, origin, requestId, code, body);
                }
                default -> throw new RaftCodecException("unknown transport frame type " + type);
            };
        } catch (BufferUnderflowException e) {
            throw new RaftCodecException("transport frame of type " + type + " ends inside its fields");
        } catch (IllegalArgumentException e) {
            throw new RaftCodecException("transport frame of type " + type + " holds an invalid field: "
                + e.getMessage());
        }
        if (b.hasRemaining()) {
            throw new RaftCodecException("transport frame of type " + type + " has " + b.remaining()
                + " bytes after its fields");
        }
        in.position(in.position() + frameBytes);
        return frame;
    }

    private static byte[] utf8(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > MAX_STRING_BYTES) {
            throw new IllegalArgumentException("string of " + b.length + " bytes exceeds " + MAX_STRING_BYTES);
        }
        return b;
    }

    private static void putString(ByteBuffer b, String s) {
        byte[] u = utf8(s);
        b.putShort((short) u.length).put(u);
    }

    private static String getString(ByteBuffer b) {
        int n = Short.toUnsignedInt(b.getShort());
        if (n > MAX_STRING_BYTES || n > b.remaining()) {
            throw new RaftCodecException("string of " + n + " bytes does not fit the frame");
        }
        byte[] u = new byte[n];
        b.get(u);
        return new String(u, StandardCharsets.UTF_8);
    }

    private static int crc(ByteBuffer b, int from, int length) {
        CRC32C c = new CRC32C();
        ByteBuffer s = b.duplicate();
        s.limit(from + length).position(from);
        c.update(s);
        return (int) c.getValue();
    }
}
