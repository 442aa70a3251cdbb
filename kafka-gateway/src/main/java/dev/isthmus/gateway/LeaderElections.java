package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ElectLeadersRequestData;
import dev.isthmus.gateway.protocol.message.ElectLeadersResponseData;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.gateway.cluster.PartitionInfo;
import dev.isthmus.raft.net.RpcMessage;
import dev.isthmus.raft.net.ShardTransport;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * ElectLeaders ({@code kafka-leader-election.sh}, Admin#electLeaders) over Raft.
 *
 * <h2>Semantics (Kafka's, as its controller answers)</h2>
 * <ul>
 *   <li>PREFERRED: ELECTION_NOT_NEEDED when the preferred replica (the partition's first) already leads; otherwise
 *       the leader hands leadership to it by Raft leadership transfer (thesis §3.10: the leader waits until the
 *       target's log matches its own, then tells it to campaign at once) and the answer comes once the preferred
 *       replica leads. PREFERRED_LEADER_NOT_AVAILABLE, with the reason, when it is not a voter, does not catch up
 *       with the leader's log within {@link #CATCH_UP_WAIT_NS} (down or far behind), the transfer does not
 *       complete, or no leader is known.</li>
 *   <li>UNCLEAN: ELECTION_NOT_NEEDED while the partition has a leader (as Kafka); without one
 *       ELIGIBLE_LEADERS_NOT_AVAILABLE whose message says why: Raft elects only a replica holding every committed
 *       record, so the partition waits for a majority of its replicas rather than lose acknowledged records.</li>
 *   <li>All partitions (a null partition list): every topic is listed, and only the partitions whose answer is
 *       not ELECTION_NOT_NEEDED.</li>
 * </ul>
 *
 * <h2>Reaching the leader</h2>
 * Any broker may receive the request (Kafka's brokers forward it to the controller). The transfer must start on
 * the node leading the partition: the request's node asks the leader its leader table names (else the preferred
 * replica's node); a replica that does not lead answers with its leader hint and the next attempt goes there. A
 * local replica is asked through a cross-shard call; another node through an RPC of service {@link #SERVICE} on
 * the Raft transport (the controller's mechanism, {@link RpcMessage}), sent and served on shard 0.
 *
 * <h2>Threads</h2>
 * One instance per broker, used from every shard: {@link #electLeaders} runs on the connection's shard,
 * {@link #electHere} on the partition's shard, the RPC side ({@link #onRequest}, {@link #onResponse}, the
 * pending-call table) on shard 0 only. Waiting is done with shard timers, never by blocking.
 */
final class LeaderElections implements ShardTransport.RpcHandler {
    /** The RPC service number of election requests between brokers (the controller's is 1). */
    static final int SERVICE = 2;
    static final byte PREFERRED = 0;
    static final byte UNCLEAN = 1;
    /** Internal outcome code: ask another node (hint in the outcome, -1 none known). Never sent to clients. */
    private static final short REDIRECT = Short.MIN_VALUE;
    /** The longest an election request waits for its outcome, whatever its timeoutMs says. */
    static final long MAX_WAIT_NS = 15_000_000_000L;
    /** How long the leader waits for the preferred replica to match its log before calling it unavailable. */
    static final long CATCH_UP_WAIT_NS = 3_000_000_000L;
    private static final long POLL_NS = 10_000_000L;
    private static final long NO_LEADER_RETRY_NS = 100_000_000L;
    /** Bound on the attempts for one partition (redirects and retries while no leader is known). */
    private static final int MAX_ATTEMPTS = 40;
    /** Extra time an RPC may take beyond the wait it asks for. */
    private static final long RPC_SLACK_NS = 2_000_000_000L;

    /** An election's answer: a Kafka error code, the message, and for REDIRECT the leader hint. */
    record Outcome(short code, int hint, String message) {
        static Outcome redirect(int hint, String why) {
            return new Outcome(REDIRECT, hint, why);
        }
    }

    private final Broker broker;
    // Shard 0 only: calls to other nodes waiting for their answer.
    private final Map<Long, Promise<Outcome>> pending = new HashMap<>();
    private long nextRequestId = 1;

    LeaderElections(Broker broker) {
        this.broker = broker;
    }

    /** Shard 0: serves election requests from other nodes and receives the answers to ours. */
    void register(ShardTransport shard0) {
        shard0.registerService(SERVICE, this, true);
    }

    // ------------------------------------------------------------------ the request (connection's shard)

    Promise<ProtocolMessage> electLeaders(ShardState st, ElectLeadersRequestData req, short version) {
        ElectLeadersResponseData r = new ElectLeadersResponseData();
        byte type = version == 0 ? PREFERRED : req.electionType;
        boolean all = req.topicPartitions == null;
        if (type != PREFERRED && type != UNCLEAN) {
            // Kafka's ElectLeadersRequest.getErrorResponse for an InvalidRequestException.
            r.errorCode = ErrorCodes.INVALID_REQUEST;
            String msg = "unknown election type " + type + " (0: preferred, 1: unclean)";
            if (!all) {
                for (ElectLeadersRequestData.TopicPartitions t : req.topicPartitions) {
                    ElectLeadersResponseData.ReplicaElectionResult tr = topicResult(r, t.topic);
                    for (Integer p : t.partitions) {
                        tr.partitionResult.add(result(p, new Outcome(ErrorCodes.INVALID_REQUEST, -1, msg)));
                    }
                }
            }
            return Promise.completed(r);
        }
        long waitNs = Math.min(MAX_WAIT_NS, Math.max(1_000_000_000L, req.timeoutMs * 1_000_000L));
        long deadlineNs = System.nanoTime() + waitNs;
        List<Promise<Object>> all0 = new ArrayList<>();
        if (all) {
            for (TopicTable.Topic t : st.topics.topics()) {
                ElectLeadersResponseData.ReplicaElectionResult tr = topicResult(r, t.name());
                ElectLeadersResponseData.PartitionResult[] slots = new ElectLeadersResponseData.PartitionResult[t.partitions()];
                List<Promise<Object>> ofTopic = new ArrayList<>();
                for (int p = 0; p < t.partitions(); p++) {
                    int index = p;
                    ofTopic.add(elect(st, type, t.name(), index, deadlineNs).map(o -> {
                        if (o.code() != ErrorCodes.ELECTION_NOT_NEEDED) {
                            slots[index] = result(index, o);
                        }
                        return null;
                    }));
                }
                all0.add(Promise.whenAllSettled(ofTopic).map(x -> {
                    for (ElectLeadersResponseData.PartitionResult pr : slots) {
                        if (pr != null) {
                            tr.partitionResult.add(pr);
                        }
                    }
                    return null;
                }));
            }
        } else {
            for (ElectLeadersRequestData.TopicPartitions t : req.topicPartitions) {
                ElectLeadersResponseData.ReplicaElectionResult tr = topicResult(r, t.topic);
                for (Integer p : t.partitions) {
                    ElectLeadersResponseData.PartitionResult pr = result(p, new Outcome(ErrorCodes.NONE, -1, null));
                    tr.partitionResult.add(pr);
                    all0.add(elect(st, type, t.topic, p, deadlineNs).map(o -> {
                        pr.errorCode = o.code();
                        pr.errorMessage = o.message();
                        return null;
                    }));
                }
            }
        }
        return Promise.whenAllSettled(all0).map(x -> r);
    }

    private static ElectLeadersResponseData.ReplicaElectionResult topicResult(ElectLeadersResponseData r, String topic) {
        ElectLeadersResponseData.ReplicaElectionResult tr = new ElectLeadersResponseData.ReplicaElectionResult();
        tr.topic = topic;
        r.replicaElectionResults.add(tr);
        return tr;
    }

    private static ElectLeadersResponseData.PartitionResult result(int partition, Outcome o) {
        ElectLeadersResponseData.PartitionResult pr = new ElectLeadersResponseData.PartitionResult();
        pr.partitionId = partition;
        pr.errorCode = o.code();
        pr.errorMessage = o.message();
        return pr;
    }

    /** One partition's election, from the connection's shard; never fails. */
    private Promise<Outcome> elect(ShardState st, byte type, String topic, int index, long deadlineNs) {
        TopicTable.Topic t = topic == null ? null : st.topics.get(topic);
        if (t == null) {
            return Promise.completed(new Outcome(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, "No such topic as " + topic));
        }
        if (index < 0 || index >= t.partitions()) {
            return Promise.completed(new Outcome(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, "No such partition as "
                + topic + "-" + index));
        }
        PartitionInfo info = t.partition(index);
        int[] known = st.leaders.get(info.groupId());
        int first = known != null && known[0] >= 0 ? known[0] : info.preferredLeader();
        return attempt(st, type, t, index, first, 0, 0, deadlineNs).recover(f -> {
            System.getLogger(LeaderElections.class.getName()).log(System.Logger.Level.ERROR, "election of "
                + topic + "-" + index + " failed", f);
            return new Outcome(ErrorCodes.UNKNOWN_SERVER_ERROR, -1, "the election of " + topic + "-" + index
                + " failed on an internal error (see the broker log)");
        });
    }

    /** Asks {@code node} to carry out the election; follows leader hints and retries until an answer or the deadline. */
    private Promise<Outcome> attempt(ShardState st, byte type, TopicTable.Topic t, int index, int node, int attempts,
                                     int leaderless, long deadlineNs) {
        int self = broker.config().nodeId();
        int preferred = t.partition(index).preferredLeader();
        long leftNs = deadlineNs - System.nanoTime();
        Promise<Outcome> one = node == self
            ? broker.handlers().onPartition(st, t, index, part -> electHere(part, type, preferred, leftNs),
                Outcome.redirect(-1, "no replica of " + t.name() + "-" + index + " here"))
            : st.shard.submitToAsync(0, s -> call(node, type, t.name(), index, leftNs));
        return one.flatMap(o -> {
            if (o.code() != REDIRECT) {
                return Promise.completed(o);
            }
            boolean noLeader = o.hint() < 0 || o.hint() == node;
            int tries = leaderless + (noLeader ? 1 : 0);
            if (System.nanoTime() >= deadlineNs || attempts + 1 >= MAX_ATTEMPTS
                || tries * NO_LEADER_RETRY_NS > CATCH_UP_WAIT_NS) {
                return Promise.completed(unavailable(type, t, index, o.message()));
            }
            // No leader known where we asked: let an election finish, then ask the replicas in turn.
            int[] replicas = t.partition(index).replicas();
            int next = noLeader ? replicas[tries % replicas.length] : o.hint();
            Promise<Void> pause = noLeader ? st.shard.sleep(NO_LEADER_RETRY_NS) : Promise.completed(null);
            return pause.flatMap(x -> attempt(st, type, t, index, next, attempts + 1, tries, deadlineNs));
        });
    }

    private static Outcome unavailable(byte type, TopicTable.Topic t, int index, String why) {
        String name = t.name() + "-" + index;
        if (type == UNCLEAN) {
            return new Outcome(ErrorCodes.ELIGIBLE_LEADERS_NOT_AVAILABLE, -1, noLeaderForUnclean(name,
                t.partition(index).replicas()));
        }
        return new Outcome(ErrorCodes.PREFERRED_LEADER_NOT_AVAILABLE, -1, "no leader of " + name
            + " could be reached to hand leadership to replica " + t.partition(index).preferredLeader() + ": " + why);
    }

    private static String noLeaderForUnclean(String name, int[] replicas) {
        return name + " has no leader: fewer than a majority of its replicas " + Arrays.toString(replicas)
            + " are up. Raft elects only a replica holding every committed record, so an unclean election (which"
            + " could lose acknowledged records) is never done; the partition gets a leader once a majority of its"
            + " replicas is back";
    }

    // ------------------------------------------------------------------ on the partition's shard

    /**
     * Carries out the election on this node's replica (its shard); {@code preferred} is the partition's first
     * replica. {@code waitNs} bounds the waits for the preferred replica to catch up and for the transfer to finish.
     */
    private Promise<Outcome> electHere(Partition part, byte type, int preferred, long waitNs) {
        ReplicatedLog rl = part.replica;
        int self = broker.config().nodeId();
        String name = part.topic + "-" + part.index;
        if (type == UNCLEAN) {
            int leader = part.isLeader() ? self : rl.leaderId();
            if (leader >= 0) {
                return Promise.completed(new Outcome(ErrorCodes.ELECTION_NOT_NEEDED, -1, name + " has a leader (node "
                    + leader + "); Raft elects only a replica holding every committed record, so an unclean election"
                    + " is never needed"));
            }
            return Promise.completed(new Outcome(ErrorCodes.ELIGIBLE_LEADERS_NOT_AVAILABLE, -1,
                noLeaderForUnclean(name, rl.configuration().voters())));
        }
        if (!part.isLeader()) {
            return Promise.completed(Outcome.redirect(rl.leaderId(), "node " + self + " does not lead " + name
                + (rl.leaderId() >= 0 ? " (node " + rl.leaderId() + " does)" : " and knows no leader")));
        }
        if (preferred == self) {
            return Promise.completed(new Outcome(ErrorCodes.ELECTION_NOT_NEEDED, -1, null));
        }
        RaftGroup g = rl.raft();
        if (!rl.configuration().isVoter(preferred)) {
            return Promise.completed(new Outcome(ErrorCodes.PREFERRED_LEADER_NOT_AVAILABLE, -1, "the preferred replica "
                + preferred + " of " + name + " is not a voter of its Raft group"));
        }
        Shard shard = Shard.current();
        long start = System.nanoTime();
        long catchUpBy = start + Math.min(waitNs, CATCH_UP_WAIT_NS);
        long doneBy = start + Math.max(waitNs, 0);
        return awaitCaughtUp(shard, part, preferred, catchUpBy).flatMap(caughtUp -> {
            if (!part.isLeader()) {
                return Promise.completed(Outcome.redirect(rl.leaderId(), "node " + self + " stopped leading " + name));
            }
            if (!caughtUp) {
                return Promise.completed(new Outcome(ErrorCodes.PREFERRED_LEADER_NOT_AVAILABLE, -1, "the preferred"
                    + " replica " + preferred + " of " + name + " is not in sync with the leader (node " + self
                    + "): it is down or has not caught up with the leader's log"));
            }
            int rc = g.transferLeadership(preferred);
            if (rc != RaftErrors.OK) {
                return Promise.completed(rc == RaftErrors.NOT_LEADER
                    ? Outcome.redirect(rl.leaderId(), "node " + self + " stopped leading " + name)
                    : new Outcome(ErrorCodes.PREFERRED_LEADER_NOT_AVAILABLE, -1, "the leader of " + name
                        + " cannot hand leadership to replica " + preferred + ": " + RaftErrors.describe(rc)));
            }
            return awaitLeader(shard, part, preferred, doneBy);
        });
    }

    /** Completes with true once the leader sees {@code node} holding its whole log, false at {@code byNs} or on losing leadership. */
    private static Promise<Boolean> awaitCaughtUp(Shard shard, Partition part, int node, long byNs) {
        if (!part.isLeader()) {
            return Promise.completed(false);
        }
        if (part.replica.raft().isCaughtUp(node)) {
            return Promise.completed(true);
        }
        if (System.nanoTime() >= byNs) {
            return Promise.completed(false);
        }
        return shard.sleep(POLL_NS).flatMap(x -> awaitCaughtUp(shard, part, node, byNs));
    }

    /** Completes once this replica sees {@code node} lead (the transfer finished), or at {@code byNs} with the reason. */
    private Promise<Outcome> awaitLeader(Shard shard, Partition part, int node, long byNs) {
        ReplicatedLog rl = part.replica;
        String name = part.topic + "-" + part.index;
        if (!part.isLeader() && rl.leaderId() == node) {
            return Promise.completed(new Outcome(ErrorCodes.NONE, -1, null));
        }
        if (System.nanoTime() >= byNs) {
            int leader = part.isLeader() ? broker.config().nodeId() : rl.leaderId();
            return Promise.completed(new Outcome(ErrorCodes.PREFERRED_LEADER_NOT_AVAILABLE, -1, "leadership of "
                + name + " did not move to replica " + node + " in time (leader now: "
                + (leader >= 0 ? "node " + leader : "none known") + ")"));
        }
        return shard.sleep(POLL_NS).flatMap(x -> awaitLeader(shard, part, node, byNs));
    }

    // ------------------------------------------------------------------ between nodes (shard 0)

    /** Shard 0: sends an election request to {@code node}; completes with its outcome, or a redirect on no answer. */
    private Promise<Outcome> call(int node, byte type, String topic, int index, long waitNs) {
        ShardTransport transport = broker.raft().shard(0).transport();
        if (!transport.isConnected(node)) {
            return Promise.completed(Outcome.redirect(-1, "no connection to node " + node));
        }
        long id = nextRequestId++;
        Promise<Outcome> p = new Promise<>();
        pending.put(id, p);
        transport.sendRpc(new RpcMessage(broker.config().nodeId(), node, false, SERVICE, 0, id, 0,
            encodeRequest(type, topic, index, waitNs)));
        Shard shard = Shard.current();
        long timer = shard.schedule(Math.max(0, waitNs) + RPC_SLACK_NS, () -> {
            Promise<Outcome> late = pending.remove(id);
            if (late != null) {
                late.complete(Outcome.redirect(-1, "node " + node + " did not answer"));
            }
        });
        p.whenComplete((o, f) -> shard.cancelTimer(timer));
        return p;
    }

    /** Shard 0: an election request from another node. */
    @Override
    public void onRequest(RpcMessage request) {
        ShardTransport transport = broker.raft().shard(0).transport();
        ByteBuffer b = ByteBuffer.wrap(request.body());
        byte type;
        int index;
        long waitNs;
        String topic;
        try {
            type = b.get();
            index = b.getInt();
            waitNs = Math.min(MAX_WAIT_NS, Math.max(0, b.getLong()));
            byte[] name = new byte[b.getShort() & 0xFFFF];
            b.get(name);
            topic = new String(name, StandardCharsets.UTF_8);
        } catch (BufferUnderflowException e) {
            transport.sendRpc(request.reply(0, encodeOutcome(new Outcome(ErrorCodes.INVALID_REQUEST, -1,
                "malformed election request from node " + request.from()))));
            return;
        }
        ShardState st = broker.state(0);
        TopicTable.Topic t = st.topics.get(topic);
        Promise<Outcome> done;
        if (t == null || index < 0 || index >= t.partitions()) {
            done = Promise.completed(Outcome.redirect(-1, "node " + broker.config().nodeId() + " does not know "
                + topic + "-" + index + " (yet)"));
        } else {
            int preferred = t.partition(index).preferredLeader();
            done = broker.handlers().onPartition(st, t, index, part -> electHere(part, type, preferred, waitNs),
                Outcome.redirect(-1, "node " + broker.config().nodeId() + " holds no open replica of " + topic + "-"
                    + index));
        }
        done.recover(f -> {
            System.getLogger(LeaderElections.class.getName()).log(System.Logger.Level.ERROR, "election of "
                + topic + "-" + index + " for node " + request.from() + " failed", f);
            return new Outcome(ErrorCodes.UNKNOWN_SERVER_ERROR, -1, "the election of " + topic + "-" + index
                + " failed on node " + broker.config().nodeId() + " (see its log)");
        }).whenComplete((o, f) -> transport.sendRpc(request.reply(0, encodeOutcome(o))));
    }

    /** Shard 0: the answer to one of our requests. */
    @Override
    public void onResponse(RpcMessage response) {
        Promise<Outcome> p = pending.remove(response.requestId());
        if (p == null) {
            return; // timed out already
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(response.body());
            short code = b.getShort();
            int hint = b.getInt();
            int len = b.getInt();
            String message = null;
            if (len >= 0) {
                byte[] m = new byte[len];
                b.get(m);
                message = new String(m, StandardCharsets.UTF_8);
            }
            p.complete(new Outcome(code, hint, message));
        } catch (BufferUnderflowException | NegativeArraySizeException e) {
            p.complete(Outcome.redirect(-1, "malformed election answer from node " + response.from()));
        }
    }

    private static byte[] encodeRequest(byte type, String topic, int index, long waitNs) {
        byte[] name = topic.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(1 + 4 + 8 + 2 + name.length).put(type).putInt(index).putLong(waitNs)
            .putShort((short) name.length).put(name).array();
    }

    private static byte[] encodeOutcome(Outcome o) {
        byte[] m = o.message() == null ? null : o.message().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(2 + 4 + 4 + (m == null ? 0 : m.length)).putShort(o.code()).putInt(o.hint())
            .putInt(m == null ? -1 : m.length);
        if (m != null) {
            b.put(m);
        }
        return b.array();
    }
}
