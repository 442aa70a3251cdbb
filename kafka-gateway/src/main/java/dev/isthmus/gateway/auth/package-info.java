/**
 * Authorization: Kafka's ACL model as a pure decision, apart from the requests it guards.
 *
 * <ul>
 *   <li>{@link dev.isthmus.gateway.auth.Authorizer}: an immutable index of the cluster's ACL bindings and Kafka's
 *       decision over it ({@code StandardAuthorizerData.authorize}: super users, DENY over ALLOW, implied DESCRIBE
 *       and DESCRIBE_CONFIGS, LITERAL/wildcard/PREFIXED resources, {@code allow.everyone.if.no.acl.found}), plus
 *       {@code authorizeByResourceType} (KIP-679) and the authorized-operations bitfields. Shard 0 builds one per
 *       change of the ACLs and every shard reads the one it was handed: no lock, no cross-shard call per check.</li>
 *   <li>{@link dev.isthmus.gateway.auth.AuthorizerConfig}: {@code authorizer.class.name} / {@code --authorizer},
 *       {@code super.users}, {@code allow.everyone.if.no.acl.found}.</li>
 * </ul>
 *
 * The bindings themselves ({@code dev.isthmus.gateway.cluster.AclBinding}, {@code AclFilter}) are controller state,
 * replicated by the controller group. The per-API checks are {@code dev.isthmus.gateway.RequestAuthorization}; the
 * ACL APIs are {@code dev.isthmus.gateway.AclApis}. Tests: {@code AuthorizerTest} (Kafka's cases and a randomized
 * comparison with the rules), {@code AclFilterTest}, {@code ClusterStateTest}, {@code AclEndToEndTest}.
 */
package dev.isthmus.gateway.auth;
