package dev.isthmus.bench.chaos;

import java.util.List;
import java.util.Map;

/**
 * One line of the history, parsed: the common fields and typed access to the others. Immutable after
 * parsing; any thread.
 *
 * @param t      nanoseconds since the run's origin
 * @param proc   the client process (producer-0, reader, member-3, admin, nemesis, final, ...)
 * @param type   invoke, ok, fail or info
 * @param f      the operation (send, poll, commit, committed, assigned, fault-start, ...)
 * @param fields every field of the line, the common ones included
 * @param line   the line's number in the file (from 1), for messages
 */
record Event(long t, String proc, String type, String f, Map<String, Object> fields, long line) {

    static Event parse(String text, long line) {
        Map<String, Object> m = Json.parseObject(text);
        if (!(m.get("t") instanceof Long t) || !(m.get("proc") instanceof String proc)
                || !(m.get("type") instanceof String type) || !(m.get("f") instanceof String f)) {
            throw new IllegalArgumentException("line " + line + " lacks t, proc, type or f: " + Json.abbreviate(text));
        }
        return new Event(t, proc, type, f, m, line);
    }

    boolean ok() {
        return type.equals("ok");
    }

    boolean invoke() {
        return type.equals("invoke");
    }

    String str(String key) {
        Object v = fields.get(key);
        return v == null ? null : v.toString();
    }

    long num(String key) {
        Object v = fields.get(key);
        if (v instanceof Long l) {
            return l;
        }
        if (v instanceof Double d) {
            return d.longValue();
        }
        throw new IllegalArgumentException("line " + line + ": field " + key + " is not a number: " + v);
    }

    long num(String key, long missing) {
        return fields.containsKey(key) && fields.get(key) != null ? num(key) : missing;
    }

    boolean has(String key) {
        return fields.get(key) != null;
    }

    @SuppressWarnings("unchecked")
    List<Object> list(String key) {
        Object v = fields.get(key);
        return v instanceof List<?> l ? (List<Object>) l : List.of();
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> map(String key) {
        Object v = fields.get(key);
        return v instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }

    /** "t=12.345s proc f" for messages. */
    String where() {
        return String.format(java.util.Locale.ROOT, "t=%.3fs %s %s %s (line %d)", t / 1e9, proc, type, f, line);
    }
}
