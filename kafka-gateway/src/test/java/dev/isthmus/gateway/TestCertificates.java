package dev.isthmus.gateway;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Test-only TLS material made at test time with the JDK's keytool (no private key is checked in): a CA, a broker
 * certificate for localhost/127.0.0.1 and client certificates signed by it, as PKCS12 stores and PEM files. EC P-256
 * keys (fast handshakes). Valid for two days. One keytool run per key (it signs with the CA held in the same
 * store); the stores and PEM files are written with java.security.
 */
final class TestCertificates {
    static final String PASSWORD = "test-only-password";

    final Path dir;
    final Path caPem;
    final Path truststore;
    final Path serverP12;
    final Path serverPem;

    private TestCertificates(Path dir) {
        this.dir = dir;
        this.caPem = dir.resolve("ca.pem");
        this.truststore = dir.resolve("truststore.p12");
        this.serverP12 = dir.resolve("server.p12");
        this.serverPem = dir.resolve("server.pem");
    }

    /** Makes the CA, the broker's certificate (SAN localhost, 127.0.0.1) and the trust store in {@code dir}. */
    static TestCertificates create(Path dir) throws Exception {
        TestCertificates c = new TestCertificates(dir);
        keytool(dir, "-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname",
            "CN=Isthmus Test CA", "-ext", "bc:c", "-validity", "2", "-keystore", c.work().toString(), "-storetype",
            "PKCS12", "-storepass", PASSWORD);
        KeyStore work = c.load(c.work());
        Certificate ca = work.getCertificate("ca");
        Files.writeString(c.caPem, pem("CERTIFICATE", ca.getEncoded()), StandardCharsets.US_ASCII);
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", ca);
        store(trust, c.truststore);
        c.signed("server", "CN=localhost,O=isthmus", "SAN=dns:localhost,ip:127.0.0.1");
        c.toPem(c.serverP12, c.serverPem);
        return c;
    }

    /** Every key made so far, the CA's included: keytool signs with an entry of the same store. */
    private Path work() {
        return dir.resolve("work.p12");
    }

    private KeyStore load(Path p) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(p)) {
            ks.load(in, PASSWORD.toCharArray());
        }
        return ks;
    }

    private static void store(KeyStore ks, Path p) throws Exception {
        try (java.io.OutputStream out = Files.newOutputStream(p)) {
            ks.store(out, PASSWORD.toCharArray());
        }
    }

    /**
     * A PKCS12 store named {@code name}.p12 with a key and a certificate for {@code dn} signed by the CA (chain:
     * the certificate, then the CA's); {@code san} is a keytool extension such as {@code SAN=dns:localhost}, or null.
     */
    Path signed(String name, String dn, String san) throws Exception {
        List<String> args = new ArrayList<>(List.of("-genkeypair", "-alias", name, "-keyalg", "EC", "-groupname",
            "secp256r1", "-dname", dn, "-validity", "2", "-keystore", work().toString(), "-storetype", "PKCS12",
            "-storepass", PASSWORD, "-signer", "ca"));
        if (san != null) {
            args.add("-ext");
            args.add(san);
        }
        keytool(dir, args.toArray(String[]::new));
        KeyStore work = load(work());
        KeyStore one = KeyStore.getInstance("PKCS12");
        one.load(null, null);
        one.setKeyEntry(name, work.getKey(name, PASSWORD.toCharArray()), PASSWORD.toCharArray(),
            work.getCertificateChain(name));
        Path store = dir.resolve(name + ".p12");
        store(one, store);
        return store;
    }

    /** Writes the store's key (unencrypted PKCS#8) and certificate chain as one PEM file. */
    void toPem(Path p12, Path pem) throws Exception {
        KeyStore ks = load(p12);
        StringBuilder sb = new StringBuilder();
        for (String alias : java.util.Collections.list(ks.aliases())) {
            if (!ks.isKeyEntry(alias)) {
                continue;
            }
            Key key = ks.getKey(alias, PASSWORD.toCharArray());
            sb.append(pem("PRIVATE KEY", key.getEncoded()));
            for (Certificate cert : ks.getCertificateChain(alias)) {
                sb.append(pem("CERTIFICATE", cert.getEncoded()));
            }
        }
        Files.writeString(pem, sb.toString(), StandardCharsets.US_ASCII);
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
            + "\n-----END " + type + "-----\n";
    }

    private static void keytool(Path dir, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("keytool " + String.join(" ", args) + " failed: "
                + new String(out, StandardCharsets.UTF_8));
        }
    }
}
