package dev.isthmus.gateway.auth;

import dev.isthmus.gateway.cluster.AclBinding;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static dev.isthmus.gateway.cluster.AclBinding.ALL;
import static dev.isthmus.gateway.cluster.AclBinding.ALLOW;
import static dev.isthmus.gateway.cluster.AclBinding.ALTER;
import static dev.isthmus.gateway.cluster.AclBinding.ALTER_CONFIGS;
import static dev.isthmus.gateway.cluster.AclBinding.CLUSTER;
import static dev.isthmus.gateway.cluster.AclBinding.CREATE;
import static dev.isthmus.gateway.cluster.AclBinding.DELETE;
import static dev.isthmus.gateway.cluster.AclBinding.DENY;
import static dev.isthmus.gateway.cluster.AclBinding.DESCRIBE;
import static dev.isthmus.gateway.cluster.AclBinding.DESCRIBE_CONFIGS;
import static dev.isthmus.gateway.cluster.AclBinding.GROUP;
import static dev.isthmus.gateway.cluster.AclBinding.IDEMPOTENT_WRITE;
import static dev.isthmus.gateway.cluster.AclBinding.LITERAL;
import static dev.isthmus.gateway.cluster.AclBinding.PREFIXED;
import static dev.isthmus.gateway.cluster.AclBinding.READ;
import static dev.isthmus.gateway.cluster.AclBinding.TOPIC;
import static dev.isthmus.gateway.cluster.AclBinding.TRANSACTIONAL_ID;
import static dev.isthmus.gateway.cluster.AclBinding.WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ACL decision as Kafka's {@code StandardAuthorizerData} makes it (cases follow Kafka's {@code AuthorizerTest}
 * and {@code StandardAuthorizerTest}), plus a randomized comparison with a direct transcription of the rules.
 */
class AuthorizerTest {
    private static final String ALICE = "User:alice";
    private static final String BOB = "User:bob";
    private static final String HOST = "10.0.0.1";
    private static final AuthorizerConfig ON = new AuthorizerConfig(true, Set.of(), false);

    private static AclBinding acl(byte type, String name, byte pattern, String principal, String host, byte op,
                                  byte permission) {
        return new AclBinding(type, name, pattern, principal, host, op, permission);
    }

    private static AclBinding allow(byte type, String name, byte pattern, String principal, byte op) {
        return acl(type, name, pattern, principal, "*", op, ALLOW);
    }

    private static AclBinding deny(byte type, String name, byte pattern, String principal, byte op) {
        return acl(type, name, pattern, principal, "*", op, DENY);
    }

    private static Authorizer az(AuthorizerConfig c, AclBinding... acls) {
        return Authorizer.of(c, new TreeSet<>(List.of(acls)));
    }

    private static Authorizer az(AclBinding... acls) {
        return az(ON, acls);
    }

    @Test
    void shouldAllowEverythingWhenNoAuthorizerIsConfigured() {
        Authorizer a = Authorizer.of(AuthorizerConfig.OFF, List.of(deny(TOPIC, "t", LITERAL, ALICE, ALL)));
        assertFalse(a.enabled());
        assertTrue(a.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertTrue(a.authorizeAny(ALICE, HOST, WRITE, TOPIC));
    }

    @Test
    void shouldDenyWithoutAclsUnlessAllowEveryoneIfNoAclFound() {
        assertFalse(az().authorize(ALICE, HOST, READ, TOPIC, "t"));
        Authorizer open = az(ON.withAllowEveryoneIfNoAclFound(true));
        assertTrue(open.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertTrue(open.authorize(ALICE, HOST, ALTER, CLUSTER, AclBinding.CLUSTER_NAME));
    }

    @Test
    void shouldApplyAllowEveryoneOnlyToResourcesNoAclNames() {
        Authorizer a = az(ON.withAllowEveryoneIfNoAclFound(true), allow(TOPIC, "t", LITERAL, BOB, READ),
            allow(TOPIC, "pre", PREFIXED, BOB, READ));
        assertFalse(a.authorize(ALICE, HOST, READ, TOPIC, "t"), "an ACL for bob names t: no fallback for alice");
        assertFalse(a.authorize(ALICE, HOST, READ, TOPIC, "prefixed"), "a prefixed ACL names it too");
        assertTrue(a.authorize(ALICE, HOST, READ, TOPIC, "other"), "no ACL names 'other'");
        assertTrue(a.authorize(ALICE, HOST, READ, GROUP, "t"), "ACLs of topics do not name groups");
    }

    @Test
    void shouldLetSuperUsersDoEverythingEvenWhenDenied() {
        Authorizer a = az(ON.withSuperUsers(Set.of("User:admin")), deny(TOPIC, "*", LITERAL, "User:*", ALL),
            deny(CLUSTER, AclBinding.CLUSTER_NAME, LITERAL, "User:admin", ALL));
        assertTrue(a.isSuperUser("User:admin"));
        assertTrue(a.authorize("User:admin", HOST, WRITE, TOPIC, "t"));
        assertTrue(a.authorize("User:admin", HOST, ALTER, CLUSTER, AclBinding.CLUSTER_NAME));
        assertFalse(a.authorize(ALICE, HOST, WRITE, TOPIC, "t"));
        assertFalse(a.isSuperUser("User:Admin"), "principals are case-sensitive");
    }

    @Test
    void shouldAllowOnlyTheGrantedPrincipalAndOperation() {
        Authorizer a = az(allow(TOPIC, "t", LITERAL, ALICE, READ));
        assertTrue(a.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertFalse(a.authorize(BOB, HOST, READ, TOPIC, "t"));
        assertFalse(a.authorize(ALICE, HOST, WRITE, TOPIC, "t"));
        assertFalse(a.authorize(ALICE, HOST, READ, TOPIC, "t2"));
        assertFalse(a.authorize(ALICE, HOST, READ, GROUP, "t"));
    }

    @Test
    void shouldLetDenyWinOverAllow() {
        Authorizer a = az(allow(TOPIC, "t", LITERAL, ALICE, READ), deny(TOPIC, "t", LITERAL, ALICE, READ));
        assertFalse(a.authorize(ALICE, HOST, READ, TOPIC, "t"));
        Authorizer wildcardDeny = az(allow(TOPIC, "t", LITERAL, ALICE, ALL), deny(TOPIC, "*", LITERAL, "User:*", WRITE));
        assertFalse(wildcardDeny.authorize(ALICE, HOST, WRITE, TOPIC, "t"), "a wildcard DENY beats a literal ALLOW");
        assertTrue(wildcardDeny.authorize(ALICE, HOST, READ, TOPIC, "t"));
        Authorizer prefixDeny = az(allow(TOPIC, "payments", LITERAL, ALICE, READ), deny(TOPIC, "pay", PREFIXED, ALICE, READ));
        assertFalse(prefixDeny.authorize(ALICE, HOST, READ, TOPIC, "payments"), "a prefixed DENY beats a literal ALLOW");
        Authorizer hostDeny = az(allow(TOPIC, "t", LITERAL, ALICE, READ), acl(TOPIC, "t", LITERAL, ALICE, HOST, READ, DENY));
        assertFalse(hostDeny.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertTrue(hostDeny.authorize(ALICE, "10.0.0.2", READ, TOPIC, "t"), "the DENY is for one host only");
    }

    @Test
    void shouldImplyDescribeFromReadWriteDeleteAndAlterOnAllowOnly() {
        for (byte op : new byte[] {READ, WRITE, DELETE, ALTER}) {
            Authorizer a = az(allow(TOPIC, "t", LITERAL, ALICE, op));
            assertTrue(a.authorize(ALICE, HOST, DESCRIBE, TOPIC, "t"), "op " + op + " implies DESCRIBE");
        }
        for (byte op : new byte[] {CREATE, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE}) {
            Authorizer a = az(allow(TOPIC, "t", LITERAL, ALICE, op));
            assertFalse(a.authorize(ALICE, HOST, DESCRIBE, TOPIC, "t"), "op " + op + " does not imply DESCRIBE");
        }
        assertTrue(az(allow(TOPIC, "t", LITERAL, ALICE, ALTER_CONFIGS)).authorize(ALICE, HOST, DESCRIBE_CONFIGS, TOPIC, "t"));
        assertFalse(az(allow(TOPIC, "t", LITERAL, ALICE, DESCRIBE)).authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertFalse(az(allow(TOPIC, "t", LITERAL, ALICE, READ)).authorize(ALICE, HOST, WRITE, TOPIC, "t"));
        Authorizer denyRead = az(allow(TOPIC, "t", LITERAL, ALICE, WRITE), deny(TOPIC, "t", LITERAL, ALICE, READ));
        assertTrue(denyRead.authorize(ALICE, HOST, DESCRIBE, TOPIC, "t"), "a DENY of READ does not deny DESCRIBE");
        assertFalse(denyRead.authorize(ALICE, HOST, READ, TOPIC, "t"));
    }

    @Test
    void shouldMatchAllOperationsWithAllInAllowAndDeny() {
        Authorizer a = az(allow(GROUP, "g", LITERAL, ALICE, ALL));
        for (byte op = READ; op <= AclBinding.DESCRIBE_TOKENS; op++) {
            assertTrue(a.authorize(ALICE, HOST, op, GROUP, "g"), "op " + op);
        }
        Authorizer d = az(allow(GROUP, "g", LITERAL, ALICE, READ), deny(GROUP, "g", LITERAL, ALICE, ALL));
        assertFalse(d.authorize(ALICE, HOST, READ, GROUP, "g"));
        assertFalse(d.authorize(ALICE, HOST, DESCRIBE, GROUP, "g"));
    }

    @Test
    void shouldMatchWildcardPrincipalHostAndResource() {
        Authorizer a = az(allow(TOPIC, "*", LITERAL, "User:*", READ));
        assertTrue(a.authorize(ALICE, HOST, READ, TOPIC, "anything"));
        assertTrue(a.authorize("User:ANONYMOUS", "::1", READ, TOPIC, "x"));
        assertFalse(a.authorize(ALICE, HOST, READ, GROUP, "anything"));
        Authorizer hosts = az(acl(TOPIC, "t", LITERAL, ALICE, HOST, READ, ALLOW));
        assertTrue(hosts.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertFalse(hosts.authorize(ALICE, "10.0.0.2", READ, TOPIC, "t"));
        Authorizer otherType = az(allow(TOPIC, "t", LITERAL, "Group:*", READ));
        assertFalse(otherType.authorize(ALICE, HOST, READ, TOPIC, "t"), "only User:* is the wildcard principal");
    }

    @Test
    void shouldMatchPrefixedAclsOnNamesStartingWithThePrefix() {
        Authorizer a = az(allow(TOPIC, "pay", PREFIXED, ALICE, WRITE), allow(TOPIC, "payments.eu.", PREFIXED, BOB, WRITE));
        assertTrue(a.authorize(ALICE, HOST, WRITE, TOPIC, "pay"));
        assertTrue(a.authorize(ALICE, HOST, WRITE, TOPIC, "payments"));
        assertFalse(a.authorize(ALICE, HOST, WRITE, TOPIC, "pa"));
        assertFalse(a.authorize(ALICE, HOST, WRITE, TOPIC, "apay"));
        assertTrue(a.authorize(BOB, HOST, WRITE, TOPIC, "payments.eu.orders"));
        assertFalse(a.authorize(BOB, HOST, WRITE, TOPIC, "payments.us.orders"));
        Authorizer literalStar = az(allow(TOPIC, "*", PREFIXED, ALICE, READ));
        assertFalse(literalStar.authorize(ALICE, HOST, READ, TOPIC, "t"), "a PREFIXED '*' is the prefix '*', not all");
        assertTrue(literalStar.authorize(ALICE, HOST, READ, TOPIC, "*t"));
    }

    @Test
    void shouldAuthorizeByResourceTypeAsKafkaDoes() {
        // KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
        assertFalse(az().authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(ON.withAllowEveryoneIfNoAclFound(true)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(allow(TOPIC, "t", LITERAL, ALICE, WRITE)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(allow(TOPIC, "t", LITERAL, ALICE, ALL)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertFalse(az(allow(TOPIC, "t", LITERAL, ALICE, READ)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertFalse(az(allow(TOPIC, "t", LITERAL, BOB, WRITE)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(allow(TOPIC, "t", LITERAL, "User:*", WRITE)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertFalse(az(allow(TOPIC, "t", LITERAL, ALICE, WRITE), deny(TOPIC, "*", LITERAL, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertFalse(az(allow(TOPIC, "t", LITERAL, ALICE, WRITE), deny(TOPIC, "t", LITERAL, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertFalse(az(allow(TOPIC, "abc", PREFIXED, ALICE, WRITE), deny(TOPIC, "a", PREFIXED, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC), "the DENY prefix covers the ALLOW prefix");
        assertTrue(az(allow(TOPIC, "a", PREFIXED, ALICE, WRITE), deny(TOPIC, "abc", PREFIXED, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC), "names under 'a' but not 'abc' are allowed");
        assertFalse(az(allow(TOPIC, "abc", LITERAL, ALICE, WRITE), deny(TOPIC, "ab", PREFIXED, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(allow(TOPIC, "abc", LITERAL, ALICE, WRITE), deny(TOPIC, "abd", PREFIXED, ALICE, WRITE))
            .authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(ON.withSuperUsers(Set.of(ALICE))).authorizeAny(ALICE, HOST, WRITE, TOPIC));
        assertTrue(az(allow(TOPIC, "*", LITERAL, ALICE, WRITE)).authorizeAny(ALICE, HOST, WRITE, TOPIC));
    }

    @Test
    void shouldReportAuthorizedOperationsAsABitPerOperationCode() {
        Authorizer a = az(allow(TOPIC, "t", LITERAL, ALICE, READ), allow(TOPIC, "t", LITERAL, ALICE, ALTER_CONFIGS));
        int bits = a.authorizedOperations(ALICE, HOST, TOPIC, "t", Authorizer.TOPIC_OPERATIONS);
        assertEquals((1 << READ) | (1 << DESCRIBE) | (1 << ALTER_CONFIGS) | (1 << DESCRIBE_CONFIGS), bits);
        assertEquals(0, a.authorizedOperations(BOB, HOST, TOPIC, "t", Authorizer.TOPIC_OPERATIONS));
    }

    @Test
    void shouldKeepResourceTypesApart() {
        Authorizer a = az(allow(TRANSACTIONAL_ID, "tx", LITERAL, ALICE, WRITE), allow(GROUP, "tx", PREFIXED, BOB, READ));
        assertTrue(a.authorize(ALICE, HOST, WRITE, TRANSACTIONAL_ID, "tx"));
        assertFalse(a.authorize(ALICE, HOST, WRITE, TOPIC, "tx"));
        assertFalse(a.authorize(BOB, HOST, READ, TRANSACTIONAL_ID, "tx1"));
        assertTrue(a.authorize(BOB, HOST, READ, GROUP, "tx1"));
    }

    @Test
    void shouldReuseTheIndexWhileTheAclSetIsTheSameObject() {
        TreeSet<AclBinding> acls = new TreeSet<>(List.of(allow(TOPIC, "t", LITERAL, ALICE, READ)));
        Authorizer a = Authorizer.of(ON, acls);
        assertSame(a, a.refreshed(ON, acls));
        Authorizer b = a.refreshed(ON, new TreeSet<>(acls));
        assertTrue(b != a && b.authorize(ALICE, HOST, READ, TOPIC, "t"));
        assertSame(Authorizer.ALLOW_ALL, a.refreshed(AuthorizerConfig.OFF, acls));
    }

    @Test
    void shouldParseKafkasAuthorizerSettings() {
        assertTrue(AuthorizerConfig.parseAuthorizer("authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"));
        assertTrue(AuthorizerConfig.parseAuthorizer("authorizer", "acl"));
        assertFalse(AuthorizerConfig.parseAuthorizer("authorizer.class.name", ""));
        assertFalse(AuthorizerConfig.parseAuthorizer("authorizer", "none"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> AuthorizerConfig.parseAuthorizer("authorizer.class.name", "com.example.MyAuthorizer"));
        assertTrue(e.getMessage().contains("com.example.MyAuthorizer"), e.getMessage());
        assertEquals(Set.of("User:admin", "User:CN=broker,O=acme"),
            AuthorizerConfig.parseSuperUsers(" User:admin ;User:CN=broker,O=acme;"));
        e = assertThrows(IllegalArgumentException.class, () -> AuthorizerConfig.parseSuperUsers("User:a,User:b;admin"));
        assertTrue(e.getMessage().contains("'admin'"), e.getMessage());
    }

    @Test
    void shouldTakeKafkasPropertyNamesInAConfigFileAndTheOptionsOnTheCommandLine() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("isthmus-acl", ".properties");
        try {
            java.nio.file.Files.writeString(file, String.join("\n",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:admin;User:CN=broker,O=acme",
                "allow.everyone.if.no.acl.found=true", ""));
            AuthorizerConfig c = dev.isthmus.gateway.Main.parse(new String[] {"--config", file.toString()}).authorizer();
            assertEquals(new AuthorizerConfig(true, Set.of("User:admin", "User:CN=broker,O=acme"), true), c);
            AuthorizerConfig cli = dev.isthmus.gateway.Main.parse(new String[] {"--authorizer", "acl", "--super-users",
                "User:root", "--allow-everyone-if-no-acl-found", "false"}).authorizer();
            assertEquals(new AuthorizerConfig(true, Set.of("User:root"), false), cli);
            assertEquals(AuthorizerConfig.OFF, dev.isthmus.gateway.Main.parse(new String[0]).authorizer(), "off by default");
            assertThrows(IllegalArgumentException.class,
                () -> dev.isthmus.gateway.Main.parse(new String[] {"--super-users", "admin"}));
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    /** The rules transcribed literally (Kafka's class comment), for the randomized comparison. */
    private static boolean reference(List<AclBinding> acls, boolean allowEveryone, String principal, String host,
                                     byte op, byte type, String name) {
        boolean any = false;
        boolean allowed = false;
        for (AclBinding b : acls) {
            boolean applies = b.resourceType() == type && (b.patternType() == LITERAL
                ? b.resourceName().equals(name) || b.resourceName().equals("*") : name.startsWith(b.resourceName()));
            if (!applies) {
                continue;
            }
            any = true;
            if (!(b.principal().equals(principal) || b.principal().equals("User:*"))
                || !(b.host().equals(host) || b.host().equals("*"))) {
                continue;
            }
            if (b.permission() == DENY && (b.operation() == op || b.operation() == ALL)) {
                return false;
            }
            if (b.permission() == ALLOW && (b.operation() == op || b.operation() == ALL
                || (op == DESCRIBE && (b.operation() == READ || b.operation() == WRITE || b.operation() == DELETE
                || b.operation() == ALTER)) || (op == DESCRIBE_CONFIGS && b.operation() == ALTER_CONFIGS))) {
                allowed = true;
            }
        }
        return allowed || (!any && allowEveryone);
    }

    @Test
    void shouldAgreeWithTheRulesOnRandomAclSets() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("AuthorizerTest seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        SplittableRandom r = new SplittableRandom(seed);
        String[] names = {"a", "ab", "abc", "abd", "b", "*"};
        String[] principals = {ALICE, BOB, "User:*"};
        String[] hosts = {"*", "10.0.0.1", "10.0.0.2"};
        for (int round = 0; round < 300; round++) {
            List<AclBinding> acls = new ArrayList<>();
            int n = r.nextInt(8);
            for (int i = 0; i < n; i++) {
                acls.add(acl(r.nextBoolean() ? TOPIC : GROUP, names[r.nextInt(names.length)],
                    r.nextBoolean() ? LITERAL : PREFIXED, principals[r.nextInt(principals.length)],
                    hosts[r.nextInt(hosts.length)], (byte) (ALL + r.nextInt(10)), r.nextBoolean() ? ALLOW : DENY));
            }
            boolean everyone = r.nextBoolean();
            Authorizer a = Authorizer.of(ON.withAllowEveryoneIfNoAclFound(everyone), acls);
            for (int q = 0; q < 50; q++) {
                String p = r.nextBoolean() ? ALICE : BOB;
                String h = r.nextBoolean() ? "10.0.0.1" : "10.0.0.2";
                byte op = (byte) (READ + r.nextInt(9));
                byte type = r.nextBoolean() ? TOPIC : GROUP;
                String name = new String[] {"a", "ab", "abc", "abcd", "b", "x"}[r.nextInt(6)];
                assertEquals(reference(acls, everyone, p, h, op, type, name), a.authorize(p, h, op, type, name),
                    "seed " + seed + " acls " + acls + " asking " + p + " " + h + " op " + op + " type " + type + " " + name);
            }
        }
    }
}
