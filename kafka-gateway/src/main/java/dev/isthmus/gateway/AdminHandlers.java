package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.AlterConfigsRequestData;
import dev.isthmus.gateway.protocol.message.AlterConfigsResponseData;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.CreateAclsRequestData;
import dev.isthmus.gateway.protocol.message.DeleteAclsRequestData;
import dev.isthmus.gateway.protocol.message.CreatePartitionsRequestData;
import dev.isthmus.gateway.protocol.message.CreatePartitionsResponseData;
import dev.isthmus.gateway.protocol.message.DeleteRecordsRequestData;
import dev.isthmus.gateway.protocol.message.DeleteRecordsResponseData;
import dev.isthmus.gateway.protocol.message.DeleteTopicsRequestData;
import dev.isthmus.gateway.protocol.message.DeleteTopicsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeClusterRequestData;
import dev.isthmus.gateway.protocol.message.DescribeClusterResponseData;
import dev.isthmus.gateway.protocol.message.DescribeConfigsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeAclsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeConfigsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeLogDirsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeProducersRequestData;
import dev.isthmus.gateway.protocol.message.DescribeTopicPartitionsRequestData;
import dev.isthmus.gateway.protocol.message.ElectLeadersRequestData;
import dev.isthmus.gateway.protocol.message.IncrementalAlterConfigsRequestData;
import dev.isthmus.gateway.protocol.message.IncrementalAlterConfigsResponseData;
import dev.isthmus.gateway.protocol.message.OffsetForLeaderEpochRequestData;
import dev.isthmus.gateway.protocol.message.OffsetForLeaderEpochResponseData;
import dev.isthmus.log.LogException;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Topic administration and cluster description: DeleteTopics, CreatePartitions, DeleteRecords,
 * DescribeConfigs, IncrementalAlterConfigs and the legacy AlterConfigs, OffsetForLeaderEpoch, DescribeCluster,
 * and the ACL APIs ({@link AclApis}). Changes of the topic table go through the controller
 * ({@link Broker#alterTopicConfigs} and friends); partition work runs on the owning shard. Elections are
 * {@link LeaderElections}; DescribeLogDirs, DescribeProducers and DescribeTopicPartitions are
 * {@link ReplicaDescriptions}. One instance per broker, called on the connection's shard.
 */
final class AdminHandlers {
    static final byte TOPIC = 2;
    static final byte BROKER = 4;
    /** Kafka's ConfigSource DYNAMIC_BROKER_CONFIG. */
    static final byte SOURCE_DYNAMIC_BROKER = 2;
    /** Kafka's ConfigSource DYNAMIC_DEFAULT_BROKER_CONFIG: set cluster-wide (the broker resource with the empty name). */
    static final byte SOURCE_DYNAMIC_DEFAULT_BROKER = 3;

    private final Broker broker;
    private final LeaderElections elections;
    private final ReplicaDescriptions replicas;
    private final AclApis acls;

    AdminHandlers(Broker broker) {
        this.broker = broker;
        this.elections = new LeaderElections(broker);
        this.replicas = new ReplicaDescriptions(broker);
        this.acls = new AclApis(broker);
    }

    LeaderElections elections() {
        return elections;
    }

    Promise<ProtocolMessage> handle(ShardState st, ApiKeys api, short version, ProtocolMessage request,
                                    String listener) {
        return switch (api) {
            case DELETE_TOPICS -> deleteTopics(st, (DeleteTopicsRequestData) request, version);
            case CREATE_PARTITIONS -> createPartitions(st, (CreatePartitionsRequestData) request);
            case DELETE_RECORDS -> deleteRecords(st, (DeleteRecordsRequestData) request);
            case DESCRIBE_CONFIGS -> describeConfigs(st, (DescribeConfigsRequestData) request, version);
            case INCREMENTAL_ALTER_CONFIGS -> alterConfigs(st, (IncrementalAlterConfigsRequestData) request);
            case OFFSET_FOR_LEADER_EPOCH -> offsetForLeaderEpoch(st, (OffsetForLeaderEpochRequestData) request);
            case DESCRIBE_CLUSTER -> Promise.completed(describeCluster(st, (DescribeClusterRequestData) request,
                listener));
            case ALTER_CONFIGS -> replaceConfigs(st, (AlterConfigsRequestData) request);
            case DESCRIBE_LOG_DIRS -> replicas.describeLogDirs(st, (DescribeLogDirsRequestData) request);
            case DESCRIBE_PRODUCERS -> replicas.describeProducers(st, (DescribeProducersRequestData) request);
            case DESCRIBE_TOPIC_PARTITIONS -> Promise.completed(replicas.describeTopicPartitions(st,
                (DescribeTopicPartitionsRequestData) request));
            case ELECT_LEADERS -> elections.electLeaders(st, (ElectLeadersRequestData) request, version);
            case DESCRIBE_ACLS -> Promise.completed(acls.describe(st, (DescribeAclsRequestData) request));
            case CREATE_ACLS -> acls.create(st, (CreateAclsRequestData) request);
            case DELETE_ACLS -> acls.delete(st, (DeleteAclsRequestData) request);
            default -> Promise.failed(new IllegalStateException(api + " is not an admin API"));
        };
    }

    // ------------------------------------------------------------------ topics

    private Promise<ProtocolMessage> deleteTopics(ShardState st, DeleteTopicsRequestData req, short version) {
        DeleteTopicsResponseData r = new DeleteTopicsResponseData();
        List<Promise<Object>> all = new ArrayList<>();
        List<String[]> targets = new ArrayList<>(); // {name or null}
        List<Uuid> ids = new ArrayList<>();
        if (version < 6) {
            for (String n : req.topicNames) {
                targets.add(new String[] {n});
                ids.add(null);
            }
        } else {
            for (DeleteTopicsRequestData.DeleteTopicState t : req.topics) {
                targets.add(new String[] {t.name});
                ids.add(t.topicId);
            }
        }
        for (int i = 0; i < targets.size(); i++) {
            String name = targets.get(i)[0];
            Uuid id = ids.get(i);
            DeleteTopicsResponseData.DeletableTopicResult res = new DeleteTopicsResponseData.DeletableTopicResult();
            res.name = name;
            res.topicId = id == null ? Uuid.ZERO : id;
            r.responses.add(res);
            if (name == null && (id == null || id.equals(Uuid.ZERO))) {
                res.errorCode = ErrorCodes.INVALID_REQUEST;
                res.errorMessage = "a topic to delete needs a name or an id";
                continue;
            }
            all.add(broker.deleteTopic(st.shard, name, id).map(outcome -> {
                if (outcome instanceof TopicTable.Topic t) {
                    res.name = t.name();
                    res.topicId = t.id();
                } else {
                    Broker.Failure f = (Broker.Failure) outcome;
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                }
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    private Promise<ProtocolMessage> createPartitions(ShardState st, CreatePartitionsRequestData req) {
        CreatePartitionsResponseData r = new CreatePartitionsResponseData();
        List<Promise<Object>> all = new ArrayList<>();
        for (CreatePartitionsRequestData.CreatePartitionsTopic t : req.topics) {
            CreatePartitionsResponseData.CreatePartitionsTopicResult res = new CreatePartitionsResponseData.CreatePartitionsTopicResult();
            res.name = t.name;
            r.results.add(res);
            List<int[]> assignment = new ArrayList<>();
            if (t.assignments != null) {
                for (CreatePartitionsRequestData.CreatePartitionsAssignment a : t.assignments) {
                    assignment.add(a.brokerIds.stream().mapToInt(Integer::intValue).toArray());
                }
            }
            all.add(broker.createPartitions(st.shard, t.name, t.count, assignment, req.validateOnly).map(outcome -> {
                if (outcome instanceof Broker.Failure f) {
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                }
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    private Promise<ProtocolMessage> deleteRecords(ShardState st, DeleteRecordsRequestData req) {
        DeleteRecordsResponseData r = new DeleteRecordsResponseData();
        PartitionFanOut fan = new PartitionFanOut(broker.handlers(), st);
        for (DeleteRecordsRequestData.DeleteRecordsTopic t : req.topics) {
            DeleteRecordsResponseData.DeleteRecordsTopicResult tr = new DeleteRecordsResponseData.DeleteRecordsTopicResult();
            tr.name = t.name;
            r.topics.add(tr);
            TopicTable.Topic topic = st.topics.get(t.name);
            for (DeleteRecordsRequestData.DeleteRecordsPartition p : t.partitions) {
                DeleteRecordsResponseData.DeleteRecordsPartitionResult pr = new DeleteRecordsResponseData.DeleteRecordsPartitionResult();
                pr.partitionIndex = p.partitionIndex;
                pr.lowWatermark = -1;
                tr.partitions.add(pr);
                if (!PartitionFanOut.exists(topic, p.partitionIndex)) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                long offset = p.offset;
                fan.submit(topic, p.partitionIndex, part -> deleteBefore(part, offset),
                    new long[] {ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1},
                    new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1},
                    // A failed cross-shard call is a retriable error, never NONE with low watermark -1 (a wrong answer).
                    f -> new long[] {ErrorCodes.REQUEST_TIMED_OUT, -1}, res -> {
                        pr.errorCode = (short) res[0];
                        pr.lowWatermark = res[1];
                    });
            }
        }
        return fan.gather(r);
    }

    /** On the partition's shard: {errorCode, lowWatermark}. -1 means the high watermark (Kafka's rule). */
    private static Promise<long[]> deleteBefore(Partition part, long offset) {
        if (!part.isLeader()) {
            return Promise.completed(new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1});
        }
        long hw = part.highWatermark();
        long target = offset == -1 ? hw : offset;
        if (target < 0 || target > hw) {
            return Promise.completed(new long[] {ErrorCodes.OFFSET_OUT_OF_RANGE, part.logStartOffset()});
        }
        return part.deleteRecordsBefore(target);
    }

    // ------------------------------------------------------------------ configs

    /** One config as DescribeConfigs reports it. */
    record ConfigEntry(String name, String value, byte source, boolean readOnly, TopicConfigs.Type type,
                       String documentation, List<TopicConfigs.Synonym> synonyms) {
    }

    /**
     * Every topic config of a topic with these overrides: Kafka 4.3's, in Kafka's order, each with its effective
     * value, where it comes from (the topic, the broker's static configuration, or the default), its synonyms and
     * documentation; then the removed Kafka 3.x configs the topic sets.
     */
    static List<ConfigEntry> topicEntries(Map<String, String> overrides, TopicConfigs.Defaults defaults) {
        List<ConfigEntry> out = new ArrayList<>();
        for (TopicConfigs.Definition d : TopicConfigs.DEFINITIONS.values()) {
            out.add(new ConfigEntry(d.name(), TopicConfigs.effective(overrides, d.name(), defaults),
                TopicConfigs.source(overrides, d.name(), defaults), false, d.type(), d.documentation(),
                TopicConfigs.synonyms(overrides, d.name(), defaults)));
        }
        for (TopicConfigs.Definition d : TopicConfigs.LEGACY.values()) {
            if (overrides.containsKey(d.name())) {
                out.add(new ConfigEntry(d.name(), overrides.get(d.name()), TopicConfigs.SOURCE_TOPIC, false, d.type(),
                    d.documentation(), List.of(new TopicConfigs.Synonym(d.name(), overrides.get(d.name()),
                        TopicConfigs.SOURCE_TOPIC))));
            }
        }
        return out;
    }

    /** This broker's configs: its start-up settings, its defaults of topic configs, and its batch limit. */
    private List<ConfigEntry> brokerEntries() {
        BrokerConfig c = broker.config();
        TopicConfigs.Defaults defaults = broker.topicDefaults();
        List<ConfigEntry> out = new ArrayList<>();
        String startup = "Set when the broker starts (command line or --config file).";
        out.add(fixed("broker.id", Integer.toString(c.nodeId()), TopicConfigs.Type.INT, startup));
        out.add(fixed("node.id", Integer.toString(c.nodeId()), TopicConfigs.Type.INT, startup));
        StringBuilder ls = new StringBuilder();
        StringBuilder adv = new StringBuilder();
        StringBuilder map = new StringBuilder();
        for (dev.isthmus.gateway.security.ListenerConfig l : broker.listeners()) {
            String sep = ls.isEmpty() ? "" : ",";
            ls.append(sep).append(l.name()).append("://").append(l.host()).append(':').append(l.port());
            adv.append(sep).append(l.name()).append("://").append(l.advertisedHostOrBind()).append(':')
                .append(l.advertisedPort() != 0 ? l.advertisedPort() : l.port());
            map.append(sep).append(l.name()).append(':').append(l.protocol());
        }
        out.add(fixed("listeners", ls.toString(), TopicConfigs.Type.LIST, startup));
        out.add(fixed("advertised.listeners", adv.toString(), TopicConfigs.Type.LIST, startup));
        out.add(fixed("listener.security.protocol.map", map.toString(), TopicConfigs.Type.LIST, startup));
        out.add(fixed("log.dirs", c.dataDir().toAbsolutePath().toString(), TopicConfigs.Type.STRING, startup));
        out.add(fixed("num.partitions", Integer.toString(c.defaultPartitions()), TopicConfigs.Type.INT, startup));
        out.add(fixed("auto.create.topics.enable", Boolean.toString(c.autoCreateTopics()), TopicConfigs.Type.BOOLEAN,
            startup));
        out.add(fixed("socket.request.max.bytes", Integer.toString(c.maxRequestBytes()), TopicConfigs.Type.INT,
            "The largest request accepted (--max-request-bytes). A produce request carries a whole batch, so it must"
                + " be at least a topic's max.message.bytes plus " + BrokerConfig.PRODUCE_REQUEST_OVERHEAD_BYTES
                + " bytes."));
        out.add(fixed("max.connections", Integer.toString(c.maxConnections()), TopicConfigs.Type.INT, startup));
        out.add(fixed("offsets.topic.num.partitions", Integer.toString(c.offsetsTopicPartitions()),
            TopicConfigs.Type.INT, startup));
        out.add(fixed("offsets.retention.minutes", Long.toString(c.offsetsRetentionMs() / 60_000), TopicConfigs.Type.INT,
            startup));
        out.add(fixed("group.min.session.timeout.ms", Integer.toString(c.groupMinSessionTimeoutMs()),
            TopicConfigs.Type.INT, startup));
        out.add(fixed("group.max.session.timeout.ms", Integer.toString(c.groupMaxSessionTimeoutMs()),
            TopicConfigs.Type.INT, startup));
        out.add(fixed("group.initial.rebalance.delay.ms", Integer.toString(c.groupInitialRebalanceDelayMs()),
            TopicConfigs.Type.INT, startup));
        out.add(fixed("auto.leader.rebalance.enable", Boolean.toString(c.autoLeaderRebalance()),
            TopicConfigs.Type.BOOLEAN, startup));
        out.add(fixed("isthmus.smp", Integer.toString(c.shards()), TopicConfigs.Type.INT, startup));
        out.add(fixed("isthmus.memory.bytes", Long.toString(c.memoryBytes()), TopicConfigs.Type.LONG, startup));
        out.add(fixed("isthmus.max.message.bytes.limit", Integer.toString(defaults.maxMessageBytesLimit()),
            TopicConfigs.Type.INT, "The largest max.message.bytes a topic may have on this broker: "
                + defaults.limitReason() + "."));
        for (String name : new TreeSet<>(Reassignments.BROKER_THROTTLES)) {
            Long v = broker.reassignments().throttle(name); // set at runtime (IncrementalAlterConfigs): dynamic
            if (v != null) {
                out.add(new ConfigEntry(name, Long.toString(v), SOURCE_DYNAMIC_BROKER, false, TopicConfigs.Type.LONG,
                    "Replication throttle in bytes per second (not kept across restarts).",
                    List.of(new TopicConfigs.Synonym(name, Long.toString(v), SOURCE_DYNAMIC_BROKER))));
            }
        }
        for (TopicConfigs.Definition d : TopicConfigs.DEFINITIONS.values()) {
            if (d.brokerNames().isEmpty()) {
                continue;
            }
            String doc = "The broker's default of the topic config " + d.name() + ". " + d.documentation();
            for (TopicConfigs.BrokerName n : d.brokerNames()) {
                String set = defaults.settings().get(n.name());
                TopicConfigs.Type type = n.unit() == 1 ? d.type() : TopicConfigs.Type.INT;
                if (set != null) {
                    List<TopicConfigs.Synonym> syn = List.of(new TopicConfigs.Synonym(n.name(), set.trim(),
                        TopicConfigs.SOURCE_STATIC_BROKER));
                    out.add(new ConfigEntry(n.name(), set.trim(), TopicConfigs.SOURCE_STATIC_BROKER, true, type, doc, syn));
                } else if (n.name().equals(d.brokerName())) {
                    String v = TopicConfigs.brokerDefault(d);
                    out.add(new ConfigEntry(n.name(), v, TopicConfigs.SOURCE_DEFAULT, true, type, doc,
                        List.of(new TopicConfigs.Synonym(n.name(), v, TopicConfigs.SOURCE_DEFAULT))));
                }
            }
        }
        return out;
    }

    private static ConfigEntry fixed(String name, String value, TopicConfigs.Type type, String doc) {
        return new ConfigEntry(name, value, TopicConfigs.SOURCE_STATIC_BROKER, true, type, doc,
            List.of(new TopicConfigs.Synonym(name, value, TopicConfigs.SOURCE_STATIC_BROKER)));
    }

    private Promise<ProtocolMessage> describeConfigs(ShardState st, DescribeConfigsRequestData req, short version) {
        DescribeConfigsResponseData r = new DescribeConfigsResponseData();
        for (DescribeConfigsRequestData.DescribeConfigsResource res : req.resources) {
            DescribeConfigsResponseData.DescribeConfigsResult out = new DescribeConfigsResponseData.DescribeConfigsResult();
            out.resourceType = res.resourceType;
            out.resourceName = res.resourceName;
            out.errorMessage = null;
            r.results.add(out);
            List<ConfigEntry> entries;
            if (res.resourceType == TOPIC) {
                TopicTable.Topic t = st.topics.get(res.resourceName);
                if (t == null) {
                    out.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    out.errorMessage = "topic " + res.resourceName + " does not exist";
                    continue;
                }
                entries = topicEntries(t.configs(), broker.topicDefaults());
            } else if (res.resourceType == BROKER) {
                if (!res.resourceName.isEmpty() && !res.resourceName.equals(Integer.toString(broker.config().nodeId()))) {
                    out.errorCode = ErrorCodes.INVALID_REQUEST;
                    out.errorMessage = "broker " + res.resourceName + " is not this broker ("
                        + broker.config().nodeId() + ")";
                    continue;
                }
                entries = new ArrayList<>(brokerEntries());
                if (st.cluster != null && broker.config().clusterMode()) {
                    for (String name : new TreeSet<>(NodeModeConfigs.NAMES)) { // cluster-wide: set on the default resource
                        String v = NodeModeConfigs.value(st.cluster.modes(), name);
                        entries.add(new ConfigEntry(name, v, SOURCE_DYNAMIC_DEFAULT_BROKER, false, TopicConfigs.Type.LIST,
                            NodeModeConfigs.documentation(name),
                            List.of(new TopicConfigs.Synonym(name, v, SOURCE_DYNAMIC_DEFAULT_BROKER))));
                    }
                }
            } else {
                out.errorCode = ErrorCodes.INVALID_REQUEST;
                out.errorMessage = "resource type " + res.resourceType + " has no configs here (topics: 2, brokers: 4)";
                continue;
            }
            for (ConfigEntry e : entries) {
                if (res.configurationKeys != null && !res.configurationKeys.isEmpty()
                    && !res.configurationKeys.contains(e.name())) {
                    continue;
                }
                DescribeConfigsResponseData.DescribeConfigsResourceResult c = new DescribeConfigsResponseData.DescribeConfigsResourceResult();
                c.name = e.name();
                c.value = e.value();
                c.configSource = e.source();
                c.readOnly = e.readOnly();
                c.configType = e.type().code;
                c.documentation = req.includeDocumentation ? e.documentation() : null;
                c.isSensitive = false;
                if (req.includeSynonyms) {
                    for (TopicConfigs.Synonym s : e.synonyms()) {
                        DescribeConfigsResponseData.DescribeConfigsSynonym syn = new DescribeConfigsResponseData.DescribeConfigsSynonym();
                        syn.name = s.name();
                        syn.value = s.value();
                        syn.source = s.source();
                        c.synonyms.add(syn);
                    }
                }
                out.configs.add(c);
            }
        }
        return Promise.completed(r);
    }

    private static final byte OP_SET = 0;
    private static final byte OP_DELETE = 1;
    private static final byte OP_APPEND = 2;
    private static final byte OP_SUBTRACT = 3;

    /**
     * Applies IncrementalAlterConfigs operations to a topic's overrides: SET, DELETE (back to the broker's or
     * Kafka's default), APPEND and SUBTRACT (list configs only, item by item, as Kafka). Returns the new overrides,
     * validated as a whole ({@link TopicConfigs#validate}), or a {@link Broker.Failure} naming the key and reason.
     */
    static Object applyIncremental(Map<String, String> current, List<IncrementalAlterConfigsRequestData.AlterableConfig> ops,
                                   TopicConfigs.Defaults defaults) {
        Map<String, String> next = new java.util.TreeMap<>(current);
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (IncrementalAlterConfigsRequestData.AlterableConfig op : ops) {
            if (!seen.add(op.name)) {
                return new Broker.Failure(ErrorCodes.INVALID_REQUEST, "Error due to duplicate config keys: " + op.name);
            }
            if (!TopicConfigs.known(op.name)) {
                return new Broker.Failure(ErrorCodes.INVALID_CONFIG, "Unknown topic config name: " + op.name);
            }
            switch (op.configOperation) {
                case OP_SET -> {
                    String bad = TopicConfigs.invalid(op.name, op.value, defaults);
                    if (bad != null) {
                        return new Broker.Failure(ErrorCodes.INVALID_CONFIG, bad);
                    }
                    next.put(op.name, op.value.trim());
                }
                case OP_DELETE -> next.remove(op.name);
                case OP_APPEND, OP_SUBTRACT -> {
                    if (TopicConfigs.type(op.name) != TopicConfigs.Type.LIST) {
                        return new Broker.Failure(ErrorCodes.INVALID_CONFIG, "Can't " + (op.configOperation == OP_APPEND
                            ? "APPEND to" : "SUBTRACT from") + " key " + op.name + " because its type is not LIST.");
                    }
                    @SuppressWarnings("unchecked")
                    List<String> values = new ArrayList<>((List<String>) TopicConfigs.parse(TopicConfigs.Type.LIST,
                        TopicConfigs.effective(next, op.name, defaults)));
                    @SuppressWarnings("unchecked")
                    List<String> items = op.value == null ? List.of()
                        : (List<String>) TopicConfigs.parse(TopicConfigs.Type.LIST, op.value);
                    for (String v : items) {
                        if (op.configOperation == OP_APPEND && !values.contains(v)) {
                            values.add(v);
                        } else if (op.configOperation == OP_SUBTRACT) {
                            values.remove(v);
                        }
                    }
                    String joined = String.join(",", values);
                    String bad = TopicConfigs.invalid(op.name, joined, defaults);
                    if (bad != null) {
                        return new Broker.Failure(ErrorCodes.INVALID_CONFIG, bad);
                    }
                    next.put(op.name, joined);
                }
                default -> {
                    return new Broker.Failure(ErrorCodes.INVALID_REQUEST, "unknown config operation "
                        + op.configOperation + " for " + op.name + " (SET 0, DELETE 1, APPEND 2, SUBTRACT 3)");
                }
            }
        }
        String bad = TopicConfigs.firstProblem(next, defaults);
        return bad != null ? new Broker.Failure(ErrorCodes.INVALID_CONFIG, bad) : next;
    }

    private Promise<ProtocolMessage> alterConfigs(ShardState st, IncrementalAlterConfigsRequestData req) {
        IncrementalAlterConfigsResponseData r = new IncrementalAlterConfigsResponseData();
        List<Promise<Object>> all = new ArrayList<>();
        for (IncrementalAlterConfigsRequestData.AlterConfigsResource res : req.resources) {
            IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse out =
                new IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse();
            out.resourceType = res.resourceType;
            out.resourceName = res.resourceName;
            out.errorMessage = null;
            r.responses.add(out);
            if (res.resourceType == BROKER && NodeModeConfigs.names(res)) {
                all.add(NodeModeConfigs.alter(broker, st, res, req.validateOnly).map(f -> {
                    if (f != null) {
                        out.errorCode = f.code();
                        out.errorMessage = f.message();
                    }
                    return null;
                }));
                continue;
            }
            if (res.resourceType == BROKER) {
                Promise<Broker.Failure> throttles = broker.reassignments().alterThrottles(st, res, req.validateOnly);
                if (throttles == null) {
                    out.errorCode = ErrorCodes.INVALID_REQUEST;
                    out.errorMessage = "broker configs are set when the broker starts (command line or --config file),"
                        + " not at runtime (replication throttles aside)";
                } else {
                    all.add(throttles.map(f -> {
                        if (f != null) {
                            out.errorCode = f.code();
                            out.errorMessage = f.message();
                        }
                        return null;
                    }));
                }
                continue;
            }
            if (res.resourceType != TOPIC) {
                out.errorCode = ErrorCodes.INVALID_REQUEST;
                out.errorMessage = "resource type " + res.resourceType + " has no configs here (topics: 2)";
                continue;
            }
            List<IncrementalAlterConfigsRequestData.AlterableConfig> ops = res.configs;
            TopicConfigs.Defaults defaults = broker.topicDefaults();
            boolean validateOnly = req.validateOnly;
            all.add(broker.alterTopicConfigs(st.shard, res.resourceName, current -> {
                Object next = applyIncremental(current, ops, defaults);
                return validateOnly && !(next instanceof Broker.Failure) ? (Object) Boolean.TRUE : next;
            }).map(outcome -> {
                if (outcome instanceof Broker.Failure f) {
                    out.errorCode = f.code();
                    out.errorMessage = f.message();
                }
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    /**
     * The legacy AlterConfigs (kafkajs, sarama): each resource's configs are replaced by the request's, so a topic
     * config left out goes back to its default (the broker's, else Kafka's). The whole new set is validated as
     * IncrementalAlterConfigs validates its result ({@link TopicConfigs#validate}); validateOnly changes nothing. Broker
     * configs are start-up settings here: naming any answers INVALID_REQUEST as Kafka does for a config it cannot
     * update dynamically.
     */
    private Promise<ProtocolMessage> replaceConfigs(ShardState st, AlterConfigsRequestData req) {
        AlterConfigsResponseData r = new AlterConfigsResponseData();
        Map<String, Integer> seen = new HashMap<>();
        for (AlterConfigsRequestData.AlterConfigsResource res : req.resources) {
            seen.merge(res.resourceType + "/" + res.resourceName, 1, Integer::sum);
        }
        List<Promise<Object>> all = new ArrayList<>();
        for (AlterConfigsRequestData.AlterConfigsResource res : req.resources) {
            AlterConfigsResponseData.AlterConfigsResourceResponse out = new AlterConfigsResponseData.AlterConfigsResourceResponse();
            out.resourceType = res.resourceType;
            out.resourceName = res.resourceName;
            out.errorMessage = null;
            r.responses.add(out);
            String bad = seen.get(res.resourceType + "/" + res.resourceName) > 1 ? "Each resource must appear at most once."
                : malformedConfigs(res.configs);
            if (bad != null) {
                out.errorCode = ErrorCodes.INVALID_REQUEST;
                out.errorMessage = bad;
                continue;
            }
            if (res.resourceType == BROKER) {
                String refused = brokerConfigsRefused(res);
                if (refused != null) {
                    out.errorCode = ErrorCodes.INVALID_REQUEST;
                    out.errorMessage = refused;
                }
                continue; // replacing the dynamic broker configs (there are none) with none: nothing to do
            }
            if (res.resourceType != TOPIC) {
                out.errorCode = ErrorCodes.INVALID_REQUEST;
                out.errorMessage = "resource type " + res.resourceType + " has no configs here (topics: 2, brokers: 4)";
                continue;
            }
            List<AlterConfigsRequestData.AlterableConfig> configs = res.configs;
            TopicConfigs.Defaults defaults = broker.topicDefaults();
            boolean validateOnly = req.validateOnly;
            all.add(broker.alterTopicConfigs(st.shard, res.resourceName, current -> {
                Map<String, String> next = new LinkedHashMap<>();
                for (AlterConfigsRequestData.AlterableConfig c : configs) {
                    next.put(c.name, c.value);
                }
                String invalid = TopicConfigs.firstProblem(next, defaults); // the whole new set, as Kafka checks it
                if (invalid != null) {
                    return new Broker.Failure(ErrorCodes.INVALID_CONFIG, invalid);
                }
                return validateOnly ? (Object) Boolean.TRUE : TopicConfigs.normalized(next);
            }).map(outcome -> {
                if (outcome instanceof Broker.Failure f) {
                    out.errorCode = f.code();
                    out.errorMessage = f.message();
                }
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    /** Kafka's request checks: a config named twice, or without a value; null when neither. */
    private static String malformedConfigs(List<AlterConfigsRequestData.AlterableConfig> configs) {
        Set<String> names = new HashSet<>();
        Set<String> nulls = new TreeSet<>();
        for (AlterConfigsRequestData.AlterableConfig c : configs) {
            if (!names.add(c.name)) {
                return "Error due to duplicate config keys";
            }
            if (c.value == null) {
                nulls.add(c.name);
            }
        }
        return nulls.isEmpty() ? null : "Null value not supported for : " + String.join(", ", nulls);
    }

    /** Why a broker resource's new configs are refused (Kafka's messages), or null when there are none to set. */
    private String brokerConfigsRefused(AlterConfigsRequestData.AlterConfigsResource res) {
        int self = broker.config().nodeId();
        if (!res.resourceName.isEmpty()) {
            int id;
            try {
                id = Integer.parseInt(res.resourceName);
            } catch (NumberFormatException e) {
                return "Node id must be an integer, but it is: " + res.resourceName;
            }
            if (id != self) {
                return "Unexpected broker id, expected " + self + ", but received " + res.resourceName;
            }
        }
        if (res.configs.isEmpty()) {
            return null;
        }
        Set<String> names = new TreeSet<>();
        for (AlterConfigsRequestData.AlterableConfig c : res.configs) {
            names.add(c.name);
        }
        return "Cannot update these configs dynamically: " + names + " (broker settings are set when the broker"
            + " starts: command line or --config file)";
    }

    // ------------------------------------------------------------------ epochs and cluster

    private Promise<ProtocolMessage> offsetForLeaderEpoch(ShardState st, OffsetForLeaderEpochRequestData req) {
        OffsetForLeaderEpochResponseData r = new OffsetForLeaderEpochResponseData();
        PartitionFanOut fan = new PartitionFanOut(broker.handlers(), st);
        for (OffsetForLeaderEpochRequestData.OffsetForLeaderTopic t : req.topics) {
            OffsetForLeaderEpochResponseData.OffsetForLeaderTopicResult tr = new OffsetForLeaderEpochResponseData.OffsetForLeaderTopicResult();
            tr.topic = t.topic;
            r.topics.add(tr);
            TopicTable.Topic topic = st.topics.get(t.topic);
            for (OffsetForLeaderEpochRequestData.OffsetForLeaderPartition p : t.partitions) {
                OffsetForLeaderEpochResponseData.EpochEndOffset e = new OffsetForLeaderEpochResponseData.EpochEndOffset();
                e.partition = p.partition;
                tr.partitions.add(e);
                if (!PartitionFanOut.exists(topic, p.partition)) {
                    e.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
                int current = p.currentLeaderEpoch;
                int wanted = p.leaderEpoch;
                fan.submit(topic, p.partition, part -> Promise.completed(part.epochEndOffset(current, wanted)),
                    new long[] {ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, -1, -1},
                    new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1},
                    // A failed cross-shard call is a retriable error, never NONE with epoch and offset -1 (a wrong answer).
                    f -> new long[] {ErrorCodes.REQUEST_TIMED_OUT, -1, -1}, res -> {
                        e.errorCode = (short) res[0];
                        e.leaderEpoch = (int) res[1];
                        e.endOffset = res[2];
                    });
            }
        }
        return fan.gather(r);
    }

    private DescribeClusterResponseData describeCluster(ShardState st, DescribeClusterRequestData req,
                                                        String listener) {
        DescribeClusterResponseData r = new DescribeClusterResponseData();
        if (req.endpointType != 1) {
            r.errorCode = ErrorCodes.UNSUPPORTED_ENDPOINT_TYPE;
            r.errorMessage = "only broker endpoints (type 1) are served here";
            return r;
        }
        r.clusterId = broker.clusterId();
        r.controllerId = broker.controllerId();
        java.util.Set<Integer> listed = new java.util.HashSet<>();
        for (var mb : broker.handlers().brokers(st, listener)) {
            DescribeClusterResponseData.DescribeClusterBroker b = new DescribeClusterResponseData.DescribeClusterBroker();
            b.brokerId = mb.nodeId;
            b.host = mb.host;
            b.port = mb.port;
            b.rack = mb.rack;
            r.brokers.add(b);
            listed.add(mb.nodeId);
        }
        if (req.includeFencedBrokers && st.cluster != null) {
            // v2 (KIP-1073): registered brokers that are not live (this node holds no Raft connection to them) are
            // Kafka's fenced brokers; `isthmus admin cluster status` shows them as down.
            for (dev.isthmus.gateway.cluster.BrokerInfo bi : st.cluster.brokers()) {
                dev.isthmus.gateway.cluster.BrokerInfo.Endpoint e = bi.endpoint(listener == null ? "" : listener);
                if (listed.contains(bi.id()) || e == null) {
                    continue;
                }
                DescribeClusterResponseData.DescribeClusterBroker b = new DescribeClusterResponseData.DescribeClusterBroker();
                b.brokerId = bi.id();
                b.host = e.host();
                b.port = e.port();
                b.isFenced = true;
                r.brokers.add(b);
            }
        }
        return r;
    }
}
