package dev.isthmus.gateway.security;

import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;

/**
 * SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the hash, the HMAC, and the derivations of RFC 5802 §3.
 * The wire ids are those of DescribeUserScramCredentials/AlterUserScramCredentials (1 and 2). Stateless; any thread.
 */
public enum ScramMechanism {
    SCRAM_SHA_256("SCRAM-SHA-256", 1, "SHA-256", "HmacSHA256", "PBKDF2WithHmacSHA256", 256),
    SCRAM_SHA_512("SCRAM-SHA-512", 2, "SHA-512", "HmacSHA512", "PBKDF2WithHmacSHA512", 512);

    /** Kafka's bounds on iterations (ScramMechanism.minIterations, and KIP-554's upper bound). */
    public static final int MIN_ITERATIONS = 4096;
    public static final int MAX_ITERATIONS = 16384;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String mechanismName;
    private final byte id;
    private final String hash;
    private final String hmac;
    private final String pbkdf2;
    private final int bits;

    ScramMechanism(String name, int id, String hash, String hmac, String pbkdf2, int bits) {
        this.mechanismName = name;
        this.id = (byte) id;
        this.hash = hash;
        this.hmac = hmac;
        this.pbkdf2 = pbkdf2;
        this.bits = bits;
    }

    /** The SASL mechanism name (SCRAM-SHA-256). */
    public String mechanismName() {
        return mechanismName;
    }

    /** The id in Kafka's SCRAM credential APIs. */
    public byte id() {
        return id;
    }

    public static ScramMechanism forName(String name) {
        for (ScramMechanism m : values()) {
            if (m.mechanismName.equals(name)) {
                return m;
            }
        }
        return null;
    }

    public static ScramMechanism forId(int id) {
        for (ScramMechanism m : values()) {
            if (m.id == id) {
                return m;
            }
        }
        return null;
    }

    /** SaltedPassword := Hi(Normalize(password), salt, i), Hi being PBKDF2 with this HMAC. CPU-heavy: off the shards. */
    public byte[] saltedPassword(String password, byte[] salt, int iterations) {
        try {
            SecretKeyFactory f = SecretKeyFactory.getInstance(pbkdf2);
            return f.generateSecret(new PBEKeySpec(password.toCharArray(), salt, iterations, bits)).getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(pbkdf2 + " is not available in this JDK", e);
        }
    }

    public byte[] hmac(byte[] key, byte[] data) {
        try {
            Mac mac = Mac.getInstance(hmac);
            mac.init(new SecretKeySpec(key, hmac));
            return mac.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(hmac + " is not available in this JDK", e);
        }
    }

    public byte[] hash(byte[] data) {
        try {
            return MessageDigest.getInstance(hash).digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(hash + " is not available in this JDK", e);
        }
    }

    /** The stored credential for a salted password: StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key"). */
    public ScramCredential credential(byte[] salt, byte[] saltedPassword, int iterations) {
        byte[] clientKey = hmac(saltedPassword, "Client Key".getBytes(StandardCharsets.US_ASCII));
        byte[] serverKey = hmac(saltedPassword, "Server Key".getBytes(StandardCharsets.US_ASCII));
        return new ScramCredential(salt, hash(clientKey), serverKey, iterations);
    }

    /** A credential for {@code password} with a fresh random salt (the bootstrap user; tests). CPU-heavy. */
    public ScramCredential credential(String password, int iterations) {
        byte[] salt = new byte[32];
        RANDOM.nextBytes(salt);
        return credential(salt, saltedPassword(password, salt, iterations), iterations);
    }
}
