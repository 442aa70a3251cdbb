package dev.isthmus.gateway.security;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ssl.principal.mapping.rules as Kafka documents them (KIP-371). */
class SslPrincipalMapperTest {
    @Test
    void shouldApplyTheFirstMatchingRuleWithGroupsAndCase() {
        SslPrincipalMapper m = SslPrincipalMapper.parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
                + "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT");
        assertEquals("duke", m.name("CN=duke,OU=ServiceUsers,O=Org,C=US"));
        assertEquals("duke@sme", m.name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"));
        assertEquals("duke", m.name("cn=duke,o=other"));
        assertEquals("O=nothing", m.name("O=nothing"), "DEFAULT: the DN unchanged");
    }

    @Test
    void shouldUpperCaseAndRefuseADnNoRuleMatches() {
        SslPrincipalMapper m = SslPrincipalMapper.parse("RULE:^CN=(.*?),OU=eng,.*$/$1/U");
        assertEquals("ALICE", m.name("CN=alice,OU=eng,O=acme"));
        assertNull(m.name("CN=bob,OU=ops,O=acme"), "no rule applies: refused");
        assertEquals("CN=x", SslPrincipalMapper.parse(null).name("CN=x"));
    }

    @Test
    void shouldRejectMalformedRules() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SslPrincipalMapper.parse("RULE:^CN=(.*)$"))
            .getMessage().contains("RULE:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SslPrincipalMapper.parse("RULE:^CN=(.*$/$1/"))
            .getMessage().contains("regex"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SslPrincipalMapper.parse("RULE:^CN=(.*)$/$2/"))
            .getMessage().contains("$2"));
    }
}
