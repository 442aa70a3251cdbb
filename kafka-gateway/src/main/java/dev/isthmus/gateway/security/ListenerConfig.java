package dev.isthmus.gateway.security;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One named Kafka listener: where it binds, what clients are told (its advertised address), and the security
 * protocol its connections speak. Immutable.
 *
 * @param name           the listener's name (upper case, Kafka's {@code listeners=NAME://HOST:PORT})
 * @param host           bind address
 * @param port           bind port (0 picks a free one: tests)
 * @param advertisedHost the host given to clients that came in on this listener; null = {@code host}
 * @param advertisedPort the port given to them; 0 = the bound port
 * @param protocol       PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
 */
public record ListenerConfig(String name, String host, int port, String advertisedHost, int advertisedPort,
                             SecurityProtocol protocol) {
    private static final Pattern ENTRY = Pattern.compile("([A-Za-z0-9_-]+)://(\\[[^\\]]*\\]|[^:/]*):([0-9]+)");

    public ListenerConfig {
        if (name == null || !name.matches("[A-Z0-9_-]+")) {
            throw new IllegalArgumentException("listener name '" + name + "' must be letters, digits, _ or -");
        }
        if (host == null || host.isEmpty()) {
            throw new IllegalArgumentException("listener " + name + " needs a host");
        }
        if (port < 0 || port > 65535 || advertisedPort < 0 || advertisedPort > 65535) {
            throw new IllegalArgumentException("listener " + name + " port must be in [0, 65535]");
        }
        if (protocol == null) {
            throw new IllegalArgumentException("listener " + name + " needs a security protocol");
        }
    }

    /** The host clients are told. */
    public String advertisedHostOrBind() {
        return advertisedHost != null ? advertisedHost : host;
    }

    public ListenerConfig withPort(int p) {
        return new ListenerConfig(name, host, p, advertisedHost, advertisedPort, protocol);
    }

    /**
     * Parses Kafka's {@code listeners}, {@code advertised.listeners} and {@code listener.security.protocol.map}
     * into listeners. An empty host binds every interface (0.0.0.0). Without a map entry, a listener named after
     * a protocol uses it (Kafka's default map); any other name needs one.
     *
     * @param listeners  {@code NAME://HOST:PORT,...}
     * @param advertised {@code NAME://HOST:PORT,...} or null; names must be listeners
     * @param map        {@code NAME:PROTOCOL,...} or null
     * @throws IllegalArgumentException one sentence naming the bad entry
     */
    public static List<ListenerConfig> parse(String listeners, String advertised, String map) {
        Map<String, SecurityProtocol> protocols = new HashMap<>();
        if (map != null && !map.isBlank()) {
            for (String e : map.split(",")) {
                String s = e.trim();
                int colon = s.indexOf(':');
                if (colon <= 0) {
                    throw new IllegalArgumentException("listener security protocol map entry '" + s
                        + "' is not NAME:PROTOCOL");
                }
                protocols.put(s.substring(0, colon).trim().toUpperCase(Locale.ROOT),
                    SecurityProtocol.parse(s.substring(colon + 1)));
            }
        }
        Map<String, String[]> bound = entries("listeners", listeners);
        if (bound.isEmpty()) {
            throw new IllegalArgumentException("listeners names no listener");
        }
        Map<String, String[]> adv = advertised == null || advertised.isBlank() ? Map.of()
            : entries("advertised listeners", advertised);
        for (String n : adv.keySet()) {
            if (!bound.containsKey(n)) {
                throw new IllegalArgumentException("advertised listener " + n + " is not one of the listeners "
                    + bound.keySet());
            }
        }
        List<ListenerConfig> out = new ArrayList<>();
        java.util.Set<Integer> ports = new java.util.HashSet<>();
        for (Map.Entry<String, String[]> e : bound.entrySet()) {
            String n = e.getKey();
            SecurityProtocol p = protocols.get(n);
            if (p == null) {
                try {
                    p = SecurityProtocol.valueOf(n);
                } catch (IllegalArgumentException x) {
                    throw new IllegalArgumentException("listener " + n + " has no security protocol: name it in"
                        + " listener.security.protocol.map (" + n + ":SASL_SSL, ...)");
                }
            }
            String host = e.getValue()[0].isEmpty() ? "0.0.0.0" : e.getValue()[0];
            int port = Integer.parseInt(e.getValue()[1]);
            if (port != 0 && !ports.add(port)) {
                throw new IllegalArgumentException("two listeners bind port " + port);
            }
            String[] a = adv.get(n);
            out.add(new ListenerConfig(n, host, port, a == null || a[0].isEmpty() ? null : a[0],
                a == null ? 0 : Integer.parseInt(a[1]), p));
        }
        return List.copyOf(out);
    }

    private static Map<String, String[]> entries(String what, String list) {
        Map<String, String[]> out = new LinkedHashMap<>();
        for (String raw : list.split(",")) {
            String s = raw.trim();
            if (s.isEmpty()) {
                continue;
            }
            Matcher m = ENTRY.matcher(s);
            if (!m.matches()) {
                throw new IllegalArgumentException(what + " entry '" + s + "' is not NAME://HOST:PORT");
            }
            String name = m.group(1).toUpperCase(Locale.ROOT);
            String host = m.group(2);
            if (host.startsWith("[")) {
                host = host.substring(1, host.length() - 1);
            }
            int port;
            try {
                port = Integer.parseInt(m.group(3));
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException(what + " entry '" + s + "' has a port outside [0, 65535]");
            }
            if (out.put(name, new String[] {host, Integer.toString(port)}) != null) {
                throw new IllegalArgumentException(what + " names listener " + name + " twice");
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return name + "://" + host + ":" + port + " (" + protocol + ")";
    }
}
