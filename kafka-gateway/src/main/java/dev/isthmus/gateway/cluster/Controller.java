package dev.isthmus.gateway.cluster;

import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.Role;
import dev.isthmus.raft.net.RpcMessage;
import dev.isthmus.raft.net.ShardTransport;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.RaftShard;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import org.agrona.collections.Long2ObjectHashMap;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The controller: the cluster metadata ({@link ClusterState}: brokers, topics, partitions and their
 * placement) replicated by the controller Raft group (group {@link ClusterState#CONTROLLER_GROUP_ID} on
 * {@link RaftServer#CONTROLLER_SHARD} of every node), and the way commands reach its leader from any node.
 *
 * <h2>Membership</h2>
 * The seed nodes ({@link dev.isthmus.raft.server.RaftServerConfig#controllerVoters()}) are the voters and
 * bootstrap the group with that configuration. Every other node starts the group empty and
 * {@link #register registers} as a broker through a seed; once the registration is applied, the leader adds
 * the node as a learner (it then replicates the metadata log, like a KRaft observer) and every node learns its
 * RPC address. Registrations are kept: a node re-registers after a restart or when its addresses change.
 *
 * <h2>Commands</h2>
 * {@link #submit} proposes locally when this node leads the group; otherwise it sends the command to the
 * known leader (or the next seed) as an RPC ({@link #SERVICE}); a node that does not lead answers
 * NOT_CONTROLLER with its leader hint and the command goes there. A send unanswered within its timeout is sent
 * again, while the earlier sends' answers still count; the whole command has a deadline (REQUEST_TIMED_OUT).
 * An entry's outcome is known when it is applied: if the entry at its
 * offset carries its term it was committed and the result is the state machine's (e.g. TOPIC_ALREADY_EXISTS);
 * otherwise it was lost and is sent again. A lost leadership does not fail a proposal: its entry may still
 * be committed by the next leader, which the apply tells.
 *
 * <h2>Threads</h2>
 * Owned by the controller shard. The public methods returning {@link CompletableFuture} and {@link #state()}
 * may be called from any non-shard thread; methods returning {@link Promise} only on the controller shard.
 * Listeners run on the controller shard after each applied command (changed metadata or not).
 */
public final class Controller implements ControllerStateMachine.Sink, GroupListener, ShardTransport.RpcHandler {
    /** The RPC service number of controller requests. */
    public static final int SERVICE = 1;
    private static final System.Logger LOG = System.getLogger("dev.isthmus.gateway.cluster");
    private static final long MAINTENANCE_INTERVAL_MS = 100;
    private static final long RETRY_DELAY_MS = 25;
    /** Sends of one command whose answer is still awaited, at most (see {@code Attempt.maySendTo}). */
    private static final int MAX_SENDS_ANSWERABLE = 16;
    private static final int CODE_RESULT = 0;
    private static final int CODE_NOT_CONTROLLER = ControllerErrors.NOT_CONTROLLER;

    private final RaftServer server;
    private final RaftShard host;
    private final Shard shard;
    private final int nodeId;
    private final int[] voters;
    private final ControllerStateMachine machine = new ControllerStateMachine(this);
    private final PartitionBalancer balancer = new PartitionBalancer(PartitionBalancer.DEFAULT_MAX_CONCURRENT_MOVES);
    /**
     * Applied entries between snapshots of the metadata ({@code -Disthmus.controller.snapshotEntries}, 1000), read
     * when this controller starts (not when the class loads: a test JVM may start controllers with other values).
     */
    private final long snapshotEveryEntries = Long.getLong("isthmus.controller.snapshotEntries", 1000);
    /**
     * How long a command sent to the leader waits for an answer before it is sent again ({@code
     * -Disthmus.controller.attemptTimeoutMs}, 2000; read when this controller starts). It only bounds how soon a
     * silent target is given up on: an answer that comes later still completes the command.
     */
    private final long attemptTimeoutMs = Math.max(1, Long.getLong("isthmus.controller.attemptTimeoutMs", 2000));
    private ReplicatedLog group;
    private final Long2ObjectHashMap<Waiter> proposed = new Long2ObjectHashMap<>();
    private final Long2ObjectHashMap<Attempt> inFlight = new Long2ObjectHashMap<>();
    private final List<Attempt> attempts = new ArrayList<>();
    private final List<AppliedWaiter> appliedWaiters = new ArrayList<>();
    private final CopyOnWriteArrayList<Consumer<ClusterState>> listeners = new CopyOnWriteArrayList<>();
    private long nextRequestId = 1;
    private int nextSeed;
    private BrokerInfo self;
    private Attempt registering;
    /**
     * Controller shard: completed with the state of this start's own registration once it is applied here; null
     * until {@link #register}. A restarted node proposes its registration again even when the log already holds an
     * identical one: the offset of that new entry is what "caught up" means (every command committed before the
     * restart precedes it), as a Kafka broker replays the metadata log up to the high watermark it learns at
     * registration before it serves.
     */
    private Promise<ClusterState> registeredHere;
    private boolean registeredThisStart;
    private long maintenanceTimer = -1;
    private boolean closed;
    private volatile ClusterState published = ClusterState.EMPTY;
    private volatile int leaderId = -1;
    private volatile boolean leader;

    /** A local proposal waiting for its entry to be applied. */
    private record Waiter(long term, Attempt attempt, RpcMessage remote) {
    }

    /**
     * One command being driven to the leader until it has an outcome or its deadline passes. A request sent to
     * another node stays answerable after its attempt timeout: it is sent again (the target may be gone), but the
     * leader may only be slow, and the first result to come back, from any of the sends, is the outcome. Forgetting
     * the earlier sends made a leader slower than the timeout unable to complete any forwarded command (every answer
     * came for a forgotten request), and turned a created topic into TOPIC_ALREADY_EXISTS (the resend's answer).
     */
    private final class Attempt {
        final ControllerCommand command;
        final byte[] bytes;
        final long deadlineMs;
        final Promise<ControllerResult> promise = new Promise<>();
        /** Request ids of the sends still answerable, oldest first; at most {@link #MAX_SENDS_ANSWERABLE}. */
        final org.agrona.collections.LongArrayList sent = new org.agrona.collections.LongArrayList();
        /** The node each of {@link #sent} went to. */
        final org.agrona.collections.IntArrayList sentTo = new org.agrona.collections.IntArrayList();
        int hint = -1;
        /** The latest send's request id (0: none); only its NOT_CONTROLLER answer redirects the command. */
        long requestId;
        /** Sends in a row that got no answer within their timeout: each waits twice as long, up to 4 times. */
        int unanswered;
        long timer = -1;
        boolean done;

        Attempt(ControllerCommand command, long deadlineMs) {
            this.command = command;
            this.bytes = command.encode();
            this.deadlineMs = deadlineMs;
        }

        /**
         * Whether another send to {@code target} may be made: at most {@link #MAX_SENDS_ANSWERABLE} are awaited, and
         * to make room the oldest send to another node is forgotten. Sends to the same node are all kept: the first
         * of them it applies gives the outcome (a later one may answer, e.g., TOPIC_ALREADY_EXISTS), so beyond the
         * bound the command waits for their answers instead of sending again.
         */
        boolean maySendTo(int target) {
            if (sent.size() < MAX_SENDS_ANSWERABLE) {
                return true;
            }
            for (int i = 0; i < sent.size(); i++) {
                if (sentTo.getInt(i) != target) {
                    forget(sent.getLong(i));
                    return true;
                }
            }
            return false;
        }

        void send(long id, int target) {
            sent.addLong(id);
            sentTo.addInt(target);
            inFlight.put(id, this);
            requestId = id;
        }

        void forget(long id) {
            inFlight.remove(id);
            int i = sent.indexOf(id);
            if (i >= 0) {
                sent.removeAt(i);
                sentTo.removeAt(i);
            }
        }

        void finish(ControllerResult r) {
            if (done) {
                return;
            }
            done = true;
            cancelTimer();
            for (int i = 0; i < sent.size(); i++) {
                inFlight.remove(sent.getLong(i));
            }
            sent.clear();
            sentTo.clear();
            attempts.remove(this);
            promise.complete(r);
        }

        void cancelTimer() {
            if (timer >= 0) {
                shard.cancelTimer(timer);
                timer = -1;
            }
        }
    }

    private record AppliedWaiter(long offset, Promise<ClusterState> promise) {
    }

    private Controller(RaftServer server) {
        this.server = server;
        this.host = server.shard(RaftServer.CONTROLLER_SHARD);
        this.shard = host.shard();
        this.nodeId = server.nodeId();
        this.voters = server.config().controllerVoters().stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    /**
     * Starts the controller on the controller shard of {@code server} (call there): opens the controller group
     * in {@code dataDir/controller} and serves controller requests. Completes once the group is open.
     */
    public static Promise<Controller> start(RaftServer server) {
        Controller c = new Controller(server);
        c.shard.checkOwner();
        if (c.voters.length == 0) {
            return Promise.failed(new IllegalArgumentException("no controller voters configured"));
        }
        boolean voter = Arrays.binarySearch(c.voters, c.nodeId) >= 0;
        Path dir = server.config().dataDir().resolve("controller");
        return c.host.addGroup(ClusterState.CONTROLLER_GROUP_ID, dir,
                voter ? Configuration.ofVoters(c.voters) : Configuration.EMPTY, server.config().logConfig(), c.machine, c)
            .map(g -> {
                c.group = g;
                c.host.transport().registerService(SERVICE, c, true);
                c.publish(c.machine.state());
                c.scheduleMaintenance();
                LOG.log(System.Logger.Level.INFO, "controller on node " + c.nodeId + " started as a "
                    + (voter ? "voter" : "learner") + " of " + Arrays.toString(c.voters) + ", state " + c.machine.state());
                return c;
            });
    }

    // ===================================================================================== any-thread API

    /** The latest cluster state applied on this node (any thread). */
    public ClusterState state() {
        return published;
    }

    /** Whether this node leads the controller group (any thread; may be stale). */
    public boolean isLeader() {
        return leader;
    }

    /**
     * The partition balancer (any thread: {@link PartitionBalancer#status()} for {@code balancer status} and the
     * metrics, {@link PartitionBalancer#setEnabled} for {@code --partition-balancer}). It runs on the controller
     * leader only.
     */
    public PartitionBalancer balancer() {
        return balancer;
    }

    /** The controller leader this node knows, or -1 (any thread; may be stale). */
    public int leaderId() {
        return leaderId;
    }

    /**
     * Adds a listener called on the controller shard with every state this node publishes, in offset order: one per
     * applied command, whether or not it changed the metadata (and once at once with the current state, which may
     * repeat a state it is also called with). Compare the metadata yourself to skip work.
     */
    public void addListener(Consumer<ClusterState> listener) {
        listeners.add(listener);
        server.shardGroup().execute(RaftServer.CONTROLLER_SHARD, () -> listener.accept(published));
    }

    public void removeListener(Consumer<ClusterState> listener) {
        listeners.remove(listener);
    }

    /**
     * Any non-shard thread: applies {@code command} through the controller leader and completes once this
     * node's state includes it (so the caller reads its own change), with the state machine's result.
     */
    public CompletableFuture<ControllerResult> submit(ControllerCommand command, long timeoutMs) {
        return server.shardGroup().callAsync(RaftServer.CONTROLLER_SHARD, s -> submitHere(command, timeoutMs)
            .flatMap(r -> r.appliedOffset() < 0 ? Promise.completed(r) : awaitAppliedHere(r.appliedOffset()).map(st -> r)));
    }

    public CompletableFuture<ControllerResult> createTopic(String name, int partitions, int replicationFactor,
                                                           Map<String, String> configs, long timeoutMs) {
        return submit(ControllerCommand.CreateTopic.of(name, partitions, replicationFactor, configs), timeoutMs);
    }

    public CompletableFuture<ControllerResult> deleteTopic(String name, long timeoutMs) {
        return submit(new ControllerCommand.DeleteTopic(name), timeoutMs);
    }

    public CompletableFuture<ControllerResult> createPartitions(String name, int totalCount, long timeoutMs) {
        return submit(new ControllerCommand.CreatePartitions(name, totalCount, List.of()), timeoutMs);
    }

    public CompletableFuture<ControllerResult> alterConfigs(String name, Map<String, String> set, Set<String> delete,
                                                            long timeoutMs) {
        return submit(ControllerCommand.AlterConfigs.of(name, set, delete), timeoutMs);
    }

    /**
     * Any non-shard thread: registers this node as broker {@code self} (its id must be this node's) and keeps
     * the registration current; completes once a registration proposed by this start is committed and applied
     * here, so the state it completes with holds everything the controller committed before this node started.
     */
    public CompletableFuture<ClusterState> register(BrokerInfo self) {
        if (self.id() != nodeId) {
            throw new IllegalArgumentException("node " + nodeId + " cannot register as broker " + self.id());
        }
        return server.shardGroup().callAsync(RaftServer.CONTROLLER_SHARD, s -> {
            this.self = self;
            if (registeredHere == null) {
                registeredHere = new Promise<>();
            }
            maintain();
            return registeredHere;
        });
    }

    /** Any non-shard thread: completes once this node has applied the controller log up to {@code offset}. */
    public CompletableFuture<ClusterState> awaitApplied(long offset) {
        return server.shardGroup().callAsync(RaftServer.CONTROLLER_SHARD, s -> awaitAppliedHere(offset));
    }

    // ===================================================================================== shard API

    /** Controller shard: see {@link #submit}; completes when the leader applied it (not necessarily here yet). */
    public Promise<ControllerResult> submitHere(ControllerCommand command, long timeoutMs) {
        shard.checkOwner();
        if (closed) {
            return Promise.completed(ControllerResult.error(ControllerErrors.NOT_CONTROLLER, "the controller of node "
                + nodeId + " is stopping", -1));
        }
        Attempt a = new Attempt(command, nowMs() + timeoutMs);
        attempts.add(a);
        drive(a);
        return a.promise;
    }

    /** Controller shard: a promise of the state once it reflects {@code offset}. */
    public Promise<ClusterState> awaitAppliedHere(long offset) {
        shard.checkOwner();
        ClusterState s = machine.state();
        if (s.appliedOffset() >= offset) {
            return Promise.completed(s);
        }
        AppliedWaiter w = new AppliedWaiter(offset, new Promise<>());
        appliedWaiters.add(w);
        return w.promise();
    }

    private final List<java.util.Map.Entry<java.util.function.Predicate<ClusterState>, Promise<ClusterState>>> conditions
        = new ArrayList<>();

    private Promise<ClusterState> awaitHere(java.util.function.Predicate<ClusterState> condition) {
        ClusterState s = machine.state();
        if (condition.test(s)) {
            return Promise.completed(s);
        }
        Promise<ClusterState> p = new Promise<>();
        conditions.add(Map.entry(condition, p));
        return p;
    }

    // ===================================================================================== driving commands

    private long nowMs() {
        return System.nanoTime() / 1_000_000L;
    }

    private void drive(Attempt a) {
        if (a.done) {
            return;
        }
        a.cancelTimer();
        if (closed) {
            a.finish(ControllerResult.error(ControllerErrors.NOT_CONTROLLER, "the controller of node " + nodeId
                + " is stopping", -1));
            return;
        }
        if (nowMs() > a.deadlineMs) {
            a.finish(ControllerResult.error(ControllerErrors.REQUEST_TIMED_OUT, "no controller leader applied the "
                + "command in time (leader known here: " + leaderId + ")", -1));
            return;
        }
        if (group != null && group.isLeader()) {
            long term = group.term();
            long base = group.raft().propose(KafkaBatchPayload.ofValues(System.currentTimeMillis(), a.bytes));
            if (base < 0) {
                retryLater(a, RETRY_DELAY_MS);
                return;
            }
            proposed.put(base, new Waiter(term, a, null));
            // The outcome comes with the apply; the deadline is enforced by maintenance.
            return;
        }
        int target = a.hint >= 0 && a.hint != nodeId ? a.hint : leaderId >= 0 && leaderId != nodeId ? leaderId : nextSeed();
        a.hint = -1;
        if (target >= 0 && !host.transport().isConnected(target)) {
            // The request would be dropped: ask a seed we are connected to, or wait for a connection.
            target = -1;
            for (int i = 0; i < voters.length && target < 0; i++) {
                int v = nextSeed();
                if (v >= 0 && host.transport().isConnected(v)) {
                    target = v;
                }
            }
        }
        if (target < 0) {
            retryLater(a, RETRY_DELAY_MS * 2);
            return;
        }
        if (a.maySendTo(target)) {
            long id = nextRequestId++;
            a.send(id, target);
            host.transport().sendRpc(new RpcMessage(nodeId, target, false, SERVICE, RaftServer.CONTROLLER_SHARD, id, 0,
                a.bytes));
        }
        long waitMs = Math.max(1, Math.min(attemptTimeoutMs << Math.min(a.unanswered, 2), a.deadlineMs + 1 - nowMs()));
        a.timer = shard.schedule(waitMs * 1_000_000L, () -> {
            a.timer = -1;
            a.unanswered++;
            drive(a); // no answer yet: send again (the next seed if the leader is unknown); this send stays answerable
        });
    }

    private void retryLater(Attempt a, long delayMs) {
        a.cancelTimer();
        a.timer = shard.schedule(delayMs * 1_000_000L, () -> {
            a.timer = -1;
            drive(a);
        });
    }

    private int nextSeed() {
        for (int i = 0; i < voters.length; i++) {
            int v = voters[nextSeed++ % voters.length];
            if (v != nodeId) {
                return v;
            }
        }
        return -1;
    }

    /** A request from another node (on the controller shard). */
    @Override
    public void onRequest(RpcMessage request) {
        ShardTransport t = host.transport();
        if (closed || group == null || !group.isLeader()) {
            t.sendRpc(request.reply(CODE_NOT_CONTROLLER, ByteBuffer.allocate(4).putInt(leaderId).array()));
            return;
        }
        try {
            ControllerCommand.decode(request.body());
        } catch (ControllerFormatException e) {
            t.sendRpc(request.reply(CODE_RESULT, ControllerResult.error(ControllerErrors.INVALID_REQUEST,
                e.getMessage(), -1).encode()));
            return;
        }
        long term = group.term();
        long base = group.raft().propose(KafkaBatchPayload.ofValues(System.currentTimeMillis(), request.body()));
        if (base < 0) {
            t.sendRpc(request.reply(CODE_NOT_CONTROLLER, ByteBuffer.allocate(4)
                .putInt(base == RaftErrors.NOT_LEADER ? leaderId : nodeId).array()));
            return;
        }
        proposed.put(base, new Waiter(term, null, request));
    }

    /** A response to one of our requests (on the controller shard). */
    @Override
    public void onResponse(RpcMessage response) {
        Attempt a = inFlight.get(response.requestId());
        if (a == null || a.done) {
            return; // the command has its outcome, or this send was one too many ago
        }
        a.forget(response.requestId());
        if (response.code() != CODE_RESULT && response.requestId() != a.requestId) {
            return; // NOT_CONTROLLER to an earlier send: the latest one went elsewhere and is still awaited
        }
        a.cancelTimer();
        a.unanswered = 0;
        if (response.code() == CODE_RESULT) {
            try {
                a.finish(ControllerResult.decode(response.body()));
            } catch (ControllerFormatException e) {
                a.finish(ControllerResult.error(ControllerErrors.UNKNOWN_SERVER_ERROR, "bad controller response from node "
                    + response.from() + ": " + e.getMessage(), -1));
            }
            return;
        }
        if (response.body().length == 4) {
            a.hint = ByteBuffer.wrap(response.body()).getInt();
        }
        if (a.hint == response.from()) {
            a.hint = -1; // "I am the leader but could not take it now": back off
        }
        retryLater(a, RETRY_DELAY_MS);
    }

    // ===================================================================================== applying

    @Override
    public void onApplied(long baseOffset, long term, ControllerResult result, ClusterState state) {
        // Publish first: whoever learns the outcome must be able to read the change back at once.
        publish(state);
        if (result != null) {
            Waiter w = proposed.remove(baseOffset);
            if (w != null) {
                if (w.term() == term) {
                    complete(w, result);
                } else {
                    lost(w);
                }
            }
        }
    }

    private void complete(Waiter w, ControllerResult r) {
        if (w.attempt() != null) {
            w.attempt().finish(r);
        } else if (w.remote() != null && !closed) {
            host.transport().sendRpc(w.remote().reply(CODE_RESULT, r.encode()));
        }
    }

    private void lost(Waiter w) {
        if (w.attempt() != null) {
            drive(w.attempt());
        } else if (w.remote() != null && !closed) {
            host.transport().sendRpc(w.remote().reply(CODE_NOT_CONTROLLER, ByteBuffer.allocate(4).putInt(leaderId).array()));
        }
    }

    private void publish(ClusterState s) {
        if (s == published) {
            return;
        }
        ClusterState before = published;
        published = s;
        if (group != null) {
            for (Iterator<AppliedWaiter> it = appliedWaiters.iterator(); it.hasNext(); ) {
                AppliedWaiter w = it.next();
                if (s.appliedOffset() >= w.offset()) {
                    it.remove();
                    w.promise().complete(s);
                }
            }
            for (Iterator<Map.Entry<java.util.function.Predicate<ClusterState>, Promise<ClusterState>>> it
                 = conditions.iterator(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().test(s)) {
                    it.remove();
                    e.getValue().complete(s);
                }
            }
            if (!new ArrayList<>(before.brokers()).equals(new ArrayList<>(s.brokers()))) {
                learnPeers(s);
            }
        }
        // Every published state, also one whose metadata equals the last (a failed command, a config set to its
        // value, a registration repeated): whoever waits for offset N (a broker's start, the caller of that
        // command) must see a state of offset N, and the log may end with such an entry.
        for (Consumer<ClusterState> l : listeners) {
            try {
                l.accept(s);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "controller state listener failed", e);
            }
        }
    }

    /** Tells the transport every registered broker's RPC address (resolving names off the shard). */
    private void learnPeers(ClusterState s) {
        for (BrokerInfo b : s.brokers()) {
            if (b.id() == nodeId || !b.hasRpc()) {
                continue;
            }
            InetSocketAddress known = host.transport().peerAddress(b.id());
            if (known != null && known.getPort() == b.rpcPort()
                && (known.getHostString().equals(b.rpcHost()) || known.getAddress() != null
                && known.getAddress().getHostAddress().equals(b.rpcHost()))) {
                continue;
            }
            InetAddress literal = literal(b.rpcHost());
            if (literal != null) {
                host.transport().addPeer(b.id(), new InetSocketAddress(literal, b.rpcPort()));
            } else {
                int id = b.id();
                CompletableFuture.supplyAsync(() -> new InetSocketAddress(b.rpcHost(), b.rpcPort()))
                    .thenAccept(addr -> server.shardGroup().execute(RaftServer.CONTROLLER_SHARD, () -> {
                        if (!closed && !addr.isUnresolved()) {
                            host.transport().addPeer(id, addr);
                        } else if (addr.isUnresolved()) {
                            LOG.log(System.Logger.Level.WARNING, "cannot resolve the RPC host " + b.rpcHost()
                                + " of broker " + id);
                        }
                    }));
            }
        }
    }

    private static InetAddress literal(String host) {
        try {
            return InetAddress.ofLiteral(host);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    @Override
    public void onRoleChange(long groupId, Role role, long term, int leaderId) {
        boolean was = this.leader;
        this.leaderId = leaderId == dev.isthmus.raft.RaftGroup.NONE ? -1 : leaderId;
        this.leader = role == Role.LEADER;
        if (leader && !was) {
            // Rare (an election), and the first step of a cluster's recovery: worth a line in the log.
            LOG.log(System.Logger.Level.INFO, "node " + nodeId + " leads the controller in term " + term + " (applied "
                + machine.state().appliedOffset() + ")");
        }
    }

    // ===================================================================================== maintenance

    private void scheduleMaintenance() {
        maintenanceTimer = shard.schedule(MAINTENANCE_INTERVAL_MS * 1_000_000L, () -> {
            maintenanceTimer = -1;
            if (closed) {
                return;
            }
            maintain();
            scheduleMaintenance();
        });
    }

    private void maintain() {
        if (group == null || closed) {
            return;
        }
        ClusterState s = machine.state();
        // Keep this node's registration current; register once per start in any case (see registeredHere).
        if (self != null && (!registeredThisStart || !self.equals(s.broker(self.id())))
                && (registering == null || registering.done)) {
            registering = new Attempt(new ControllerCommand.RegisterBroker(self), nowMs() + 30_000);
            attempts.add(registering);
            registering.promise.whenComplete((r, t) -> {
                if (r != null && r.isOk()) {
                    registeredThisStart = true;
                    Promise<ClusterState> done = registeredHere;
                    if (done != null && !done.isDone()) {
                        awaitAppliedHere(r.appliedOffset()).whenComplete((st, f) -> {
                            if (st != null) {
                                done.complete(st);
                            }
                        });
                    }
                } else if (r != null && !closed) {
                    LOG.log(System.Logger.Level.WARNING, "registering broker " + nodeId + " failed: " + r);
                }
            });
            drive(registering);
        }
        // Deadlines of local proposals waiting for their apply.
        long now = nowMs();
        for (Attempt a : new ArrayList<>(attempts)) {
            if (!a.done && now > a.deadlineMs && a.timer < 0) {
                a.finish(ControllerResult.error(ControllerErrors.REQUEST_TIMED_OUT, "the command was proposed but not"
                    + " applied in time; it may still be applied", -1));
            }
        }
        // Every replica compacts its own log behind a snapshot of its state.
        if (machine.appliedSinceSnapshot() >= snapshotEveryEntries) {
            group.raft().takeSnapshot();
        }
        balancer.round(s, group.isLeader(), now, id -> id == nodeId || host.transport().isConnected(id),
            id -> Arrays.binarySearch(voters, id) >= 0, (c, timeoutMs, done) -> submitHere(c, timeoutMs).whenComplete((r, t) -> done.accept(r)));
        if (!group.isLeader()) {
            return;
        }
        // Every registered broker that does not vote replicates the metadata as a learner.
        int[] learners = s.brokers().stream().mapToInt(BrokerInfo::id)
            .filter(id -> Arrays.binarySearch(voters, id) < 0).sorted().toArray();
        Configuration cur = group.configuration();
        if (cur.isJoint() || !Arrays.equals(sorted(cur.voters()), voters)
            || !Arrays.equals(sorted(cur.learners()), learners) || !group.raft().configurationSettled()) {
            int r = group.raft().changeMembership(voters, learners);
            if (r != RaftErrors.OK && r != RaftErrors.CONFIG_CHANGE_IN_PROGRESS) {
                LOG.log(System.Logger.Level.WARNING, "controller membership change to voters " + Arrays.toString(voters)
                    + " learners " + Arrays.toString(learners) + " refused: " + RaftErrors.describe(r));
            }
        }
    }

    private static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }

    /** Controller shard: stops serving; pending commands fail with NOT_CONTROLLER. The group closes with the server. */
    public void close() {
        shard.checkOwner();
        if (closed) {
            return;
        }
        closed = true;
        if (maintenanceTimer >= 0) {
            shard.cancelTimer(maintenanceTimer);
        }
        for (Attempt a : new ArrayList<>(attempts)) {
            a.finish(ControllerResult.error(ControllerErrors.NOT_CONTROLLER, "the controller of node " + nodeId
                + " stopped", -1));
        }
        if (registeredHere != null && !registeredHere.isDone()) {
            registeredHere.fail(new IllegalStateException("the controller of node " + nodeId + " stopped before"
                + " this node's registration was applied"));
        }
        for (AppliedWaiter w : appliedWaiters) {
            w.promise().fail(new IllegalStateException("the controller of node " + nodeId + " stopped"));
        }
        appliedWaiters.clear();
        for (var e : conditions) {
            e.getValue().fail(new IllegalStateException("the controller of node " + nodeId + " stopped"));
        }
        conditions.clear();
    }

    /** Controller shard: the hosted controller group. */
    public ReplicatedLog group() {
        return group;
    }

    @Override
    public String toString() {
        return "Controller[node " + nodeId + ", voters " + Arrays.toString(voters) + ", leader " + leaderId + ", "
            + published + "]";
    }
}
