package dev.isthmus.raft.net;

/**
 * A request or response between two nodes that is not Raft protocol: how a node that does not lead a group
 * hands a command to its leader (the Kafka layer's controller, {@code dev.isthmus.gateway.cluster.Controller},
 * uses it so; raft itself knows only service numbers). Requests go to the shard
 * that registered the {@code service} on the destination node ({@link RaftTransport#registerService}), responses
 * back to {@code originShard} of the requesting node, where the caller matches them by {@code requestId}.
 *
 * @param from        sending node
 * @param to          destination node
 * @param response    false for a request, true for its response
 * @param service     service number (see {@link RaftTransport#registerService})
 * @param originShard the requesting shard on the requesting node (copied into the response)
 * @param requestId   chosen by the requester, copied into the response
 * @param code        a response's status (0 = ok; the service defines the rest); 0 in requests
 * @param body        the service's bytes (immutable once sent)
 */
public record RpcMessage(int from, int to, boolean response, int service, int originShard, long requestId, int code,
                         byte[] body) {
    public RpcMessage {
        if (service < 0 || service > Short.MAX_VALUE || originShard < 0 || originShard > Short.MAX_VALUE) {
            throw new IllegalArgumentException("bad rpc routing: service " + service + ", origin shard " + originShard);
        }
        if (body == null) {
            throw new IllegalArgumentException("rpc body is null");
        }
    }

    /** The response to this request, from its destination back to its sender. */
    public RpcMessage reply(int code, byte[] body) {
        if (response) {
            throw new IllegalStateException("a response is not answered");
        }
        return new RpcMessage(to, from, true, service, originShard, requestId, code, body);
    }
}
