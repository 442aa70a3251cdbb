package dev.isthmus.bench.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The SASL_SSL set-up of the {@link Suite#SASL_SSL} workloads, the same for every broker: TLS 1.3 only, with a
 * self-signed RSA 2048 certificate for 127.0.0.1 made at run time by the JDK's {@code keytool} into the run's
 * work directory (a PKCS12 keystore for the brokers, its certificate as a PEM file the clients trust), and one
 * SCRAM-SHA-512 user ({@value #USER}, 4096 iterations, Kafka's {@code --add-scram} default) with a random
 * password.
 *
 * <ul>
 * <li>Isthmus: a {@code --config} file with {@code listeners=SASL_SSL://...} (its only listener), the keystore,
 *     {@code ssl.enabled.protocols=TLSv1.3}, {@code sasl.enabled.mechanisms=SCRAM-SHA-512} and the user as
 *     {@code sasl.admin.user} ({@link #isthmusConfig}).</li>
 * <li>Kafka: a SASL_SSL listener (inter-broker too, authenticating as the same user) next to its PLAINTEXT
 *     controller listener, the same keystore and protocols ({@link #kafkaServerProperties}), and the user created
 *     in the metadata log by {@code StorageTool format --add-scram} ({@link #kafkaAddScram}).</li>
 * <li>Clients: {@link #clientConfig}, merged into every producer, consumer and admin client.</li>
 * </ul>
 *
 * <p>Lifecycle: {@link #create} once per run, before the first secured broker; the files go with the work
 * directory at the end. Immutable after that; used by the run's thread.
 */
final class Security {

    static final String USER = "compare";
    static final String MECHANISM = "SCRAM-SHA-512";
    static final String PROTOCOL = "TLSv1.3";
    static final int ITERATIONS = 4096;
    private static final long KEYTOOL_TIMEOUT_SEC = 120;

    final Path keystore;
    final Path certificatePem;
    /** The keystore's, the key's and the SCRAM user's password (random, per run). */
    final String password;

    private Security(Path keystore, Path certificatePem, String password) {
        this.keystore = keystore;
        this.certificatePem = certificatePem;
        this.password = password;
    }

    /** Makes the key, certificate and password in {@code dir} with {@code javaHome}'s keytool. */
    static Security create(Path dir, Path javaHome) {
        byte[] random = new byte[16];
        new SecureRandom().nextBytes(random);
        String password = HexFormat.of().formatHex(random);
        Path keystore = dir.resolve("broker.p12");
        Path pem = dir.resolve("broker-cert.pem");
        try {
            Files.createDirectories(dir);
            Files.deleteIfExists(keystore);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String keytool = javaHome.resolve("bin/keytool").toString();
        keytool(dir, List.of(keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
            "-validity", "30", "-dname", "CN=localhost", "-ext", "SAN=ip:" + BrokerProcess.HOST + ",dns:localhost",
            "-storetype", "PKCS12", "-keystore", keystore.toString(), "-storepass", password, "-keypass", password,
            "-noprompt"));
        keytool(dir, List.of(keytool, "-exportcert", "-rfc", "-alias", "broker", "-keystore", keystore.toString(),
            "-storetype", "PKCS12", "-storepass", password, "-file", pem.toString()));
        return new Security(keystore, pem, password);
    }

    private static void keytool(Path dir, List<String> cmd) {
        Path log = dir.resolve("keytool.log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(KEYTOOL_TIMEOUT_SEC, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new CompareException("keytool " + cmd.get(1) + " did not finish within " + KEYTOOL_TIMEOUT_SEC
                    + " s (see " + log + ")");
            }
            if (p.exitValue() != 0) {
                throw new CompareException("keytool " + cmd.get(1) + " failed (exit " + p.exitValue() + "): "
                    + BrokerProcess.lastLine(log) + " (see " + log + ")");
            }
        } catch (IOException e) {
            throw new CompareException("cannot run keytool: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted while making the TLS key with keytool");
        }
    }

    private String jaas() {
        return "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + USER
            + "\" password=\"" + password + "\";";
    }

    /** What every client of a secured broker adds to its configuration. */
    Map<String, Object> clientConfig() {
        return Map.of(
            "security.protocol", "SASL_SSL",
            "sasl.mechanism", MECHANISM,
            "sasl.jaas.config", jaas(),
            "ssl.truststore.type", "PEM",
            "ssl.truststore.location", certificatePem.toString(),
            "ssl.protocol", PROTOCOL,
            "ssl.enabled.protocols", PROTOCOL);
    }

    /** Isthmus's {@code --config} file: its only listener SASL_SSL on {@code bootstrap}. */
    String isthmusConfig(String bootstrap) {
        return "# Written by bench/compare: one SASL_SSL listener, TLS 1.3, SCRAM-SHA-512.\n"
            + "listeners = SASL_SSL://" + bootstrap + "\n"
            + "ssl.keystore.location = " + keystore + "\n"
            + "ssl.keystore.type = PKCS12\n"
            + "ssl.keystore.password = " + password + "\n"
            + "ssl.key.password = " + password + "\n"
            + "ssl.enabled.protocols = " + PROTOCOL + "\n"
            + "sasl.enabled.mechanisms = " + MECHANISM + "\n"
            + "sasl.admin.user = " + USER + "\n"
            + "sasl.admin.password = " + password + "\n"
            + "sasl.admin.iterations = " + ITERATIONS + "\n";
    }

    /**
     * The lines that make Kafka's single-node configuration ({@link BrokerProcess#serverProperties}) serve
     * SASL_SSL on {@code port}: they replace its PLAINTEXT listener; the controller listener stays PLAINTEXT.
     */
    String kafkaServerProperties(int port) {
        return "listeners=SASL_SSL://" + BrokerProcess.HOST + ":" + port + ",CONTROLLER://" + BrokerProcess.HOST + ":"
            + (port + 1) + "\n"
            + "advertised.listeners=SASL_SSL://" + BrokerProcess.HOST + ":" + port + "\n"
            + "controller.listener.names=CONTROLLER\n"
            + "inter.broker.listener.name=SASL_SSL\n"
            + "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL\n"
            + "sasl.enabled.mechanisms=" + MECHANISM + "\n"
            + "sasl.mechanism.inter.broker.protocol=" + MECHANISM + "\n"
            + "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + jaas() + "\n"
            + "ssl.keystore.location=" + keystore + "\n"
            + "ssl.keystore.type=PKCS12\n"
            + "ssl.keystore.password=" + password + "\n"
            + "ssl.key.password=" + password + "\n"
            + "ssl.truststore.location=" + certificatePem + "\n"
            + "ssl.truststore.type=PEM\n"
            + "ssl.protocol=" + PROTOCOL + "\n"
            + "ssl.enabled.protocols=" + PROTOCOL + "\n";
    }

    /** StorageTool format's arguments that create the user in Kafka's metadata log. */
    List<String> kafkaAddScram() {
        List<String> a = new ArrayList<>();
        a.add("--add-scram");
        a.add(MECHANISM + "=[name=" + USER + ",iterations=" + ITERATIONS + ",password=" + password + "]");
        return a;
    }

    /** For the report. */
    static String describe() {
        return "SASL_SSL: TLS 1.3 only (JDK JSSE on both), a self-signed RSA 2048 certificate made by keytool at run "
            + "time, SCRAM-SHA-512 (" + ITERATIONS + " iterations) for every client; Isthmus: --config with "
            + "listeners=SASL_SSL://... and sasl.admin.user; Kafka: a SASL_SSL listener (inter-broker too), the user "
            + "made by StorageTool format --add-scram";
    }
}
