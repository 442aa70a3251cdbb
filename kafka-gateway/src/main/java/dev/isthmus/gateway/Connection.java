package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.protocol.IoBufProtocolReader;
import dev.isthmus.gateway.protocol.IoBufProtocolWriter;
import dev.isthmus.gateway.protocol.ProtocolException;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.ResponseHeaderData;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * One client connection on the shard that accepted it. Bytes are copied from the engine's receive buffers into
 * an arena chain (NETWORK_RECEIVE budget), cut into size-prefixed frames without linearising them, decoded
 * with the generated codecs, and handled concurrently: many requests may be in flight (pipelining, technique
 * 7), and their responses leave strictly in request order. Oversize frames and protocol errors close the
 * connection; a response that cannot be built is answered with the API's error where one exists.
 */
final class Connection implements TcpConnection.ReceiveHandler {
    private static final System.Logger LOG = System.getLogger(Connection.class.getName());
    private static final int MAX_PARTS = 64;
    private static final int MAX_IN_FLIGHT = 1024;

    /** A request in flight: its response, once ready, waits here for its turn. */
    private static final class Slot {
        final int correlationId;
        final ApiKeys api;
        final short version;
        final boolean noResponse;
        IoBuf response;
        boolean done;

        Slot(int correlationId, ApiKeys api, short version, boolean noResponse) {
            this.correlationId = correlationId;
            this.api = api;
            this.version = version;
            this.noResponse = noResponse;
        }
    }

    private final Broker broker;
    private final ShardState state;
    private final TcpConnection socket;
    private final IoBuf inbound;
    private final ArrayDeque<Slot> inFlight = new ArrayDeque<>();
    private final MemorySegment[] parts = new MemorySegment[MAX_PARTS];
    private IoBuf sending;
    private int sendingFrom;
    private boolean closed;

    Connection(Broker broker, ShardState state, TcpConnection socket) {
        this.broker = broker;
        this.state = state;
        this.socket = socket;
        this.inbound = IoBuf.empty(state.arena, Subsystem.NETWORK_RECEIVE);
    }

    void start() {
        socket.startReceiving(this);
    }

    @Override
    public void onReceive(TcpConnection connection, MemorySegment memory, long offset, int length, int bufferId) {
        try {
            if (!closed) {
                inbound.append(memory, offset, length);
            }
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": " + e.getMessage());
            close();
        } finally {
            socket.releaseBuffer(bufferId);
        }
        if (!closed) {
            parseFrames();
        }
    }

    @Override
    public void onClosed(TcpConnection connection, int result) {
        close();
    }

    private void parseFrames() {
        while (!closed && inbound.size() >= 4 && inFlight.size() < MAX_IN_FLIGHT) {
            int size = inbound.getInt(0);
            if (size < 8 || size > broker.config().maxRequestBytes()) {
                LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": request frame of " + size
                    + " bytes (limit " + broker.config().maxRequestBytes() + ")");
                close();
                return;
            }
            if (inbound.size() < 4L + size) {
                return;
            }
            IoBuf frame = inbound.share(4, size);
            inbound.trimFront(4L + size);
            try {
                handleFrame(frame);
            } catch (ProtocolException | IndexOutOfBoundsException e) {
                LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": malformed request: " + e.getMessage());
                close();
            } finally {
                frame.release();
            }
        }
    }

    private void handleFrame(IoBuf frame) {
        short apiKey = frame.getShort(0);
        short version = frame.getShort(2);
        ApiKeys api = ApiKeys.forId(apiKey);
        if (api == null || !broker.handlers().supports(api)) {
            throw new ProtocolException("unsupported API key " + apiKey);
        }
        IoBufProtocolReader r = new IoBufProtocolReader(frame);
        RequestHeaderData header = new RequestHeaderData();
        boolean versionOk = version >= broker.handlers().lowest(api) && version <= broker.handlers().highest(api);
        header.read(r, api.requestHeaderVersion(versionOk ? version : api.lowestVersion));
        if (!versionOk) {
            if (api == ApiKeys.API_VERSIONS) {
                // Answer with our ranges in v0 so the client can pick a version.
                Slot slot = new Slot(header.correlationId, api, (short) 0, false);
                inFlight.addLast(slot);
                complete(slot, broker.handlers().apiVersions(ErrorCodes.UNSUPPORTED_VERSION));
                return;
            }
            throw new ProtocolException(api + " version " + version + " is not supported");
        }
        ProtocolMessage request = api.newRequest();
        request.read(r, version);
        boolean noResponse = api == ApiKeys.PRODUCE && ((dev.isthmus.gateway.protocol.message.ProduceRequestData) request).acks == 0;
        Slot slot = new Slot(header.correlationId, api, version, noResponse);
        inFlight.addLast(slot);
        Promise<ProtocolMessage> response;
        try {
            response = broker.handlers().handle(state, api, version, request, header, clientHost());
        } catch (RuntimeException e) {
            response = Promise.failed(e);
        }
        response.whenComplete((msg, failure) -> {
            if (failure != null) {
                LOG.log(System.Logger.Level.ERROR, "handling " + api + " v" + version + " failed; closing the connection", failure);
                close();
                return;
            }
            complete(slot, msg);
        });
    }

    private void complete(Slot slot, ProtocolMessage body) {
        if (closed) {
            Broker.releaseSlices(body);
            return;
        }
        if (!slot.noResponse) {
            IoBuf out = IoBuf.empty(state.arena, Subsystem.OTHER);
            try {
                long sizeAt = out.reserve(4);
                IoBufProtocolWriter w = new IoBufProtocolWriter(out);
                ResponseHeaderData h = new ResponseHeaderData();
                h.correlationId = slot.correlationId;
                h.write(w, slot.api.responseHeaderVersion(slot.version));
                body.write(w, slot.version);
                out.setInt(sizeAt, (int) (out.size() - 4));
            } catch (RuntimeException e) {
                out.release();
                LOG.log(System.Logger.Level.ERROR, "encoding " + slot.api + " v" + slot.version + " failed", e);
                close();
                return;
            } finally {
                Broker.releaseSlices(body);
            }
            slot.response = out;
        } else {
            Broker.releaseSlices(body);
        }
        slot.done = true;
        flush();
        parseFrames();
    }

    /** Sends finished responses at the head of the pipeline, in order, one send at a time. */
    private void flush() {
        while (!closed && sending == null) {
            Slot head = inFlight.peekFirst();
            if (head == null || !head.done) {
                return;
            }
            inFlight.pollFirst();
            if (head.response == null) {
                continue;
            }
            sending = head.response;
            sendingFrom = 0;
            sendNext();
        }
    }

    private void sendNext() {
        int n = Math.min(MAX_PARTS, sending.fragmentCount() - sendingFrom);
        for (int i = 0; i < n; i++) {
            parts[i] = sending.fragment(sendingFrom + i);
        }
        sendingFrom += n;
        long id = socket.send(parts, n, (res, flags, att) -> {
            if (closed || res < 0) {
                if (sending != null) {
                    sending.release(); // the kernel is done with it now
                    sending = null;
                }
                close();
                return;
            }
            if (sending != null && sendingFrom < sending.fragmentCount()) {
                sendNext();
                return;
            }
            if (sending != null) {
                sending.release();
                sending = null;
            }
            flush();
        }, 0);
        if (id < 0) {
            sending.release();
            sending = null;
            close();
        }
    }

    /** The client's address as Kafka shows it in DescribeGroups ("/127.0.0.1"). */
    private String clientHost() {
        java.net.InetSocketAddress a = socket.remoteAddress();
        return a == null ? "" : "/" + a.getAddress().getHostAddress();
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        broker.connectionClosed(state, this);
        for (Slot s : inFlight) {
            if (s.response != null) {
                s.response.release();
            }
        }
        inFlight.clear();
        // A response being sent is released by its send completion, once the kernel no longer reads it.
        inbound.release();
        socket.close();
    }
}
