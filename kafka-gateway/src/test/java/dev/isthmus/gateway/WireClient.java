package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ByteBufferReader;
import dev.isthmus.gateway.protocol.ByteBufferWriter;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.ApiVersionsRequestData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.ResponseHeaderData;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;

/**
 * Test helper: a blocking Kafka wire client over a plain socket, framing requests with our generated codecs
 * (which the codec tests hold byte-identical to Kafka's) and reading raw response frames. Owner: one test
 * thread.
 */
final class WireClient implements AutoCloseable {
    /** Largest response frame a test accepts before calling the stream garbage. */
    static final int MAX_RESPONSE_BYTES = 64 << 20;

    private final Socket socket;
    private final OutputStream out;
    private final DataInputStream in;

    WireClient(int port, int readTimeoutMs) throws IOException {
        this(connect(port), readTimeoutMs);
    }

    /** Over an already connected socket (a TLS socket: its handshake runs on the first write or read). */
    WireClient(Socket connected, int readTimeoutMs) throws IOException {
        socket = connected;
        socket.setSoTimeout(readTimeoutMs);
        socket.setTcpNoDelay(true);
        out = socket.getOutputStream();
        in = new DataInputStream(socket.getInputStream());
    }

    private static Socket connect(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
        return s;
    }

    /** A whole request frame: the size prefix, the header for {@code version}, the body. */
    static byte[] frame(ApiKeys api, short version, int correlationId, ProtocolMessage body) {
        RequestHeaderData h = new RequestHeaderData();
        h.requestApiKey = api.id;
        h.requestApiVersion = version;
        h.correlationId = correlationId;
        h.clientId = "wire-test";
        short hv = api.requestHeaderVersion(version);
        ByteBuffer hb = ByteBufferWriter.encode(h, hv);
        ByteBuffer bb = ByteBufferWriter.encode(body, version);
        ByteBuffer f = ByteBuffer.allocate(4 + hb.remaining() + bb.remaining());
        f.putInt(hb.remaining() + bb.remaining()).put(hb).put(bb);
        return f.array();
    }

    /** ApiVersions v0, the request every client sends first; answered by any live broker. */
    static byte[] apiVersions(int correlationId) {
        return frame(ApiKeys.API_VERSIONS, (short) 0, correlationId, new ApiVersionsRequestData());
    }

    void send(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    /** Half-closes: the broker reads end of stream and must close its side. */
    void shutdownOutput() throws IOException {
        socket.shutdownOutput();
    }

    void readTimeout(int ms) throws IOException {
        socket.setSoTimeout(ms);
    }

    /** The next response frame without its size prefix, or null when the broker closed the connection. */
    byte[] readFrame() throws IOException {
        int size;
        try {
            size = in.readInt();
        } catch (EOFException | SocketException e) {
            return null; // end of stream or reset: the broker closed the connection
        }
        if (size < 4 || size > MAX_RESPONSE_BYTES) {
            throw new IOException("response frame length " + size + " is not a Kafka response");
        }
        byte[] b = new byte[size];
        try {
            in.readFully(b);
        } catch (EOFException | SocketException e) {
            throw new IOException("the broker closed the connection in the middle of a " + size + "-byte response", e);
        }
        return b;
    }

    /** The correlation id of a response frame (the first field of every response header version). */
    static int correlationId(byte[] response) {
        return ByteBuffer.wrap(response).getInt(0);
    }

    /** Decodes a response frame's body for {@code api} at {@code version}. */
    static <T extends ProtocolMessage> T body(byte[] response, ApiKeys api, short version) {
        ByteBufferReader r = new ByteBufferReader(ByteBuffer.wrap(response));
        new ResponseHeaderData().read(r, api.responseHeaderVersion(version));
        @SuppressWarnings("unchecked")
        T m = (T) api.newResponse();
        m.read(r, version);
        return m;
    }

    /** True once the broker has closed the connection: reads (and drops) responses until end of stream. */
    boolean closedByBroker() throws IOException {
        while (true) {
            byte[] f = readFrame();
            if (f == null) {
                return true;
            }
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
