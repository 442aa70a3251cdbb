package dev.isthmus.gateway.cluster;

import org.junit.jupiter.api.Test;

import static dev.isthmus.gateway.cluster.AclBinding.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kafka's {@code AclBindingFilter} semantics (ResourcePatternFilterTest, AccessControlEntryFilterTest) and validation. */
class AclFilterTest {
    private static final AclBinding LIT = new AclBinding(TOPIC, "payments", LITERAL, "User:alice", "*", READ, ALLOW);
    private static final AclBinding STAR = new AclBinding(TOPIC, "*", LITERAL, "User:bob", "10.0.0.1", WRITE, DENY);
    private static final AclBinding PRE = new AclBinding(TOPIC, "pay", PREFIXED, "User:alice", "*", ALL, ALLOW);
    private static final AclBinding GRP = new AclBinding(GROUP, "payments", LITERAL, "User:alice", "*", READ, ALLOW);

    private static AclFilter f(byte type, String name, byte pattern) {
        return new AclFilter(type, name, pattern, null, null, OP_ANY, PERMISSION_ANY);
    }

    @Test
    void shouldMatchEverythingWithTheAnyFilter() {
        AclFilter any = f(RESOURCE_ANY, null, PATTERN_ANY);
        for (AclBinding b : new AclBinding[] {LIT, STAR, PRE, GRP}) {
            assertTrue(any.matches(b), b.toString());
        }
    }

    @Test
    void shouldMatchExactNameAndTypeWithLiteralAndPrefixedFilters() {
        assertTrue(f(TOPIC, "payments", LITERAL).matches(LIT));
        assertFalse(f(TOPIC, "payments", LITERAL).matches(STAR), "LITERAL is the exact name, not what applies");
        assertFalse(f(TOPIC, "payments", LITERAL).matches(PRE));
        assertFalse(f(TOPIC, "payments", LITERAL).matches(GRP));
        assertTrue(f(TOPIC, "pay", PREFIXED).matches(PRE));
        assertFalse(f(TOPIC, "pay", PREFIXED).matches(LIT));
        assertTrue(f(TOPIC, null, PREFIXED).matches(PRE));
        assertFalse(f(TOPIC, null, PREFIXED).matches(LIT));
    }

    @Test
    void shouldMatchAnyPatternTypeWithExactNameForAny() {
        assertTrue(f(TOPIC, "pay", PATTERN_ANY).matches(PRE));
        assertFalse(f(TOPIC, "pay", PATTERN_ANY).matches(LIT));
        assertTrue(f(RESOURCE_ANY, "payments", PATTERN_ANY).matches(GRP));
    }

    @Test
    void shouldMatchWhatAppliesToTheNameForMatch() {
        AclFilter m = f(TOPIC, "payments", MATCH);
        assertTrue(m.matches(LIT));
        assertTrue(m.matches(STAR), "the wildcard applies to every name");
        assertTrue(m.matches(PRE), "'pay' is a prefix of 'payments'");
        assertFalse(m.matches(GRP));
        assertFalse(f(TOPIC, "pa", MATCH).matches(PRE), "'pay' is not a prefix of 'pa'");
        assertTrue(f(TOPIC, null, MATCH).matches(PRE));
    }

    @Test
    void shouldFilterOnPrincipalHostOperationAndPermission() {
        AclFilter alice = new AclFilter(RESOURCE_ANY, null, PATTERN_ANY, "User:alice", null, OP_ANY, PERMISSION_ANY);
        assertTrue(alice.matches(LIT));
        assertFalse(alice.matches(STAR));
        AclFilter host = new AclFilter(RESOURCE_ANY, null, PATTERN_ANY, null, "10.0.0.1", OP_ANY, PERMISSION_ANY);
        assertTrue(host.matches(STAR));
        assertFalse(host.matches(LIT), "the filter's host is compared as a string, '*' is not expanded");
        AclFilter deny = new AclFilter(RESOURCE_ANY, null, PATTERN_ANY, null, null, OP_ANY, DENY);
        assertTrue(deny.matches(STAR));
        assertFalse(deny.matches(LIT));
        AclFilter read = new AclFilter(RESOURCE_ANY, null, PATTERN_ANY, null, null, READ, PERMISSION_ANY);
        assertTrue(read.matches(LIT));
        assertFalse(read.matches(PRE), "an ALL binding is not a READ binding for a filter");
    }

    @Test
    void shouldRefuseBindingsKafkaRefuses() {
        assertNull(LIT.problem());
        assertNotNull(new AclBinding(RESOURCE_ANY, "t", LITERAL, "User:a", "*", READ, ALLOW).problem());
        assertNotNull(new AclBinding(TOPIC, "t", MATCH, "User:a", "*", READ, ALLOW).problem());
        assertNotNull(new AclBinding(TOPIC, "t", LITERAL, "User:a", "*", OP_ANY, ALLOW).problem());
        assertNotNull(new AclBinding(TOPIC, "t", LITERAL, "User:a", "*", READ, PERMISSION_ANY).problem());
        assertNotNull(new AclBinding(TOPIC, "t", LITERAL, "alice", "*", READ, ALLOW).problem());
        assertNotNull(new AclBinding(TOPIC, "", LITERAL, "User:a", "*", READ, ALLOW).problem());
        assertEquals("The only valid name for the CLUSTER resource is kafka-cluster",
            new AclBinding(CLUSTER, "c", LITERAL, "User:a", "*", ALTER, ALLOW).problem());
        assertNull(new AclBinding(CLUSTER, "kafka-cluster", LITERAL, "User:a", "*", ALTER, ALLOW).problem());
        assertNotNull(new AclFilter((byte) 0, null, PATTERN_ANY, null, null, OP_ANY, PERMISSION_ANY).problem());
        assertNotNull(new AclFilter(TOPIC, null, (byte) 0, null, null, OP_ANY, PERMISSION_ANY).problem());
        assertNull(f(TOPIC, null, MATCH).problem());
    }
}
