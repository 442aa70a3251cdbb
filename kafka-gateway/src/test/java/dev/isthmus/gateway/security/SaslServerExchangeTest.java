package dev.isthmus.gateway.security;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * SCRAM's client-final nonce, computed here as a client would (RFC 5802): the server's nonce itself is accepted, and
 * so is the form librdkafka before 2.6.1 sends (its own nonce once more in front); a nonce without the server's
 * fresh part, or with other bytes in front, is refused even with a correct proof over what was sent.
 */
class SaslServerExchangeTest {
    private static final String CLIENT_NONCE = "fyko+d2lbbFgONRv9qkxdawL";
    private static final Pattern SERVER_FIRST = Pattern.compile("r=([^,]*),s=([^,]*),i=(\\d+)");

    /** Runs one exchange whose client-final nonce is {@code finalNonce.apply(serverNonce)}. */
    private static SaslServerExchange.Step exchange(ScramMechanism m, java.util.function.UnaryOperator<String> finalNonce) {
        SaslServerExchange server = new SaslServerExchange(m.mechanismName(),
            CredentialStore.ofPasswords(Map.of("alice", "alice-secret"), 4096));
        String clientFirstBare = "n=alice,r=" + CLIENT_NONCE;
        var first = assertInstanceOf(SaslServerExchange.Challenge.class,
            server.evaluate(("n,," + clientFirstBare).getBytes(StandardCharsets.UTF_8)));
        String serverFirst = new String(first.response(), StandardCharsets.UTF_8);
        Matcher sf = SERVER_FIRST.matcher(serverFirst);
        assertEquals(true, sf.matches(), serverFirst);
        byte[] salted = m.saltedPassword("alice-secret", Base64.getDecoder().decode(sf.group(2)),
            Integer.parseInt(sf.group(3)));
        String withoutProof = "c=biws,r=" + finalNonce.apply(sf.group(1));
        byte[] authMessage = (clientFirstBare + "," + serverFirst + "," + withoutProof).getBytes(StandardCharsets.UTF_8);
        byte[] clientKey = m.hmac(salted, "Client Key".getBytes(StandardCharsets.US_ASCII));
        byte[] signature = m.hmac(m.hash(clientKey), authMessage);
        byte[] proof = new byte[clientKey.length];
        for (int i = 0; i < proof.length; i++) {
            proof[i] = (byte) (clientKey[i] ^ signature[i]);
        }
        return server.evaluate((withoutProof + ",p=" + Base64.getEncoder().encodeToString(proof))
            .getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void shouldAcceptTheServerNonceAndLibrdkafkasRepeatedClientNonceOnly() {
        for (ScramMechanism m : ScramMechanism.values()) {
            var ok = assertInstanceOf(SaslServerExchange.Success.class, exchange(m, n -> n), m.toString());
            assertEquals("User:alice", ok.principal().toString());
            assertInstanceOf(SaslServerExchange.Success.class, exchange(m, n -> CLIENT_NONCE + n),
                m + ": librdkafka < 2.6.1 sends client nonce + server nonce");
            assertInstanceOf(SaslServerExchange.Failure.class, exchange(m, n -> CLIENT_NONCE), m + ": no server part");
            assertInstanceOf(SaslServerExchange.Failure.class, exchange(m, n -> "x" + n), m + ": other bytes in front");
            assertInstanceOf(SaslServerExchange.Failure.class,
                exchange(m, n -> "y".repeat(CLIENT_NONCE.length()) + n), m + ": a prefix that is not the client nonce");
            assertInstanceOf(SaslServerExchange.Failure.class, exchange(m, n -> n + "z"), m + ": bytes after");
        }
    }
}
