package dev.isthmus.gateway.security;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Kafka's {@code ssl.principal.mapping.rules} (KIP-371): turns a client certificate's subject DN (RFC 2253, for
 * example {@code CN=alice,OU=eng,O=acme}) into a principal name. A comma- or newline-separated list of
 * {@code RULE:regex/replacement/[L|U]} and {@code DEFAULT} (the DN unchanged); the first rule whose regex matches
 * the whole DN wins, {@code $1} refers to its groups, {@code /L} lower-cases and {@code /U} upper-cases the result.
 * A DN no rule matches is refused (the connection closes), as Kafka does. Immutable; any thread.
 */
public final class SslPrincipalMapper {
    // The rule list's grammar: a regex may itself hold commas, so rules are cut by matching whole rules.
    private static final Pattern SPLITTER = Pattern.compile(
        "\\s*(DEFAULT|RULE:((\\\\.|[^\\\\/])*)/((\\\\.|[^\\\\/])*)/([LU]?).*?|(.*?))\\s*([,\\n]\\s*|$)");
    private static final Pattern RULE = Pattern.compile("(DEFAULT)|RULE:((\\\\.|[^\\\\/])*)/((\\\\.|[^\\\\/])*)/([LU]?)");
    private static final Pattern BACK_REFERENCE = Pattern.compile("\\$(\\d+)");

    private record Rule(boolean isDefault, Pattern pattern, String replacement, boolean lower, boolean upper) {
        String apply(String dn) {
            if (isDefault) {
                return dn;
            }
            Matcher m = pattern.matcher(dn);
            if (!m.matches()) {
                return null;
            }
            String r = m.replaceAll(replacement);
            return lower ? r.toLowerCase(Locale.ENGLISH) : upper ? r.toUpperCase(Locale.ENGLISH) : r;
        }
    }

    private final List<Rule> rules;

    private SslPrincipalMapper(List<Rule> rules) {
        this.rules = List.copyOf(rules);
    }

    /** @throws IllegalArgumentException naming the rule that does not parse */
    public static SslPrincipalMapper parse(String rulesText) {
        String text = rulesText == null || rulesText.isBlank() ? "DEFAULT" : rulesText.trim();
        List<Rule> rules = new ArrayList<>();
        Matcher m = SPLITTER.matcher(text);
        while (m.find()) {
            String one = m.group(1);
            if (one == null || one.isEmpty()) {
                if (m.end() >= text.length()) {
                    break;
                }
                continue;
            }
            Matcher r = RULE.matcher(one);
            if (!r.matches()) {
                throw new IllegalArgumentException("ssl.principal.mapping.rules: '" + one + "' is neither DEFAULT nor"
                    + " RULE:regex/replacement/[L|U]");
            }
            if (r.group(1) != null) {
                rules.add(new Rule(true, null, null, false, false));
            } else {
                Pattern p;
                try {
                    p = Pattern.compile(r.group(2).replace("\\/", "/"));
                } catch (java.util.regex.PatternSyntaxException e) {
                    throw new IllegalArgumentException("ssl.principal.mapping.rules: bad regex in '" + one + "': "
                        + e.getDescription());
                }
                String replacement = r.group(4).replace("\\/", "/");
                int groups = p.matcher("").groupCount();
                Matcher br = BACK_REFERENCE.matcher(replacement);
                while (br.find()) {
                    if (Integer.parseInt(br.group(1)) > groups) {
                        throw new IllegalArgumentException("ssl.principal.mapping.rules: '" + one + "' refers to group $"
                            + br.group(1) + " of a regex with " + groups);
                    }
                }
                rules.add(new Rule(false, p, replacement, "L".equals(r.group(6)), "U".equals(r.group(6))));
            }
            if (m.end() >= text.length()) {
                break;
            }
        }
        if (rules.isEmpty()) {
            throw new IllegalArgumentException("ssl.principal.mapping.rules names no rule");
        }
        return new SslPrincipalMapper(rules);
    }

    /** The principal name for {@code dn}, or null when no rule matches it. */
    public String name(String dn) {
        for (Rule r : rules) {
            String n = r.apply(dn);
            if (n != null) {
                return n;
            }
        }
        return null;
    }
}
