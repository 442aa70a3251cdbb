package dev.isthmus.gateway.cluster;

import java.util.Arrays;
import java.util.Comparator;

/**
 * One user's SCRAM credential for one mechanism, as Kafka's {@code UserScramCredentialRecord}: the salt, StoredKey =
 * H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key") and the iteration count
 * (RFC 5802 §3); never the password nor the salted password. Part of the controller's replicated
 * {@link ClusterState}; the gateway's SASL SCRAM server reads a per-shard copy of them. Immutable (the arrays are
 * copied in and out).
 *
 * <pre>
 *   wire: name, mechanism i8 (1 SCRAM-SHA-256, 2 SCRAM-SHA-512), salt, storedKey, serverKey (each i32 n + n bytes),
 *         iterations i32
 * </pre>
 */
public record UserScramCredential(String name, byte mechanism, byte[] salt, byte[] storedKey, byte[] serverKey,
                                  int iterations) {
    /** Kafka's mechanism types (DescribeUserScramCredentials / AlterUserScramCredentials). */
    public static final byte SCRAM_SHA_256 = 1;
    public static final byte SCRAM_SHA_512 = 2;
    /** Kafka's bounds on iterations (ScramMechanism.minIterations; ScramControlManager's MAX_ITERATIONS). */
    public static final int MIN_ITERATIONS = 4096;
    public static final int MAX_ITERATIONS = 16384;
    /** The longest user name stored (bytes of UTF-8 are bounded by the wire; this bounds the state). */
    public static final int MAX_NAME_CHARS = 1024;
    /** The longest salt stored (Kafka's clients send 32 bytes or fewer; 1 KiB bounds a hostile one). */
    public static final int MAX_SALT_BYTES = 1024;

    /** A credential's identity: one per user and mechanism. */
    public record Key(String name, byte mechanism) implements Comparable<Key> {
        private static final Comparator<Key> ORDER = Comparator.comparing(Key::name).thenComparingInt(Key::mechanism);

        @Override
        public int compareTo(Key o) {
            return ORDER.compare(this, o);
        }
    }

    public UserScramCredential {
        if (name == null || salt == null || storedKey == null || serverKey == null) {
            throw new IllegalArgumentException("a SCRAM credential needs a name, a salt, a stored key and a server key");
        }
        salt = salt.clone();
        storedKey = storedKey.clone();
        serverKey = serverKey.clone();
    }

    public Key key() {
        return new Key(name, mechanism);
    }

    /** The hash's output length of a mechanism type, or -1 for an unknown type. */
    public static int keyBytes(byte mechanism) {
        return mechanism == SCRAM_SHA_256 ? 32 : mechanism == SCRAM_SHA_512 ? 64 : -1;
    }

    /** Kafka's name of a mechanism type, or null. */
    public static String mechanismName(byte mechanism) {
        return mechanism == SCRAM_SHA_256 ? "SCRAM-SHA-256" : mechanism == SCRAM_SHA_512 ? "SCRAM-SHA-512" : null;
    }

    /**
     * Null when this credential may be stored, else the Kafka error code and why not in Kafka's words
     * (ScramControlManager.validateUpsertion): a non-empty name, a known mechanism, 4096 to 16384 iterations; and
     * keys as long as the mechanism's hash, a salt of 1 to {@link #MAX_SALT_BYTES} bytes.
     */
    public Problem problem() {
        Problem p = problem(name, mechanism);
        if (p != null) {
            return p;
        }
        if (iterations < MIN_ITERATIONS) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "Too few iterations");
        }
        if (iterations > MAX_ITERATIONS) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "Too many iterations");
        }
        if (salt.length == 0 || salt.length > MAX_SALT_BYTES) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "The salt must have 1 to " + MAX_SALT_BYTES
                + " bytes, not " + salt.length);
        }
        int n = keyBytes(mechanism);
        if (storedKey.length != n || serverKey.length != n) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "The keys of " + mechanismName(mechanism)
                + " have " + n + " bytes");
        }
        return null;
    }

    /** The checks of a user name and mechanism (ScramControlManager.validateScramUsernameAndMechanism). */
    public static Problem problem(String name, byte mechanism) {
        if (name == null || name.isEmpty()) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "Username must not be empty");
        }
        if (name.length() > MAX_NAME_CHARS) {
            return new Problem(ControllerErrors.UNACCEPTABLE_CREDENTIAL, "Username must not be longer than "
                + MAX_NAME_CHARS + " characters");
        }
        if (keyBytes(mechanism) < 0) {
            return new Problem(ControllerErrors.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism");
        }
        return null;
    }

    /** Why a credential cannot be stored: a Kafka error code and a sentence. */
    public record Problem(int errorCode, String message) {
    }

    @Override
    public byte[] salt() {
        return salt.clone();
    }

    @Override
    public byte[] storedKey() {
        return storedKey.clone();
    }

    @Override
    public byte[] serverKey() {
        return serverKey.clone();
    }

    void write(Wire.Writer w) {
        w.str(name).i8(mechanism).bin(salt).bin(storedKey).bin(serverKey).i32(iterations);
    }

    static UserScramCredential read(Wire.Reader r) {
        return new UserScramCredential(r.str(), (byte) r.i8(), r.bin(), r.bin(), r.bin(), r.i32());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof UserScramCredential c && c.name.equals(name) && c.mechanism == mechanism
            && c.iterations == iterations && Arrays.equals(c.salt, salt) && Arrays.equals(c.storedKey, storedKey)
            && Arrays.equals(c.serverKey, serverKey);
    }

    @Override
    public int hashCode() {
        return (name.hashCode() * 31 + mechanism) * 31 + Arrays.hashCode(storedKey);
    }

    @Override
    public String toString() {
        return "UserScramCredential[" + name + ", " + mechanismName(mechanism) + ", " + iterations
            + " iterations]"; // no key material in logs
    }
}
