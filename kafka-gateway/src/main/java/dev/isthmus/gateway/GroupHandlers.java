package dev.isthmus.gateway;

import dev.isthmus.gateway.group.GroupApi;
import dev.isthmus.gateway.group.TopicPartition;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.DeleteGroupsRequestData;
import dev.isthmus.gateway.protocol.message.DeleteGroupsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeGroupsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeGroupsResponseData;
import dev.isthmus.gateway.protocol.message.FindCoordinatorRequestData;
import dev.isthmus.gateway.protocol.message.FindCoordinatorResponseData;
import dev.isthmus.gateway.protocol.message.HeartbeatRequestData;
import dev.isthmus.gateway.protocol.message.HeartbeatResponseData;
import dev.isthmus.gateway.protocol.message.JoinGroupRequestData;
import dev.isthmus.gateway.protocol.message.JoinGroupResponseData;
import dev.isthmus.gateway.protocol.message.LeaveGroupRequestData;
import dev.isthmus.gateway.protocol.message.LeaveGroupResponseData;
import dev.isthmus.gateway.protocol.message.ListGroupsRequestData;
import dev.isthmus.gateway.protocol.message.ListGroupsResponseData;
import dev.isthmus.gateway.protocol.message.OffsetCommitRequestData;
import dev.isthmus.gateway.protocol.message.OffsetCommitResponseData;
import dev.isthmus.gateway.protocol.message.OffsetDeleteRequestData;
import dev.isthmus.gateway.protocol.message.OffsetDeleteResponseData;
import dev.isthmus.gateway.protocol.message.OffsetFetchRequestData;
import dev.isthmus.gateway.protocol.message.OffsetFetchResponseData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.SyncGroupRequestData;
import dev.isthmus.gateway.protocol.message.SyncGroupResponseData;
import dev.isthmus.gateway.protocol.message.TxnOffsetCommitRequestData;
import dev.isthmus.gateway.protocol.message.TxnOffsetCommitResponseData;
import dev.isthmus.gateway.txn.TxnErrors;
import dev.isthmus.gateway.txn.TxnPartition;
import dev.isthmus.uring.shard.Promise;

import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Function;

import static dev.isthmus.gateway.GroupCoordinator.OFFSETS_TOPIC;

/**
 * The group APIs on the connection's shard, the request layer: each wire request of any version becomes a
 * {@link GroupApi} value, is routed to the shard that owns its group's {@code __consumer_offsets} partition
 * (creating the internal topic on first use), runs on that shard's {@link GroupCoordinator} (its group state
 * machine), and its answer becomes the wire response of the request's version. What the request layer decides
 * stays here, as in Kafka's {@code KafkaApis}: unknown topics in an OffsetCommit, JoinGroup v0's rebalance timeout,
 * the v0-2 LeaveGroup error at the top level. Bytes fields are copied out of the connection's receive buffers
 * before they travel, so no shard holds another shard's memory.
 */
final class GroupHandlers {
    private static final System.Logger LOG = System.getLogger(GroupHandlers.class.getName());

    private final Broker broker;

    GroupHandlers(Broker broker) {
        this.broker = broker;
    }

    Promise<ProtocolMessage> handle(ShardState st, ApiKeys api, short version, ProtocolMessage request,
                                    RequestHeaderData header, String clientHost, String listener) {
        return switch (api) {
            case FIND_COORDINATOR -> findCoordinator(st, (FindCoordinatorRequestData) request, version, listener);
            case JOIN_GROUP -> join(st, (JoinGroupRequestData) request, version, header.clientId, clientHost);
            case SYNC_GROUP -> sync(st, (SyncGroupRequestData) request);
            case HEARTBEAT -> heartbeat(st, (HeartbeatRequestData) request);
            case LEAVE_GROUP -> leave(st, (LeaveGroupRequestData) request, version);
            case OFFSET_COMMIT -> commit(st, (OffsetCommitRequestData) request, version);
            case TXN_OFFSET_COMMIT -> txnCommit(st, (TxnOffsetCommitRequestData) request, version);
            case OFFSET_FETCH -> fetch(st, (OffsetFetchRequestData) request, version);
            case DESCRIBE_GROUPS -> describe(st, (DescribeGroupsRequestData) request, version);
            case LIST_GROUPS -> list(st, (ListGroupsRequestData) request);
            case DELETE_GROUPS -> delete(st, (DeleteGroupsRequestData) request);
            case OFFSET_DELETE -> deleteOffsets(st, (OffsetDeleteRequestData) request);
            default -> Promise.failed(new IllegalStateException(api + " is not a group API"));
        };
    }

    /** The internal offsets topic, created through the controller on first use; null if it cannot be. */
    private Promise<TopicTable.Topic> offsetsTopic(ShardState st) {
        TopicTable.Topic t = st.topics.get(OFFSETS_TOPIC);
        if (t != null) {
            return Promise.completed(t);
        }
        // Compacted, never deleted by retention: the latest commit of every group and partition must stay.
        return broker.createTopic(st.shard, OFFSETS_TOPIC, broker.config().offsetsTopicPartitions(), -1,
                Map.of("cleanup.policy", "compact", "segment.bytes", Long.toString(100L << 20)), List.of())
            .flatMap(o -> o instanceof TopicTable.Topic created ? Promise.completed(created)
                : st.shard.submitTo(0, s -> broker.state(0).topics.get(OFFSETS_TOPIC)));
    }

    /**
     * Runs {@code work(coordinator, offsetsPartition)} on the shard owning {@code groupId}'s offsets partition,
     * once that partition is loaded; {@code error} builds the answer when the coordinator is unavailable.
     */
    private <T> Promise<T> onGroup(ShardState st, String groupId, BiFunction<GroupCoordinator, Integer, Promise<T>> work,
                                   Function<Short, T> error) {
        return offsetsTopic(st).flatMap(t -> {
            if (t == null) {
                return Promise.completed(error.apply(ErrorCodes.COORDINATOR_NOT_AVAILABLE));
            }
            int p = GroupCoordinator.partitionFor(groupId == null ? "" : groupId, t.partitions());
            int shard = broker.shardOf(t, p);
            if (shard < 0) {
                return Promise.completed(error.apply(ErrorCodes.NOT_COORDINATOR));
            }
            return st.shard.submitToAsync(shard, s -> {
                GroupCoordinator c = broker.state(s.id()).groups;
                return c.ready(p).flatMap(part -> work.apply(c, p));
            });
        }).recover(f -> {
            if (f instanceof GroupCoordinator.Unavailable u) {
                return error.apply(u.code);
            }
            LOG.log(System.Logger.Level.WARNING, "group " + groupId + ": coordinator unavailable: " + f);
            return error.apply(ErrorCodes.COORDINATOR_NOT_AVAILABLE);
        });
    }

    // ------------------------------------------------------------------ FindCoordinator

    private Promise<ProtocolMessage> findCoordinator(ShardState st, FindCoordinatorRequestData req, short version,
                                                     String listener) {
        if (req.keyType == 1) {
            return broker.handlers().transactions().findCoordinator(st, req, version, listener); // TRANSACTION
        }
        FindCoordinatorResponseData r = new FindCoordinatorResponseData();
        List<String> keys = version >= 4 ? req.coordinatorKeys : List.of(req.key == null ? "" : req.key);
        Promise<TopicTable.Topic> topic = req.keyType == 0 ? offsetsTopic(st) : Promise.completed(null);
        return topic.recover(f -> null).map(t -> {
            for (String key : keys) {
                FindCoordinatorResponseData.Coordinator c = new FindCoordinatorResponseData.Coordinator();
                c.key = key;
                c.errorMessage = null;
                if (req.keyType != 0) {
                    c.errorCode = ErrorCodes.COORDINATOR_NOT_AVAILABLE;
                    c.errorMessage = (req.keyType == 1 ? "transactions" : "share groups")
                        + " are not supported by this broker";
                    c.nodeId = -1;
                    c.host = "";
                    c.port = -1;
                } else if (t == null) {
                    c.errorCode = ErrorCodes.COORDINATOR_NOT_AVAILABLE;
                    c.errorMessage = "the " + OFFSETS_TOPIC + " topic could not be created";
                    c.nodeId = -1;
                    c.host = "";
                    c.port = -1;
                } else {
                    // The coordinator of a group is the leader of its offsets partition.
                    int p = GroupCoordinator.partitionFor(key == null ? "" : key, t.partitions());
                    int[] leader = st.leaders.get(t.partition(p).groupId());
                    MetadataResponseData.MetadataResponseBroker b = null;
                    if (leader != null && leader[0] >= 0) {
                        for (MetadataResponseData.MetadataResponseBroker mb : broker.handlers().brokers(st, listener)) {
                            if (mb.nodeId == leader[0]) {
                                b = mb;
                            }
                        }
                    }
                    if (b == null) {
                        c.errorCode = ErrorCodes.COORDINATOR_NOT_AVAILABLE;
                        c.errorMessage = OFFSETS_TOPIC + "-" + p + " has no known leader yet";
                        c.nodeId = -1;
                        c.host = "";
                        c.port = -1;
                    } else {
                        c.nodeId = b.nodeId;
                        c.host = b.host;
                        c.port = b.port;
                    }
                }
                r.coordinators.add(c);
            }
            if (version < 4) {
                FindCoordinatorResponseData.Coordinator c = r.coordinators.get(0);
                r.errorCode = c.errorCode;
                r.errorMessage = c.errorMessage;
                r.nodeId = c.nodeId;
                r.host = c.host;
                r.port = c.port;
                r.coordinators.clear();
            }
            return r;
        });
    }

    // ------------------------------------------------------------------ membership

    private Promise<ProtocolMessage> join(ShardState st, JoinGroupRequestData req, short version, String clientId,
                                          String clientHost) {
        List<GroupApi.Protocol> protocols = new ArrayList<>(req.protocols.size());
        for (JoinGroupRequestData.JoinGroupRequestProtocol p : req.protocols) {
            protocols.add(new GroupApi.Protocol(p.name, bytes(p.metadata)));
        }
        // JoinGroup v0 has no rebalance timeout: the session timeout stands in for it (as in Kafka).
        int rebalanceTimeoutMs = version == 0 || req.rebalanceTimeoutMs < 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs;
        GroupApi.JoinRequest r = new GroupApi.JoinRequest(req.groupId, req.memberId == null ? "" : req.memberId,
            req.groupInstanceId, clientId == null ? "" : clientId, clientHost, req.sessionTimeoutMs, rebalanceTimeoutMs,
            req.protocolType, protocols, version);
        return onGroup(st, req.groupId, (c, p) -> c.join(p, r), code -> GroupApi.JoinResponse.error(code, r.memberId()))
            .map(res -> {
                JoinGroupResponseData out = new JoinGroupResponseData();
                out.errorCode = res.errorCode();
                out.generationId = res.generationId();
                out.protocolType = res.protocolType();
                out.protocolName = res.protocolName();
                if (version < 7 && out.protocolName == null) {
                    out.protocolName = ""; // nullable only from v7: Kafka writes "" before
                }
                out.leader = res.leader() == null ? "" : res.leader();
                out.skipAssignment = res.skipAssignment();
                out.memberId = res.memberId() == null ? "" : res.memberId();
                for (GroupApi.JoinedMember m : res.members()) {
                    JoinGroupResponseData.JoinGroupResponseMember jm = new JoinGroupResponseData.JoinGroupResponseMember();
                    jm.memberId = m.memberId();
                    jm.groupInstanceId = m.groupInstanceId();
                    jm.metadata = ByteSlice.of(m.metadata());
                    out.members.add(jm);
                }
                return (ProtocolMessage) out;
            });
    }

    private Promise<ProtocolMessage> sync(ShardState st, SyncGroupRequestData req) {
        Map<String, byte[]> assignments = new HashMap<>();
        for (SyncGroupRequestData.SyncGroupRequestAssignment a : req.assignments) {
            assignments.put(a.memberId, bytes(a.assignment));
        }
        GroupApi.SyncRequest r = new GroupApi.SyncRequest(req.groupId, req.memberId, req.groupInstanceId,
            req.generationId, req.protocolType, req.protocolName, assignments);
        return onGroup(st, req.groupId, (c, p) -> c.sync(p, r), GroupApi.SyncResponse::error).map(res -> {
            SyncGroupResponseData out = new SyncGroupResponseData();
            out.errorCode = res.errorCode();
            out.protocolType = res.protocolType();
            out.protocolName = res.protocolName();
            out.assignment = ByteSlice.of(res.assignment());
            return (ProtocolMessage) out;
        });
    }

    private Promise<ProtocolMessage> heartbeat(ShardState st, HeartbeatRequestData req) {
        GroupApi.HeartbeatRequest r = new GroupApi.HeartbeatRequest(req.groupId, req.memberId, req.groupInstanceId,
            req.generationId);
        return onGroup(st, req.groupId, (c, p) -> c.heartbeat(p, r), code -> code).map(code -> {
            HeartbeatResponseData out = new HeartbeatResponseData();
            out.errorCode = code;
            return (ProtocolMessage) out;
        });
    }

    private Promise<ProtocolMessage> leave(ShardState st, LeaveGroupRequestData req, short version) {
        List<GroupApi.LeavingMember> who = new ArrayList<>();
        if (version < 3) {
            who.add(new GroupApi.LeavingMember(req.memberId == null ? "" : req.memberId, null));
        } else {
            for (LeaveGroupRequestData.MemberIdentity id : req.members) {
                who.add(new GroupApi.LeavingMember(id.memberId == null ? "" : id.memberId, id.groupInstanceId));
            }
        }
        GroupApi.LeaveRequest r = new GroupApi.LeaveRequest(req.groupId, who);
        return onGroup(st, req.groupId, (c, p) -> c.leave(p, r), code -> new GroupApi.LeaveResponse(code, List.of()))
            .map(res -> {
                LeaveGroupResponseData out = new LeaveGroupResponseData();
                out.errorCode = res.errorCode();
                for (GroupApi.LeftMember m : res.members()) {
                    LeaveGroupResponseData.MemberResponse mr = new LeaveGroupResponseData.MemberResponse();
                    mr.memberId = m.memberId();
                    mr.groupInstanceId = m.groupInstanceId();
                    mr.errorCode = m.errorCode();
                    out.members.add(mr);
                }
                if (version < 3) {
                    // One member, its error at the top level (Kafka's LeaveGroupResponse for v0-2).
                    if (out.errorCode == ErrorCodes.NONE && !out.members.isEmpty()) {
                        out.errorCode = out.members.get(0).errorCode;
                    }
                    out.members.clear();
                }
                return (ProtocolMessage) out;
            });
    }

    // ------------------------------------------------------------------ offsets

    private Promise<ProtocolMessage> commit(ShardState st, OffsetCommitRequestData req, short version) {
        OffsetCommitResponseData r = new OffsetCommitResponseData();
        List<GroupApi.OffsetEntry> entries = new ArrayList<>();
        List<OffsetCommitResponseData.OffsetCommitResponsePartition> slots = new ArrayList<>();
        for (OffsetCommitRequestData.OffsetCommitRequestTopic t : req.topics) {
            OffsetCommitResponseData.OffsetCommitResponseTopic tr = new OffsetCommitResponseData.OffsetCommitResponseTopic();
            tr.name = t.name;
            tr.topicId = t.topicId;
            r.topics.add(tr);
            TopicTable.Topic topic = version >= 10 ? st.topics.get(t.topicId) : t.name == null ? null : st.topics.get(t.name);
            for (OffsetCommitRequestData.OffsetCommitRequestPartition p : t.partitions) {
                OffsetCommitResponseData.OffsetCommitResponsePartition pr = new OffsetCommitResponseData.OffsetCommitResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                tr.partitions.add(pr);
                if (topic == null || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions()) {
                    // Kafka's request layer answers commits for partitions it does not know before the coordinator.
                    pr.errorCode = version >= 10 && topic == null ? ErrorCodes.UNKNOWN_TOPIC_ID
                        : ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                entries.add(new GroupApi.OffsetEntry(new TopicPartition(topic.name(), p.partitionIndex),
                    p.committedOffset, p.committedLeaderEpoch, p.committedMetadata));
                slots.add(pr);
            }
        }
        if (entries.isEmpty()) {
            return Promise.completed(r);
        }
        if (req.groupId == null || req.groupId.isEmpty()) {
            slots.forEach(pr -> pr.errorCode = ErrorCodes.INVALID_GROUP_ID);
            return Promise.completed(r);
        }
        GroupApi.OffsetCommitRequest c = new GroupApi.OffsetCommitRequest(req.groupId, req.generationIdOrMemberEpoch,
            req.memberId == null ? "" : req.memberId, req.groupInstanceId, entries, version);
        return onGroup(st, req.groupId, (co, p) -> co.commit(p, c), code -> {
            short[] all = new short[entries.size()];
            java.util.Arrays.fill(all, code);
            return new GroupApi.OffsetCommitResponse(all);
        }).map(res -> {
            short[] codes = res.errorCodes();
            for (int i = 0; i < codes.length; i++) {
                slots.get(i).errorCode = codes[i];
            }
            return (ProtocolMessage) r;
        });
    }

    /**
     * TxnOffsetCommit (KIP-98, KIP-447): offsets committed inside a producer's transaction. Unknown partitions are
     * answered here, as Kafka's request layer does. Then the group's offsets partition is checked with the
     * transaction's coordinator, as Kafka 4's group coordinator does before a transactional write: v5 (transaction
     * version 2) adds it to the transaction (the implicit AddOffsetsToTxn of KIP-890 part 2), v0-4 verify that
     * AddOffsetsToTxn put it there (part 1), so no offsets are written outside the transaction that will carry the
     * marker. Then the group's state machine validates the member (v3+) and writes the offsets as a transactional
     * batch of the producer; they stay pending (OffsetFetch RequireStable answers UNSTABLE_OFFSET_COMMIT) until the
     * marker lands in the offsets partition ({@link GroupCoordinator#markerWritten}).
     *
     * <p>The coordinator's answers map as Kafka maps them for this API: PRODUCER_FENCED to INVALID_PRODUCER_EPOCH,
     * TRANSACTION_ABORTABLE to INVALID_TXN_STATE before v4, and an unreachable, loading or busy coordinator
     * (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, no answer) to
     * COORDINATOR_NOT_AVAILABLE, which the client retries after finding the group coordinator again.
     */
    private Promise<ProtocolMessage> txnCommit(ShardState st, TxnOffsetCommitRequestData req, short version) {
        TxnOffsetCommitResponseData r = new TxnOffsetCommitResponseData();
        List<GroupApi.OffsetEntry> entries = new ArrayList<>();
        List<TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition> slots = new ArrayList<>();
        for (TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic t : req.topics) {
            TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic tr =
                new TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic();
            tr.name = t.name;
            r.topics.add(tr);
            TopicTable.Topic topic = t.name == null ? null : st.topics.get(t.name);
            for (TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition p : t.partitions) {
                TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition pr =
                    new TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                tr.partitions.add(pr);
                if (topic == null || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions()) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                entries.add(new GroupApi.OffsetEntry(new TopicPartition(topic.name(), p.partitionIndex),
                    p.committedOffset, version >= 2 ? p.committedLeaderEpoch : -1, p.committedMetadata));
                slots.add(pr);
            }
        }
        if (entries.isEmpty()) {
            return Promise.completed(r);
        }
        if (req.groupId == null || req.groupId.isEmpty()) {
            slots.forEach(pr -> pr.errorCode = ErrorCodes.INVALID_GROUP_ID);
            return Promise.completed(r);
        }
        if (req.transactionalId == null || req.transactionalId.isEmpty() || req.producerId < 0
            || req.producerEpoch < 0) {
            slots.forEach(pr -> pr.errorCode = ErrorCodes.INVALID_REQUEST);
            return Promise.completed(r);
        }
        GroupApi.TxnOffsetCommitRequest c = new GroupApi.TxnOffsetCommitRequest(req.groupId, req.producerId,
            req.producerEpoch, version >= 3 ? req.generationId : -1, version >= 3 && req.memberId != null
                ? req.memberId : "", version >= 3 ? req.groupInstanceId : null, entries);
        return offsetsTopic(st).flatMap(t -> {
            if (t == null) {
                return Promise.completed(ErrorCodes.COORDINATOR_NOT_AVAILABLE);
            }
            TxnPartition tp = new TxnPartition(OFFSETS_TOPIC, GroupCoordinator.partitionFor(req.groupId, t.partitions()));
            return broker.handlers().transactions().addOrVerify(st, req.transactionalId, req.producerId,
                req.producerEpoch, tp, version < 5);
        }).recover(f -> ErrorCodes.COORDINATOR_NOT_AVAILABLE).flatMap(verified -> {
            short code = verification(verified, version);
            if (code != ErrorCodes.NONE) {
                return Promise.completed(GroupApi.OffsetCommitResponse.all(code, entries.size()));
            }
            return onGroup(st, req.groupId, (co, p) -> co.commitTransactional(p, c),
                e -> GroupApi.OffsetCommitResponse.all(e, entries.size()));
        }).map(res -> {
            short[] codes = res.errorCodes();
            for (int i = 0; i < codes.length; i++) {
                slots.get(i).errorCode = codes[i];
            }
            return (ProtocolMessage) r;
        });
    }

    /** The transaction coordinator's answer for the offsets partition, as TxnOffsetCommit of {@code version} says it. */
    private static short verification(short code, short version) {
        return switch (code) {
            case TxnErrors.NONE -> TxnErrors.NONE;
            case TxnErrors.PRODUCER_FENCED, TxnErrors.INVALID_PRODUCER_EPOCH -> TxnErrors.INVALID_PRODUCER_EPOCH;
            case TxnErrors.TRANSACTION_ABORTABLE -> version >= 4 ? TxnErrors.TRANSACTION_ABORTABLE
                : TxnErrors.INVALID_TXN_STATE;
            case TxnErrors.INVALID_PRODUCER_ID_MAPPING, TxnErrors.INVALID_TXN_STATE,
                 TxnErrors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TxnErrors.INVALID_REQUEST -> code;
            default -> TxnErrors.COORDINATOR_NOT_AVAILABLE; // not coordinator, loading, busy, unreachable
        };
    }

    /** One group's part of an OffsetFetch: the group id and the partitions asked for (null = all). */
    private record GroupQuery(String groupId, List<TopicPartition> partitions, boolean requireStable) {
    }

    private Promise<ProtocolMessage> fetch(ShardState st, OffsetFetchRequestData req, short version) {
        List<GroupQuery> queries = new ArrayList<>();
        if (version < 8) {
            queries.add(new GroupQuery(req.groupId, req.topics == null ? null : partitionsOf(req.topics),
                req.requireStable));
        } else {
            for (OffsetFetchRequestData.OffsetFetchRequestGroup g : req.groups) {
                if (g.topics == null) {
                    queries.add(new GroupQuery(g.groupId, null, req.requireStable));
                    continue;
                }
                List<TopicPartition> tps = new ArrayList<>();
                for (OffsetFetchRequestData.OffsetFetchRequestTopics t : g.topics) {
                    String name = t.name;
                    if (version >= 10) {
                        TopicTable.Topic byId = st.topics.get(t.topicId);
                        name = byId == null ? "" : byId.name();
                    }
                    for (int p : t.partitionIndexes) {
                        tps.add(new TopicPartition(name, p));
                    }
                }
                queries.add(new GroupQuery(g.groupId, tps, req.requireStable));
            }
        }
        List<Promise<Object>> answers = new ArrayList<>();
        for (GroupQuery q : queries) {
            answers.add(onGroup(st, q.groupId, (c, p) -> Promise.completed((Object) c.fetchOffsets(p, q.groupId,
                q.partitions, q.requireStable)), code -> (Object) code));
        }
        return Promise.whenAll(answers).map(results -> {
            OffsetFetchResponseData r = new OffsetFetchResponseData();
            for (int i = 0; i < queries.size(); i++) {
                GroupQuery q = queries.get(i);
                Object res = results.get(i);
                short groupError = res instanceof Short code ? code : ErrorCodes.NONE;
                @SuppressWarnings("unchecked")
                Map<TopicPartition, GroupApi.FetchedOffset> offsets = res instanceof Map<?, ?> m
                    ? (Map<TopicPartition, GroupApi.FetchedOffset>) m : Map.of();
                if (version < 8) {
                    r.errorCode = groupError;
                    Map<String, OffsetFetchResponseData.OffsetFetchResponseTopic> byTopic = new LinkedHashMap<>();
                    for (Map.Entry<TopicPartition, GroupApi.FetchedOffset> e : offsets.entrySet()) {
                        OffsetFetchResponseData.OffsetFetchResponseTopic t = byTopic.computeIfAbsent(e.getKey().topic(), n -> {
                            OffsetFetchResponseData.OffsetFetchResponseTopic x = new OffsetFetchResponseData.OffsetFetchResponseTopic();
                            x.name = n;
                            r.topics.add(x);
                            return x;
                        });
                        OffsetFetchResponseData.OffsetFetchResponsePartition p = new OffsetFetchResponseData.OffsetFetchResponsePartition();
                        GroupApi.FetchedOffset f = e.getValue();
                        p.partitionIndex = e.getKey().partition();
                        p.committedOffset = f.offset();
                        p.committedLeaderEpoch = f.leaderEpoch();
                        p.metadata = f.metadata();
                        p.errorCode = f.errorCode();
                        t.partitions.add(p);
                    }
                } else {
                    OffsetFetchResponseData.OffsetFetchResponseGroup g = new OffsetFetchResponseData.OffsetFetchResponseGroup();
                    g.groupId = q.groupId;
                    g.errorCode = groupError;
                    r.groups.add(g);
                    Map<String, OffsetFetchResponseData.OffsetFetchResponseTopics> byTopic = new LinkedHashMap<>();
                    for (Map.Entry<TopicPartition, GroupApi.FetchedOffset> e : offsets.entrySet()) {
                        OffsetFetchResponseData.OffsetFetchResponseTopics t = byTopic.computeIfAbsent(e.getKey().topic(), n -> {
                            OffsetFetchResponseData.OffsetFetchResponseTopics x = new OffsetFetchResponseData.OffsetFetchResponseTopics();
                            x.name = n;
                            TopicTable.Topic topic = st.topics.get(n);
                            x.topicId = topic == null ? Uuid.ZERO : topic.id();
                            g.topics.add(x);
                            return x;
                        });
                        OffsetFetchResponseData.OffsetFetchResponsePartitions p = new OffsetFetchResponseData.OffsetFetchResponsePartitions();
                        GroupApi.FetchedOffset f = e.getValue();
                        p.partitionIndex = e.getKey().partition();
                        p.committedOffset = f.offset();
                        p.committedLeaderEpoch = f.leaderEpoch();
                        p.metadata = f.metadata();
                        p.errorCode = f.errorCode();
                        t.partitions.add(p);
                    }
                }
            }
            return (ProtocolMessage) r;
        });
    }

    private static List<TopicPartition> partitionsOf(List<OffsetFetchRequestData.OffsetFetchRequestTopic> topics) {
        List<TopicPartition> tps = new ArrayList<>();
        for (OffsetFetchRequestData.OffsetFetchRequestTopic t : topics) {
            for (int p : t.partitionIndexes) {
                tps.add(new TopicPartition(t.name, p));
            }
        }
        return tps;
    }

    private Promise<ProtocolMessage> deleteOffsets(ShardState st, OffsetDeleteRequestData req) {
        List<TopicPartition> tps = new ArrayList<>();
        OffsetDeleteResponseData r = new OffsetDeleteResponseData();
        List<OffsetDeleteResponseData.OffsetDeleteResponsePartition> slots = new ArrayList<>();
        for (OffsetDeleteRequestData.OffsetDeleteRequestTopic t : req.topics) {
            OffsetDeleteResponseData.OffsetDeleteResponseTopic tr = new OffsetDeleteResponseData.OffsetDeleteResponseTopic();
            tr.name = t.name;
            r.topics.add(tr);
            for (OffsetDeleteRequestData.OffsetDeleteRequestPartition p : t.partitions) {
                OffsetDeleteResponseData.OffsetDeleteResponsePartition pr = new OffsetDeleteResponseData.OffsetDeleteResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                tr.partitions.add(pr);
                slots.add(pr);
                tps.add(new TopicPartition(t.name, p.partitionIndex));
            }
        }
        GroupApi.OffsetDeleteRequest d = new GroupApi.OffsetDeleteRequest(req.groupId, tps);
        return onGroup(st, req.groupId, (c, p) -> c.deleteOffsets(p, d),
            code -> new GroupApi.OffsetDeleteResponse(code, new short[0])).map(res -> {
                if (res.errorCode() != ErrorCodes.NONE) {
                    r.errorCode = res.errorCode();
                    r.topics.clear();
                } else {
                    short[] codes = res.partitionErrors();
                    for (int i = 0; i < codes.length; i++) {
                        slots.get(i).errorCode = codes[i];
                    }
                }
                return (ProtocolMessage) r;
            });
    }

    // ------------------------------------------------------------------ admin

    private Promise<ProtocolMessage> describe(ShardState st, DescribeGroupsRequestData req, short version) {
        List<Promise<DescribeGroupsResponseData.DescribedGroup>> all = new ArrayList<>();
        for (String id : req.groups) {
            all.add(onGroup(st, id, (c, p) -> Promise.completed(described(c.describe(p, id), version)), code -> {
                DescribeGroupsResponseData.DescribedGroup d = new DescribeGroupsResponseData.DescribedGroup();
                d.groupId = id;
                d.errorCode = code;
                return d;
            }));
        }
        return Promise.whenAll(all).map(groups -> {
            DescribeGroupsResponseData r = new DescribeGroupsResponseData();
            r.groups.addAll(groups);
            return (ProtocolMessage) r;
        });
    }

    private static DescribeGroupsResponseData.DescribedGroup described(GroupApi.DescribedGroup g, short version) {
        DescribeGroupsResponseData.DescribedGroup d = new DescribeGroupsResponseData.DescribedGroup();
        d.groupId = g.groupId();
        d.groupState = g.state().kafkaName;
        d.protocolType = g.protocolType();
        d.protocolData = g.protocolData();
        if (!g.found() && version >= 6) {
            d.errorCode = ErrorCodes.GROUP_ID_NOT_FOUND;
            d.errorMessage = "Group " + g.groupId() + " not found.";
        }
        for (GroupApi.DescribedMember m : g.members()) {
            DescribeGroupsResponseData.DescribedGroupMember dm = new DescribeGroupsResponseData.DescribedGroupMember();
            dm.memberId = m.memberId();
            dm.groupInstanceId = m.groupInstanceId();
            dm.clientId = m.clientId();
            dm.clientHost = m.clientHost();
            dm.memberMetadata = ByteSlice.of(m.metadata());
            dm.memberAssignment = ByteSlice.of(m.assignment());
            d.members.add(dm);
        }
        return d;
    }

    private Promise<ProtocolMessage> list(ShardState st, ListGroupsRequestData req) {
        ListGroupsResponseData r = new ListGroupsResponseData();
        TopicTable.Topic t = st.topics.get(OFFSETS_TOPIC);
        if (t == null) {
            return Promise.completed(r);
        }
        List<Promise<List<GroupApi.ListedGroup>>> all = new ArrayList<>();
        for (int shard = 0; shard < broker.shardCount(); shard++) {
            List<Integer> owned = new ArrayList<>();
            for (int p = 0; p < t.partitions(); p++) {
                if (broker.shardOf(t, p) == shard) {
                    owned.add(p);
                }
            }
            if (owned.isEmpty()) {
                continue;
            }
            all.add(st.shard.submitToAsync(shard, s -> broker.state(s.id()).groups.list(owned, req.statesFilter,
                req.typesFilter)));
        }
        return Promise.whenAll(all).map(lists -> {
            for (List<GroupApi.ListedGroup> groups : lists) {
                for (GroupApi.ListedGroup g : groups) {
                    ListGroupsResponseData.ListedGroup lg = new ListGroupsResponseData.ListedGroup();
                    lg.groupId = g.groupId();
                    lg.protocolType = g.protocolType();
                    lg.groupState = g.state().kafkaName;
                    lg.groupType = "classic";
                    r.groups.add(lg);
                }
            }
            return (ProtocolMessage) r;
        }).recover(f -> {
            r.errorCode = ErrorCodes.COORDINATOR_NOT_AVAILABLE;
            r.groups.clear();
            return r;
        });
    }

    private Promise<ProtocolMessage> delete(ShardState st, DeleteGroupsRequestData req) {
        DeleteGroupsResponseData r = new DeleteGroupsResponseData();
        List<Promise<Object>> all = new ArrayList<>();
        for (String id : req.groupsNames) {
            DeleteGroupsResponseData.DeletableGroupResult res = new DeleteGroupsResponseData.DeletableGroupResult();
            res.groupId = id;
            r.results.add(res);
            all.add(onGroup(st, id, (c, p) -> c.delete(p, id).map(GroupApi.DeleteGroupResponse::errorCode), code -> code)
                .map(code -> {
                    res.errorCode = code;
                    return null;
                }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    /** A copy of a bytes field, releasing the receive buffer it pointed into. */
    private static byte[] bytes(ByteSlice s) {
        if (s == null) {
            return new byte[0];
        }
        byte[] b = s.toArray();
        if (s instanceof IoBufSlice io) {
            io.close();
        }
        return b;
    }
}
