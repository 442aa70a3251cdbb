package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ByteBufferReader;
import dev.isthmus.gateway.protocol.ByteBufferWriter;
import dev.isthmus.gateway.protocol.ProtocolException;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.raft.net.RpcMessage;
import dev.isthmus.raft.net.ShardTransport;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Kafka requests one broker sends another: the transaction coordinator's WriteTxnMarkers to partition leaders, a
 * partition leader's AddPartitionsToTxn (KIP-890) to a transaction coordinator, a DescribeQuorum to the controller
 * leader. The request is Kafka's own body,
 * encoded with the generated codecs, and the receiving broker runs it through the same handler as a client's
 * ({@link Handlers#handle}), so both paths have one semantics; only the carrier differs. A request for this node
 * does not leave it: it runs on the caller's shard.
 *
 * <h2>Carrier</h2>
 * Between nodes the request travels as an RPC of service {@link #SERVICE} on the Raft transport
 * ({@link RpcMessage}, the controller's and elections' mechanism), sent and served on shard 0:
 * <pre>
 *   request body : apiKey i16 | version i16 | Kafka request body (no header)
 *   response     : code 0 -> Kafka response body of that version; code 1 -> UTF-8 reason (not handled there)
 * </pre>
 * An RPC may be dropped (no connection yet, a full queue): each waits at most {@link #TIMEOUT_NS} and then fails;
 * callers retry as they would a timed-out Kafka request.
 *
 * <h2>Threads</h2>
 * One per broker. {@link #send} runs on any shard; the RPC side ({@link #onRequest}, {@link #onResponse}, the
 * pending table) on shard 0 only.
 */
final class BrokerRequests implements ShardTransport.RpcHandler {
    /** The RPC service number (the controller's is 1, elections' 2, replica states' 3). */
    static final int SERVICE = 4;
    /** The APIs brokers send each other; others are refused (code 1). */
    static final Set<ApiKeys> ALLOWED = EnumSet.of(ApiKeys.WRITE_TXN_MARKERS, ApiKeys.ADD_PARTITIONS_TO_TXN,
        ApiKeys.DESCRIBE_QUORUM);
    static final long TIMEOUT_NS = 30_000_000_000L;
    private static final int CODE_OK = 0;
    private static final int CODE_REFUSED = 1;
    private static final System.Logger LOG = System.getLogger(BrokerRequests.class.getName());

    private final Broker broker;
    // Shard 0 only.
    private final Map<Long, Pending> pending = new HashMap<>();
    private ShardTransport transport;
    private long nextRequestId = 1;

    private record Pending(ApiKeys api, short version, Promise<ProtocolMessage> promise, long timer) {
    }

    BrokerRequests(Broker broker) {
        this.broker = broker;
    }

    /** Shard 0: serves requests from other nodes and receives the answers to ours. */
    void register(ShardTransport shard0) {
        this.transport = shard0;
        shard0.registerService(SERVICE, this, true);
    }

    /**
     * On {@code caller}'s shard: sends {@code request} to node {@code node} and completes, on the same shard, with
     * its response, or fails (no route, timeout, refused, undecodable) with an exception naming why.
     */
    Promise<ProtocolMessage> send(ShardState caller, int node, ApiKeys api, short version, ProtocolMessage request) {
        if (!ALLOWED.contains(api)) {
            return Promise.failed(new IllegalArgumentException(api + " is not sent between brokers"));
        }
        if (node == broker.config().nodeId()) {
            // Bounded like a request to another node: a caller that keeps one request in flight per destination (the
            // coordinator's markers) must not wait for ever on a partition whose append never ends.
            return broker.handlers().handle(caller, api, version, request, header(api, version), "localhost", null)
                .withTimeout(caller.shard, TIMEOUT_NS);
        }
        byte[] body = encode(api, version, request);
        return caller.shard.submitToAsync(0, s -> sendHere(s, node, api, version, body));
    }

    private static RequestHeaderData header(ApiKeys api, short version) {
        RequestHeaderData h = new RequestHeaderData();
        h.requestApiKey = api.id;
        h.requestApiVersion = version;
        h.clientId = "isthmus-broker";
        return h;
    }

    private static byte[] encode(ApiKeys api, short version, ProtocolMessage m) {
        ByteBuffer b = ByteBuffer.allocate(4 + m.size(version));
        b.putShort(api.id).putShort(version);
        m.write(new ByteBufferWriter(b), version);
        return b.array();
    }

    private Promise<ProtocolMessage> sendHere(Shard s0, int node, ApiKeys api, short version, byte[] body) {
        ShardTransport t = transport;
        if (t == null || !t.isConnected(node)) {
            return Promise.failed(new IllegalStateException("no connection to node " + node));
        }
        long id = nextRequestId++;
        Promise<ProtocolMessage> p = new Promise<>();
        long timer = s0.schedule(TIMEOUT_NS, () -> {
            Pending gone = pending.remove(id);
            if (gone != null) {
                gone.promise.fail(new IllegalStateException(api + " to node " + node + " got no answer in "
                    + TIMEOUT_NS / 1_000_000_000L + " s"));
            }
        });
        pending.put(id, new Pending(api, version, p, timer));
        t.sendRpc(new RpcMessage(broker.config().nodeId(), node, false, SERVICE, 0, id, 0, body));
        return p;
    }

    @Override
    public void onResponse(RpcMessage response) {
        Pending p = pending.remove(response.requestId());
        if (p == null) {
            return; // timed out already
        }
        Shard.current().cancelTimer(p.timer);
        if (response.code() != CODE_OK) {
            p.promise.fail(new IllegalStateException("node " + response.from() + " refused " + p.api + ": "
                + new String(response.body(), StandardCharsets.UTF_8)));
            return;
        }
        try {
            ProtocolMessage m = p.api.newResponse();
            m.read(new ByteBufferReader(ByteBuffer.wrap(response.body())), p.version);
            p.promise.complete(m);
        } catch (ProtocolException | IllegalArgumentException e) {
            p.promise.fail(new IllegalStateException("node " + response.from() + " sent a " + p.api
                + " response that does not decode: " + e.getMessage()));
        }
    }

    @Override
    public void onRequest(RpcMessage request) {
        ShardTransport t = transport;
        ApiKeys api;
        short version;
        ProtocolMessage req;
        try {
            ByteBuffer b = ByteBuffer.wrap(request.body());
            api = ApiKeys.forId(b.getShort());
            version = b.getShort();
            if (api == null || !ALLOWED.contains(api) || !broker.handlers().supports(api)
                || version < broker.handlers().lowest(api) || version > broker.handlers().highest(api)) {
                t.sendRpc(request.reply(CODE_REFUSED, ("this broker does not take " + api + " v" + version
                    + " from brokers").getBytes(StandardCharsets.UTF_8)));
                return;
            }
            req = api.newRequest();
            req.read(new ByteBufferReader(b), version);
        } catch (RuntimeException e) {
            t.sendRpc(request.reply(CODE_REFUSED, ("undecodable request: " + e.getMessage())
                .getBytes(StandardCharsets.UTF_8)));
            return;
        }
        ApiKeys a = api;
        short v = version;
        broker.handlers().handle(broker.state(0), api, version, req, header(api, version), "broker-" + request.from(),
            null).whenComplete((resp, f) -> {
                if (f != null) {
                    LOG.log(System.Logger.Level.WARNING, a + " from node " + request.from() + " failed: " + f);
                    t.sendRpc(request.reply(CODE_REFUSED, ("the broker failed to handle " + a)
                        .getBytes(StandardCharsets.UTF_8)));
                    return;
                }
                ByteBuffer out = ByteBuffer.allocate(resp.size(v));
                resp.write(new ByteBufferWriter(out), v);
                t.sendRpc(request.reply(CODE_OK, out.array()));
            });
    }
}
