package dev.isthmus.gateway;

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
import dev.isthmus.uring.shard.Promise;

import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Function;

import static dev.isthmus.gateway.GroupCoordinator.OFFSETS_TOPIC;

/**
 * The group APIs on the connection's shard: each request is routed to the shard that owns its group's
 * {@code __consumer_offsets} partition (creating the internal topic on first use), runs on that shard's
 * {@link GroupCoordinator}, and comes back as a response. Bytes fields are copied out of the connection's
 * receive buffers before they travel, so no shard holds another shard's memory.
 */
final class GroupHandlers {
    private static final System.Logger LOG = System.getLogger(GroupHandlers.class.getName());

    private final Broker broker;

    GroupHandlers(Broker broker) {
        this.broker = broker;
    }

    Promise<ProtocolMessage> handle(ShardState st, ApiKeys api, short version, ProtocolMessage request,
                                    RequestHeaderData header, String clientHost) {
        return switch (api) {
            case FIND_COORDINATOR -> findCoordinator(st, (FindCoordinatorRequestData) request, version);
            case JOIN_GROUP -> join(st, (JoinGroupRequestData) request, version, header.clientId, clientHost);
            case SYNC_GROUP -> sync(st, (SyncGroupRequestData) request);
            case HEARTBEAT -> heartbeat(st, (HeartbeatRequestData) request);
            case LEAVE_GROUP -> leave(st, (LeaveGroupRequestData) request, version);
            case OFFSET_COMMIT -> commit(st, (OffsetCommitRequestData) request, version);
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

    /** A copy of a bytes field, releasing the receive buffer it pointed into. */
    private static ByteSlice detach(ByteSlice s) {
        if (s instanceof IoBufSlice io) {
            byte[] b = io.toArray();
            io.close();
            return ByteSlice.of(b);
        }
        return s;
    }

    // ------------------------------------------------------------------ FindCoordinator

    private Promise<ProtocolMessage> findCoordinator(ShardState st, FindCoordinatorRequestData req, short version) {
        if (req.keyType == 1) {
            return broker.handlers().transactions().findCoordinator(st, req, version); // TRANSACTION
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
                        for (MetadataResponseData.MetadataResponseBroker mb : broker.handlers().brokers(st)) {
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
        for (JoinGroupRequestData.JoinGroupRequestProtocol p : req.protocols) {
            p.metadata = detach(p.metadata);
        }
        return onGroup(st, req.groupId, (c, p) -> c.join(req, version, p, clientId, clientHost), code -> {
            JoinGroupResponseData r = new JoinGroupResponseData();
            r.errorCode = code;
            r.memberId = req.memberId;
            r.protocolName = null;
            return r;
        }).map(r -> {
            if (version < 7 && r.protocolName == null) {
                r.protocolName = ""; // nullable only from v7: Kafka writes "" before
            }
            return (ProtocolMessage) r;
        });
    }

    private Promise<ProtocolMessage> sync(ShardState st, SyncGroupRequestData req) {
        for (SyncGroupRequestData.SyncGroupRequestAssignment a : req.assignments) {
            a.assignment = detach(a.assignment);
        }
        return onGroup(st, req.groupId, (c, p) -> c.sync(req), code -> {
            SyncGroupResponseData r = new SyncGroupResponseData();
            r.errorCode = code;
            return r;
        }).map(r -> (ProtocolMessage) r);
    }

    private Promise<ProtocolMessage> heartbeat(ShardState st, HeartbeatRequestData req) {
        return onGroup(st, req.groupId, (c, p) -> Promise.completed(c.heartbeat(req)), code -> code).map(code -> {
            HeartbeatResponseData r = new HeartbeatResponseData();
            r.errorCode = code;
            return (ProtocolMessage) r;
        });
    }

    private Promise<ProtocolMessage> leave(ShardState st, LeaveGroupRequestData req, short version) {
        return onGroup(st, req.groupId, (c, p) -> Promise.completed(c.leave(req, version)), code -> {
            LeaveGroupResponseData r = new LeaveGroupResponseData();
            r.errorCode = code;
            return r;
        }).map(r -> (ProtocolMessage) r);
    }

    // ------------------------------------------------------------------ offsets

    private Promise<ProtocolMessage> commit(ShardState st, OffsetCommitRequestData req, short version) {
        OffsetCommitResponseData r = new OffsetCommitResponseData();
        List<GroupCoordinator.CommitRequest> entries = new ArrayList<>();
        List<OffsetCommitResponseData.OffsetCommitResponsePartition> slots = new ArrayList<>();
        for (OffsetCommitRequestData.OffsetCommitRequestTopic t : req.topics) {
            OffsetCommitResponseData.OffsetCommitResponseTopic tr = new OffsetCommitResponseData.OffsetCommitResponseTopic();
            tr.name = t.name;
            tr.topicId = t.topicId;
            r.topics.add(tr);
            String name = t.name;
            if (version >= 10) {
                TopicTable.Topic byId = st.topics.get(t.topicId);
                name = byId == null ? null : byId.name();
            }
            for (OffsetCommitRequestData.OffsetCommitRequestPartition p : t.partitions) {
                OffsetCommitResponseData.OffsetCommitResponsePartition pr = new OffsetCommitResponseData.OffsetCommitResponsePartition();
                pr.partitionIndex = p.partitionIndex;
                tr.partitions.add(pr);
                if (name == null) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_ID;
                    continue;
                }
                entries.add(new GroupCoordinator.CommitRequest(name, p.partitionIndex, p.committedOffset,
                    p.committedLeaderEpoch, p.committedMetadata));
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
        return onGroup(st, req.groupId, (c, p) -> c.commit(req.groupId, req.generationIdOrMemberEpoch, req.memberId,
            req.groupInstanceId, entries, p), code -> {
                short[] all = new short[entries.size()];
                java.util.Arrays.fill(all, code);
                return all;
            }).map(codes -> {
                for (int i = 0; i < codes.length; i++) {
                    slots.get(i).errorCode = codes[i];
                }
                return (ProtocolMessage) r;
            });
    }

    /** One group's part of an OffsetFetch: the group id and the topics asked for (null = all). */
    private record GroupQuery(String groupId, List<GroupCoordinator.TopicPartition> partitions) {
    }

    private Promise<ProtocolMessage> fetch(ShardState st, OffsetFetchRequestData req, short version) {
        List<GroupQuery> queries = new ArrayList<>();
        if (version < 8) {
            queries.add(new GroupQuery(req.groupId, req.topics == null ? null : partitionsOf(req.topics)));
        } else {
            for (OffsetFetchRequestData.OffsetFetchRequestGroup g : req.groups) {
                if (g.topics == null) {
                    queries.add(new GroupQuery(g.groupId, null));
                    continue;
                }
                List<GroupCoordinator.TopicPartition> tps = new ArrayList<>();
                for (OffsetFetchRequestData.OffsetFetchRequestTopics t : g.topics) {
                    String name = t.name;
                    if (version >= 10) {
                        TopicTable.Topic byId = st.topics.get(t.topicId);
                        name = byId == null ? "" : byId.name();
                    }
                    for (int p : t.partitionIndexes) {
                        tps.add(new GroupCoordinator.TopicPartition(name, p));
                    }
                }
                queries.add(new GroupQuery(g.groupId, tps));
            }
        }
        List<Promise<Object>> answers = new ArrayList<>();
        for (GroupQuery q : queries) {
            answers.add(onGroup(st, q.groupId, (c, p) -> Promise.completed((Object) c.fetchOffsets(q.groupId, q.partitions)),
                code -> (Object) code));
        }
        return Promise.whenAll(answers).map(results -> {
            OffsetFetchResponseData r = new OffsetFetchResponseData();
            for (int i = 0; i < queries.size(); i++) {
                GroupQuery q = queries.get(i);
                Object res = results.get(i);
                short groupError = res instanceof Short code ? code : ErrorCodes.NONE;
                @SuppressWarnings("unchecked")
                Map<GroupCoordinator.TopicPartition, GroupCoordinator.Committed> offsets = res instanceof Map<?, ?> m
                    ? (Map<GroupCoordinator.TopicPartition, GroupCoordinator.Committed>) m : Map.of();
                if (version < 8) {
                    r.errorCode = groupError;
                    Map<String, OffsetFetchResponseData.OffsetFetchResponseTopic> byTopic = new LinkedHashMap<>();
                    for (Map.Entry<GroupCoordinator.TopicPartition, GroupCoordinator.Committed> e : offsets.entrySet()) {
                        OffsetFetchResponseData.OffsetFetchResponseTopic t = byTopic.computeIfAbsent(e.getKey().topic(), n -> {
                            OffsetFetchResponseData.OffsetFetchResponseTopic x = new OffsetFetchResponseData.OffsetFetchResponseTopic();
                            x.name = n;
                            r.topics.add(x);
                            return x;
                        });
                        OffsetFetchResponseData.OffsetFetchResponsePartition p = new OffsetFetchResponseData.OffsetFetchResponsePartition();
                        p.partitionIndex = e.getKey().partition();
                        fill(e.getValue(), p);
                        t.partitions.add(p);
                    }
                } else {
                    OffsetFetchResponseData.OffsetFetchResponseGroup g = new OffsetFetchResponseData.OffsetFetchResponseGroup();
                    g.groupId = q.groupId;
                    g.errorCode = groupError;
                    r.groups.add(g);
                    Map<String, OffsetFetchResponseData.OffsetFetchResponseTopics> byTopic = new LinkedHashMap<>();
                    for (Map.Entry<GroupCoordinator.TopicPartition, GroupCoordinator.Committed> e : offsets.entrySet()) {
                        OffsetFetchResponseData.OffsetFetchResponseTopics t = byTopic.computeIfAbsent(e.getKey().topic(), n -> {
                            OffsetFetchResponseData.OffsetFetchResponseTopics x = new OffsetFetchResponseData.OffsetFetchResponseTopics();
                            x.name = n;
                            TopicTable.Topic topic = st.topics.get(n);
                            x.topicId = topic == null ? Uuid.ZERO : topic.id();
                            g.topics.add(x);
                            return x;
                        });
                        OffsetFetchResponseData.OffsetFetchResponsePartitions p = new OffsetFetchResponseData.OffsetFetchResponsePartitions();
                        p.partitionIndex = e.getKey().partition();
                        GroupCoordinator.Committed c = e.getValue();
                        p.committedOffset = c == null ? -1 : c.offset();
                        p.committedLeaderEpoch = c == null ? -1 : c.leaderEpoch();
                        p.metadata = c == null ? "" : c.metadata();
                        t.partitions.add(p);
                    }
                }
            }
            return (ProtocolMessage) r;
        });
    }

    private static List<GroupCoordinator.TopicPartition> partitionsOf(List<OffsetFetchRequestData.OffsetFetchRequestTopic> topics) {
        List<GroupCoordinator.TopicPartition> tps = new ArrayList<>();
        for (OffsetFetchRequestData.OffsetFetchRequestTopic t : topics) {
            for (int p : t.partitionIndexes) {
                tps.add(new GroupCoordinator.TopicPartition(t.name, p));
            }
        }
        return tps;
    }

    private static void fill(GroupCoordinator.Committed c, OffsetFetchResponseData.OffsetFetchResponsePartition p) {
        p.committedOffset = c == null ? -1 : c.offset();
        p.committedLeaderEpoch = c == null ? -1 : c.leaderEpoch();
        p.metadata = c == null ? "" : c.metadata();
    }

    private Promise<ProtocolMessage> deleteOffsets(ShardState st, OffsetDeleteRequestData req) {
        List<GroupCoordinator.TopicPartition> tps = new ArrayList<>();
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
                tps.add(new GroupCoordinator.TopicPartition(t.name, p.partitionIndex));
            }
        }
        return onGroup(st, req.groupId, (c, p) -> c.deleteOffsets(req.groupId, tps), code -> (Object) code).map(res -> {
            if (res instanceof Short code) {
                r.errorCode = code;
                r.topics.clear();
            } else {
                short[] codes = (short[]) res;
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
            all.add(onGroup(st, id, (c, p) -> Promise.completed(c.describe(id, version)), code -> {
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

    private Promise<ProtocolMessage> list(ShardState st, ListGroupsRequestData req) {
        ListGroupsResponseData r = new ListGroupsResponseData();
        TopicTable.Topic t = st.topics.get(OFFSETS_TOPIC);
        if (t == null) {
            return Promise.completed(r);
        }
        List<Promise<List<ListGroupsResponseData.ListedGroup>>> all = new ArrayList<>();
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
            lists.forEach(r.groups::addAll);
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
            all.add(onGroup(st, id, (c, p) -> c.delete(id), code -> code).map(code -> {
                res.errorCode = code;
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }
}
