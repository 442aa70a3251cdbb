package dev.isthmus.gateway.security;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server side of one SASL authentication (PLAIN, RFC 4616; SCRAM-SHA-256/512, RFC 5802/7677; OAUTHBEARER,
 * RFC 7628 with the token checked by an {@link OAuthBearerValidator}), token by token.
 * Owner: the connection it belongs to. {@link #evaluate} may run on a worker thread (PLAIN derives the salted
 * password, thousands of HMACs), one call at a time with a happens-before edge between calls (the connection hands
 * it over through an executor and back through its shard's queue); so may OAUTHBEARER's (a signature to verify).
 * Not thread-safe otherwise.
 *
 * <p>Failures carry Kafka's generic messages, never which of user or password was wrong.
 */
public final class SaslServerExchange {
    /** The outcome of one token. */
    public sealed interface Step {
    }

    /** Send {@code response} and wait for the client's next token. */
    public record Challenge(byte[] response) implements Step {
    }

    /**
     * Authenticated as {@code principal}; {@code response} is the last server message (may be empty);
     * {@code credentialExpiresAtMs} is when the credential expires (epoch ms; an OAUTHBEARER token's {@code exp}),
     * 0 when it does not.
     */
    public record Success(byte[] response, KafkaPrincipal principal, long credentialExpiresAtMs) implements Step {
        public Success(byte[] response, KafkaPrincipal principal) {
            this(response, principal, 0);
        }
    }

    /** Authentication failed: SASL_AUTHENTICATION_FAILED with {@code message}. */
    public record Failure(String message) implements Step {
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Pattern CLIENT_FIRST = Pattern.compile(
        "n,(a=([^,]*))?,(n=([^,]*),r=([^,]*)((,[^,]*)*))");
    private static final Pattern CLIENT_FINAL = Pattern.compile("c=([^,]*),r=([^,]*)((,[^,]*)*),p=([^,]*)");

    private final String mechanism;
    private final ScramMechanism scram;
    private final CredentialStore credentials;
    private final OAuthBearerValidator oauth;
    /** OAUTHBEARER: the error sent as a challenge, answered by the client with a lone 0x01 (RFC 7628 §3.2.3). */
    private String oauthError;
    private int stage;
    // SCRAM state between the two client messages.
    private String gs2Header;
    private String clientFirstBare;
    private String serverFirst;
    private String nonce;
    private String clientNonce;
    private String user;
    private ScramCredential credential;

    /** @param mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (validated by the caller) */
    public SaslServerExchange(String mechanism, CredentialStore credentials) {
        this(mechanism, credentials, null);
    }

    /**
     * @param mechanism PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (validated by the caller)
     * @param oauth     the OAUTHBEARER token validator (null: OAUTHBEARER is not served)
     */
    public SaslServerExchange(String mechanism, CredentialStore credentials, OAuthBearerValidator oauth) {
        this.mechanism = mechanism;
        this.scram = ScramMechanism.forName(mechanism);
        this.credentials = credentials;
        this.oauth = oauth;
        if (scram == null && !mechanism.equals("PLAIN") && !(mechanism.equals(OAUTHBEARER) && oauth != null)) {
            throw new IllegalArgumentException("unsupported SASL mechanism " + mechanism);
        }
    }

    public static final String OAUTHBEARER = "OAUTHBEARER";

    public String mechanism() {
        return mechanism;
    }

    /**
     * Whether the next {@link #evaluate} is CPU-heavy (PLAIN's key derivation, OAUTHBEARER's signature check) and
     * belongs off the shard thread.
     */
    public boolean heavy() {
        return scram == null;
    }

    /** Consumes one client token. */
    public Step evaluate(byte[] token) {
        try {
            if (mechanism.equals(OAUTHBEARER)) {
                return oauthBearer(token);
            }
            if (scram == null) {
                return plain(token);
            }
            return stage++ == 0 ? scramFirst(token) : stage == 2 ? scramFinal(token)
                : new Failure("Authentication failed: unexpected SCRAM message after the exchange ended");
        } catch (RuntimeException e) {
            return new Failure(invalid());
        }
    }

    private String invalid() {
        return "Authentication failed during authentication due to invalid credentials with SASL mechanism "
            + mechanism;
    }

    private Step plain(byte[] token) {
        if (stage++ != 0) {
            return new Failure("Authentication failed: PLAIN takes one message");
        }
        String s = new String(token, StandardCharsets.UTF_8);
        int a = s.indexOf('\0');
        int b = a < 0 ? -1 : s.indexOf('\0', a + 1);
        if (a < 0 || b < 0 || s.indexOf('\0', b + 1) >= 0) {
            return new Failure("Authentication failed: PLAIN message is not authzid NUL username NUL password");
        }
        String authzid = s.substring(0, a);
        String username = s.substring(a + 1, b);
        String password = s.substring(b + 1);
        if (username.isEmpty() || password.isEmpty()) {
            return new Failure("Authentication failed: username and password must not be empty");
        }
        if (!authzid.isEmpty() && !authzid.equals(username)) {
            return new Failure("Authentication failed: Client requested an authorization id that is different from"
                + " username");
        }
        String failed = "Authentication failed: Invalid username or password";
        for (ScramMechanism m : ScramMechanism.values()) {
            ScramCredential c = credentials.lookup(username, m);
            if (c != null) {
                byte[] salted = m.saltedPassword(password, c.salt(), c.iterations());
                ScramCredential derived = m.credential(c.salt(), salted, c.iterations());
                return MessageDigest.isEqual(derived.storedKey(), c.storedKey())
                    ? new Success(new byte[0], KafkaPrincipal.user(username)) : new Failure(failed);
            }
        }
        return new Failure(failed);
    }

    /** RFC 7628's client first message: {@code gs2-header kvsep *(key=value kvsep) kvsep}, with {@code auth=Bearer <jwt>}. */
    private static final Pattern OAUTH_FIRST = Pattern.compile(
        "n,(a=([^,\\x01]*))?,\\x01((?:[A-Za-z]+=[\\x21-\\x7E \\t\\r\\n]*\\x01)*)\\x01");

    private Step oauthBearer(byte[] token) {
        if (stage++ != 0) {
            // RFC 7628 §3.2.3: after the error challenge the client answers a lone 0x01; the exchange fails.
            return new Failure(oauthError != null ? oauthError : "Authentication failed: unexpected OAUTHBEARER"
                + " message");
        }
        String msg = new String(token, StandardCharsets.UTF_8);
        Matcher m = OAUTH_FIRST.matcher(msg);
        if (!m.matches()) {
            return new Failure("Authentication failed: invalid OAUTHBEARER client first message");
        }
        String authzid = m.group(2);
        String bearer = null;
        for (String kv : m.group(3).split("\u0001")) {
            int eq = kv.indexOf('=');
            if (eq > 0 && kv.substring(0, eq).equals("auth")) {
                String v = kv.substring(eq + 1);
                if (v.length() > 7 && v.substring(0, 7).equalsIgnoreCase("bearer ")) {
                    bearer = v.substring(7).trim();
                }
            }
            // Other keys are SASL extensions (KIP-342): none is understood, so they are dropped, as Kafka does.
        }
        if (bearer == null) {
            return new Failure("Authentication failed: the OAUTHBEARER message carries no bearer token");
        }
        OAuthBearerValidator.Result r = oauth.validate(bearer, System.currentTimeMillis());
        if (r instanceof OAuthBearerValidator.Invalid bad) {
            lastInvalidReason = bad.reason();
            oauthError = "{\"status\":\"invalid_token\"}";
            return new Challenge(oauthError.getBytes(StandardCharsets.UTF_8));
        }
        OAuthBearerValidator.Valid ok = (OAuthBearerValidator.Valid) r;
        if (authzid != null && !authzid.isEmpty() && !authzid.equals(ok.principal())) {
            return new Failure("Authentication failed: Client requested an authorization id that is different from"
                + " the token's principal name");
        }
        return new Success(new byte[0], KafkaPrincipal.user(ok.principal()), ok.expiresAtMs());
    }

    /** Why the last OAUTHBEARER token was refused (for the broker's log; the client gets a generic status). */
    private String lastInvalidReason;

    public String lastInvalidReason() {
        return lastInvalidReason;
    }

    private Step scramFirst(byte[] token) {
        String msg = new String(token, StandardCharsets.UTF_8);
        Matcher m = CLIENT_FIRST.matcher(msg);
        if (!m.matches()) {
            return new Failure("Authentication failed: invalid SCRAM client first message (channel binding is not"
                + " supported: the GS2 header must be 'n')");
        }
        String authzid = m.group(2);
        String saslName = m.group(4);
        String clientNonce = m.group(5);
        String extensions = m.group(6);
        String name = saslName.replace("=2C", ",").replace("=3D", "=");
        if (name.isEmpty() || clientNonce.isEmpty()) {
            return new Failure(invalid());
        }
        if (authzid != null && !authzid.isEmpty() && !authzid.equals(name)) {
            return new Failure("Authentication failed: Client requested an authorization id that is different from"
                + " username");
        }
        if (extensions != null && extensions.contains("tokenauth=true")) {
            return new Failure("Authentication failed: delegation tokens are not supported");
        }
        ScramCredential c = credentials.lookup(name, scram);
        if (c == null || c.iterations() < ScramMechanism.MIN_ITERATIONS) {
            return new Failure(invalid());
        }
        gs2Header = msg.substring(0, m.start(3));
        clientFirstBare = m.group(3);
        user = name;
        credential = c;
        this.clientNonce = clientNonce;
        nonce = clientNonce + new java.math.BigInteger(130, RANDOM).toString(Character.MAX_RADIX);
        serverFirst = "r=" + nonce + ",s=" + Base64.getEncoder().encodeToString(c.salt()) + ",i=" + c.iterations();
        return new Challenge(serverFirst.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The client-final nonce must be the one of the server-first message (RFC 5802 §5.1, CVE-2024-56128). librdkafka
     * before 2.6.1 (Debian's kcat and confluent-kafka 2.0.2 among them) sends its own nonce once more in front of it
     * (confluentinc/librdkafka#4895); that form is accepted too, as Kafka 3.8.1 to 3.9 accept it (their check is
     * endsWith), and nothing else: the server's fresh part must be there, and the proof covers what was sent. Kafka 4
     * compares for equality and so refuses those clients.
     */
    private boolean nonceAccepted(String sent) {
        return sent.equals(nonce) || sent.length() == clientNonce.length() + nonce.length()
            && sent.startsWith(clientNonce) && sent.endsWith(nonce);
    }

    private Step scramFinal(byte[] token) {
        String msg = new String(token, StandardCharsets.UTF_8);
        Matcher m = CLIENT_FINAL.matcher(msg);
        if (!m.matches()) {
            return new Failure(invalid());
        }
        byte[] channel = Base64.getDecoder().decode(m.group(1));
        if (!new String(channel, StandardCharsets.UTF_8).equals(gs2Header) || !nonceAccepted(m.group(2))) {
            return new Failure(invalid());
        }
        byte[] proof = Base64.getDecoder().decode(m.group(5));
        String withoutProof = msg.substring(0, m.start(5) - ",p=".length());
        byte[] authMessage = (clientFirstBare + "," + serverFirst + "," + withoutProof).getBytes(StandardCharsets.UTF_8);
        byte[] storedKey = credential.storedKey();
        byte[] clientSignature = scram.hmac(storedKey, authMessage);
        if (proof.length != clientSignature.length) {
            return new Failure(invalid());
        }
        byte[] clientKey = new byte[proof.length];
        for (int i = 0; i < proof.length; i++) {
            clientKey[i] = (byte) (proof[i] ^ clientSignature[i]);
        }
        if (!MessageDigest.isEqual(scram.hash(clientKey), storedKey)) {
            return new Failure(invalid());
        }
        byte[] serverSignature = scram.hmac(credential.serverKey(), authMessage);
        String serverFinal = "v=" + Base64.getEncoder().encodeToString(serverSignature);
        return new Success(serverFinal.getBytes(StandardCharsets.UTF_8), KafkaPrincipal.user(user));
    }
}
