package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.ApiVersionsResponseData;
import dev.isthmus.gateway.protocol.message.CreateTopicsRequestData;
import dev.isthmus.gateway.protocol.message.CreateTopicsResponseData;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.ListOffsetsRequestData;
import dev.isthmus.gateway.protocol.message.ListOffsetsResponseData;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.WriteTxnMarkersRequestData;
import dev.isthmus.gateway.protocol.message.WriteTxnMarkersResponseData;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.log.LogException;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The request handlers. Each runs on the connection's shard and returns a promise of the response; work on a
 * partition runs on the partition's shard ({@link Broker#shardOf}) through {@link Shard#submitToAsync}, and
 * many requests of one connection proceed at once (the connection answers them in order).
 */
final class Handlers {
    private record Range(short lo, short hi) {
    }

    /**
     * The lowest Produce version served. Versions 0-2 (message formats v0 and v1) are advertised but refused, as
     * Apache Kafka 4.x does (KAFKA-18659): librdkafka before 2.11 checks that Produce v0 is inside the advertised
     * range before it compresses, and without it sends every batch uncompressed, silently. A Produce request
     * below this version closes the connection unanswered and logs the version, as Kafka 4.x's network layer
     * does (its SocketServer throws UnsupportedVersionException on the header and closes the channel); nothing
     * of the body is decoded, so the codecs need no v0-2 layouts.
     */
    static final short PRODUCE_LOWEST_SERVED = 3;

    private final Broker broker;
    private final Map<ApiKeys, Range> supported = new EnumMap<>(ApiKeys.class);
    private final GroupHandlers groups;
    private final AdminHandlers admin;
    private final FetchHandler fetch;
    private final TxnHandlers transactions;
    private final ScramApis scram;
    private final ClientQuotaApis quotas;

    Handlers(Broker broker) {
        this.broker = broker;
        supported.put(ApiKeys.API_VERSIONS, new Range((short) 0, (short) 4));
        supported.put(ApiKeys.METADATA, new Range((short) 0, (short) 13));
        supported.put(ApiKeys.PRODUCE, new Range((short) 0, (short) 13)); // 0-2 advertised only: PRODUCE_LOWEST_SERVED
        supported.put(ApiKeys.FETCH, new Range((short) 4, (short) 17));
        supported.put(ApiKeys.LIST_OFFSETS, new Range((short) 1, (short) 10));
        supported.put(ApiKeys.INIT_PRODUCER_ID, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.CREATE_TOPICS, new Range((short) 2, (short) 7));
        supported.put(ApiKeys.FIND_COORDINATOR, new Range((short) 0, (short) 6));
        supported.put(ApiKeys.JOIN_GROUP, new Range((short) 0, (short) 9));
        supported.put(ApiKeys.SYNC_GROUP, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.HEARTBEAT, new Range((short) 0, (short) 4));
        supported.put(ApiKeys.LEAVE_GROUP, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.OFFSET_COMMIT, new Range((short) 2, (short) 10));
        supported.put(ApiKeys.OFFSET_FETCH, new Range((short) 1, (short) 10));
        supported.put(ApiKeys.DESCRIBE_GROUPS, new Range((short) 0, (short) 6));
        supported.put(ApiKeys.LIST_GROUPS, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.DELETE_GROUPS, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.OFFSET_DELETE, new Range((short) 0, (short) 0));
        supported.put(ApiKeys.DELETE_TOPICS, new Range((short) 1, (short) 6));
        supported.put(ApiKeys.CREATE_PARTITIONS, new Range((short) 0, (short) 3));
        supported.put(ApiKeys.DELETE_RECORDS, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.DESCRIBE_CONFIGS, new Range((short) 1, (short) 4));
        supported.put(ApiKeys.INCREMENTAL_ALTER_CONFIGS, new Range((short) 0, (short) 1));
        supported.put(ApiKeys.OFFSET_FOR_LEADER_EPOCH, new Range((short) 2, (short) 4));
        supported.put(ApiKeys.DESCRIBE_CLUSTER, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.DESCRIBE_QUORUM, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.ALTER_CONFIGS, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.DESCRIBE_LOG_DIRS, new Range((short) 1, (short) 5));
        supported.put(ApiKeys.ELECT_LEADERS, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.DESCRIBE_ACLS, new Range((short) 1, (short) 3));
        supported.put(ApiKeys.CREATE_ACLS, new Range((short) 1, (short) 3));
        supported.put(ApiKeys.DELETE_ACLS, new Range((short) 1, (short) 3));
        supported.put(ApiKeys.DESCRIBE_PRODUCERS, new Range((short) 0, (short) 0));
        supported.put(ApiKeys.DESCRIBE_TOPIC_PARTITIONS, new Range((short) 0, (short) 0));
        supported.put(ApiKeys.ALTER_PARTITION_REASSIGNMENTS, new Range((short) 0, (short) 1));
        supported.put(ApiKeys.LIST_PARTITION_REASSIGNMENTS, new Range((short) 0, (short) 0));
        // Client quotas in the controller's state (ClientQuotaApis), enforced by ClientQuotas.
        supported.put(ApiKeys.DESCRIBE_CLIENT_QUOTAS, new Range((short) 0, (short) 1));
        supported.put(ApiKeys.ALTER_CLIENT_QUOTAS, new Range((short) 0, (short) 1));
        // Answered by the connection (its SASL state), on every listener: see Connection#saslGate.
        supported.put(ApiKeys.SASL_HANDSHAKE, new Range((short) 0, (short) 1));
        supported.put(ApiKeys.SASL_AUTHENTICATE, new Range((short) 0, (short) 2));
        supported.put(ApiKeys.DESCRIBE_USER_SCRAM_CREDENTIALS, new Range((short) 0, (short) 0));
        supported.put(ApiKeys.ALTER_USER_SCRAM_CREDENTIALS, new Range((short) 0, (short) 0));
        // Transactions, coordinator side (TxnHandlers): EndTxn 5 is transaction version 2 (KIP-890), advertised
        // with the transaction.version feature below.
        supported.put(ApiKeys.ADD_PARTITIONS_TO_TXN, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.ADD_OFFSETS_TO_TXN, new Range((short) 0, (short) 4));
        supported.put(ApiKeys.END_TXN, new Range((short) 0, (short) 5));
        supported.put(ApiKeys.DESCRIBE_TRANSACTIONS, new Range((short) 0, (short) 0));
        supported.put(ApiKeys.LIST_TRANSACTIONS, new Range((short) 0, (short) 2));
        // Transactions, partition side: markers from transaction coordinators and kafka-transactions.sh abort.
        supported.put(ApiKeys.WRITE_TXN_MARKERS, new Range((short) 1, (short) 1));
        // TxnOffsetCommit 5 is transaction version 2 (the group's offsets partition joins the transaction implicitly).
        supported.put(ApiKeys.TXN_OFFSET_COMMIT, new Range((short) 0, (short) 5));
        groups = new GroupHandlers(broker);
        transactions = new TxnHandlers(broker);
        admin = new AdminHandlers(broker);
        scram = new ScramApis(broker);
        quotas = new ClientQuotaApis(broker);
        fetch = new FetchHandler(broker, broker.config().shards(), FetchSessions.DEFAULT_SLOTS_PER_BROKER);
    }

    /** The Fetch handler (its per-shard session caches and counters: tests, metrics). */
    FetchHandler fetch() {
        return fetch;
    }

    AdminHandlers admin() {
        return admin;
    }

    /** The transaction APIs (and the requests brokers send each other). */
    TxnHandlers transactions() {
        return transactions;
    }

    boolean supports(ApiKeys api) {
        return supported.containsKey(api);
    }

    /** The lowest version of {@code api} served; below it a request closes the connection (ApiVersions aside). */
    short lowest(ApiKeys api) {
        return api == ApiKeys.PRODUCE ? PRODUCE_LOWEST_SERVED : supported.get(api).lo;
    }

    short highest(ApiKeys api) {
        return supported.get(api).hi;
    }

    Promise<ProtocolMessage> handle(ShardState st, ApiKeys api, short version, ProtocolMessage request,
                                    RequestHeaderData header, String clientHost, Connection connection) {
        long startNs = System.nanoTime();
        String listener = connection == null ? null : connection.listenerName();
        int[] produced = request instanceof ProduceRequestData pr ? ShardMetrics.produceLengths(pr) : null;
        RequestAuthorization.Gate gate = RequestAuthorization.check(broker, st, api, version, request,
            connection == null ? "User:ANONYMOUS" : connection.principalName(), clientHost);
        if (gate == null || gate.answer() != null) { // refused before any handler runs (ACLs)
            return metered(st, api, startNs, request, produced, gate == null ? Promise.failed(new SecurityException(api
                + " has no authorization rule; refused while ACLs are on")) : Promise.completed(gate.answer()));
        }
        Promise<ProtocolMessage> response = switch (api) {
            case FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, HEARTBEAT, LEAVE_GROUP, OFFSET_COMMIT, OFFSET_FETCH,
                 DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE, TXN_OFFSET_COMMIT ->
                groups.handle(st, api, version, request, header, clientHost, listener);
            case DELETE_TOPICS, CREATE_PARTITIONS, DELETE_RECORDS, DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS,
                 OFFSET_FOR_LEADER_EPOCH, DESCRIBE_CLUSTER, ALTER_CONFIGS, DESCRIBE_LOG_DIRS, ELECT_LEADERS, DESCRIBE_ACLS,
                 CREATE_ACLS, DELETE_ACLS, DESCRIBE_PRODUCERS, DESCRIBE_TOPIC_PARTITIONS ->
                admin.handle(st, api, version, request, listener);
            case DESCRIBE_QUORUM -> admin.describeQuorum(st,
                (dev.isthmus.gateway.protocol.message.DescribeQuorumRequestData) request, version,
                "isthmus-broker".equals(header.clientId));
            case ALTER_PARTITION_REASSIGNMENTS -> broker.reassignments().alter(st,
                (dev.isthmus.gateway.protocol.message.AlterPartitionReassignmentsRequestData) request, version);
            case LIST_PARTITION_REASSIGNMENTS -> Promise.completed(broker.reassignments().list(st,
                (dev.isthmus.gateway.protocol.message.ListPartitionReassignmentsRequestData) request));
            case API_VERSIONS -> Promise.completed(apiVersions(st, ErrorCodes.NONE, version));
            case DESCRIBE_CLIENT_QUOTAS -> Promise.completed(quotas.describe(st,
                (dev.isthmus.gateway.protocol.message.DescribeClientQuotasRequestData) request));
            case ALTER_CLIENT_QUOTAS -> quotas.alter(st,
                (dev.isthmus.gateway.protocol.message.AlterClientQuotasRequestData) request);
            case INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, DESCRIBE_TRANSACTIONS,
                 LIST_TRANSACTIONS -> transactions.handle(st, api, version, request);
            case METADATA -> metadata(st, (MetadataRequestData) request, version, listener);
            case PRODUCE -> produce(st, (ProduceRequestData) request, version, listener);
            case WRITE_TXN_MARKERS -> writeTxnMarkers(st, (WriteTxnMarkersRequestData) request);
            case FETCH -> fetch.handle(st, (FetchRequestData) request, version, connection);
            case LIST_OFFSETS -> listOffsets(st, (ListOffsetsRequestData) request);
            case CREATE_TOPICS -> createTopics(st, (CreateTopicsRequestData) request);
            case DESCRIBE_USER_SCRAM_CREDENTIALS -> Promise.completed(scram.describe(st,
                (dev.isthmus.gateway.protocol.message.DescribeUserScramCredentialsRequestData) request));
            case ALTER_USER_SCRAM_CREDENTIALS -> scram.alter(st,
                (dev.isthmus.gateway.protocol.message.AlterUserScramCredentialsRequestData) request);
            default -> Promise.failed(new IllegalStateException(api + " is not handled"));
        };
        response = gate.apply(response);
        return metered(st, api, startNs, request, produced, response);
    }

    /** {@code response}, once it has been counted in the shard's request, latency and topic byte metrics. */
    private static Promise<ProtocolMessage> metered(ShardState st, ApiKeys api, long startNs, ProtocolMessage request,
                                                    int[] produced, Promise<ProtocolMessage> response) {
        Promise<ProtocolMessage> out = new Promise<>();
        response.whenComplete((r, f) -> {
            ShardMetrics.count(st, api, startNs, request, produced, r, f);
            out.completeWith(r, f);
        });
        return out;
    }

    /** A request's topic by name, or by id when the version carries ids (name null or empty). */
    private static TopicTable.Topic resolve(ShardState st, String name, Uuid id) {
        return name != null && !name.isEmpty() ? st.topics.get(name) : st.topics.get(id);
    }

    /**
     * Runs {@code work} on the shard that owns partition {@code index} of {@code topic} and completes on the
     * calling shard; {@code missing} when the partition does not exist there.
     */
    <T> Promise<T> onPartition(ShardState st, TopicTable.Topic topic, int index,
                                       Function<Partition, Promise<T>> work, T missing) {
        return onPartition(st, topic, index, work, missing, missing);
    }

    /**
     * {@link #onPartition(ShardState, TopicTable.Topic, int, Function, Object)} answering {@code notHere} when
     * this node holds no replica of the partition, or its replica is not open (yet).
     */
    <T> Promise<T> onPartition(ShardState st, TopicTable.Topic topic, int index,
                               Function<Partition, Promise<T>> work, T missing, T notHere) {
        String name = topic.name();
        int shard = broker.shardOf(topic, index);
        if (shard < 0) {
            return Promise.completed(notHere);
        }
        return st.shard.submitToAsync(shard, s -> broker.state(s.id())
            .partition(name, index).flatMap(part -> part == null ? Promise.completed(notHere) : work.apply(part)));
    }

    ApiVersionsResponseData apiVersions(short error) {
        ApiVersionsResponseData r = new ApiVersionsResponseData();
        r.errorCode = error;
        for (Map.Entry<ApiKeys, Range> e : supported.entrySet()) {
            ApiVersionsResponseData.ApiVersion v = new ApiVersionsResponseData.ApiVersion();
            v.apiKey = e.getKey().id;
            v.minVersion = e.getValue().lo;
            v.maxVersion = e.getValue().hi;
            r.apiKeys.add(v);
        }
        return r;
    }

    /**
     * ApiVersions v3+ also carries the features (KIP-584): SupportedFeatures {@code transaction.version} 0..2 and
     * FinalizedFeatures {@code transaction.version} at the broker's level, with an epoch that never goes down (the
     * controller log offset this shard has applied). A Kafka 4.x producer turns transaction version 2 on from the
     * finalized level (TransactionManager.maybeUpdateTransactionV2Enabled) and then ends transactions with EndTxn
     * v5, which bumps the epoch per transaction. Below v4 a supported feature with minimum 0 is left out, as Kafka
     * does (older clients cannot read it, KAFKA-17492); a finalized level 0 is never listed.
     */
    ApiVersionsResponseData apiVersions(ShardState st, short error, short version) {
        ApiVersionsResponseData r = apiVersions(error);
        if (version >= 3 && error == ErrorCodes.NONE) {
            if (version >= 4) {
                ApiVersionsResponseData.SupportedFeatureKey f = new ApiVersionsResponseData.SupportedFeatureKey();
                f.name = dev.isthmus.gateway.txn.TxnConfig.TRANSACTION_VERSION;
                f.minVersion = 0;
                f.maxVersion = dev.isthmus.gateway.txn.TxnConfig.MAX_TRANSACTION_VERSION;
                r.supportedFeatures.add(f);
            }
            int level = broker.config().transactions().transactionVersion();
            r.finalizedFeaturesEpoch = Math.max(0, st.cluster == null ? 0 : st.cluster.appliedOffset());
            if (level > 0) {
                ApiVersionsResponseData.FinalizedFeatureKey f = new ApiVersionsResponseData.FinalizedFeatureKey();
                f.name = dev.isthmus.gateway.txn.TxnConfig.TRANSACTION_VERSION;
                f.minVersionLevel = (short) level;
                f.maxVersionLevel = (short) level;
                r.finalizedFeatures.add(f);
            }
        }
        return r;
    }

    // ------------------------------------------------------------------ Metadata and topics

    private Promise<ProtocolMessage> metadata(ShardState st, MetadataRequestData req, short version, String listener) {
        if (!broker.caughtUp(st)) {
            // Started, but not yet caught up with the controller: no brokers and no topics. kafka-clients ignore a
            // Metadata answer without brokers and ask again ("the startup phase of a broker", NetworkClient), keeping
            // what they knew. Calling the topics unknown instead made producers drop them and block in send() for
            // max.block.ms until some node answered with them (bench/chaos: the slow restarts after kill-all).
            MetadataResponseData r = new MetadataResponseData();
            r.clusterId = broker.clusterId();
            r.controllerId = -1;
            return Promise.completed(r);
        }
        List<String> names = new ArrayList<>();
        boolean all = req.topics == null || (version == 0 && req.topics.isEmpty());
        if (!all) {
            for (MetadataRequestData.MetadataRequestTopic t : req.topics) {
                if (t.name == null) {
                    TopicTable.Topic byId = st.topics.get(t.topicId);
                    names.add(byId == null ? null : byId.name());
                } else {
                    names.add(t.name);
                }
            }
        }
        boolean autoCreate = broker.config().autoCreateTopics() && (version < 4 || req.allowAutoTopicCreation);
        List<Promise<Object>> creations = new ArrayList<>();
        Set<String> autoCreated = new java.util.HashSet<>();
        if (!all && autoCreate) {
            for (String n : names) {
                if (n != null && st.topics.get(n) == null && TopicTable.invalidName(n) == null) {
                    creations.add(broker.createTopic(st.shard, n, broker.config().defaultPartitions()));
                    autoCreated.add(n);
                }
            }
        }
        return Promise.whenAllSettled(creations).map(ignored -> {
            MetadataResponseData r = new MetadataResponseData();
            r.brokers.addAll(brokers(st, listener));
            r.clusterId = broker.clusterId();
            r.controllerId = broker.controllerId();
            if (all) {
                for (TopicTable.Topic t : st.topics.topics()) {
                    r.topics.add(topicMetadata(st, t, t.name()));
                }
            } else {
                for (int i = 0; i < names.size(); i++) {
                    String n = names.get(i);
                    TopicTable.Topic t = n == null ? null : st.topics.get(n);
                    if (t == null) {
                        MetadataResponseData.MetadataResponseTopic u = new MetadataResponseData.MetadataResponseTopic();
                        u.name = n != null || version >= 12 ? n : ""; // name is nullable only from v12
                        u.topicId = req.topics.get(i).topicId == null ? Uuid.ZERO : req.topics.get(i).topicId;
                        u.errorCode = n != null && TopicTable.invalidName(n) != null ? ErrorCodes.INVALID_TOPIC_EXCEPTION
                            : (n == null ? ErrorCodes.UNKNOWN_TOPIC_ID : ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION);
                        r.topics.add(u);
                    } else {
                        r.topics.add(topicMetadata(st, t, n));
                    }
                }
            }
            listenerNotFound(st, r, version, ownListener(listener).name());
            return r;
        });
    }

    /**
     * A partition whose live leader has no endpoint on the client's listener (a node configured with other
     * listeners): LISTENER_NOT_FOUND from v6, LEADER_NOT_AVAILABLE below, and no leader, as Kafka answers.
     */
    private static void listenerNotFound(ShardState st, MetadataResponseData r, short version, String listener) {
        if (st.cluster == null) {
            return;
        }
        Set<Integer> without = new java.util.HashSet<>();
        for (dev.isthmus.gateway.cluster.BrokerInfo bi : st.cluster.brokers()) {
            if (bi.endpoint(listener) == null) {
                without.add(bi.id());
            }
        }
        if (without.isEmpty()) {
            return;
        }
        for (MetadataResponseData.MetadataResponseTopic t : r.topics) {
            for (MetadataResponseData.MetadataResponsePartition p : t.partitions) {
                if (without.contains(p.leaderId)) {
                    p.errorCode = version >= 6 ? ErrorCodes.LISTENER_NOT_FOUND : ErrorCodes.LEADER_NOT_AVAILABLE;
                    p.leaderId = -1;
                }
            }
        }
    }

    /**
     * The live registered brokers (this one at least, also before its registration is applied): as Kafka's Metadata
     * and DescribeCluster list only brokers that are up, a node this node holds no Raft connection to is left out
     * ({@link ShardState#alive}), so tools that compare leaders with the live brokers
     * ({@code kafka-topics.sh --describe --unavailable-partitions}) see a stopped node as gone.
     */
    List<MetadataResponseData.MetadataResponseBroker> brokers(ShardState st, String listener) {
        List<MetadataResponseData.MetadataResponseBroker> out = new ArrayList<>();
        dev.isthmus.gateway.security.ListenerConfig own = ownListener(listener);
        boolean self = false;
        if (st.cluster != null) {
            for (dev.isthmus.gateway.cluster.BrokerInfo bi : st.cluster.brokers()) {
                if (!st.alive(bi.id())) {
                    continue;
                }
                // The address of the listener the client came in on; a broker without that listener is left out.
                dev.isthmus.gateway.cluster.BrokerInfo.Endpoint e = bi.endpoint(own.name());
                if (e == null) {
                    continue;
                }
                MetadataResponseData.MetadataResponseBroker b = new MetadataResponseData.MetadataResponseBroker();
                b.nodeId = bi.id();
                b.host = e.host();
                b.port = e.port();
                b.rack = bi.rack(); // null: none (Metadata v1+ sends it, older versions leave it out)
                out.add(b);
                self |= bi.id() == broker.config().nodeId();
            }
        }
        if (!self) {
            MetadataResponseData.MetadataResponseBroker b = new MetadataResponseData.MetadataResponseBroker();
            b.nodeId = broker.config().nodeId();
            b.host = own.advertisedHostOrBind();
            b.port = own.advertisedPort() != 0 ? own.advertisedPort() : own.port();
            b.rack = broker.config().rack();
            out.add(b);
        }
        return out;
    }

    /** This broker's listener named {@code name} (bound port filled in); the first listener when null or unknown. */
    private dev.isthmus.gateway.security.ListenerConfig ownListener(String name) {
        List<dev.isthmus.gateway.security.ListenerConfig> ls = broker.listeners();
        if (ls.isEmpty()) {
            ls = broker.config().listeners();
        }
        for (dev.isthmus.gateway.security.ListenerConfig l : ls) {
            if (l.name().equals(name)) {
                return l;
            }
        }
        return ls.get(0);
    }

    /**
     * What this node knows of one partition's replicas, as Metadata and DescribeTopicPartitions report it.
     *
     * @param errorCode   NONE, or LEADER_NOT_AVAILABLE when no live leader is known
     * @param leaderId    the leader, -1 when none is known or it is not live
     * @param leaderEpoch its epoch (Raft term), -1 when unknown
     * @param replicas    the replicas, the preferred leader first
     * @param isr         the in-sync replicas as the leader last published them ({@link ReplicaStates}); before any
     *                    publication reached this node, the live replicas
     * @param offline     the replicas on nodes that are not live ({@link ShardState#alive})
     */
    record ReplicaView(short errorCode, int leaderId, int leaderEpoch, List<Integer> replicas, List<Integer> isr,
                       List<Integer> offline) {
    }

    /**
     * A partition's leader, epoch, replicas, in-sync replicas and offline replicas as this shard knows them: the
     * leader table (announced by local replicas and published by the leaders of every node) and the liveness of
     * nodes. A leader that is not live is reported as none (LEADER_NOT_AVAILABLE) while its last in-sync set is
     * kept, as Kafka reports a partition whose only in-sync replica is down; a partition whose leader is not known
     * here points at its preferred leader without an epoch when this node holds no replica of it (the client is
     * redirected) and is LEADER_NOT_AVAILABLE otherwise. DescribeTopicPartitions uses the same.
     */
    ReplicaView replicaView(ShardState st, dev.isthmus.gateway.cluster.PartitionInfo info) {
        short error = ErrorCodes.NONE;
        int leaderId;
        int epoch;
        int[] leader = st.leaders.get(info.groupId());
        if (leader != null && leader[0] >= 0 && st.alive(leader[0])) {
            leaderId = leader[0];
            epoch = leader[1];
        } else if ((leader != null && leader[0] >= 0) || info.hasReplicaOn(broker.config().nodeId())
            || !st.alive(info.preferredLeader())) {
            error = ErrorCodes.LEADER_NOT_AVAILABLE;
            leaderId = -1;
            epoch = leader != null ? leader[1] : -1;
        } else {
            leaderId = info.preferredLeader();
            epoch = -1;
        }
        List<Integer> replicas = new ArrayList<>();
        List<Integer> offline = new ArrayList<>();
        for (int r : info.replicas()) {
            replicas.add(r);
            if (!st.alive(r)) {
                offline.add(r);
            }
        }
        List<Integer> isr = new ArrayList<>();
        ReplicaStates.Entry e = st.isr.get(info.groupId());
        if (e != null) {
            for (int r : e.isr()) {
                isr.add(r);
            }
        } else {
            for (int r : info.replicas()) {
                if (st.alive(r)) {
                    isr.add(r);
                }
            }
        }
        return new ReplicaView(error, leaderId, epoch, replicas, isr, offline);
    }

    /**
     * A topic's partitions with their leaders, epochs, replicas, in-sync and offline replicas ({@link #replicaView}).
     */
    MetadataResponseData.MetadataResponseTopic topicMetadata(ShardState st, TopicTable.Topic t, String name) {
        MetadataResponseData.MetadataResponseTopic mt = new MetadataResponseData.MetadataResponseTopic();
        mt.name = name;
        mt.topicId = t.id();
        mt.isInternal = name.equals(GroupCoordinator.OFFSETS_TOPIC) || name.equals(TxnCoordinator.TOPIC);
        for (int p = 0; p < t.partitions(); p++) {
            ReplicaView v = replicaView(st, t.partition(p));
            MetadataResponseData.MetadataResponsePartition mp = new MetadataResponseData.MetadataResponsePartition();
            mp.partitionIndex = p;
            mp.errorCode = v.errorCode();
            mp.leaderId = v.leaderId();
            mp.leaderEpoch = v.leaderEpoch();
            mp.replicaNodes = new ArrayList<>(v.replicas());
            mp.isrNodes = new ArrayList<>(v.isr());
            mp.offlineReplicas = new ArrayList<>(v.offline());
            mt.partitions.add(mp);
        }
        return mt;
    }

    /**
     * CreateTopics. The request's shape (KIP-464's -1 defaults, the assignment's form, the replication factor, the
     * configs) is checked here, everything else by {@link Broker#createTopic}; a validate-only request takes the
     * same path and stops where a real one would submit to the controller, so both answer alike.
     */
    private Promise<ProtocolMessage> createTopics(ShardState st, CreateTopicsRequestData req) {
        CreateTopicsResponseData r = new CreateTopicsResponseData();
        List<Promise<Object>> ps = new ArrayList<>();
        for (CreateTopicsRequestData.CreatableTopic t : req.topics) {
            CreateTopicsResponseData.CreatableTopicResult res = new CreateTopicsResponseData.CreatableTopicResult();
            res.name = t.name;
            res.numPartitions = -1;
            res.replicationFactor = -1;
            r.topics.add(res);
            Object spec = createTopicSpec(st, t);
            if (spec instanceof Broker.Failure f) {
                res.errorCode = f.code();
                res.errorMessage = f.message();
                continue;
            }
            TopicSpec s = (TopicSpec) spec;
            ps.add(broker.createTopic(st.shard, t.name, s.partitions, s.replicationFactor, s.configs, s.assignment,
                req.validateOnly).map(outcome -> {
                    if (outcome instanceof TopicTable.Topic created) {
                        res.topicId = created.id();
                        res.numPartitions = created.partitions();
                        res.replicationFactor = (short) created.replicationFactor();
                        addConfigs(res, created.configs());
                    } else {
                        Broker.Failure f = (Broker.Failure) outcome;
                        res.errorCode = f.code();
                        res.errorMessage = f.message();
                    }
                    return null;
                }));
        }
        return Promise.whenAllSettled(ps).map(x -> r);
    }

    /** CreateTopics v5+: every config of the new topic with its value and source, as DescribeConfigs has them. */
    private void addConfigs(CreateTopicsResponseData.CreatableTopicResult res, Map<String, String> overrides) {
        for (AdminHandlers.ConfigEntry e : AdminHandlers.topicEntries(overrides, broker.topicDefaults())) {
            CreateTopicsResponseData.CreatableTopicConfigs c = new CreateTopicsResponseData.CreatableTopicConfigs();
            c.name = e.name();
            c.value = e.value();
            c.configSource = e.source();
            c.readOnly = e.readOnly();
            res.configs.add(c);
        }
    }

    /** A CreateTopics entry with KIP-464's defaults applied: what {@link Broker#createTopic} is given. */
    private record TopicSpec(int partitions, int replicationFactor, Map<String, String> configs, List<int[]> assignment) {
    }

    /**
     * Checks one CreateTopics entry's shape as Kafka's controller does (ReplicationControlManager): a manual
     * assignment needs numPartitions and replicationFactor at -1 (INVALID_REQUEST), lists partitions 0..n-1 once
     * each (INVALID_REPLICA_ASSIGNMENT); otherwise -1 means the default and other values below 1 are refused
     * (INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR); a config named twice is INVALID_REQUEST, and configs must
     * be known, valid and consistent (INVALID_CONFIG). Returns a {@link TopicSpec} or a {@link Broker.Failure}.
     */
    private Object createTopicSpec(ShardState st, CreateTopicsRequestData.CreatableTopic t) {
        int partitions = t.numPartitions == -1 ? broker.config().defaultPartitions() : t.numPartitions;
        List<int[]> assignment = new ArrayList<>();
        if (t.assignments != null && !t.assignments.isEmpty()) {
            if (t.replicationFactor != -1) {
                return new Broker.Failure(ErrorCodes.INVALID_REQUEST, "a manual partition assignment was given, so the"
                    + " replication factor must be -1, not " + t.replicationFactor);
            }
            if (t.numPartitions != -1) {
                return new Broker.Failure(ErrorCodes.INVALID_REQUEST, "a manual partition assignment was given, so the"
                    + " number of partitions must be -1, not " + t.numPartitions);
            }
            partitions = t.assignments.size();
            java.util.TreeMap<Integer, int[]> byIndex = new java.util.TreeMap<>();
            for (CreateTopicsRequestData.CreatableReplicaAssignment a : t.assignments) {
                byIndex.put(a.partitionIndex, a.brokerIds.stream().mapToInt(Integer::intValue).toArray());
            }
            if (byIndex.size() != partitions || byIndex.firstKey() != 0 || byIndex.lastKey() != partitions - 1) {
                return new Broker.Failure(ErrorCodes.INVALID_REPLICA_ASSIGNMENT, "the assignment must list partitions 0"
                    + " to " + (partitions - 1) + " once each");
            }
            assignment.addAll(byIndex.values());
        } else {
            if (t.numPartitions < 1 && t.numPartitions != -1) {
                return new Broker.Failure(ErrorCodes.INVALID_PARTITIONS, "the number of partitions must be at least 1,"
                    + " or -1 for the default (" + broker.config().defaultPartitions() + "), not " + t.numPartitions);
            }
            if (t.replicationFactor < 1 && t.replicationFactor != -1) {
                return new Broker.Failure(ErrorCodes.INVALID_REPLICATION_FACTOR, "the replication factor must be at"
                    + " least 1, or -1 for the default, not " + t.replicationFactor);
            }
            int brokersKnown = st.cluster == null ? 1 : Math.max(1, st.cluster.brokers().size());
            if (t.replicationFactor > brokersKnown) {
                return new Broker.Failure(ErrorCodes.INVALID_REPLICATION_FACTOR, "replication factor "
                    + t.replicationFactor + " must be in [1, " + brokersKnown + "] (the registered brokers)");
            }
        }
        int rf = t.replicationFactor == -1 ? broker.defaultReplicationFactor(st) : t.replicationFactor;
        Map<String, String> configs = new java.util.TreeMap<>();
        for (CreateTopicsRequestData.CreatableTopicConfig c : t.configs) {
            if (configs.containsKey(c.name)) {
                return new Broker.Failure(ErrorCodes.INVALID_REQUEST, "Error due to duplicate config keys: " + c.name);
            }
            configs.put(c.name, c.value);
        }
        String badConfig = TopicConfigs.firstProblem(configs, broker.topicDefaults());
        if (badConfig != null) {
            return new Broker.Failure(ErrorCodes.INVALID_CONFIG, badConfig);
        }
        return new TopicSpec(partitions, rf, TopicConfigs.normalized(configs), assignment);
    }

    // ------------------------------------------------------------------ Produce

    /** The owner shard has no such partition (one constant: nothing allocated per batch for the rare answer). */
    private static final Partition.AppendResult PRODUCE_MISSING =
        new Partition.AppendResult(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, null);
    /** This node holds no open replica of the partition; the message naming it is made only when answered. */
    private static final Partition.AppendResult PRODUCE_NOT_HERE =
        new Partition.AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, null);

    private Promise<ProtocolMessage> produce(ShardState st, ProduceRequestData req, short version, String listener) {
        ProduceResponseData r = new ProduceResponseData();
        List<Promise<Object>> ps = new ArrayList<>();
        if (req.acks != 0 && req.acks != 1 && req.acks != -1) {
            for (ProduceRequestData.TopicProduceData t : req.topicData) {
                ProduceResponseData.TopicProduceResponse tr = topicResponse(r, t);
                for (ProduceRequestData.PartitionProduceData p : t.partitionData) {
                    partitionError(tr, p.index, ErrorCodes.INVALID_REQUIRED_ACKS, "acks must be 0, 1 or -1");
                    release(p);
                }
            }
            return Promise.completed(r);
        }
        for (ProduceRequestData.TopicProduceData t : req.topicData) {
            ProduceResponseData.TopicProduceResponse tr = topicResponse(r, t);
            TopicTable.Topic topic = resolve(st, t.name, t.topicId);
            for (ProduceRequestData.PartitionProduceData p : t.partitionData) {
                if (topic == null || p.index < 0 || p.index >= topic.partitions()) {
                    partitionError(tr, p.index, t.name == null || t.name.isEmpty() ? ErrorCodes.UNKNOWN_TOPIC_ID
                        : ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, null);
                    release(p);
                    continue;
                }
                if (topic.name().equals(GroupCoordinator.OFFSETS_TOPIC) || topic.name().equals(TxnCoordinator.TOPIC)) {
                    partitionError(tr, p.index, ErrorCodes.INVALID_TOPIC_EXCEPTION,
                        "cannot produce to the internal topic " + topic.name());
                    release(p);
                    continue;
                }
                if (!(p.records instanceof IoBufSlice records)) {
                    partitionError(tr, p.index, ErrorCodes.CORRUPT_MESSAGE, "no records");
                    continue;
                }
                ProduceResponseData.PartitionProduceResponse pr = new ProduceResponseData.PartitionProduceResponse();
                pr.index = p.index;
                tr.partitionResponses.add(pr);
                short acks = req.acks;
                String txnId = req.transactionalId;
                if (txnId == null && records.length() > dev.isthmus.log.RecordBatch.ATTRIBUTES + 1
                    && (records.buf().getShort(dev.isthmus.log.RecordBatch.ATTRIBUTES)
                        & dev.isthmus.log.RecordBatch.TRANSACTIONAL_BIT) != 0) {
                    // Kafka: transactional records need the transactional id they are authorized by.
                    pr.errorCode = ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                    pr.baseOffset = -1;
                    pr.errorMessage = "a transactional batch needs the producer's transactional id in the request";
                    records.close();
                    continue;
                }
                Promise<Partition.AppendResult> done = onPartition(st, topic, p.index,
                    part -> part.append(records, acks, txnId, version), PRODUCE_MISSING, PRODUCE_NOT_HERE);
                // One stage for the outcome (Promise.handle), as Partition's own: one promise and one lambda.
                ps.add(done.handle((res, f) -> {
                        if (f != null) {
                            // The owner's append path answers its own failures; this is the cross-shard call failing.
                            System.getLogger(Handlers.class.getName()).log(System.Logger.Level.ERROR, "produce to "
                                + topic.name() + "-" + p.index + " failed on an internal error", f);
                            res = new Partition.AppendResult(ErrorCodes.REQUEST_TIMED_OUT, -1, -1, "the broker hit an"
                                + " internal error producing to " + topic.name() + "-" + p.index
                                + "; the outcome is unknown");
                        } else if (res == PRODUCE_NOT_HERE) {
                            res = new Partition.AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1,
                                "this broker does not lead " + topic.name() + "-" + p.index);
                        }
                        records.close();
                        pr.errorCode = res.errorCode();
                        pr.baseOffset = res.baseOffset();
                        pr.logStartOffset = res.logStartOffset();
                        pr.errorMessage = res.message();
                        if (pr.errorCode == ErrorCodes.NOT_LEADER_OR_FOLLOWER) {
                            leaderHint(st, topic.partition(pr.index), pr, r, listener);
                        }
                        pr.logAppendTimeMs = res.logAppendTimeMs();
                        List<Partition.RecordError> errors = res.recordErrors();
                        for (int k = 0; k < errors.size(); k++) { // indexed: no iterator per batch
                            Partition.RecordError e = errors.get(k);
                            ProduceResponseData.BatchIndexAndErrorMessage m = new ProduceResponseData.BatchIndexAndErrorMessage();
                            m.batchIndex = e.batchIndex();
                            m.batchIndexErrorMessage = e.message();
                            pr.recordErrors.add(m);
                        }
                        return null;
                    }));
            }
        }
        return Promise.whenAllSettled(ps).map(x -> r);
    }

    /**
     * KIP-951: a partition answered NOT_LEADER_OR_FOLLOWER names the leader this node knows (Produce v10+,
     * {@code CurrentLeader}) and the response carries that leader's endpoint ({@code NodeEndpoints}), so a client
     * moves to it at once, without a metadata request and without backing off (after a leadership hand-off, the
     * former leader answers with its successor).
     */
    private void leaderHint(ShardState st, dev.isthmus.gateway.cluster.PartitionInfo info,
                            ProduceResponseData.PartitionProduceResponse pr, ProduceResponseData r,
                            String listener) {
        ReplicaView v = replicaView(st, info);
        if (v.leaderId() < 0 || v.leaderEpoch() < 0 || v.leaderId() == broker.config().nodeId()) {
            return;
        }
        pr.currentLeader.leaderId = v.leaderId();
        pr.currentLeader.leaderEpoch = v.leaderEpoch();
        for (ProduceResponseData.NodeEndpoint e : r.nodeEndpoints) {
            if (e.nodeId == v.leaderId()) {
                return;
            }
        }
        for (MetadataResponseData.MetadataResponseBroker b : brokers(st, listener)) {
            if (b.nodeId == v.leaderId()) {
                ProduceResponseData.NodeEndpoint e = new ProduceResponseData.NodeEndpoint();
                e.nodeId = b.nodeId;
                e.host = b.host;
                e.port = b.port;
                r.nodeEndpoints.add(e);
            }
        }
    }

    private static void release(ProduceRequestData.PartitionProduceData p) {
        if (p.records instanceof IoBufSlice s) {
            s.close();
        }
    }

    private static ProduceResponseData.TopicProduceResponse topicResponse(ProduceResponseData r,
                                                                         ProduceRequestData.TopicProduceData t) {
        ProduceResponseData.TopicProduceResponse tr = new ProduceResponseData.TopicProduceResponse();
        tr.name = t.name;
        tr.topicId = t.topicId;
        r.responses.add(tr);
        return tr;
    }

    private static void partitionError(ProduceResponseData.TopicProduceResponse tr, int index, short code, String msg) {
        ProduceResponseData.PartitionProduceResponse pr = new ProduceResponseData.PartitionProduceResponse();
        pr.index = index;
        pr.errorCode = code;
        pr.baseOffset = -1;
        pr.errorMessage = msg;
        tr.partitionResponses.add(pr);
    }

    // ------------------------------------------------------------------ WriteTxnMarkers

    /**
     * WriteTxnMarkers (from transaction coordinators, and from {@code kafka-transactions.sh abort}): each marker is
     * appended to each of its partitions by the partition's leader ({@link Partition#appendMarker}) and answered once
     * committed there; partitions of one marker are written in parallel.
     */
    private Promise<ProtocolMessage> writeTxnMarkers(ShardState st, WriteTxnMarkersRequestData req) {
        WriteTxnMarkersResponseData r = new WriteTxnMarkersResponseData();
        PartitionFanOut fan = new PartitionFanOut(this, st);
        for (WriteTxnMarkersRequestData.WritableTxnMarker m : req.markers) {
            WriteTxnMarkersResponseData.WritableTxnMarkerResult mr = new WriteTxnMarkersResponseData.WritableTxnMarkerResult();
            mr.producerId = m.producerId;
            r.markers.add(mr);
            for (WriteTxnMarkersRequestData.WritableTxnMarkerTopic t : m.topics) {
                WriteTxnMarkersResponseData.WritableTxnMarkerTopicResult tr =
                    new WriteTxnMarkersResponseData.WritableTxnMarkerTopicResult();
                tr.name = t.name;
                mr.topics.add(tr);
                TopicTable.Topic topic = st.topics.get(t.name);
                for (int index : t.partitionIndexes) {
                    WriteTxnMarkersResponseData.WritableTxnMarkerPartitionResult pr =
                        new WriteTxnMarkersResponseData.WritableTxnMarkerPartitionResult();
                    pr.partitionIndex = index;
                    tr.partitions.add(pr);
                    if (!PartitionFanOut.exists(topic, index)) {
                        pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                        continue;
                    }
                    fan.submit(topic, index, part -> part.appendMarker(m.producerId, m.producerEpoch,
                            m.transactionResult, m.coordinatorEpoch).map(code -> {
                                if (code == ErrorCodes.NONE && part.topic.equals(GroupCoordinator.OFFSETS_TOPIC)) {
                                    // The group coordinator of that partition (this shard's) applies it now.
                                    broker.state(part.shardId()).groups.markerWritten(part.index, m.producerId,
                                        m.transactionResult);
                                }
                                return code;
                            }),
                        ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, ErrorCodes.NOT_LEADER_OR_FOLLOWER,
                        f -> ErrorCodes.REQUEST_TIMED_OUT, code -> pr.errorCode = code);
                }
            }
        }
        return fan.gather(r);
    }

    // ------------------------------------------------------------------ ListOffsets

    private static long epochAt(Partition part, long offset) {
        try {
            return part.replica.raft().termAt(offset);
        } catch (RuntimeException e) {
            return -1;
        }
    }

    private Promise<ProtocolMessage> listOffsets(ShardState st, ListOffsetsRequestData req) {
        ListOffsetsResponseData r = new ListOffsetsResponseData();
        PartitionFanOut fan = new PartitionFanOut(this, st);
        for (ListOffsetsRequestData.ListOffsetsTopic t : req.topics) {
            ListOffsetsResponseData.ListOffsetsTopicResponse tr = new ListOffsetsResponseData.ListOffsetsTopicResponse();
            tr.name = t.name;
            r.topics.add(tr);
            TopicTable.Topic topic = st.topics.get(t.name);
            for (ListOffsetsRequestData.ListOffsetsPartition p : t.partitions) {
                ListOffsetsResponseData.ListOffsetsPartitionResponse pr = new ListOffsetsResponseData.ListOffsetsPartitionResponse();
                pr.partitionIndex = p.partitionIndex;
                pr.timestamp = -1;
                pr.offset = -1;
                pr.leaderEpoch = 0;
                tr.partitions.add(pr);
                if (!PartitionFanOut.exists(topic, p.partitionIndex)) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                long ts = p.timestamp;
                boolean committed = req.isolationLevel == PartitionFetch.READ_COMMITTED;
                fan.submit(topic, p.partitionIndex, part -> lookup(part, ts, committed),
                    new long[] {ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1},
                    new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, -1},
                    // A failed cross-shard call is a retriable error, never NONE with offset -1 (a wrong answer).
                    f -> new long[] {ErrorCodes.REQUEST_TIMED_OUT, -1, -1, -1}, res -> {
                        pr.errorCode = (short) res[0];
                        pr.offset = res[1];
                        pr.timestamp = res[2];
                        pr.leaderEpoch = (int) res[3];
                    });
            }
        }
        return fan.gather(r);
    }

    /**
     * {errorCode, offset, timestamp, leaderEpoch} on the partition's shard; the leader answers. With
     * {@code readCommitted} (isolation level 1) the latest offset is the last stable offset and a lookup by time finds
     * nothing at or past it, as Kafka answers (its lastFetchableOffset).
     */
    private static Promise<long[]> lookup(Partition part, long ts, boolean readCommitted) {
        if (!part.isLeader()) {
            return Promise.completed(new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, -1});
        }
        long epoch = part.leaderEpoch();
        if (ts == -2 || ts == -4) { // earliest; earliest local (no tiered storage: the same)
            return Promise.completed(new long[] {0, part.logStartOffset(), -1, epoch});
        }
        if (ts == -5 || ts == -6) { // latest tiered, earliest pending upload: nothing is tiered here
            return Promise.completed(new long[] {0, -1, -1, -1});
        }
        long fetchable = readCommitted ? part.lastStableOffset() : part.highWatermark();
        if (ts == -1) {
            return Promise.completed(new long[] {0, fetchable, -1, epoch});
        }
        if (ts == -3) { // MAX_TIMESTAMP: the first record carrying the largest timestamp
            if (part.maxTimestamp() < 0) {
                return Promise.completed(new long[] {0, -1, -1, -1});
            }
            ts = part.maxTimestamp();
        }
        Promise<long[]> p = new Promise<>();
        part.log().offsetForTimestamp(ts, fetchable, new dev.isthmus.log.Log.TimestampHandler() {
            @Override
            public void onOffset(long offset, long timestamp) {
                p.complete(new long[] {0, offset, timestamp, offset < 0 ? -1 : epochAt(part, offset)});
            }

            @Override
            public void onError(LogException error) {
                p.complete(new long[] {error.kind().kafkaCode, -1, -1, -1});
            }
        });
        return p;
    }
}
