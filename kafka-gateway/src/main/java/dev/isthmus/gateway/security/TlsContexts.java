package dev.isthmus.gateway.security;

import javax.crypto.EncryptedPrivateKeyInfo;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The broker's TLS material: an {@link SSLContext} built from {@link TlsSettings} (PKCS12, JKS or PEM key and trust
 * stores), published through a volatile field so each new connection's shard takes the current one without a lock,
 * and rebuilt when the files change (checked every {@link TlsSettings#reloadIntervalMs()} by one daemon thread,
 * never on a shard: building reads files). Connections keep the context they started with; new ones get the new
 * material. A reloaded certificate whose subject DN or subject alternative names differ is refused (the old one
 * stays, with one warning) unless {@code ssl.allow.dn.changes} / {@code ssl.allow.san.changes}, as Kafka does.
 *
 * <p>Lifecycle: {@link #load} at broker start (fails the start with a sentence naming the file and the problem),
 * {@link #close} at broker close.
 */
public final class TlsContexts implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(TlsContexts.class.getName());
    private static final Pattern PEM = Pattern.compile(
        "-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

    private final TlsSettings settings;
    private final SslPrincipalMapper mapper;
    private volatile Material current;
    private final ScheduledExecutorService reloader;
    private volatile long reloads;

    /** One built context and what it was built from (to notice changes). */
    private record Material(SSLContext context, X509Certificate certificate, List<Long> stamps) {
    }

    private TlsContexts(TlsSettings settings, Material first) {
        this.settings = settings;
        this.mapper = SslPrincipalMapper.parse(settings.principalMappingRules());
        this.current = first;
        if (settings.reloadIntervalMs() > 0) {
            reloader = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "isthmus-tls-reload");
                t.setDaemon(true);
                return t;
            });
            reloader.scheduleWithFixedDelay(this::reloadIfChanged, settings.reloadIntervalMs(),
                settings.reloadIntervalMs(), TimeUnit.MILLISECONDS);
        } else {
            reloader = null;
        }
    }

    /** Reads the key and trust material. Blocks (file I/O): a non-shard thread. */
    public static TlsContexts load(TlsSettings settings) {
        return new TlsContexts(settings, build(settings));
    }

    public SslPrincipalMapper principalMapper() {
        return mapper;
    }

    /** How many times the material was reloaded (tests, metrics). */
    public long reloads() {
        return reloads;
    }

    /** The certificate new connections present. */
    public X509Certificate certificate() {
        return current.certificate();
    }

    /** Any thread: a server-side engine on the current material, with the configured protocols and client auth. */
    public SSLEngine newServerEngine() {
        SSLEngine e = current.context().createSSLEngine();
        e.setUseClientMode(false);
        SSLParameters p = e.getSSLParameters();
        p.setProtocols(settings.enabledProtocols().toArray(String[]::new));
        if (!settings.cipherSuites().isEmpty()) {
            p.setCipherSuites(settings.cipherSuites().toArray(String[]::new));
        }
        switch (settings.clientAuth()) {
            case REQUIRED -> p.setNeedClientAuth(true);
            case REQUESTED -> p.setWantClientAuth(true);
            case NONE -> {
                p.setNeedClientAuth(false);
                p.setWantClientAuth(false);
            }
        }
        e.setSSLParameters(p);
        return e;
    }

    /**
     * Any thread: a client-side engine on the current material (it presents this node's certificate when the peer
     * asks for one) for a connection to {@code peer}; with {@code verifyHostname} the peer's certificate must name
     * its host (HTTPS endpoint identification, as Kafka's {@code ssl.endpoint.identification.algorithm=https}).
     */
    public SSLEngine newClientEngine(java.net.InetSocketAddress peer, boolean verifyHostname) {
        SSLEngine e = current.context().createSSLEngine(peer.getHostString(), peer.getPort());
        e.setUseClientMode(true);
        SSLParameters p = e.getSSLParameters();
        p.setProtocols(settings.enabledProtocols().toArray(String[]::new));
        if (!settings.cipherSuites().isEmpty()) {
            p.setCipherSuites(settings.cipherSuites().toArray(String[]::new));
        }
        if (verifyHostname) {
            p.setEndpointIdentificationAlgorithm("HTTPS");
        }
        e.setSSLParameters(p);
        return e;
    }

    /** Checks the files now and reloads when they changed; returns whether new material is in use. Blocks. */
    public synchronized boolean reloadIfChanged() {
        try {
            Material old = current;
            if (stamps(settings).equals(old.stamps())) {
                return false;
            }
            Material next = build(settings);
            String refusal = compare(old.certificate(), next.certificate());
            if (refusal != null) {
                LOG.log(System.Logger.Level.WARNING, "TLS key store " + settings.keystoreLocation() + " changed but is"
                    + " not used: " + refusal + "; new connections keep the previous certificate");
                current = new Material(old.context(), old.certificate(), next.stamps()); // warn once per change
                return false;
            }
            current = next;
            reloads++;
            LOG.log(System.Logger.Level.INFO, "TLS material reloaded from " + settings.keystoreLocation()
                + (settings.truststoreLocation() != null ? " and " + settings.truststoreLocation() : "")
                + "; new connections use it");
            return true;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "TLS material could not be reloaded (the previous one stays): "
                + e.getMessage());
            return false;
        }
    }

    private String compare(X509Certificate a, X509Certificate b) {
        if (!settings.allowDnChanges() && !a.getSubjectX500Principal().equals(b.getSubjectX500Principal())) {
            return "its subject DN changed from " + a.getSubjectX500Principal() + " to " + b.getSubjectX500Principal()
                + " (set ssl.allow.dn.changes=true to allow it)";
        }
        try {
            if (!settings.allowSanChanges() && !Objects.equals(sans(a), sans(b))) {
                return "its subject alternative names changed from " + sans(a) + " to " + sans(b)
                    + " (set ssl.allow.san.changes=true to allow it)";
            }
        } catch (GeneralSecurityException e) {
            return "its subject alternative names cannot be read: " + e.getMessage();
        }
        return null;
    }

    private static List<String> sans(X509Certificate c) throws GeneralSecurityException {
        Collection<List<?>> s = c.getSubjectAlternativeNames();
        List<String> out = new ArrayList<>();
        if (s != null) {
            for (List<?> e : s) {
                out.add(e.get(0) + ":" + e.get(1));
            }
        }
        out.sort(null);
        return out;
    }

    private static List<Long> stamps(TlsSettings s) {
        List<Long> out = new ArrayList<>();
        for (Path p : new Path[] {s.keystoreLocation(), s.truststoreLocation()}) {
            if (p == null) {
                continue;
            }
            try {
                out.add(Files.getLastModifiedTime(p).toMillis());
                out.add(Files.size(p));
            } catch (IOException e) {
                out.add(-1L);
            }
        }
        return out;
    }

    private static Material build(TlsSettings s) {
        List<Long> stamps = stamps(s);
        try {
            KeyStore ks = keyStore(s.keystoreLocation(), s.keystoreType(), s.keystorePassword(), s.keyPassword(), true);
            char[] keyPassword = pemType(s.keystoreType(), s.keystoreLocation()) ? new char[0]
                : (s.keyPassword() != null ? s.keyPassword() : s.keystorePassword() != null ? s.keystorePassword() : "")
                .toCharArray();
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, keyPassword);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            if (s.truststoreLocation() != null) {
                tmf.init(keyStore(s.truststoreLocation(), s.truststoreType(), s.truststorePassword(), null, false));
            } else {
                tmf.init((KeyStore) null);
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            X509Certificate cert = null;
            for (String alias : java.util.Collections.list(ks.aliases())) {
                if (ks.isKeyEntry(alias) && ks.getCertificate(alias) instanceof X509Certificate x) {
                    cert = x;
                    break;
                }
            }
            if (cert == null) {
                throw new IllegalArgumentException("ssl.keystore.location " + s.keystoreLocation() + " holds no private"
                    + " key with a certificate");
            }
            return new Material(ctx, cert, stamps);
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalArgumentException("TLS material cannot be loaded: " + e.getMessage(), e);
        }
    }

    /**
     * A client context trusting what {@code s}'s trust store holds ({@code ssl.truststore.*}), or null when none is
     * set (the JDK's default trust applies). Reads the file: a non-shard thread.
     */
    public static SSLContext trustContext(TlsSettings s) {
        if (s.truststoreLocation() == null) {
            return null;
        }
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(keyStore(s.truststoreLocation(), s.truststoreType(), s.truststorePassword(), null, false));
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalArgumentException("ssl.truststore.location " + s.truststoreLocation() + " cannot be loaded: "
                + e.getMessage(), e);
        }
    }

    private static boolean pemType(String type, Path file) {
        return TlsSettings.typeOf(type, file).equals("PEM");
    }

    private static KeyStore keyStore(Path file, String type, String password, String keyPassword, boolean withKey)
        throws GeneralSecurityException, IOException {
        if (file == null) {
            throw new IllegalArgumentException("ssl.keystore.location is not set");
        }
        if (!Files.isReadable(file)) {
            throw new IllegalArgumentException((withKey ? "ssl.keystore.location " : "ssl.truststore.location ") + file
                + " cannot be read");
        }
        String t = TlsSettings.typeOf(type, file);
        if (t.equals("PEM")) {
            return pemStore(Files.readString(file, StandardCharsets.US_ASCII), withKey, keyPassword);
        }
        KeyStore ks = KeyStore.getInstance(t);
        try (InputStream in = Files.newInputStream(file)) {
            ks.load(in, password == null ? null : password.toCharArray());
        }
        return ks;
    }

    /** A key store from PEM text: certificates, and with {@code withKey} one PKCS#8 private key (encrypted or not). */
    private static KeyStore pemStore(String text, boolean withKey, String keyPassword)
        throws GeneralSecurityException, IOException {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<Certificate> certs = new ArrayList<>();
        PrivateKey key = null;
        Matcher m = PEM.matcher(text);
        while (m.find()) {
            byte[] der = Base64.getMimeDecoder().decode(m.group(2));
            switch (m.group(1)) {
                case "CERTIFICATE" -> certs.add(cf.generateCertificate(new ByteArrayInputStream(der)));
                case "PRIVATE KEY" -> key = privateKey(der);
                case "ENCRYPTED PRIVATE KEY" -> {
                    if (keyPassword == null) {
                        throw new IllegalArgumentException("the PEM private key is encrypted: set ssl.key.password");
                    }
                    EncryptedPrivateKeyInfo info = new EncryptedPrivateKeyInfo(der);
                    SecretKeyFactory f = SecretKeyFactory.getInstance(info.getAlgName());
                    key = privateKey(info.getKeySpec(f.generateSecret(new PBEKeySpec(keyPassword.toCharArray())))
                        .getEncoded());
                }
                default -> throw new IllegalArgumentException("PEM block " + m.group(1) + " is not supported (use"
                    + " CERTIFICATE and PKCS#8 PRIVATE KEY or ENCRYPTED PRIVATE KEY)");
            }
        }
        if (certs.isEmpty()) {
            throw new IllegalArgumentException("the PEM file holds no CERTIFICATE");
        }
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        if (withKey) {
            if (key == null) {
                throw new IllegalArgumentException("the PEM key store holds no PRIVATE KEY");
            }
            ks.setKeyEntry("key", key, new char[0], certs.toArray(Certificate[]::new));
        } else {
            for (int i = 0; i < certs.size(); i++) {
                ks.setCertificateEntry("ca-" + i, certs.get(i));
            }
        }
        return ks;
    }

    private static PrivateKey privateKey(byte[] pkcs8) throws GeneralSecurityException {
        GeneralSecurityException last = null;
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "EdDSA", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
            } catch (GeneralSecurityException e) {
                last = e;
            }
        }
        throw new GeneralSecurityException("the PEM private key is not an RSA, EC or EdDSA PKCS#8 key", last);
    }

    @Override
    public void close() {
        if (reloader != null) {
            reloader.shutdownNow();
        }
    }
}
