/*
 * Build-time generator of Isthmus's Kafka protocol codecs (run by kafka-gateway/pom.xml in generate-sources,
 * with the JDK's source launcher: java KafkaCodegen.java <schema dir> <main out> <test out>).
 *
 * Input: Kafka's JSON message schemas (common/message/*.json from the kafka-clients jar, unpacked by the build).
 * Output, for every request, response and header schema:
 *   - <Name>Data: public fields with defaults, read(ProtocolReader, version), write(ProtocolWriter, version),
 *     size(version), nested classes for struct types; legacy and flexible encodings, tagged fields (unknown ones
 *     kept), nullable types, uuid, float64, zero-copy bytes/records as ByteSlice;
 *   - ApiKeys: key, name, our supported version range, flexible-from version and header versions;
 *   - (test sources) RandomMessages: fills a message with seeded random values valid for a version, so that
 *     round-trip tests can compare our encoding with kafka-clients' own message classes.
 */

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

public class KafkaCodegen {
    static final String PKG = "dev.isthmus.gateway.protocol.message";

    public static void main(String[] args) throws IOException {
        Path in = Path.of(args[0]);
        Path mainOut = Path.of(args[1]).resolve(PKG.replace('.', '/'));
        Path testOut = Path.of(args[2]).resolve(PKG.replace('.', '/'));
        Files.createDirectories(mainOut);
        Files.createDirectories(testOut);
        List<Message> messages = new ArrayList<>();
        try (var files = Files.list(in)) {
            for (Path p : files.sorted().toList()) {
                if (!p.toString().endsWith(".json")) {
                    continue;
                }
                Map<String, Object> json = asMap(new Json(Files.readString(p)).parse());
                String type = (String) json.get("type");
                if (!type.equals("request") && !type.equals("response") && !type.equals("header")) {
                    continue;
                }
                messages.add(new Message(json));
            }
        }
        int generated = 0;
        for (Message m : messages) {
            Files.writeString(mainOut.resolve(m.className + ".java"), m.generate());
            generated++;
        }
        Files.writeString(mainOut.resolve("ApiKeys.java"), apiKeys(messages));
        Files.writeString(testOut.resolve("RandomMessages.java"), randomMessages(messages));
        System.out.println("KafkaCodegen: " + generated + " message classes from " + in);
    }

    // ------------------------------------------------------------------ model

    static final class Versions {
        final int lo;
        final int hi;

        Versions(int lo, int hi) {
            this.lo = lo;
            this.hi = hi;
        }

        static Versions parse(String s) {
            if (s == null || s.equals("none")) {
                return new Versions(1, 0);
            }
            s = s.trim();
            if (s.endsWith("+")) {
                return new Versions(Integer.parseInt(s.substring(0, s.length() - 1)), Short.MAX_VALUE);
            }
            int dash = s.indexOf('-');
            if (dash > 0) {
                return new Versions(Integer.parseInt(s.substring(0, dash)), Integer.parseInt(s.substring(dash + 1)));
            }
            int v = Integer.parseInt(s);
            return new Versions(v, v);
        }

        boolean empty() {
            return lo > hi;
        }

        Versions intersect(Versions o) {
            return new Versions(Math.max(lo, o.lo), Math.min(hi, o.hi));
        }

        boolean contains(Versions o) {
            return o.empty() || (lo <= o.lo && o.hi <= hi);
        }

        /** A Java condition on {@code version} that is true exactly within this range, given {@code outer}. */
        String cond(Versions outer) {
            if (contains(outer)) {
                return "true";
            }
            Versions eff = intersect(outer);
            if (eff.empty()) {
                return "false";
            }
            List<String> parts = new ArrayList<>();
            if (eff.lo > outer.lo) {
                parts.add("version >= " + eff.lo);
            }
            if (eff.hi < outer.hi) {
                parts.add("version <= " + eff.hi);
            }
            return parts.isEmpty() ? "true" : String.join(" && ", parts);
        }
    }

    static final class Field {
        String name;
        String type;
        Versions versions;
        Versions nullable;
        Versions tagged;
        Integer tag;
        String defaultValue;
        Versions flexibleOverride;
        List<Field> fields;
        StructDef struct;

        Field(Map<String, Object> j) {
            name = (String) j.get("name");
            type = (String) j.get("type");
            versions = Versions.parse((String) j.get("versions"));
            nullable = Versions.parse((String) j.get("nullableVersions"));
            tagged = Versions.parse((String) j.get("taggedVersions"));
            Object t = j.get("tag");
            tag = t == null ? null : ((Number) t).intValue();
            Object d = j.get("default");
            defaultValue = d == null ? null : d.toString();
            Object fo = j.get("flexibleVersions");
            flexibleOverride = fo == null ? null : Versions.parse((String) fo);
            Object fs = j.get("fields");
            if (fs != null) {
                fields = new ArrayList<>();
                for (Object f : (List<?>) fs) {
                    fields.add(new Field(asMap(f)));
                }
            }
        }

        boolean isArray() {
            return type.startsWith("[]");
        }

        String elemType() {
            return isArray() ? type.substring(2) : type;
        }

        boolean isStructType() {
            return Character.isUpperCase(elemType().charAt(0));
        }

        String javaName() {
            return Character.toLowerCase(name.charAt(0)) + name.substring(1);
        }

        boolean isTagged() {
            return tag != null;
        }
    }

    static final class StructDef {
        final String name;
        final List<Field> fields;
        final Versions versions;

        StructDef(String name, List<Field> fields, Versions versions) {
            this.name = name;
            this.fields = fields;
            this.versions = versions;
        }
    }

    static final class Message {
        final String name;
        final String className;
        final String kind;
        final int apiKey;
        final Versions valid;
        final Versions flexible;
        final List<Field> fields = new ArrayList<>();
        final Map<String, StructDef> structs = new LinkedHashMap<>();
        final Map<String, List<Field>> common = new LinkedHashMap<>();

        Message(Map<String, Object> j) {
            name = (String) j.get("name");
            className = name + "Data";
            kind = (String) j.get("type");
            Object k = j.get("apiKey");
            apiKey = k == null ? -1 : ((Number) k).intValue();
            valid = Versions.parse((String) j.get("validVersions"));
            flexible = Versions.parse((String) j.get("flexibleVersions"));
            Object cs = j.get("commonStructs");
            if (cs != null) {
                for (Object c : (List<?>) cs) {
                    Map<String, Object> cm = asMap(c);
                    List<Field> fs = new ArrayList<>();
                    for (Object f : (List<?>) cm.get("fields")) {
                        fs.add(new Field(asMap(f)));
                    }
                    common.put((String) cm.get("name"), fs);
                }
            }
            Object top = j.get("fields");
            if (top != null) {
                for (Object f : (List<?>) top) {
                    fields.add(new Field(asMap(f)));
                }
            }
            resolve(fields);
        }

        private void resolve(List<Field> fs) {
            for (Field f : fs) {
                if (!f.isStructType()) {
                    continue;
                }
                String sn = f.elemType();
                List<Field> sub = f.fields != null ? f.fields : common.get(sn);
                if (sub == null) {
                    throw new IllegalStateException(name + ": unknown struct type " + sn);
                }
                StructDef def = structs.get(sn);
                if (def == null) {
                    def = new StructDef(sn, sub, f.versions);
                    structs.put(sn, def);
                    resolve(sub);
                }
                f.struct = def;
            }
        }

        String generate() {
            StringBuilder sb = new StringBuilder();
            sb.append("// GENERATED by kafka-gateway/codegen/KafkaCodegen.java from Kafka's ").append(name)
                .append(".json. Do not edit.\n");
            sb.append("package ").append(PKG).append(";\n\n");
            sb.append("import dev.isthmus.gateway.protocol.*;\nimport java.util.ArrayList;\nimport java.util.List;\n\n");
            sb.append("/** Kafka ").append(name).append(" (").append(kind).append(apiKey >= 0 ? ", api key " + apiKey : "")
                .append("), versions ").append(valid.lo).append('-').append(valid.hi).append(", flexible from ")
                .append(flexible.empty() ? "never" : String.valueOf(flexible.lo)).append(". */\n");
            sb.append("@SuppressWarnings({\"unused\", \"PointlessBooleanExpression\", \"ConstantValue\"})\n");
            sb.append("public final class ").append(className).append(" implements ProtocolMessage {\n");
            sb.append("    public static final short API_KEY = ").append(apiKey).append(";\n");
            sb.append("    public static final short LOWEST_VERSION = ").append(valid.lo).append(";\n");
            sb.append("    public static final short HIGHEST_VERSION = ").append(valid.hi).append(";\n");
            sb.append("    public static final short FLEXIBLE_FROM = ").append(flexible.empty() ? Short.MAX_VALUE : flexible.lo).append(";\n\n");
            body(sb, "    ", className, fields, valid, true);
            sb.append("    @Override public short apiKey() { return API_KEY; }\n");
            sb.append("    @Override public short lowestVersion() { return LOWEST_VERSION; }\n");
            sb.append("    @Override public short highestVersion() { return HIGHEST_VERSION; }\n");
            for (StructDef s : structs.values()) {
                sb.append("\n    public static final class ").append(s.name).append(" implements ProtocolStruct {\n");
                body(sb, "        ", s.name, s.fields, valid, false);
                sb.append("    }\n");
            }
            sb.append("}\n");
            return sb.toString();
        }

        void body(StringBuilder sb, String in, String cls, List<Field> fs, Versions outer, boolean top) {
            for (Field f : fs) {
                sb.append(in).append("public ").append(javaType(f)).append(' ').append(f.javaName()).append(" = ")
                    .append(defaultExpr(f)).append(";\n");
            }
            sb.append(in).append("/** Tagged fields this version does not know, kept to be written back. */\n");
            sb.append(in).append("public List<RawTaggedField> unknownTaggedFields;\n\n");
            // read
            sb.append(in).append("@Override\n").append(in).append("public void read(ProtocolReader r, short version) {\n");
            if (top) {
                sb.append(in).append("    if (version < LOWEST_VERSION || version > HIGHEST_VERSION) {\n").append(in)
                    .append("        throw new ProtocolException(\"").append(name).append(" version \" + version + \" is not supported (\" + LOWEST_VERSION + \"-\" + HIGHEST_VERSION + \")\");\n")
                    .append(in).append("    }\n");
            }
            sb.append(in).append("    boolean flexible = version >= FLEXIBLE_FROM;\n");
            for (Field f : fs) {
                if (f.isTagged()) {
                    sb.append(in).append("    if (!(").append(f.versions.cond(outer)).append(")) {\n")
                        .append(in).append("        ").append(f.javaName()).append(" = ").append(defaultExpr(f)).append(";\n")
                        .append(in).append("    }\n");
                    continue;
                }
                sb.append(in).append("    if (").append(f.versions.cond(outer)).append(") {\n");
                readField(sb, in + "        ", f, f.javaName(), outer);
                sb.append(in).append("    } else {\n").append(in).append("        ").append(f.javaName()).append(" = ")
                    .append(defaultExpr(f)).append(";\n").append(in).append("    }\n");
            }
            sb.append(in).append("    unknownTaggedFields = null;\n");
            sb.append(in).append("    if (flexible) {\n");
            sb.append(in).append("        int tagCount = r.readUnsignedVarint();\n");
            sb.append(in).append("        for (int t = 0; t < tagCount; t++) {\n");
            sb.append(in).append("            int tag = r.readUnsignedVarint();\n");
            sb.append(in).append("            int tagSize = r.readUnsignedVarint();\n");
            sb.append(in).append("            switch (tag) {\n");
            for (Field f : fs) {
                if (!f.isTagged()) {
                    continue;
                }
                sb.append(in).append("                case ").append(f.tag).append(" -> {\n");
                sb.append(in).append("                    if (").append(f.versions.intersect(f.tagged).cond(outer)).append(") {\n");
                readField(sb, in + "                        ", f, f.javaName(), outer);
                sb.append(in).append("                    } else {\n");
                sb.append(in).append("                        unknownTaggedFields = RawTaggedField.read(r, tag, tagSize, unknownTaggedFields);\n");
                sb.append(in).append("                    }\n");
                sb.append(in).append("                }\n");
            }
            sb.append(in).append("                default -> unknownTaggedFields = RawTaggedField.read(r, tag, tagSize, unknownTaggedFields);\n");
            sb.append(in).append("            }\n").append(in).append("        }\n").append(in).append("    }\n");
            sb.append(in).append("}\n\n");
            // write
            sb.append(in).append("@Override\n").append(in).append("public void write(ProtocolWriter w, short version) {\n");
            sb.append(in).append("    boolean flexible = version >= FLEXIBLE_FROM;\n");
            for (Field f : fs) {
                if (f.isTagged()) {
                    continue;
                }
                sb.append(in).append("    if (").append(f.versions.cond(outer)).append(") {\n");
                writeField(sb, in + "        ", f, f.javaName(), outer);
                sb.append(in).append("    }\n");
            }
            sb.append(in).append("    if (flexible) {\n");
            sb.append(in).append("        int tagCount = unknownTaggedFields == null ? 0 : unknownTaggedFields.size();\n");
            List<Field> tagged = new ArrayList<>();
            for (Field f : fs) {
                if (f.isTagged()) {
                    tagged.add(f);
                }
            }
            tagged.sort((a, b) -> Integer.compare(a.tag, b.tag));
            for (Field f : tagged) {
                sb.append(in).append("        if ((").append(f.versions.intersect(f.tagged).cond(outer)).append(") && ")
                    .append(notDefault(f)).append(") {\n").append(in).append("            tagCount++;\n").append(in).append("        }\n");
            }
            sb.append(in).append("        w.writeUnsignedVarint(tagCount);\n");
            sb.append(in).append("        int nextUnknown = 0;\n");
            for (Field f : tagged) {
                sb.append(in).append("        nextUnknown = RawTaggedField.writeBelow(w, unknownTaggedFields, nextUnknown, ").append(f.tag).append(");\n");
                sb.append(in).append("        if ((").append(f.versions.intersect(f.tagged).cond(outer)).append(") && ")
                    .append(notDefault(f)).append(") {\n");
                sb.append(in).append("            w.writeUnsignedVarint(").append(f.tag).append(");\n");
                sb.append(in).append("            w.writeUnsignedVarint(").append(sizeExpr(f, f.javaName(), outer, true)).append(");\n");
                writeField(sb, in + "            ", f, f.javaName(), outer);
                sb.append(in).append("        }\n");
            }
            sb.append(in).append("        RawTaggedField.writeBelow(w, unknownTaggedFields, nextUnknown, Integer.MAX_VALUE);\n");
            sb.append(in).append("    }\n");
            sb.append(in).append("}\n\n");
            // size
            sb.append(in).append("@Override\n").append(in).append("public int size(short version) {\n");
            sb.append(in).append("    boolean flexible = version >= FLEXIBLE_FROM;\n");
            sb.append(in).append("    int size = 0;\n");
            for (Field f : fs) {
                if (f.isTagged()) {
                    continue;
                }
                sb.append(in).append("    if (").append(f.versions.cond(outer)).append(") {\n");
                sb.append(in).append("        size += ").append(sizeExpr(f, f.javaName(), outer, false)).append(";\n");
                sb.append(in).append("    }\n");
            }
            sb.append(in).append("    if (flexible) {\n");
            sb.append(in).append("        int tagCount = unknownTaggedFields == null ? 0 : unknownTaggedFields.size();\n");
            sb.append(in).append("        size += RawTaggedField.size(unknownTaggedFields);\n");
            for (Field f : tagged) {
                sb.append(in).append("        if ((").append(f.versions.intersect(f.tagged).cond(outer)).append(") && ")
                    .append(notDefault(f)).append(") {\n");
                sb.append(in).append("            tagCount++;\n");
                sb.append(in).append("            int fieldSize = ").append(sizeExpr(f, f.javaName(), outer, true)).append(";\n");
                sb.append(in).append("            size += ByteSizes.unsignedVarint(").append(f.tag).append(") + ByteSizes.unsignedVarint(fieldSize) + fieldSize;\n");
                sb.append(in).append("        }\n");
            }
            sb.append(in).append("        size += ByteSizes.unsignedVarint(tagCount);\n");
            sb.append(in).append("    }\n");
            sb.append(in).append("    return size;\n");
            sb.append(in).append("}\n\n");
            sb.append(in).append("/** True when every field has its default value (tagged struct fields are then not written). */\n");
            sb.append(in).append("public boolean isDefault() {\n");
            sb.append(in).append("    return (unknownTaggedFields == null || unknownTaggedFields.isEmpty())");
            for (Field f : fs) {
                sb.append("\n").append(in).append("        && !").append(notDefault(f));
            }
            sb.append(";\n").append(in).append("}\n\n");
        }

        String flexExpr(Field f) {
            if (f.flexibleOverride != null) {
                return f.flexibleOverride.empty() ? "false" : "(flexible && version >= " + f.flexibleOverride.lo + ")";
            }
            return "flexible";
        }

        String nullableCond(Field f, Versions outer) {
            return f.nullable.cond(outer);
        }

        void readField(StringBuilder sb, String in, Field f, String target, Versions outer) {
            String flex = flexExpr(f);
            if (f.isArray()) {
                sb.append(in).append("int n = ").append(flex).append(" ? r.readUnsignedVarint() - 1 : r.readInt();\n");
                sb.append(in).append("if (n < 0) {\n");
                sb.append(in).append("    if (!(").append(nullableCond(f, outer)).append(")) {\n");
                sb.append(in).append("        throw new ProtocolException(\"non-nullable field ").append(f.name).append(" was serialized as null\");\n");
                sb.append(in).append("    }\n");
                sb.append(in).append("    ").append(target).append(" = null;\n");
                sb.append(in).append("} else {\n");
                sb.append(in).append("    r.checkCount(n, \"").append(f.name).append("\");\n");
                sb.append(in).append("    ").append(javaType(f)).append(" list = new ArrayList<>(n);\n");
                sb.append(in).append("    for (int i = 0; i < n; i++) {\n");
                String e = f.elemType();
                if (f.isStructType()) {
                    sb.append(in).append("        ").append(e).append(" el = new ").append(e).append("();\n");
                    sb.append(in).append("        el.read(r, version);\n");
                    sb.append(in).append("        list.add(el);\n");
                } else {
                    sb.append(in).append("        list.add(").append(readPrimitive(e, flex, "false", f.name)).append(");\n");
                }
                sb.append(in).append("    }\n");
                sb.append(in).append("    ").append(target).append(" = list;\n");
                sb.append(in).append("}\n");
            } else if (f.isStructType()) {
                if (!f.nullable.empty()) {
                    sb.append(in).append("if ((").append(nullableCond(f, outer)).append(") && r.readByte() < 0) {\n");
                    sb.append(in).append("    ").append(target).append(" = null;\n");
                    sb.append(in).append("} else {\n");
                    sb.append(in).append("    ").append(target).append(" = new ").append(f.elemType()).append("();\n");
                    sb.append(in).append("    ").append(target).append(".read(r, version);\n");
                    sb.append(in).append("}\n");
                } else {
                    sb.append(in).append(target).append(" = new ").append(f.elemType()).append("();\n");
                    sb.append(in).append(target).append(".read(r, version);\n");
                }
            } else {
                sb.append(in).append(target).append(" = ").append(readPrimitive(f.type, flex, nullableCond(f, outer), f.name)).append(";\n");
            }
        }

        String readPrimitive(String t, String flex, String nullable, String fieldName) {
            return switch (t) {
                case "int8" -> "r.readByte()";
                case "int16" -> "r.readShort()";
                case "uint16" -> "(r.readShort() & 0xFFFF)";
                case "int32" -> "r.readInt()";
                case "uint32" -> "(r.readInt() & 0xFFFFFFFFL)";
                case "int64" -> "r.readLong()";
                case "float64" -> "Double.longBitsToDouble(r.readLong())";
                case "bool" -> "(r.readByte() != 0)";
                case "uuid" -> "Uuid.read(r)";
                case "string" -> "Codec.readString(r, " + flex + ", " + nullable + ", \"" + fieldName + "\")";
                case "bytes", "records" -> "Codec.readBytes(r, " + flex + ", " + nullable + ", \"" + fieldName + "\")";
                default -> throw new IllegalStateException("unknown type " + t);
            };
        }

        void writeField(StringBuilder sb, String in, Field f, String v, Versions outer) {
            String flex = flexExpr(f);
            if (f.isArray()) {
                sb.append(in).append("if (").append(v).append(" == null) {\n");
                sb.append(in).append("    if (!(").append(nullableCond(f, outer)).append(")) {\n");
                sb.append(in).append("        throw new ProtocolException(\"null ").append(f.name).append(" in a version where it is not nullable\");\n");
                sb.append(in).append("    }\n");
                sb.append(in).append("    if (").append(flex).append(") { w.writeUnsignedVarint(0); } else { w.writeInt(-1); }\n");
                sb.append(in).append("} else {\n");
                sb.append(in).append("    if (").append(flex).append(") { w.writeUnsignedVarint(").append(v).append(".size() + 1); } else { w.writeInt(").append(v).append(".size()); }\n");
                sb.append(in).append("    for (int i = 0; i < ").append(v).append(".size(); i++) {\n");
                if (f.isStructType()) {
                    sb.append(in).append("        ").append(v).append(".get(i).write(w, version);\n");
                } else {
                    sb.append(in).append("        ").append(writePrimitive(f.elemType(), flex, "false", v + ".get(i)", f.name)).append(";\n");
                }
                sb.append(in).append("    }\n");
                sb.append(in).append("}\n");
            } else if (f.isStructType()) {
                if (!f.nullable.empty()) {
                    sb.append(in).append("if (").append(nullableCond(f, outer)).append(") {\n");
                    sb.append(in).append("    w.writeByte(").append(v).append(" == null ? (byte) -1 : (byte) 1);\n");
                    sb.append(in).append("}\n");
                    sb.append(in).append("if (").append(v).append(" != null) {\n");
                    sb.append(in).append("    ").append(v).append(".write(w, version);\n");
                    sb.append(in).append("} else if (!(").append(nullableCond(f, outer)).append(")) {\n");
                    sb.append(in).append("    throw new ProtocolException(\"null ").append(f.name).append(" in a version where it is not nullable\");\n");
                    sb.append(in).append("}\n");
                } else {
                    sb.append(in).append(v).append(".write(w, version);\n");
                }
            } else {
                sb.append(in).append(writePrimitive(f.type, flex, nullableCond(f, outer), v, f.name)).append(";\n");
            }
        }

        String writePrimitive(String t, String flex, String nullable, String v, String fieldName) {
            return switch (t) {
                case "int8" -> "w.writeByte(" + v + ")";
                case "int16" -> "w.writeShort(" + v + ")";
                case "uint16" -> "w.writeShort((short) (int) " + v + ")";
                case "int32" -> "w.writeInt(" + v + ")";
                case "uint32" -> "w.writeInt((int) (long) " + v + ")";
                case "int64" -> "w.writeLong(" + v + ")";
                case "float64" -> "w.writeLong(Double.doubleToRawLongBits(" + v + "))";
                case "bool" -> "w.writeByte(" + v + " ? (byte) 1 : (byte) 0)";
                case "uuid" -> "Uuid.write(w, " + v + ")";
                case "string" -> "Codec.writeString(w, " + v + ", " + flex + ", " + nullable + ", \"" + fieldName + "\")";
                case "bytes", "records" -> "Codec.writeBytes(w, " + v + ", " + flex + ", " + nullable + ", \"" + fieldName + "\")";
                default -> throw new IllegalStateException("unknown type " + t);
            };
        }

        String sizeExpr(Field f, String v, Versions outer, boolean taggedContext) {
            String flex = flexExpr(f);
            if (f.isArray()) {
                String elem;
                if (f.isStructType()) {
                    elem = "Codec.structListSize(" + v + ", version)";
                } else {
                    elem = switch (f.elemType()) {
                        case "int8" -> v + ".size()";
                        case "int16", "uint16" -> "2 * " + v + ".size()";
                        case "int32", "uint32" -> "4 * " + v + ".size()";
                        case "int64", "float64" -> "8 * " + v + ".size()";
                        case "uuid" -> "16 * " + v + ".size()";
                        case "string" -> "Codec.stringListSize(" + v + ", " + flex + ")";
                        default -> throw new IllegalStateException("array of " + f.elemType());
                    };
                }
                return "(" + v + " == null ? (" + flex + " ? 1 : 4) : ((" + flex + " ? ByteSizes.unsignedVarint(" + v
                    + ".size() + 1) : 4) + " + elem + "))";
            }
            if (f.isStructType()) {
                if (!f.nullable.empty()) {
                    return "((" + nullableCond(f, outer) + " ? 1 : 0) + (" + v + " == null ? 0 : " + v + ".size(version)))";
                }
                return v + ".size(version)";
            }
            return switch (f.type) {
                case "int8", "bool" -> "1";
                case "int16", "uint16" -> "2";
                case "int32", "uint32" -> "4";
                case "int64", "float64" -> "8";
                case "uuid" -> "16";
                case "string" -> "Codec.stringSize(" + v + ", " + flex + ")";
                case "bytes", "records" -> "Codec.bytesSize(" + v + ", " + flex + ")";
                default -> throw new IllegalStateException("unknown type " + f.type);
            };
        }

        String notDefault(Field f) {
            String v = f.javaName();
            String d = defaultExpr(f);
            if (f.isArray()) {
                return d.equals("null") ? "(" + v + " != null)" : "(" + v + " == null || !" + v + ".isEmpty())";
            }
            if (f.isStructType()) {
                return d.equals("null") ? "(" + v + " != null)" : "(" + v + " != null && !" + v + ".isDefault())";
            }
            return switch (f.type) {
                case "string" -> d.equals("null") ? "(" + v + " != null)" : "!" + d + ".equals(" + v + ")";
                case "bytes", "records" -> d.equals("null") ? "(" + v + " != null)" : "(" + v + " == null || " + v + ".length() != 0)";
                case "uuid" -> "!Uuid.ZERO.equals(" + v + ")";
                case "float64" -> "(Double.doubleToRawLongBits(" + v + ") != Double.doubleToRawLongBits(" + d + "))";
                default -> "(" + v + " != " + d + ")";
            };
        }
    }

    static String javaType(Field f) {
        if (f.isArray()) {
            return "List<" + boxed(f.elemType()) + ">";
        }
        if (f.isStructType()) {
            return f.elemType();
        }
        return switch (f.type) {
            case "int8" -> "byte";
            case "int16" -> "short";
            case "uint16", "int32" -> "int";
            case "uint32", "int64" -> "long";
            case "float64" -> "double";
            case "bool" -> "boolean";
            case "string" -> "String";
            case "bytes", "records" -> "ByteSlice";
            case "uuid" -> "Uuid";
            default -> throw new IllegalStateException("unknown type " + f.type);
        };
    }

    static String boxed(String t) {
        if (Character.isUpperCase(t.charAt(0))) {
            return t;
        }
        return switch (t) {
            case "int8" -> "Byte";
            case "int16" -> "Short";
            case "uint16", "int32" -> "Integer";
            case "uint32", "int64" -> "Long";
            case "float64" -> "Double";
            case "bool" -> "Boolean";
            case "string" -> "String";
            case "uuid" -> "Uuid";
            default -> throw new IllegalStateException("array of " + t);
        };
    }

    static String defaultExpr(Field f) {
        String d = f.defaultValue;
        if (f.isArray()) {
            return "null".equals(d) ? "null" : "new ArrayList<>(0)";
        }
        if (f.isStructType()) {
            return "null".equals(d) ? "null" : "new " + f.elemType() + "()";
        }
        switch (f.type) {
            case "string":
                if (d == null) {
                    return "\"\"";
                }
                return d.equals("null") ? "null" : "\"" + d.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
            case "bytes":
            case "records":
                return "null".equals(d) ? "null" : "ByteSlice.EMPTY";
            case "uuid":
                return "Uuid.ZERO";
            case "bool":
                return d == null ? "false" : d;
            case "float64":
                return d == null ? "0.0" : d;
            default:
                if (d == null || d.isEmpty()) {
                    return "0";
                }
                long value = d.startsWith("0x") ? Long.parseLong(d.substring(2), 16) : Long.parseLong(d);
                return switch (f.type) {
                    case "int8" -> "(byte) " + value;
                    case "int16" -> "(short) " + value;
                    case "int64", "uint32" -> value + "L";
                    default -> String.valueOf(value);
                };
        }
    }

    // ------------------------------------------------------------------ ApiKeys and test helper

    static String apiKeys(List<Message> messages) {
        Map<Integer, Message[]> byKey = new TreeMap<>();
        for (Message m : messages) {
            if (m.apiKey < 0) {
                continue;
            }
            Message[] pair = byKey.computeIfAbsent(m.apiKey, k -> new Message[2]);
            pair[m.kind.equals("request") ? 0 : 1] = m;
        }
        StringBuilder sb = new StringBuilder();
        sb.append("// GENERATED by kafka-gateway/codegen/KafkaCodegen.java. Do not edit.\n");
        sb.append("package ").append(PKG).append(";\n\n");
        sb.append("import dev.isthmus.gateway.protocol.ProtocolMessage;\n\n");
        sb.append("/** Every API in Kafka's schemas: key, name, version range and first flexible version. */\n");
        sb.append("public enum ApiKeys {\n");
        List<String> rows = new ArrayList<>();
        for (Map.Entry<Integer, Message[]> e : byKey.entrySet()) {
            Message req = e.getValue()[0];
            Message resp = e.getValue()[1];
            if (req == null || resp == null) {
                continue;
            }
            String base = req.name.substring(0, req.name.length() - "Request".length());
            String constant = base.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
            rows.add("    " + constant + "((short) " + e.getKey() + ", \"" + base + "\", (short) " + req.valid.lo + ", (short) "
                + req.valid.hi + ", (short) " + (req.flexible.empty() ? Short.MAX_VALUE : req.flexible.lo) + ")");
        }
        sb.append(String.join(",\n", rows)).append(";\n\n");
        sb.append("    public final short id;\n    public final String displayName;\n    public final short lowestVersion;\n");
        sb.append("    public final short highestVersion;\n    public final short flexibleFrom;\n");
        sb.append("    private static final ApiKeys[] BY_ID = new ApiKeys[256];\n\n");
        sb.append("    static {\n        for (ApiKeys k : values()) {\n            BY_ID[k.id] = k;\n        }\n    }\n\n");
        sb.append("    ApiKeys(short id, String displayName, short lowestVersion, short highestVersion, short flexibleFrom) {\n");
        sb.append("        this.id = id;\n        this.displayName = displayName;\n        this.lowestVersion = lowestVersion;\n");
        sb.append("        this.highestVersion = highestVersion;\n        this.flexibleFrom = flexibleFrom;\n    }\n\n");
        sb.append("    /** The API with key {@code id}, or null. */\n");
        sb.append("    public static ApiKeys forId(int id) {\n        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;\n    }\n\n");
        sb.append("    /** Request header version for {@code version} of this API: 2 when flexible, else 1. */\n");
        sb.append("    public short requestHeaderVersion(short version) {\n        return version >= flexibleFrom ? (short) 2 : (short) 1;\n    }\n\n");
        sb.append("    /** Response header version: 1 when flexible, else 0; ApiVersions always answers with header 0. */\n");
        sb.append("    public short responseHeaderVersion(short version) {\n");
        sb.append("        return this != API_VERSIONS && version >= flexibleFrom ? (short) 1 : (short) 0;\n    }\n\n");
        sb.append("    /** A new, empty request message of this API. */\n");
        sb.append("    public ProtocolMessage newRequest() {\n        return switch (this) {\n");
        for (Map.Entry<Integer, Message[]> e : byKey.entrySet()) {
            Message req = e.getValue()[0];
            if (req == null || e.getValue()[1] == null) {
                continue;
            }
            String base = req.name.substring(0, req.name.length() - "Request".length());
            String constant = base.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
            sb.append("            case ").append(constant).append(" -> new ").append(req.className).append("();\n");
        }
        sb.append("        };\n    }\n\n");
        sb.append("    /** A new, empty response message of this API. */\n");
        sb.append("    public ProtocolMessage newResponse() {\n        return switch (this) {\n");
        for (Map.Entry<Integer, Message[]> e : byKey.entrySet()) {
            Message req = e.getValue()[0];
            Message resp = e.getValue()[1];
            if (req == null || resp == null) {
                continue;
            }
            String base = req.name.substring(0, req.name.length() - "Request".length());
            String constant = base.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
            sb.append("            case ").append(constant).append(" -> new ").append(resp.className).append("();\n");
        }
        sb.append("        };\n    }\n}\n");
        return sb.toString();
    }

    static String randomMessages(List<Message> messages) {
        StringBuilder sb = new StringBuilder();
        sb.append("// GENERATED by kafka-gateway/codegen/KafkaCodegen.java. Do not edit.\n");
        sb.append("package ").append(PKG).append(";\n\n");
        sb.append("import dev.isthmus.gateway.protocol.*;\nimport java.util.ArrayList;\nimport java.util.List;\nimport java.util.Random;\n\n");
        sb.append("/** Seeded random messages, valid for a given version, for round-trip tests against kafka-clients. */\n");
        sb.append("@SuppressWarnings({\"unused\", \"PointlessBooleanExpression\", \"ConstantValue\"})\n");
        sb.append("public final class RandomMessages {\n    private RandomMessages() {\n    }\n\n");
        sb.append("    public static ProtocolMessage fill(ProtocolMessage m, Random rnd, short version, int depth) {\n");
        sb.append("        switch (m) {\n");
        for (Message msg : messages) {
            sb.append("            case ").append(msg.className).append(" x -> fill").append(msg.className).append("(x, rnd, version, depth);\n");
        }
        sb.append("            default -> throw new IllegalArgumentException(m.getClass().getName());\n        }\n        return m;\n    }\n\n");
        for (Message msg : messages) {
            randomBody(sb, msg, msg.className, msg.className, msg.fields);
            for (StructDef s : msg.structs.values()) {
                randomBody(sb, msg, msg.className + "." + s.name, msg.className + s.name, s.fields);
            }
        }
        sb.append("}\n");
        return sb.toString();
    }

    static void randomBody(StringBuilder sb, Message msg, String type, String method, List<Field> fs) {
        sb.append("    static void fill").append(method).append("(").append(type).append(" x, Random rnd, short version, int depth) {\n");
        sb.append("        boolean flexible = version >= ").append(msg.className).append(".FLEXIBLE_FROM;\n");
        for (Field f : fs) {
            Versions present = f.isTagged() ? f.versions.intersect(f.tagged) : f.versions;
            String cond = present.cond(msg.valid);
            if (f.isTagged()) {
                cond = "(" + cond + ") && flexible";
            }
            sb.append("        if (").append(cond).append(" && rnd.nextInt(4) != 0) {\n");
            String nullable = f.nullable.cond(msg.valid);
            if (f.isArray()) {
                sb.append("            if ((").append(nullable).append(") && rnd.nextInt(6) == 0) {\n");
                sb.append("                x.").append(f.javaName()).append(" = null;\n");
                sb.append("            } else {\n");
                sb.append("                int n = depth > 3 ? 0 : rnd.nextInt(4);\n");
                sb.append("                x.").append(f.javaName()).append(" = new ArrayList<>();\n");
                sb.append("                for (int i = 0; i < n; i++) {\n");
                if (f.isStructType()) {
                    sb.append("                    ").append(msg.className).append('.').append(f.elemType()).append(" el = new ")
                        .append(msg.className).append('.').append(f.elemType()).append("();\n");
                    sb.append("                    fill").append(msg.className).append(f.elemType()).append("(el, rnd, version, depth + 1);\n");
                    sb.append("                    x.").append(f.javaName()).append(".add(el);\n");
                } else {
                    sb.append("                    x.").append(f.javaName()).append(".add(").append(randomPrimitive(f.elemType())).append(");\n");
                }
                sb.append("                }\n            }\n");
            } else if (f.isStructType()) {
                String st = msg.className + "." + f.elemType();
                sb.append("            if ((").append(nullable).append(") && rnd.nextInt(4) == 0) {\n");
                sb.append("                x.").append(f.javaName()).append(" = null;\n");
                sb.append("            } else {\n");
                sb.append("                x.").append(f.javaName()).append(" = new ").append(st).append("();\n");
                sb.append("                fill").append(msg.className).append(f.elemType()).append("(x.").append(f.javaName()).append(", rnd, version, depth + 1);\n");
                sb.append("            }\n");
            } else {
                if (f.type.equals("string") || f.type.equals("bytes") || f.type.equals("records")) {
                    sb.append("            x.").append(f.javaName()).append(" = (").append(nullable).append(") && rnd.nextInt(5) == 0 ? null : ")
                        .append(randomPrimitive(f.type)).append(";\n");
                } else {
                    sb.append("            x.").append(f.javaName()).append(" = ").append(randomPrimitive(f.type)).append(";\n");
                }
            }
            sb.append("        }\n");
        }
        sb.append("    }\n\n");
    }

    static String randomPrimitive(String t) {
        return switch (t) {
            case "int8" -> "(byte) rnd.nextInt()";
            case "int16" -> "(short) rnd.nextInt()";
            case "uint16" -> "rnd.nextInt(65536)";
            case "int32" -> "rnd.nextInt()";
            case "uint32" -> "(rnd.nextInt() & 0xFFFFFFFFL)";
            case "int64" -> "rnd.nextLong()";
            case "float64" -> "rnd.nextDouble() * 1000";
            case "bool" -> "rnd.nextBoolean()";
            case "uuid" -> "new Uuid(rnd.nextLong(), rnd.nextLong() | 1)";
            case "string" -> "RandomValues.string(rnd)";
            case "bytes", "records" -> "RandomValues.bytes(rnd)";
            default -> throw new IllegalStateException("unknown type " + t);
        };
    }

    // ------------------------------------------------------------------ a small JSON parser (comments allowed)

    @SuppressWarnings("unchecked")
    static Map<String, Object> asMap(Object o) {
        return (Map<String, Object>) o;
    }

    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object parse() {
            Object v = value();
            skip();
            if (i != s.length()) {
                throw error("trailing characters");
            }
            return v;
        }

        private RuntimeException error(String what) {
            return new IllegalStateException("JSON: " + what + " at " + i);
        }

        private void skip() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (Character.isWhitespace(c)) {
                    i++;
                } else if (c == '/' && i + 1 < s.length() && s.charAt(i + 1) == '/') {
                    while (i < s.length() && s.charAt(i) != '\n') {
                        i++;
                    }
                } else if (c == '/' && i + 1 < s.length() && s.charAt(i + 1) == '*') {
                    i = s.indexOf("*/", i + 2) + 2;
                } else {
                    break;
                }
            }
        }

        private Object value() {
            skip();
            char c = s.charAt(i);
            switch (c) {
                case '{': {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    skip();
                    if (s.charAt(i) == '}') {
                        i++;
                        return m;
                    }
                    while (true) {
                        skip();
                        String k = string();
                        skip();
                        if (s.charAt(i++) != ':') {
                            throw error("expected ':'");
                        }
                        m.put(k, value());
                        skip();
                        char d = s.charAt(i++);
                        if (d == '}') {
                            return m;
                        }
                        if (d != ',') {
                            throw error("expected ',' or '}'");
                        }
                    }
                }
                case '[': {
                    i++;
                    List<Object> l = new ArrayList<>();
                    skip();
                    if (s.charAt(i) == ']') {
                        i++;
                        return l;
                    }
                    while (true) {
                        l.add(value());
                        skip();
                        char d = s.charAt(i++);
                        if (d == ']') {
                            return l;
                        }
                        if (d != ',') {
                            throw error("expected ',' or ']'");
                        }
                    }
                }
                case '"':
                    return string();
                default: {
                    int start = i;
                    while (i < s.length() && ",}] \n\r\t".indexOf(s.charAt(i)) < 0) {
                        i++;
                    }
                    String lit = s.substring(start, i);
                    return switch (lit) {
                        case "true" -> Boolean.TRUE;
                        case "false" -> Boolean.FALSE;
                        case "null" -> null;
                        default -> lit.contains(".") ? (Object) Double.parseDouble(lit) : (Object) Long.parseLong(lit);
                    };
                }
            }
        }

        private String string() {
            if (s.charAt(i) != '"') {
                throw error("expected string");
            }
            i++;
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c == '\\') {
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n' -> sb.append('\n');
                        case 't' -> sb.append('\t');
                        case 'u' -> {
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                            i += 4;
                        }
                        default -> sb.append(e);
                    }
                } else {
                    sb.append(c);
                }
            }
        }
    }
}
