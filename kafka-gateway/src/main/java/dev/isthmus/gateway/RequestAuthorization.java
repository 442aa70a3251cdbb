package dev.isthmus.gateway;

import dev.isthmus.gateway.auth.Authorizer;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.*;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

import static dev.isthmus.gateway.cluster.AclBinding.ALTER;
import static dev.isthmus.gateway.cluster.AclBinding.ALTER_CONFIGS;
import static dev.isthmus.gateway.cluster.AclBinding.CLUSTER;
import static dev.isthmus.gateway.cluster.AclBinding.CLUSTER_ACTION;
import static dev.isthmus.gateway.cluster.AclBinding.CLUSTER_NAME;
import static dev.isthmus.gateway.cluster.AclBinding.CREATE;
import static dev.isthmus.gateway.cluster.AclBinding.DELETE;
import static dev.isthmus.gateway.cluster.AclBinding.DESCRIBE;
import static dev.isthmus.gateway.cluster.AclBinding.DESCRIBE_CONFIGS;
import static dev.isthmus.gateway.cluster.AclBinding.GROUP;
import static dev.isthmus.gateway.cluster.AclBinding.IDEMPOTENT_WRITE;
import static dev.isthmus.gateway.cluster.AclBinding.READ;
import static dev.isthmus.gateway.cluster.AclBinding.TOPIC;
import static dev.isthmus.gateway.cluster.AclBinding.TRANSACTIONAL_ID;
import static dev.isthmus.gateway.cluster.AclBinding.WRITE;

/**
 * Checks each request against the ACLs before its handler runs, API by API as Kafka's {@code KafkaApis} does (the
 * table in {@code shared/notes/security.md}), and answers Kafka's errors for what the principal may not do.
 *
 * <p>How: {@link #check} runs on the connection's shard with that shard's {@link Authorizer} (an immutable copy of
 * the cluster's ACLs, no lock, no cross-shard call). It returns a {@link Gate}: either the whole answer (nothing of
 * the request is allowed: the handler does not run), or a go-ahead after removing from the request what is not
 * allowed, with a step that adds the refused parts to the handler's response as errors, so a handler never sees a
 * topic, group or transactional id the principal may not touch (no auto-creation, no existence check, no leak
 * through UNKNOWN_TOPIC_OR_PARTITION). Metadata, ListGroups, OffsetFetch of all topics and DescribeTopicPartitions
 * of all topics leave out silently what the principal may not describe. Without an authorizer {@link #PASS} is
 * returned at once and nothing is checked.
 *
 * <p>An API this class has no rule for is refused by closing the connection (fail closed): a new handler needs its
 * rule here before it can be reached with ACLs on.
 *
 * <p>Incremental fetch sessions: partitions join a session only through the gate; on every incremental fetch the
 * topics the session holds are checked again, and a session holding one whose READ was revoked is closed
 * (FETCH_SESSION_ID_NOT_FOUND; Kafka answers TOPIC_AUTHORIZATION_FAILED inside the incremental response instead,
 * the client ends at the same error after its next full fetch).
 */
final class RequestAuthorization {
    private RequestAuthorization() {
    }

    // Kafka's default texts for these errors (Errors.*.message()).
    static final String TOPIC_DENIED = "Topic authorization failed.";
    static final String GROUP_DENIED = "Group authorization failed.";
    static final String CLUSTER_DENIED = "Cluster authorization failed.";
    static final String TXN_DENIED = "Transactional Id authorization failed.";

    /** The decision for one request: {@code answer} to send instead of running the handler, or {@code after}. */
    record Gate(ProtocolMessage answer, UnaryOperator<ProtocolMessage> after) {
        Promise<ProtocolMessage> apply(Promise<ProtocolMessage> response) {
            return after == null ? response : response.map(after::apply);
        }
    }

    static final Gate PASS = new Gate(null, null);

    private static Gate answer(ProtocolMessage m) {
        return new Gate(m, null);
    }

    private static Gate after(UnaryOperator<ProtocolMessage> f) {
        return new Gate(null, f);
    }

    /** The principal and address of one request, with the shard's authorizer. */
    private record Ctx(Broker broker, ShardState st, Authorizer az, String principal, String host) {
        boolean topic(byte op, String name) {
            return az.authorize(principal, host, op, TOPIC, name);
        }

        boolean group(byte op, String name) {
            return az.authorize(principal, host, op, GROUP, name);
        }

        boolean txn(byte op, String id) {
            return az.authorize(principal, host, op, TRANSACTIONAL_ID, id);
        }

        boolean cluster(byte op) {
            return az.authorize(principal, host, op, CLUSTER, CLUSTER_NAME);
        }

        /** A topic's name from a request that names it or (newer versions) gives its id; null when unknown. */
        String name(String name, Uuid id) {
            if (name != null && !name.isEmpty()) {
                return name;
            }
            TopicTable.Topic t = id == null ? null : st.topics.get(id);
            return t == null ? null : t.name();
        }
    }

    /**
     * The gate for one request of {@code principal} from {@code clientHost} ({@code /1.2.3.4} or an address), run
     * on the connection's shard before the handler.
     */
    static Gate check(Broker broker, ShardState st, ApiKeys api, short version, ProtocolMessage request,
                      String principal, String clientHost) {
        Authorizer az = st.authorizer;
        if (!az.enabled() || az.isSuperUser(principal)) {
            return PASS;
        }
        String host = clientHost.startsWith("/") ? clientHost.substring(1) : clientHost;
        Ctx c = new Ctx(broker, st, az, principal, host);
        return switch (api) {
            case API_VERSIONS, DESCRIBE_CLUSTER, SASL_HANDSHAKE, SASL_AUTHENTICATE -> clusterOps(c, api, request);
            case METADATA -> metadata(c, (MetadataRequestData) request, version);
            case PRODUCE -> produce(c, (ProduceRequestData) request);
            case FETCH -> fetch(c, (FetchRequestData) request);
            case LIST_OFFSETS -> listOffsets(c, (ListOffsetsRequestData) request);
            case OFFSET_FOR_LEADER_EPOCH -> offsetForLeaderEpoch(c, (OffsetForLeaderEpochRequestData) request);
            case INIT_PRODUCER_ID -> initProducerId(c, (InitProducerIdRequestData) request);
            case CREATE_TOPICS -> createTopics(c, (CreateTopicsRequestData) request);
            case DELETE_TOPICS -> deleteTopics(c, (DeleteTopicsRequestData) request, version);
            case CREATE_PARTITIONS -> createPartitions(c, (CreatePartitionsRequestData) request);
            case DELETE_RECORDS -> deleteRecords(c, (DeleteRecordsRequestData) request);
            case DESCRIBE_CONFIGS -> describeConfigs(c, (DescribeConfigsRequestData) request);
            case ALTER_CONFIGS -> alterConfigs(c, (AlterConfigsRequestData) request);
            case INCREMENTAL_ALTER_CONFIGS -> incrementalAlterConfigs(c, (IncrementalAlterConfigsRequestData) request);
            case DESCRIBE_LOG_DIRS -> describeLogDirs(c, version);
            case ELECT_LEADERS -> electLeaders(c, (ElectLeadersRequestData) request);
            case DESCRIBE_PRODUCERS -> describeProducers(c, (DescribeProducersRequestData) request);
            case DESCRIBE_TOPIC_PARTITIONS -> describeTopicPartitions(c, (DescribeTopicPartitionsRequestData) request);
            case FIND_COORDINATOR -> findCoordinator(c, (FindCoordinatorRequestData) request, version);
            case JOIN_GROUP -> readGroup(c, ((JoinGroupRequestData) request).groupId, () -> {
                JoinGroupResponseData r = new JoinGroupResponseData();
                r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
                r.generationId = -1;
                r.protocolName = version >= 7 ? null : "";
                return r;
            });
            case SYNC_GROUP -> readGroup(c, ((SyncGroupRequestData) request).groupId, () -> {
                SyncGroupResponseData r = new SyncGroupResponseData();
                r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
                return r;
            });
            case HEARTBEAT -> readGroup(c, ((HeartbeatRequestData) request).groupId, () -> {
                HeartbeatResponseData r = new HeartbeatResponseData();
                r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
                return r;
            });
            case LEAVE_GROUP -> readGroup(c, ((LeaveGroupRequestData) request).groupId, () -> {
                LeaveGroupResponseData r = new LeaveGroupResponseData();
                r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
                return r;
            });
            case OFFSET_COMMIT -> offsetCommit(c, (OffsetCommitRequestData) request);
            case OFFSET_FETCH -> offsetFetch(c, (OffsetFetchRequestData) request, version);
            case DESCRIBE_GROUPS -> describeGroups(c, (DescribeGroupsRequestData) request);
            case LIST_GROUPS -> listGroups(c);
            case DELETE_GROUPS -> deleteGroups(c, (DeleteGroupsRequestData) request);
            case OFFSET_DELETE -> offsetDelete(c, (OffsetDeleteRequestData) request);
            case DESCRIBE_ACLS -> c.cluster(DESCRIBE) ? PASS : answer(describeAclsDenied());
            case CREATE_ACLS -> c.cluster(ALTER) ? PASS : answer(createAclsDenied((CreateAclsRequestData) request));
            case DELETE_ACLS -> c.cluster(ALTER) ? PASS : answer(deleteAclsDenied((DeleteAclsRequestData) request));
            case ADD_PARTITIONS_TO_TXN -> addPartitionsToTxn(c, (AddPartitionsToTxnRequestData) request, version);
            case ADD_OFFSETS_TO_TXN -> addOffsetsToTxn(c, (AddOffsetsToTxnRequestData) request);
            case END_TXN -> {
                EndTxnRequestData e = (EndTxnRequestData) request;
                if (c.txn(WRITE, e.transactionalId)) {
                    yield PASS;
                }
                EndTxnResponseData r = new EndTxnResponseData();
                r.errorCode = ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                yield answer(r);
            }
            case TXN_OFFSET_COMMIT -> txnOffsetCommit(c, (TxnOffsetCommitRequestData) request);
            case DESCRIBE_TRANSACTIONS -> describeTransactions(c, (DescribeTransactionsRequestData) request);
            case LIST_TRANSACTIONS -> after(resp -> {
                ListTransactionsResponseData r = (ListTransactionsResponseData) resp;
                r.transactionStates.removeIf(s -> !c.txn(DESCRIBE, s.transactionalId));
                return r;
            });
            case WRITE_TXN_MARKERS -> writeTxnMarkers(c, (WriteTxnMarkersRequestData) request);
            case ALTER_PARTITION_REASSIGNMENTS -> {
                if (c.cluster(ALTER)) {
                    yield PASS;
                }
                AlterPartitionReassignmentsResponseData r = new AlterPartitionReassignmentsResponseData();
                r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                r.errorMessage = CLUSTER_DENIED;
                yield answer(r);
            }
            case DESCRIBE_QUORUM -> {
                if (c.cluster(DESCRIBE)) {
                    yield PASS;
                }
                dev.isthmus.gateway.protocol.message.DescribeQuorumResponseData r
                    = new dev.isthmus.gateway.protocol.message.DescribeQuorumResponseData();
                r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                r.errorMessage = CLUSTER_DENIED;
                yield answer(r);
            }
            case LIST_PARTITION_REASSIGNMENTS -> {
                if (c.cluster(DESCRIBE)) {
                    yield PASS;
                }
                ListPartitionReassignmentsResponseData r = new ListPartitionReassignmentsResponseData();
                r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                r.errorMessage = CLUSTER_DENIED;
                yield answer(r);
            }
            case DESCRIBE_USER_SCRAM_CREDENTIALS -> {
                if (c.cluster(DESCRIBE)) {
                    yield PASS;
                }
                DescribeUserScramCredentialsResponseData r = new DescribeUserScramCredentialsResponseData();
                r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                r.errorMessage = CLUSTER_DENIED;
                yield answer(r);
            }
            case ALTER_USER_SCRAM_CREDENTIALS -> alterUserScramCredentials(c, (AlterUserScramCredentialsRequestData) request);
            case DESCRIBE_CLIENT_QUOTAS -> {
                if (c.cluster(DESCRIBE_CONFIGS)) {
                    yield PASS;
                }
                DescribeClientQuotasResponseData r = new DescribeClientQuotasResponseData();
                r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                r.errorMessage = CLUSTER_DENIED;
                r.entries = null;
                yield answer(r);
            }
            case ALTER_CLIENT_QUOTAS -> alterClientQuotas(c, (AlterClientQuotasRequestData) request);
            default -> null; // no rule: refused (Handlers closes the connection)
        };
    }

    // ------------------------------------------------------------------ cluster

    /** APIs without a check; DescribeCluster still reports the operations allowed on the cluster when asked. */
    private static Gate clusterOps(Ctx c, ApiKeys api, ProtocolMessage request) {
        if (api == ApiKeys.DESCRIBE_CLUSTER && ((DescribeClusterRequestData) request).includeClusterAuthorizedOperations) {
            return after(resp -> {
                DescribeClusterResponseData r = (DescribeClusterResponseData) resp;
                r.clusterAuthorizedOperations = clusterOperations(c);
                return r;
            });
        }
        return PASS;
    }

    private static int clusterOperations(Ctx c) {
        return c.az.authorizedOperations(c.principal, c.host, CLUSTER, CLUSTER_NAME, Authorizer.CLUSTER_OPERATIONS);
    }

    private static Gate describeLogDirs(Ctx c, short version) {
        if (c.cluster(DESCRIBE)) {
            return PASS;
        }
        DescribeLogDirsResponseData r = new DescribeLogDirsResponseData();
        if (version >= 3) {
            r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
        }
        return answer(r);
    }

    private static Gate electLeaders(Ctx c, ElectLeadersRequestData req) {
        if (c.cluster(ALTER)) {
            return PASS;
        }
        ElectLeadersResponseData r = new ElectLeadersResponseData();
        r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
        if (req.topicPartitions != null) {
            for (ElectLeadersRequestData.TopicPartitions t : req.topicPartitions) {
                ElectLeadersResponseData.ReplicaElectionResult tr = new ElectLeadersResponseData.ReplicaElectionResult();
                tr.topic = t.topic;
                for (int p : t.partitions) {
                    ElectLeadersResponseData.PartitionResult pr = new ElectLeadersResponseData.PartitionResult();
                    pr.partitionId = p;
                    pr.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                    pr.errorMessage = CLUSTER_DENIED;
                    tr.partitionResult.add(pr);
                }
                r.replicaElectionResults.add(tr);
            }
        }
        return answer(r);
    }

    // ------------------------------------------------------------------ Metadata

    /**
     * Metadata: all topics lists only those the principal may describe; named topics it may not describe are
     * TOPIC_AUTHORIZATION_FAILED without an existence check; a missing topic it may describe but not create
     * (auto-creation on) is TOPIC_AUTHORIZATION_FAILED too. Authorized operations are filled in when asked.
     */
    private static Gate metadata(Ctx c, MetadataRequestData req, short version) {
        boolean all = req.topics == null || (version == 0 && req.topics.isEmpty());
        List<MetadataResponseData.MetadataResponseTopic> refused = new ArrayList<>();
        if (!all) {
            boolean autoCreate = c.broker.config().autoCreateTopics() && (version < 4 || req.allowAutoTopicCreation);
            Boolean createCluster = null;
            List<MetadataRequestData.MetadataRequestTopic> kept = new ArrayList<>();
            for (MetadataRequestData.MetadataRequestTopic t : req.topics) {
                String name = c.name(t.name, t.topicId);
                if (name == null) {
                    kept.add(t); // an unknown id: the handler answers UNKNOWN_TOPIC_ID
                    continue;
                }
                boolean ok = c.topic(DESCRIBE, name);
                if (ok && autoCreate && c.st.topics.get(name) == null && TopicTable.invalidName(name) == null) {
                    if (createCluster == null) {
                        createCluster = c.cluster(CREATE);
                    }
                    ok = createCluster || c.topic(CREATE, name);
                }
                if (ok) {
                    kept.add(t);
                    continue;
                }
                MetadataResponseData.MetadataResponseTopic mt = new MetadataResponseData.MetadataResponseTopic();
                mt.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                boolean byId = t.name == null || t.name.isEmpty();
                mt.name = byId ? (version >= 12 ? null : "") : name;
                mt.topicId = byId ? t.topicId : Uuid.ZERO;
                refused.add(mt);
            }
            if (refused.isEmpty()) {
                kept = null;
            } else {
                req.topics = kept;
            }
        }
        boolean topicOps = version >= 8 && req.includeTopicAuthorizedOperations;
        boolean clusterOps = version >= 8 && version <= 10 && req.includeClusterAuthorizedOperations;
        return after(resp -> {
            MetadataResponseData r = (MetadataResponseData) resp;
            if (all) {
                r.topics.removeIf(t -> !c.topic(DESCRIBE, t.name));
            }
            if (topicOps) {
                for (MetadataResponseData.MetadataResponseTopic t : r.topics) {
                    if (t.errorCode == ErrorCodes.NONE) {
                        t.topicAuthorizedOperations = c.az.authorizedOperations(c.principal, c.host, TOPIC, t.name,
                            Authorizer.TOPIC_OPERATIONS);
                    }
                }
            }
            if (clusterOps) {
                r.clusterAuthorizedOperations = clusterOperations(c);
            }
            r.topics.addAll(refused);
            return r;
        });
    }

    private static Gate describeTopicPartitions(Ctx c, DescribeTopicPartitionsRequestData req) {
        boolean all = req.topics == null || req.topics.isEmpty();
        return after(resp -> {
            DescribeTopicPartitionsResponseData r = (DescribeTopicPartitionsResponseData) resp;
            if (all) {
                r.topics.removeIf(t -> !c.topic(DESCRIBE, t.name));
            }
            for (DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic t : r.topics) {
                if (!c.topic(DESCRIBE, t.name)) {
                    t.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                    t.topicId = Uuid.ZERO;
                    t.isInternal = false;
                    t.partitions.clear();
                    t.topicAuthorizedOperations = Integer.MIN_VALUE;
                } else {
                    t.topicAuthorizedOperations = c.az.authorizedOperations(c.principal, c.host, TOPIC, t.name,
                        Authorizer.TOPIC_OPERATIONS);
                }
            }
            return r;
        });
    }

    // ------------------------------------------------------------------ Produce and Fetch

    /**
     * Produce: WRITE on the transactional id (else every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then WRITE
     * on each topic (else its partitions TOPIC_AUTHORIZATION_FAILED; the others are appended). The refused records
     * are released here. The request's topics and the response's order are restored afterwards, so the per-topic
     * byte metrics line up with the request.
     */
    private static Gate produce(Ctx c, ProduceRequestData req) {
        boolean txnOk = req.transactionalId == null || c.txn(WRITE, req.transactionalId);
        List<ProduceRequestData.TopicProduceData> original = req.topicData;
        List<ProduceRequestData.TopicProduceData> kept = new ArrayList<>();
        List<ProduceResponseData.TopicProduceResponse> refused = new ArrayList<>();
        boolean[] allowed = new boolean[original.size()];
        for (int i = 0; i < original.size(); i++) {
            ProduceRequestData.TopicProduceData t = original.get(i);
            String name = c.name(t.name, t.topicId);
            short error = !txnOk ? ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                : name != null && !c.topic(WRITE, name) ? ErrorCodes.TOPIC_AUTHORIZATION_FAILED : ErrorCodes.NONE;
            if (error == ErrorCodes.NONE) {
                allowed[i] = true;
                kept.add(t);
                continue;
            }
            ProduceResponseData.TopicProduceResponse tr = new ProduceResponseData.TopicProduceResponse();
            tr.name = t.name;
            tr.topicId = t.topicId;
            for (ProduceRequestData.PartitionProduceData p : t.partitionData) {
                ProduceResponseData.PartitionProduceResponse pr = new ProduceResponseData.PartitionProduceResponse();
                pr.index = p.index;
                pr.errorCode = error;
                pr.baseOffset = -1;
                tr.partitionResponses.add(pr);
                if (p.records instanceof IoBufSlice s) {
                    s.close();
                }
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topicData = kept;
        return after(resp -> {
            ProduceResponseData r = (ProduceResponseData) resp;
            req.topicData = original;
            List<ProduceResponseData.TopicProduceResponse> ordered = new ArrayList<>(original.size());
            int k = 0;
            int x = 0;
            for (boolean ok : allowed) {
                if (ok) {
                    if (k < r.responses.size()) {
                        ordered.add(r.responses.get(k++));
                    }
                } else {
                    ordered.add(refused.get(x++));
                }
            }
            while (k < r.responses.size()) {
                ordered.add(r.responses.get(k++));
            }
            r.responses = ordered;
            return r;
        });
    }

    /**
     * Fetch: a follower needs CLUSTER_ACTION on the cluster, a consumer READ on each topic; refused topics are
     * answered TOPIC_AUTHORIZATION_FAILED per partition and never reach the fetch session. A full fetch left with
     * nothing to read is answered at once (it would otherwise wait out max_wait_ms for nothing).
     */
    private static Gate fetch(Ctx c, FetchRequestData req) {
        boolean follower = req.replicaId >= 0 || (req.replicaState != null && req.replicaState.replicaId >= 0);
        Boolean clusterAction = follower ? c.cluster(CLUSTER_ACTION) : null;
        if (!follower && req.sessionId != 0 && req.sessionEpoch > 0 && sessionLostRead(c, req.sessionId)) {
            FetchResponseData r = new FetchResponseData();
            r.errorCode = ErrorCodes.FETCH_SESSION_ID_NOT_FOUND;
            return answer(r);
        }
        List<FetchRequestData.FetchTopic> kept = new ArrayList<>();
        List<FetchResponseData.FetchableTopicResponse> refused = new ArrayList<>();
        for (FetchRequestData.FetchTopic t : req.topics) {
            String name = c.name(t.topic, t.topicId);
            boolean ok = follower ? clusterAction : name == null || c.topic(READ, name);
            if (ok) {
                kept.add(t);
                continue;
            }
            FetchResponseData.FetchableTopicResponse tr = new FetchResponseData.FetchableTopicResponse();
            tr.topic = t.topic;
            tr.topicId = t.topicId;
            for (FetchRequestData.FetchPartition p : t.partitions) {
                FetchResponseData.PartitionData pd = new FetchResponseData.PartitionData();
                pd.partitionIndex = p.partition;
                pd.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                pd.highWatermark = -1;
                pd.lastStableOffset = -1;
                pd.logStartOffset = -1;
                tr.partitions.add(pd);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (kept.isEmpty() && req.sessionEpoch <= 0) {
            FetchResponseData r = new FetchResponseData();
            r.responses.addAll(refused);
            return answer(r);
        }
        req.topics = kept;
        return after(resp -> {
            FetchResponseData r = (FetchResponseData) resp;
            r.responses.addAll(refused);
            return r;
        });
    }

    /**
     * Whether incremental fetch session {@code id} of this shard holds a partition whose topic the principal may no
     * longer READ (its READ was revoked after the partition joined). Such a session is closed and the fetch answered
     * FETCH_SESSION_ID_NOT_FOUND: the client starts over with a full fetch, whose refused topics get
     * TOPIC_AUTHORIZATION_FAILED, so a revoked READ applies to the next fetch as in Kafka. Each topic is checked once.
     */
    private static boolean sessionLostRead(Ctx c, int id) {
        FetchSessions cache = c.broker.handlers().fetch().sessions(c.st.shard.id());
        FetchSessions.Session s = cache.get(id);
        if (s == null) {
            return false;
        }
        Set<String> checked = new HashSet<>();
        for (FetchSessions.Key k : s.partitions.keySet()) {
            String name = c.name(k.topicName(), k.topicId());
            if (name != null && checked.add(name) && !c.topic(READ, name)) {
                cache.remove(id);
                return true;
            }
        }
        return false;
    }

    private static Gate listOffsets(Ctx c, ListOffsetsRequestData req) {
        List<ListOffsetsRequestData.ListOffsetsTopic> kept = new ArrayList<>();
        List<ListOffsetsResponseData.ListOffsetsTopicResponse> refused = new ArrayList<>();
        for (ListOffsetsRequestData.ListOffsetsTopic t : req.topics) {
            if (c.topic(DESCRIBE, t.name)) {
                kept.add(t);
                continue;
            }
            ListOffsetsResponseData.ListOffsetsTopicResponse tr = new ListOffsetsResponseData.ListOffsetsTopicResponse();
            tr.name = t.name;
            for (ListOffsetsRequestData.ListOffsetsPartition p : t.partitions) {
                ListOffsetsResponseData.ListOffsetsPartitionResponse pr = new ListOffsetsResponseData.ListOffsetsPartitionResponse();
                pr.partitionIndex = p.partitionIndex;
                pr.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                pr.timestamp = -1;
                pr.offset = -1;
                pr.leaderEpoch = -1;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((ListOffsetsResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    /** CLUSTER_ACTION on the cluster allows every topic (replicas); else DESCRIBE on each. */
    private static Gate offsetForLeaderEpoch(Ctx c, OffsetForLeaderEpochRequestData req) {
        if (c.cluster(CLUSTER_ACTION)) {
            return PASS;
        }
        List<OffsetForLeaderEpochRequestData.OffsetForLeaderTopic> kept = new ArrayList<>();
        List<OffsetForLeaderEpochResponseData.OffsetForLeaderTopicResult> refused = new ArrayList<>();
        for (OffsetForLeaderEpochRequestData.OffsetForLeaderTopic t : req.topics) {
            if (c.topic(DESCRIBE, t.topic)) {
                kept.add(t);
                continue;
            }
            OffsetForLeaderEpochResponseData.OffsetForLeaderTopicResult tr = new OffsetForLeaderEpochResponseData.OffsetForLeaderTopicResult();
            tr.topic = t.topic;
            for (OffsetForLeaderEpochRequestData.OffsetForLeaderPartition p : t.partitions) {
                OffsetForLeaderEpochResponseData.EpochEndOffset e = new OffsetForLeaderEpochResponseData.EpochEndOffset();
                e.partition = p.partition;
                e.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                tr.partitions.add(e);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((OffsetForLeaderEpochResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    /**
     * InitProducerId: WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the cluster or
     * WRITE on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED.
     */
    private static Gate initProducerId(Ctx c, InitProducerIdRequestData req) {
        short error;
        if (req.transactionalId != null) {
            error = c.txn(WRITE, req.transactionalId) ? ErrorCodes.NONE : ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        } else {
            error = c.cluster(IDEMPOTENT_WRITE) || c.az.authorizeAny(c.principal, c.host, WRITE, TOPIC) ? ErrorCodes.NONE
                : ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
        }
        if (error == ErrorCodes.NONE) {
            return PASS;
        }
        InitProducerIdResponseData r = new InitProducerIdResponseData();
        r.errorCode = error;
        r.producerId = -1;
        r.producerEpoch = -1;
        return answer(r);
    }

    // ------------------------------------------------------------------ topic administration

    /**
     * CreateTopics: CREATE on the cluster, else CREATE on each topic (never CLUSTER_AUTHORIZATION_FAILED); a created
     * topic's configs are returned only with DESCRIBE_CONFIGS on it (else topicConfigErrorCode).
     */
    private static Gate createTopics(Ctx c, CreateTopicsRequestData req) {
        boolean clusterCreate = c.cluster(CREATE);
        List<CreateTopicsRequestData.CreatableTopic> kept = new ArrayList<>();
        List<CreateTopicsResponseData.CreatableTopicResult> refused = new ArrayList<>();
        for (CreateTopicsRequestData.CreatableTopic t : req.topics) {
            if (clusterCreate || c.topic(CREATE, t.name)) {
                kept.add(t);
                continue;
            }
            CreateTopicsResponseData.CreatableTopicResult res = new CreateTopicsResponseData.CreatableTopicResult();
            res.name = t.name;
            res.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
            res.errorMessage = "Authorization failed.";
            refused.add(res);
        }
        req.topics = kept;
        return after(resp -> {
            CreateTopicsResponseData r = (CreateTopicsResponseData) resp;
            for (CreateTopicsResponseData.CreatableTopicResult res : r.topics) {
                if (res.errorCode == ErrorCodes.NONE && !c.topic(DESCRIBE_CONFIGS, res.name)) {
                    res.configs.clear();
                    res.topicConfigErrorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                }
            }
            r.topics.addAll(refused);
            return r;
        });
    }

    private static Gate deleteTopics(Ctx c, DeleteTopicsRequestData req, short version) {
        List<DeleteTopicsResponseData.DeletableTopicResult> refused = new ArrayList<>();
        if (version < 6) {
            List<String> kept = new ArrayList<>();
            for (String n : req.topicNames) {
                if (c.topic(DELETE, n)) {
                    kept.add(n);
                } else {
                    refused.add(deleteRefused(n, Uuid.ZERO));
                }
            }
            req.topicNames = kept;
        } else {
            List<DeleteTopicsRequestData.DeleteTopicState> kept = new ArrayList<>();
            for (DeleteTopicsRequestData.DeleteTopicState t : req.topics) {
                String name = c.name(t.name, t.topicId);
                if (name == null || c.topic(DELETE, name)) {
                    kept.add(t);
                } else {
                    refused.add(deleteRefused(t.name, t.topicId));
                }
            }
            req.topics = kept;
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        return after(resp -> {
            ((DeleteTopicsResponseData) resp).responses.addAll(refused);
            return resp;
        });
    }

    private static DeleteTopicsResponseData.DeletableTopicResult deleteRefused(String name, Uuid id) {
        DeleteTopicsResponseData.DeletableTopicResult res = new DeleteTopicsResponseData.DeletableTopicResult();
        res.name = name;
        res.topicId = id == null ? Uuid.ZERO : id;
        res.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
        res.errorMessage = TOPIC_DENIED;
        return res;
    }

    private static Gate createPartitions(Ctx c, CreatePartitionsRequestData req) {
        List<CreatePartitionsRequestData.CreatePartitionsTopic> kept = new ArrayList<>();
        List<CreatePartitionsResponseData.CreatePartitionsTopicResult> refused = new ArrayList<>();
        for (CreatePartitionsRequestData.CreatePartitionsTopic t : req.topics) {
            if (c.topic(ALTER, t.name)) {
                kept.add(t);
                continue;
            }
            CreatePartitionsResponseData.CreatePartitionsTopicResult res = new CreatePartitionsResponseData.CreatePartitionsTopicResult();
            res.name = t.name;
            res.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
            res.errorMessage = TOPIC_DENIED;
            refused.add(res);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((CreatePartitionsResponseData) resp).results.addAll(refused);
            return resp;
        });
    }

    private static Gate deleteRecords(Ctx c, DeleteRecordsRequestData req) {
        List<DeleteRecordsRequestData.DeleteRecordsTopic> kept = new ArrayList<>();
        List<DeleteRecordsResponseData.DeleteRecordsTopicResult> refused = new ArrayList<>();
        for (DeleteRecordsRequestData.DeleteRecordsTopic t : req.topics) {
            if (c.topic(DELETE, t.name)) {
                kept.add(t);
                continue;
            }
            DeleteRecordsResponseData.DeleteRecordsTopicResult tr = new DeleteRecordsResponseData.DeleteRecordsTopicResult();
            tr.name = t.name;
            for (DeleteRecordsRequestData.DeleteRecordsPartition p : t.partitions) {
                DeleteRecordsResponseData.DeleteRecordsPartitionResult pr = new DeleteRecordsResponseData.DeleteRecordsPartitionResult();
                pr.partitionIndex = p.partitionIndex;
                pr.lowWatermark = -1;
                pr.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((DeleteRecordsResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    /** The error for config resource {@code type} ({@code name}) without {@code op}, or NONE. */
    private static short configError(Ctx c, byte type, String name, byte op) {
        return switch (type) {
            case AdminHandlers.TOPIC -> c.topic(op, name) ? ErrorCodes.NONE : ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
            case 32 -> c.group(op, name) ? ErrorCodes.NONE : ErrorCodes.GROUP_AUTHORIZATION_FAILED; // GROUP configs
            default -> c.cluster(op) ? ErrorCodes.NONE : ErrorCodes.CLUSTER_AUTHORIZATION_FAILED; // brokers, loggers
        };
    }

    private static String denied(short code) {
        return code == ErrorCodes.TOPIC_AUTHORIZATION_FAILED ? TOPIC_DENIED
            : code == ErrorCodes.GROUP_AUTHORIZATION_FAILED ? GROUP_DENIED : CLUSTER_DENIED;
    }

    private static Gate describeConfigs(Ctx c, DescribeConfigsRequestData req) {
        List<DescribeConfigsRequestData.DescribeConfigsResource> kept = new ArrayList<>();
        List<DescribeConfigsResponseData.DescribeConfigsResult> refused = new ArrayList<>();
        for (DescribeConfigsRequestData.DescribeConfigsResource res : req.resources) {
            short error = configError(c, res.resourceType, res.resourceName, DESCRIBE_CONFIGS);
            if (error == ErrorCodes.NONE) {
                kept.add(res);
                continue;
            }
            DescribeConfigsResponseData.DescribeConfigsResult r = new DescribeConfigsResponseData.DescribeConfigsResult();
            r.errorCode = error;
            r.errorMessage = denied(error);
            r.resourceType = res.resourceType;
            r.resourceName = res.resourceName;
            refused.add(r);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.resources = kept;
        return after(resp -> {
            ((DescribeConfigsResponseData) resp).results.addAll(refused);
            return resp;
        });
    }

    private static Gate alterConfigs(Ctx c, AlterConfigsRequestData req) {
        List<AlterConfigsRequestData.AlterConfigsResource> kept = new ArrayList<>();
        List<AlterConfigsResponseData.AlterConfigsResourceResponse> refused = new ArrayList<>();
        for (AlterConfigsRequestData.AlterConfigsResource res : req.resources) {
            short error = configError(c, res.resourceType, res.resourceName, ALTER_CONFIGS);
            if (error == ErrorCodes.NONE) {
                kept.add(res);
                continue;
            }
            AlterConfigsResponseData.AlterConfigsResourceResponse r = new AlterConfigsResponseData.AlterConfigsResourceResponse();
            r.errorCode = error;
            r.errorMessage = denied(error);
            r.resourceType = res.resourceType;
            r.resourceName = res.resourceName;
            refused.add(r);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.resources = kept;
        return after(resp -> {
            ((AlterConfigsResponseData) resp).responses.addAll(refused);
            return resp;
        });
    }

    private static Gate incrementalAlterConfigs(Ctx c, IncrementalAlterConfigsRequestData req) {
        List<IncrementalAlterConfigsRequestData.AlterConfigsResource> kept = new ArrayList<>();
        List<IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse> refused = new ArrayList<>();
        for (IncrementalAlterConfigsRequestData.AlterConfigsResource res : req.resources) {
            short error;
            if (res.resourceType == AdminHandlers.BROKER && NodeModeConfigs.names(res)) {
                // Maintenance and decommission: ALTER on the cluster (as ElectLeaders and AlterPartitionReassignments),
                // plus ALTER_CONFIGS when the resource also names ordinary broker configs.
                boolean others = !NodeModeConfigs.only(res);
                error = c.cluster(ALTER) && (!others || c.cluster(ALTER_CONFIGS)) ? ErrorCodes.NONE
                    : ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
            } else {
                error = configError(c, res.resourceType, res.resourceName, ALTER_CONFIGS);
            }
            if (error == ErrorCodes.NONE) {
                kept.add(res);
                continue;
            }
            IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse r =
                new IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse();
            r.errorCode = error;
            r.errorMessage = denied(error);
            r.resourceType = res.resourceType;
            r.resourceName = res.resourceName;
            refused.add(r);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.resources = kept;
        return after(resp -> {
            ((IncrementalAlterConfigsResponseData) resp).responses.addAll(refused);
            return resp;
        });
    }

    private static Gate describeProducers(Ctx c, DescribeProducersRequestData req) {
        List<DescribeProducersRequestData.TopicRequest> kept = new ArrayList<>();
        List<DescribeProducersResponseData.TopicResponse> refused = new ArrayList<>();
        for (DescribeProducersRequestData.TopicRequest t : req.topics) {
            if (c.topic(READ, t.name)) {
                kept.add(t);
                continue;
            }
            DescribeProducersResponseData.TopicResponse tr = new DescribeProducersResponseData.TopicResponse();
            tr.name = t.name;
            for (int p : t.partitionIndexes) {
                DescribeProducersResponseData.PartitionResponse pr = new DescribeProducersResponseData.PartitionResponse();
                pr.partitionIndex = p;
                pr.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                pr.errorMessage = TOPIC_DENIED;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((DescribeProducersResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    // ------------------------------------------------------------------ groups

    private static Gate readGroup(Ctx c, String groupId, java.util.function.Supplier<ProtocolMessage> denied) {
        return c.group(READ, groupId) ? PASS : answer(denied.get());
    }

    /** FindCoordinator: DESCRIBE on the group or the transactional id each key names. */
    private static Gate findCoordinator(Ctx c, FindCoordinatorRequestData req, short version) {
        boolean txn = req.keyType == 1;
        short error = txn ? ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED : ErrorCodes.GROUP_AUTHORIZATION_FAILED;
        String message = txn ? TXN_DENIED : GROUP_DENIED;
        if (version < 4) {
            boolean ok = txn ? c.txn(DESCRIBE, req.key) : c.group(DESCRIBE, req.key);
            if (ok) {
                return PASS;
            }
            FindCoordinatorResponseData r = new FindCoordinatorResponseData();
            r.errorCode = error;
            r.errorMessage = message;
            r.nodeId = -1;
            r.port = -1;
            return answer(r);
        }
        List<String> kept = new ArrayList<>();
        List<FindCoordinatorResponseData.Coordinator> refused = new ArrayList<>();
        for (String key : req.coordinatorKeys) {
            boolean ok = txn ? c.txn(DESCRIBE, key) : c.group(DESCRIBE, key);
            if (ok) {
                kept.add(key);
                continue;
            }
            FindCoordinatorResponseData.Coordinator co = new FindCoordinatorResponseData.Coordinator();
            co.key = key;
            co.nodeId = -1;
            co.port = -1;
            co.errorCode = error;
            co.errorMessage = message;
            refused.add(co);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (kept.isEmpty()) {
            FindCoordinatorResponseData r = new FindCoordinatorResponseData();
            r.coordinators.addAll(refused);
            return answer(r);
        }
        req.coordinatorKeys = kept;
        return after(resp -> {
            ((FindCoordinatorResponseData) resp).coordinators.addAll(refused);
            return resp;
        });
    }

    /** OffsetCommit: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED), then READ on each topic. */
    private static Gate offsetCommit(Ctx c, OffsetCommitRequestData req) {
        boolean groupOk = c.group(READ, req.groupId);
        List<OffsetCommitRequestData.OffsetCommitRequestTopic> kept = new ArrayList<>();
        List<OffsetCommitResponseData.OffsetCommitResponseTopic> refused = new ArrayList<>();
        for (OffsetCommitRequestData.OffsetCommitRequestTopic t : req.topics) {
            String name = c.name(t.name, t.topicId);
            short error = !groupOk ? ErrorCodes.GROUP_AUTHORIZATION_FAILED
                : name != null && !c.topic(READ, name) ? ErrorCodes.TOPIC_AUTHORIZATION_FAILED : ErrorCodes.NONE;
            if (error == ErrorCodes.NONE) {
                kept.add(t);
                continue;
            }
            OffsetCommitResponseData.OffsetCommitResponseTopic tr = new OffsetCommitResponseData.OffsetCommitResponseTopic();
            tr.name = t.name;
            tr.topicId = t.topicId;
            for (OffsetCommitRequestData.OffsetCommitRequestPartition p : t.partitions) {
                OffsetCommitResponseData.OffsetCommitResponsePartition pr = new OffsetCommitResponseData.OffsetCommitResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                pr.errorCode = error;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (!groupOk) {
            OffsetCommitResponseData r = new OffsetCommitResponseData();
            r.topics.addAll(refused);
            return answer(r);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((OffsetCommitResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    /**
     * OffsetFetch: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED for it), then DESCRIBE on each topic named
     * (else its partitions TOPIC_AUTHORIZATION_FAILED); when all topics are asked for, those the principal may not
     * describe are left out. Versions 8+ carry several groups, each checked alone.
     */
    private static Gate offsetFetch(Ctx c, OffsetFetchRequestData req, short version) {
        if (version >= 8) {
            List<OffsetFetchRequestData.OffsetFetchRequestGroup> kept = new ArrayList<>();
            List<OffsetFetchResponseData.OffsetFetchResponseGroup> refusedGroups = new ArrayList<>();
            java.util.Map<String, List<OffsetFetchResponseData.OffsetFetchResponseTopics>> refusedTopics =
                new java.util.HashMap<>();
            Set<String> allTopics = new HashSet<>();
            for (OffsetFetchRequestData.OffsetFetchRequestGroup g : req.groups) {
                if (!c.group(DESCRIBE, g.groupId)) {
                    OffsetFetchResponseData.OffsetFetchResponseGroup rg = new OffsetFetchResponseData.OffsetFetchResponseGroup();
                    rg.groupId = g.groupId;
                    rg.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
                    refusedGroups.add(rg);
                    continue;
                }
                kept.add(g);
                if (g.topics == null) {
                    allTopics.add(g.groupId);
                    continue;
                }
                List<OffsetFetchRequestData.OffsetFetchRequestTopics> keptTopics = new ArrayList<>();
                for (OffsetFetchRequestData.OffsetFetchRequestTopics t : g.topics) {
                    String name = c.name(t.name, t.topicId);
                    if (name == null || c.topic(DESCRIBE, name)) {
                        keptTopics.add(t);
                        continue;
                    }
                    OffsetFetchResponseData.OffsetFetchResponseTopics rt = new OffsetFetchResponseData.OffsetFetchResponseTopics();
                    rt.name = t.name;
                    rt.topicId = t.topicId;
                    for (int p : t.partitionIndexes) {
                        OffsetFetchResponseData.OffsetFetchResponsePartitions rp = new OffsetFetchResponseData.OffsetFetchResponsePartitions();
                        rp.partitionIndex = p;
                        rp.committedOffset = -1;
                        rp.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                        rt.partitions.add(rp);
                    }
                    refusedTopics.computeIfAbsent(g.groupId, k -> new ArrayList<>()).add(rt);
                }
                g.topics = keptTopics;
            }
            if (kept.isEmpty()) {
                OffsetFetchResponseData r = new OffsetFetchResponseData();
                r.groups.addAll(refusedGroups);
                return answer(r);
            }
            req.groups = kept;
            return after(resp -> {
                OffsetFetchResponseData r = (OffsetFetchResponseData) resp;
                for (OffsetFetchResponseData.OffsetFetchResponseGroup g : r.groups) {
                    if (allTopics.contains(g.groupId)) {
                        g.topics.removeIf(t -> {
                            String name = c.name(t.name, t.topicId);
                            return name != null && !c.topic(DESCRIBE, name);
                        });
                    }
                    List<OffsetFetchResponseData.OffsetFetchResponseTopics> extra = refusedTopics.get(g.groupId);
                    if (extra != null) {
                        g.topics.addAll(extra);
                    }
                }
                r.groups.addAll(refusedGroups);
                return r;
            });
        }
        if (!c.group(DESCRIBE, req.groupId)) {
            OffsetFetchResponseData r = new OffsetFetchResponseData();
            r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
            if (version < 2 && req.topics != null) {
                for (OffsetFetchRequestData.OffsetFetchRequestTopic t : req.topics) {
                    r.topics.add(offsetFetchRefused(t, ErrorCodes.GROUP_AUTHORIZATION_FAILED));
                }
            }
            return answer(r);
        }
        if (req.topics == null) {
            return after(resp -> {
                ((OffsetFetchResponseData) resp).topics.removeIf(t -> !c.topic(DESCRIBE, t.name));
                return resp;
            });
        }
        List<OffsetFetchRequestData.OffsetFetchRequestTopic> kept = new ArrayList<>();
        List<OffsetFetchResponseData.OffsetFetchResponseTopic> refused = new ArrayList<>();
        for (OffsetFetchRequestData.OffsetFetchRequestTopic t : req.topics) {
            if (c.topic(DESCRIBE, t.name)) {
                kept.add(t);
            } else {
                refused.add(offsetFetchRefused(t, ErrorCodes.TOPIC_AUTHORIZATION_FAILED));
            }
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((OffsetFetchResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    private static OffsetFetchResponseData.OffsetFetchResponseTopic offsetFetchRefused(
        OffsetFetchRequestData.OffsetFetchRequestTopic t, short error) {
        OffsetFetchResponseData.OffsetFetchResponseTopic rt = new OffsetFetchResponseData.OffsetFetchResponseTopic();
        rt.name = t.name;
        for (int p : t.partitionIndexes) {
            OffsetFetchResponseData.OffsetFetchResponsePartition rp = new OffsetFetchResponseData.OffsetFetchResponsePartition();
            rp.partitionIndex = p;
            rp.committedOffset = -1;
            rp.errorCode = error;
            rt.partitions.add(rp);
        }
        return rt;
    }

    private static Gate describeGroups(Ctx c, DescribeGroupsRequestData req) {
        List<String> kept = new ArrayList<>();
        List<DescribeGroupsResponseData.DescribedGroup> refused = new ArrayList<>();
        for (String g : req.groups) {
            if (c.group(DESCRIBE, g)) {
                kept.add(g);
                continue;
            }
            DescribeGroupsResponseData.DescribedGroup d = new DescribeGroupsResponseData.DescribedGroup();
            d.groupId = g;
            d.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
            refused.add(d);
        }
        boolean ops = req.includeAuthorizedOperations;
        if (refused.isEmpty() && !ops) {
            return PASS;
        }
        if (kept.isEmpty()) {
            DescribeGroupsResponseData r = new DescribeGroupsResponseData();
            r.groups.addAll(refused);
            return answer(r);
        }
        req.groups = kept;
        return after(resp -> {
            DescribeGroupsResponseData r = (DescribeGroupsResponseData) resp;
            if (ops) {
                for (DescribeGroupsResponseData.DescribedGroup d : r.groups) {
                    d.authorizedOperations = c.az.authorizedOperations(c.principal, c.host, GROUP, d.groupId,
                        Authorizer.GROUP_OPERATIONS);
                }
            }
            r.groups.addAll(refused);
            return r;
        });
    }

    /** ListGroups: DESCRIBE on the cluster lists all; else only the groups the principal may describe. */
    private static Gate listGroups(Ctx c) {
        if (c.cluster(DESCRIBE)) {
            return PASS;
        }
        return after(resp -> {
            ((ListGroupsResponseData) resp).groups.removeIf(g -> !c.group(DESCRIBE, g.groupId));
            return resp;
        });
    }

    private static Gate deleteGroups(Ctx c, DeleteGroupsRequestData req) {
        List<String> kept = new ArrayList<>();
        List<DeleteGroupsResponseData.DeletableGroupResult> refused = new ArrayList<>();
        for (String g : req.groupsNames) {
            if (c.group(DELETE, g)) {
                kept.add(g);
                continue;
            }
            DeleteGroupsResponseData.DeletableGroupResult d = new DeleteGroupsResponseData.DeletableGroupResult();
            d.groupId = g;
            d.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
            refused.add(d);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (kept.isEmpty()) {
            DeleteGroupsResponseData r = new DeleteGroupsResponseData();
            r.results.addAll(refused);
            return answer(r);
        }
        req.groupsNames = kept;
        return after(resp -> {
            ((DeleteGroupsResponseData) resp).results.addAll(refused);
            return resp;
        });
    }

    /** OffsetDelete: DELETE on the group (else GROUP_AUTHORIZATION_FAILED), then READ on each topic. */
    private static Gate offsetDelete(Ctx c, OffsetDeleteRequestData req) {
        if (!c.group(DELETE, req.groupId)) {
            OffsetDeleteResponseData r = new OffsetDeleteResponseData();
            r.errorCode = ErrorCodes.GROUP_AUTHORIZATION_FAILED;
            return answer(r);
        }
        List<OffsetDeleteRequestData.OffsetDeleteRequestTopic> kept = new ArrayList<>();
        List<OffsetDeleteResponseData.OffsetDeleteResponseTopic> refused = new ArrayList<>();
        for (OffsetDeleteRequestData.OffsetDeleteRequestTopic t : req.topics) {
            if (c.topic(READ, t.name)) {
                kept.add(t);
                continue;
            }
            OffsetDeleteResponseData.OffsetDeleteResponseTopic tr = new OffsetDeleteResponseData.OffsetDeleteResponseTopic();
            tr.name = t.name;
            for (OffsetDeleteRequestData.OffsetDeleteRequestPartition p : t.partitions) {
                OffsetDeleteResponseData.OffsetDeleteResponsePartition pr = new OffsetDeleteResponseData.OffsetDeleteResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                pr.errorCode = ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        req.topics = kept;
        return after(resp -> {
            ((OffsetDeleteResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    // ------------------------------------------------------------------ ACL APIs

    private static DescribeAclsResponseData describeAclsDenied() {
        DescribeAclsResponseData r = new DescribeAclsResponseData();
        r.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
        r.errorMessage = CLUSTER_DENIED;
        return r;
    }

    private static CreateAclsResponseData createAclsDenied(CreateAclsRequestData req) {
        CreateAclsResponseData r = new CreateAclsResponseData();
        for (int i = 0; i < req.creations.size(); i++) {
            CreateAclsResponseData.AclCreationResult res = new CreateAclsResponseData.AclCreationResult();
            res.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
            res.errorMessage = CLUSTER_DENIED;
            r.results.add(res);
        }
        return r;
    }

    private static DeleteAclsResponseData deleteAclsDenied(DeleteAclsRequestData req) {
        DeleteAclsResponseData r = new DeleteAclsResponseData();
        for (int i = 0; i < req.filters.size(); i++) {
            DeleteAclsResponseData.DeleteAclsFilterResult res = new DeleteAclsResponseData.DeleteAclsFilterResult();
            res.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
            res.errorMessage = CLUSTER_DENIED;
            r.filterResults.add(res);
        }
        return r;
    }

    // ------------------------------------------------------------------ cluster-wide administration

    /** WriteTxnMarkers (between brokers): ALTER on the cluster, else CLUSTER_ACTION, else every partition refused. */
    private static Gate writeTxnMarkers(Ctx c, WriteTxnMarkersRequestData req) {
        if (c.cluster(ALTER) || c.cluster(CLUSTER_ACTION)) {
            return PASS;
        }
        WriteTxnMarkersResponseData r = new WriteTxnMarkersResponseData();
        for (WriteTxnMarkersRequestData.WritableTxnMarker m : req.markers) {
            WriteTxnMarkersResponseData.WritableTxnMarkerResult mr = new WriteTxnMarkersResponseData.WritableTxnMarkerResult();
            mr.producerId = m.producerId;
            for (WriteTxnMarkersRequestData.WritableTxnMarkerTopic t : m.topics) {
                WriteTxnMarkersResponseData.WritableTxnMarkerTopicResult tr = new WriteTxnMarkersResponseData.WritableTxnMarkerTopicResult();
                tr.name = t.name;
                for (int p : t.partitionIndexes) {
                    WriteTxnMarkersResponseData.WritableTxnMarkerPartitionResult pr =
                        new WriteTxnMarkersResponseData.WritableTxnMarkerPartitionResult();
                    pr.partitionIndex = p;
                    pr.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
                    tr.partitions.add(pr);
                }
                mr.topics.add(tr);
            }
            r.markers.add(mr);
        }
        return answer(r);
    }

    /** AlterUserScramCredentials: ALTER on the cluster, else each user named is refused. */
    private static Gate alterUserScramCredentials(Ctx c, AlterUserScramCredentialsRequestData req) {
        if (c.cluster(ALTER)) {
            return PASS;
        }
        java.util.LinkedHashSet<String> users = new java.util.LinkedHashSet<>();
        req.deletions.forEach(d -> users.add(d.name));
        req.upsertions.forEach(u -> users.add(u.name));
        AlterUserScramCredentialsResponseData r = new AlterUserScramCredentialsResponseData();
        for (String u : users) {
            AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult res =
                new AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult();
            res.user = u;
            res.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
            res.errorMessage = CLUSTER_DENIED;
            r.results.add(res);
        }
        return answer(r);
    }

    /** AlterClientQuotas: ALTER_CONFIGS on the cluster, else every entry refused. */
    private static Gate alterClientQuotas(Ctx c, AlterClientQuotasRequestData req) {
        if (c.cluster(ALTER_CONFIGS)) {
            return PASS;
        }
        AlterClientQuotasResponseData r = new AlterClientQuotasResponseData();
        for (AlterClientQuotasRequestData.EntryData e : req.entries) {
            AlterClientQuotasResponseData.EntryData re = new AlterClientQuotasResponseData.EntryData();
            re.errorCode = ErrorCodes.CLUSTER_AUTHORIZATION_FAILED;
            re.errorMessage = CLUSTER_DENIED;
            for (AlterClientQuotasRequestData.EntityData en : e.entity) {
                AlterClientQuotasResponseData.EntityData ed = new AlterClientQuotasResponseData.EntityData();
                ed.entityType = en.entityType;
                ed.entityName = en.entityName;
                re.entity.add(ed);
            }
            r.entries.add(re);
        }
        return answer(r);
    }

    // ------------------------------------------------------------------ transactions

    /**
     * AddPartitionsToTxn: WRITE on the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for all its
     * partitions) and WRITE on each topic; when some topic is refused, Kafka fails the whole transaction's request:
     * the refused partitions get TOPIC_AUTHORIZATION_FAILED and the others OPERATION_NOT_ATTEMPTED.
     */
    private static Gate addPartitionsToTxn(Ctx c, AddPartitionsToTxnRequestData req, short version) {
        if (version <= 3) {
            List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> results =
                txnTopicResults(c, req.v3AndBelowTransactionalId, req.v3AndBelowTopics);
            if (results == null) {
                return PASS;
            }
            AddPartitionsToTxnResponseData r = new AddPartitionsToTxnResponseData();
            r.resultsByTopicV3AndBelow.addAll(results);
            return answer(r);
        }
        List<AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction> kept = new ArrayList<>();
        List<AddPartitionsToTxnResponseData.AddPartitionsToTxnResult> refused = new ArrayList<>();
        for (AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction t : req.transactions) {
            List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> results =
                txnTopicResults(c, t.transactionalId, t.topics);
            if (results == null) {
                kept.add(t);
                continue;
            }
            AddPartitionsToTxnResponseData.AddPartitionsToTxnResult res = new AddPartitionsToTxnResponseData.AddPartitionsToTxnResult();
            res.transactionalId = t.transactionalId;
            res.topicResults.addAll(results);
            refused.add(res);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (kept.isEmpty()) {
            AddPartitionsToTxnResponseData r = new AddPartitionsToTxnResponseData();
            r.resultsByTransaction.addAll(refused);
            return answer(r);
        }
        req.transactions = kept;
        return after(resp -> {
            ((AddPartitionsToTxnResponseData) resp).resultsByTransaction.addAll(refused);
            return resp;
        });
    }

    /** Null when the transaction may add all its topics, else every partition's error. */
    private static List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> txnTopicResults(
        Ctx c, String txnId, List<AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic> topics) {
        boolean txnOk = c.txn(WRITE, txnId);
        boolean anyRefused = !txnOk;
        boolean[] topicOk = new boolean[topics.size()];
        for (int i = 0; i < topics.size(); i++) {
            topicOk[i] = c.topic(WRITE, topics.get(i).name);
            anyRefused |= !topicOk[i];
        }
        if (!anyRefused) {
            return null;
        }
        List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> out = new ArrayList<>();
        for (int i = 0; i < topics.size(); i++) {
            AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult tr = new AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult();
            tr.name = topics.get(i).name;
            short error = !txnOk ? ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                : !topicOk[i] ? ErrorCodes.TOPIC_AUTHORIZATION_FAILED : ErrorCodes.OPERATION_NOT_ATTEMPTED;
            for (int p : topics.get(i).partitions) {
                AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult pr =
                    new AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult();
                pr.partitionIndex = p;
                pr.partitionErrorCode = error;
                tr.resultsByPartition.add(pr);
            }
            out.add(tr);
        }
        return out;
    }

    private static Gate addOffsetsToTxn(Ctx c, AddOffsetsToTxnRequestData req) {
        short error = !c.txn(WRITE, req.transactionalId) ? ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            : !c.group(READ, req.groupId) ? ErrorCodes.GROUP_AUTHORIZATION_FAILED : ErrorCodes.NONE;
        if (error == ErrorCodes.NONE) {
            return PASS;
        }
        AddOffsetsToTxnResponseData r = new AddOffsetsToTxnResponseData();
        r.errorCode = error;
        return answer(r);
    }

    /** TxnOffsetCommit: WRITE on the transactional id, READ on the group, READ on each topic. */
    private static Gate txnOffsetCommit(Ctx c, TxnOffsetCommitRequestData req) {
        short all = !c.txn(WRITE, req.transactionalId) ? ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            : !c.group(READ, req.groupId) ? ErrorCodes.GROUP_AUTHORIZATION_FAILED : ErrorCodes.NONE;
        List<TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic> kept = new ArrayList<>();
        List<TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic> refused = new ArrayList<>();
        for (TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic t : req.topics) {
            short error = all != ErrorCodes.NONE ? all
                : c.topic(READ, t.name) ? ErrorCodes.NONE : ErrorCodes.TOPIC_AUTHORIZATION_FAILED;
            if (error == ErrorCodes.NONE) {
                kept.add(t);
                continue;
            }
            TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic tr = new TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic();
            tr.name = t.name;
            for (TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition p : t.partitions) {
                TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition pr =
                    new TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                pr.errorCode = error;
                tr.partitions.add(pr);
            }
            refused.add(tr);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (all != ErrorCodes.NONE || kept.isEmpty()) {
            TxnOffsetCommitResponseData r = new TxnOffsetCommitResponseData();
            r.topics.addAll(refused);
            return answer(r);
        }
        req.topics = kept;
        return after(resp -> {
            ((TxnOffsetCommitResponseData) resp).topics.addAll(refused);
            return resp;
        });
    }

    private static Gate describeTransactions(Ctx c, DescribeTransactionsRequestData req) {
        List<String> kept = new ArrayList<>();
        List<DescribeTransactionsResponseData.TransactionState> refused = new ArrayList<>();
        for (String id : req.transactionalIds) {
            if (c.txn(DESCRIBE, id)) {
                kept.add(id);
                continue;
            }
            DescribeTransactionsResponseData.TransactionState s = new DescribeTransactionsResponseData.TransactionState();
            s.transactionalId = id;
            s.errorCode = ErrorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            refused.add(s);
        }
        if (refused.isEmpty()) {
            return PASS;
        }
        if (kept.isEmpty()) {
            DescribeTransactionsResponseData r = new DescribeTransactionsResponseData();
            r.transactionStates.addAll(refused);
            return answer(r);
        }
        req.transactionalIds = kept;
        return after(resp -> {
            ((DescribeTransactionsResponseData) resp).transactionStates.addAll(refused);
            return resp;
        });
    }
}
