package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.CreateAclsRequestData;
import dev.isthmus.gateway.protocol.message.CreateAclsResponseData;
import dev.isthmus.gateway.protocol.message.DeleteAclsRequestData;
import dev.isthmus.gateway.protocol.message.DeleteAclsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeAclsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeAclsResponseData;
import dev.isthmus.gateway.cluster.AclBinding;
import dev.isthmus.gateway.cluster.AclFilter;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * CreateAcls, DescribeAcls and DeleteAcls (Kafka's {@code AclApis} and {@code AclControlManager}). ACLs live in the
 * controller's replicated state ({@link dev.isthmus.gateway.cluster.ClusterState#acls()}): creations and deletions
 * are controller commands, answered once every shard of this node has installed them, so the next request on any
 * connection of this node sees them. DescribeAcls reads the connection shard's copy. Whether the caller may use
 * these APIs (ALTER or DESCRIBE on the cluster) is checked before, by {@link RequestAuthorization}.
 *
 * <p>Without an authorizer all three answer SECURITY_DISABLED, as Kafka does (MirrorMaker 2's ACL sync expects it).
 *
 * <p>DeleteAcls resolves its filters against this node's copy of the ACLs and removes exactly the bindings found
 * (as Kafka's ZooKeeper-era authorizer did); a binding created on another node and not yet applied here is not
 * removed by that request. One instance per broker; runs on the connection's shard.
 */
final class AclApis {
    /** Kafka's answers while no authorizer is configured. */
    static final String NO_AUTHORIZER_DESCRIBE = "No Authorizer is configured on the broker";
    static final String NO_AUTHORIZER = "No Authorizer is configured.";

    private final Broker broker;

    AclApis(Broker broker) {
        this.broker = broker;
    }

    private boolean enabled() {
        return broker.config().authorizer().enabled();
    }

    // ------------------------------------------------------------------ DescribeAcls

    ProtocolMessage describe(ShardState st, DescribeAclsRequestData req) {
        DescribeAclsResponseData r = new DescribeAclsResponseData();
        if (!enabled()) {
            r.errorCode = ErrorCodes.SECURITY_DISABLED;
            r.errorMessage = NO_AUTHORIZER_DESCRIBE;
            return r;
        }
        AclFilter f = new AclFilter(req.resourceTypeFilter, req.resourceNameFilter, req.patternTypeFilter,
            req.principalFilter, req.hostFilter, req.operation, req.permissionType);
        String problem = f.problem();
        if (problem != null) {
            r.errorCode = ErrorCodes.INVALID_REQUEST;
            r.errorMessage = problem;
            return r;
        }
        r.errorMessage = null;
        Map<String, DescribeAclsResponseData.DescribeAclsResource> byResource = new LinkedHashMap<>();
        for (AclBinding b : acls(st)) {
            if (!f.matches(b)) {
                continue;
            }
            DescribeAclsResponseData.DescribeAclsResource res = byResource.computeIfAbsent(
                b.resourceType() + "\u0000" + b.patternType() + "\u0000" + b.resourceName(), k -> {
                    DescribeAclsResponseData.DescribeAclsResource x = new DescribeAclsResponseData.DescribeAclsResource();
                    x.resourceType = b.resourceType();
                    x.resourceName = b.resourceName();
                    x.patternType = b.patternType();
                    return x;
                });
            DescribeAclsResponseData.AclDescription d = new DescribeAclsResponseData.AclDescription();
            d.principal = b.principal();
            d.host = b.host();
            d.operation = b.operation();
            d.permissionType = b.permission();
            res.acls.add(d);
        }
        r.resources.addAll(byResource.values());
        return r;
    }

    private static Set<AclBinding> acls(ShardState st) {
        return st.cluster == null ? Set.of() : st.cluster.acls();
    }

    // ------------------------------------------------------------------ CreateAcls

    Promise<ProtocolMessage> create(ShardState st, CreateAclsRequestData req) {
        CreateAclsResponseData r = new CreateAclsResponseData();
        List<AclBinding> valid = new ArrayList<>();
        List<CreateAclsResponseData.AclCreationResult> pending = new ArrayList<>();
        for (CreateAclsRequestData.AclCreation c : req.creations) {
            CreateAclsResponseData.AclCreationResult res = new CreateAclsResponseData.AclCreationResult();
            res.errorMessage = null;
            r.results.add(res);
            if (!enabled()) {
                res.errorCode = ErrorCodes.SECURITY_DISABLED;
                res.errorMessage = NO_AUTHORIZER;
                continue;
            }
            String problem = c.resourceName == null || c.principal == null || c.host == null
                ? "Invalid null resource name, principal or host" : null;
            AclBinding b = problem != null ? null : new AclBinding(c.resourceType, c.resourceName,
                c.resourcePatternType, c.principal, c.host, c.operation, c.permissionType);
            if (b != null) {
                problem = b.problem();
            }
            if (problem != null) {
                res.errorCode = ErrorCodes.INVALID_REQUEST;
                res.errorMessage = problem;
                continue;
            }
            valid.add(b);
            pending.add(res);
        }
        if (valid.isEmpty()) {
            return Promise.completed(r);
        }
        return broker.aclCommand(st.shard, new ControllerCommand.CreateAcls(valid)).map(outcome -> {
            if (outcome instanceof Broker.Failure f) {
                for (CreateAclsResponseData.AclCreationResult res : pending) {
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                }
            }
            return r;
        });
    }

    // ------------------------------------------------------------------ DeleteAcls

    Promise<ProtocolMessage> delete(ShardState st, DeleteAclsRequestData req) {
        DeleteAclsResponseData r = new DeleteAclsResponseData();
        Set<AclBinding> doomed = new LinkedHashSet<>();
        List<DeleteAclsResponseData.DeleteAclsFilterResult> pending = new ArrayList<>();
        for (DeleteAclsRequestData.DeleteAclsFilter df : req.filters) {
            DeleteAclsResponseData.DeleteAclsFilterResult res = new DeleteAclsResponseData.DeleteAclsFilterResult();
            res.errorMessage = null;
            r.filterResults.add(res);
            if (!enabled()) {
                res.errorCode = ErrorCodes.SECURITY_DISABLED;
                res.errorMessage = NO_AUTHORIZER;
                continue;
            }
            AclFilter f = new AclFilter(df.resourceTypeFilter, df.resourceNameFilter, df.patternTypeFilter,
                df.principalFilter, df.hostFilter, df.operation, df.permissionType);
            String problem = f.problem();
            if (problem != null) {
                res.errorCode = ErrorCodes.INVALID_REQUEST;
                res.errorMessage = problem;
                continue;
            }
            for (AclBinding b : acls(st)) {
                if (f.matches(b)) {
                    doomed.add(b);
                    DeleteAclsResponseData.DeleteAclsMatchingAcl m = new DeleteAclsResponseData.DeleteAclsMatchingAcl();
                    m.errorMessage = null;
                    m.resourceType = b.resourceType();
                    m.resourceName = b.resourceName();
                    m.patternType = b.patternType();
                    m.principal = b.principal();
                    m.host = b.host();
                    m.operation = b.operation();
                    m.permissionType = b.permission();
                    res.matchingAcls.add(m);
                }
            }
            pending.add(res);
        }
        if (doomed.isEmpty()) {
            return Promise.completed(r);
        }
        return broker.aclCommand(st.shard, new ControllerCommand.DeleteAcls(new ArrayList<>(doomed))).map(outcome -> {
            if (outcome instanceof Broker.Failure f) {
                for (DeleteAclsResponseData.DeleteAclsFilterResult res : pending) {
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                    res.matchingAcls.clear();
                }
            }
            return r;
        });
    }
}
