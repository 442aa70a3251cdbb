package dev.isthmus.bench;

import dev.isthmus.bench.compare.Compare;
import dev.isthmus.gateway.BrokerConfig;
import dev.isthmus.gateway.Main;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The top-level README.md, exercised so that it cannot rot (issue 8): its commands and examples run against
 * a real broker started by the README's own command, in real processes.
 *
 * <p>Every fenced code block of the README, and its configuration table, comes right after an HTML comment
 * {@code <!-- tested: KIND ... -->} (invisible when rendered) naming how this test exercises it. A fenced
 * block without one, a KIND this test does not know, or a KIND the README lost fails the test, so a new
 * command cannot slip in untested. The kinds:
 * <ul>
 * <li>{@code setup}: the {@code ./isthmus start} line runs as written from the repository root, with
 *     {@value #START_SUFFIX} appended (the command line wins; port 0 picks free ports, which the broker's ready
 *     line names); the other tests talk to that broker, and the last one stops it with SIGTERM, which must
 *     end it cleanly with exit status 0 as the README says. The {@code ./mvnw} line must be what .ci/run runs.</li>
 * <li>{@code kcat}: each line through {@code bash -o pipefail -c}, 127.0.0.1:9092 replaced by the broker's
 *     address; a {@code # prints X} comment is checked. Needs kcat: skipped with a message locally, a failure
 *     under {@code CI=true} (.ci/run installs it).</li>
 * <li>{@code java}: compiled as the body of a main method ({@link #JAVA_PROLOGUE}) against this module's test
 *     class path, 127.0.0.1:9092 replaced, run as its own JVM until it has printed every record of the topic.</li>
 * <li>{@code options}: the table against {@code ./isthmus start --help} (the same options both ways) and
 *     {@link Main#parse} (every option accepted; a documented default changes nothing; a {@code --config} file
 *     means the same as the command line, which wins); bad configuration exits 2 with one sentence; options
 *     documented as not available are refused with a message naming them.</li>
 * <li>{@code modules}: the picture and the module table name the root pom's modules.</li>
 * <li>{@code secure-setup}, {@code secure-properties}, {@code client-properties}: the secured start. In a scratch
 *     directory the two properties blocks become secure.properties and client.properties ({@value
 *     #README_SECURE_ADDRESS} replaced by a free port), the keytool lines run with this JDK's bin on the PATH, and
 *     the {@code ./isthmus} line starts a second broker (its leading {@code NAME=value} words are its environment).
 *     kafka-clients loaded with client.properties produce and consume over SASL_SSL; a wrong password must fail
 *     authentication and a PLAINTEXT client must get no answer; SIGTERM must stop the broker with status 0.</li>
 * <li>{@code bench}: each script exists and is executable, the JMH suites and {@code -p} parameters named
 *     exist, bench/compare's and bench/chaos's options are in their usage. Lines starting {@code bench/} in bench/README.md's
 *     blocks are checked the same way, and the suites it names in backticks must exist.</li>
 * </ul>
 * The log engine's embedding example is compiled and run by log-engine's ReadmeExampleTest; this test
 * checks that the README points to it and that it is there.
 *
 * <p>Threads: JUnit's, plus one daemon thread per long-running child process draining its output. One broker
 * for the class; the tests run in order and the last one stops it. Waits on child processes have generous
 * limits that only turn a hang into a failure; nothing here asserts on time.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ReadmeTest {

    private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
    private static final String README_ADDRESS = "127.0.0.1:9092";
    private static final String START_SUFFIX = "--listen 127.0.0.1:0 --data-dir TMP --metrics-listen 127.0.0.1:0";
    private static final Set<String> KINDS = Set.of("setup", "kcat", "java", "options", "modules", "bench",
        "secure-setup", "secure-properties", "client-properties");
    /** The secured broker's address in the README's secure.properties and client.properties. */
    private static final String README_SECURE_ADDRESS = "127.0.0.1:9093";
    private static final String JAVA_CLASS = "ReadmeJavaExample";
    private static final String JAVA_PROLOGUE = """
        import java.time.*;
        import java.util.*;
        import org.apache.kafka.clients.consumer.*;
        import org.apache.kafka.clients.producer.*;
        import org.apache.kafka.common.serialization.*;

        public class ReadmeJavaExample {
            public static void main(String[] args) throws Exception {
        """;
    /** How long a child process may take before the test gives up on it (a hang guard, not a timing check). */
    private static final long GUARD_S = 120;

    @TempDir
    static Path work;

    private static List<String> readme;
    private static final List<Section> SECTIONS = new ArrayList<>();
    private static final List<String> PARSE_ERRORS = new ArrayList<>();
    private static Process broker;
    private static Output brokerOut;
    private static String bootstrap;
    private static String metricsUrl;

    /** A marked part of the README: its KIND, the line of its marker (1-based) and the block or table under it. */
    private record Section(String kind, int line, List<String> body) {

        /** The non-blank lines with their {@code # comment} removed. */
        List<String> commands() {
            return body.stream().map(ReadmeTest::stripComment).filter(l -> !l.isBlank()).toList();
        }

        String where() {
            return "README.md:" + line + " (" + kind + ")";
        }
    }

    private record Result(int exitCode, String stdout, String stderr) {
        String both() {
            return stdout + stderr;
        }
    }

    @BeforeAll
    static void startTheBrokerAsTheReadmeSays() throws Exception {
        readme = Files.readAllLines(ROOT.resolve("README.md"), StandardCharsets.UTF_8);
        parse(readme, SECTIONS, PARSE_ERRORS);
        String start = section("setup").commands().stream().filter(l -> l.startsWith("./isthmus start")).findFirst()
            .orElseThrow(() -> new AssertionError(section("setup").where() + " has no './isthmus start' line"));
        List<String> command = new ArrayList<>(List.of(start.split("\\s+")));
        command.addAll(List.of(START_SUFFIX.replace("TMP", work.resolve("data").toString()).split(" ")));
        System.out.println("$ " + String.join(" ", command));
        broker = new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true).start();
        brokerOut = new Output(broker.getInputStream(), "broker");
        // The first run of ./isthmus may build the broker, hence the longer guard.
        String ready = brokerOut.await(l -> l.contains(" ready on "), "the broker's ready line", 5 * GUARD_S);
        Matcher m = Pattern.compile(" ready on (\\S+):(\\d+) .* metrics on (http://\\S+:\\d+)/metrics").matcher(ready);
        assertTrue(m.find(), "the ready line names the Kafka and metrics addresses: " + ready);
        bootstrap = m.group(1) + ":" + m.group(2);
        metricsUrl = m.group(3);
    }

    @AfterAll
    static void stopWhatIsLeft() throws InterruptedException {
        if (broker != null && broker.isAlive()) {
            broker.destroyForcibly();
            broker.waitFor();
        }
    }

    @Test
    @Order(1)
    void shouldMarkEveryBlockWithHowItIsTested() {
        assertTrue(PARSE_ERRORS.isEmpty(), String.join("\n", PARSE_ERRORS));
        Set<String> seen = new TreeSet<>();
        for (Section s : SECTIONS) {
            assertTrue(KINDS.contains(s.kind()), s.where() + ": ReadmeTest does not know how to test '" + s.kind()
                + "' (known: " + new TreeSet<>(KINDS) + "); teach it, so the README cannot rot");
            assertTrue(seen.add(s.kind()), s.where() + ": a second '" + s.kind() + "' section");
        }
        assertEquals(new TreeSet<>(KINDS), seen, "every kind of section is in the README");
    }

    @Test
    @Order(2)
    void shouldServeMetricsAndRunTheReadmesTestCommandInCi() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        for (String path : List.of("/metrics", "/health", "/ready")) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(metricsUrl + path)).build(),
                HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), path + ": " + r.body());
            if (path.equals("/metrics")) {
                assertTrue(r.body().contains("# TYPE isthmus_"), "Prometheus text:\n" + r.body());
            }
        }
        String testCommand = section("setup").commands().stream().filter(l -> l.startsWith("./mvnw")).findFirst()
            .orElseThrow(() -> new AssertionError(section("setup").where() + " has no ./mvnw line"));
        List<String> ci = Files.readAllLines(ROOT.resolve(".ci/run")).stream().map(String::strip)
            .filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
        assertEquals(testCommand, ci.getLast(), ".ci/run ends with the README's test command");
    }

    @Test
    @Order(3)
    void shouldProduceAndConsumeWithKcat() throws Exception {
        String kcat = onPath("kcat");
        if (kcat == null) {
            String msg = "kcat is not installed (apt-get install kcat)";
            if ("true".equals(System.getenv("CI"))) {
                fail(msg + ": .ci/run installs it, so under CI it must be there");
            }
            Assumptions.abort(msg + "; the README's kcat commands are skipped locally, required under CI");
        }
        Section s = section("kcat");
        for (String line : s.body()) {
            String command = stripComment(line);
            if (command.isBlank()) {
                continue;
            }
            assertTrue(command.contains(README_ADDRESS), s.where() + ": '" + command + "' does not name "
                + README_ADDRESS + ", so this test cannot point it at its broker");
            Result r = run(List.of("bash", "-o", "pipefail", "-c", command.replace(README_ADDRESS, bootstrap)));
            assertEquals(0, r.exitCode(), command + "\n" + r.both());
            Matcher prints = Pattern.compile("#\\s*prints (.+)$").matcher(line);
            if (prints.find()) {
                List<String> out = r.stdout().lines().toList();
                assertTrue(!out.isEmpty() && out.stream().allMatch(prints.group(1).strip()::equals),
                    command + " prints '" + prints.group(1).strip() + "', printed:\n" + r.both());
            }
        }
    }

    @Test
    @Order(4)
    void shouldCompileAndRunTheJavaExampleAgainstTheBroker() throws Exception {
        Section s = section("java");
        String body = String.join("\n", s.body());
        assertTrue(body.contains(README_ADDRESS), s.where() + " does not name " + README_ADDRESS);
        Path dir = Files.createDirectories(work.resolve("java-example"));
        Path source = dir.resolve(JAVA_CLASS + ".java");
        Files.writeString(source, JAVA_PROLOGUE + body.replace(README_ADDRESS, bootstrap) + "\n    }\n}\n");
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "a JDK compiler");
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, diagnostics, diagnostics, "-cp", System.getProperty("java.class.path"), "-d",
            dir.toString(), source.toString());
        assertEquals(0, rc, s.where() + " compiles:\n" + diagnostics.toString(StandardCharsets.UTF_8));

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = List.of(java, "-cp", dir + File.pathSeparator + System.getProperty("java.class.path"),
            JAVA_CLASS);
        Path stderr = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(command).redirectError(stderr.toFile()).start();
        try {
            Output out = new Output(p.getInputStream(), "java-example");
            Pattern record = Pattern.compile("(\\d+): hello, isthmus");
            out.await(l -> record.matcher(l).matches(), "a record printed by the example", GUARD_S, stderr);
            // It printed, so its producer's send() came back acknowledged; now it must print every record.
            long end;
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                TopicPartition tp = new TopicPartition("greetings", 0);
                end = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)
                    .get(GUARD_S, TimeUnit.SECONDS).offset();
            }
            String last = (end - 1) + ": hello, isthmus";
            out.await(last::equals, "'" + last + "'", GUARD_S, stderr);
            List<String> expected = new ArrayList<>();
            for (long i = 0; i < end; i++) {
                expected.add(i + ": hello, isthmus");
            }
            assertEquals(expected, out.lines(), "every record of greetings, in order, once");
        } finally {
            p.toHandle().destroy();
            if (!p.waitFor(GUARD_S, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    @Test
    @Order(5)
    void shouldDocumentExactlyTheOptionsTheBrokerTakes() throws Exception {
        Section s = section("options");
        Result help = run(List.of("./isthmus", "start", "--help"));
        assertEquals(0, help.exitCode(), help.both());
        Map<String, String> helpOptions = new LinkedHashMap<>(); // option -> metavariable ("" for a flag)
        Matcher hm = Pattern.compile("(?m)^\\s+(--[a-z][a-z-]*)(?: (\\S+))?").matcher(help.stdout());
        while (hm.find()) {
            helpOptions.put(hm.group(1), hm.group(2) == null ? "" : hm.group(2));
        }
        assertTrue(helpOptions.containsKey("--config"), help.stdout());
        assertTrue(String.join("\n", readme).contains("`--config FILE`"), "the README explains --config FILE");

        record Row(String option, String metavar, String defaultCell, String meaning) {
        }
        List<Row> rows = new ArrayList<>();
        Pattern cellOption = Pattern.compile("`(--[a-z][a-z-]*)(?: ([^`]+))?`");
        for (String line : s.body().subList(2, s.body().size())) {
            String[] cells = line.split("\\|", -1);
            assertTrue(cells.length >= 5, s.where() + ": a row of three cells: " + line);
            Matcher m = cellOption.matcher(cells[1]);
            boolean any = false;
            while (m.find()) {
                any = true;
                rows.add(new Row(m.group(1), m.group(2) == null ? "" : m.group(2), cells[2].strip(), cells[3].strip()));
            }
            assertTrue(any, s.where() + ": no `--option` in " + line);
        }
        Set<String> documented = new TreeSet<>(rows.stream().map(Row::option).toList());
        Set<String> taken = new TreeSet<>(helpOptions.keySet());
        taken.remove("--config");
        Set<String> undocumented = new TreeSet<>(taken);
        undocumented.removeAll(documented);
        Set<String> unknown = new TreeSet<>(documented);
        unknown.removeAll(taken);
        assertTrue(undocumented.isEmpty() && unknown.isEmpty(), s.where() + ": the table and ./isthmus start --help "
            + "must list the same options; only in --help: " + undocumented + ", only in the README: " + unknown);

        BrokerConfig defaults = Main.parse(new String[0]);
        Map<String, String> file = new LinkedHashMap<>();
        List<String> sameOnTheCommandLine = new ArrayList<>();
        for (Row r : rows) {
            String metavar = helpOptions.get(r.option());
            if (!r.metavar().isEmpty()) {
                assertEquals(metavar, r.metavar(), r.option() + ": the README and --help name its value alike");
            }
            String value;
            Matcher d = Pattern.compile("^`([^`]*)`$").matcher(r.defaultCell());
            if (d.matches()) {
                value = d.group(1);
                assertEquals(defaults, parse(r.option(), value), r.option() + " " + value
                    + ": the documented default changes nothing");
            } else if (metavar.isEmpty()) {
                value = "true";
                assertEquals("off", r.defaultCell(), r.option() + ": a flag is off unless given");
                assertNotEquals(defaults, parse(r.option()), r.option() + " changes the configuration");
                assertEquals(defaults, parse(r.option() + "=false"), r.option() + "=false is the default");
            } else {
                value = sample(r.option(), metavar);
                String v = value;
                assertDoesNotThrow(() -> parse(r.option(), v), r.option() + " " + value + " is accepted");
            }
            file.put(r.option().substring(2), value);
            sameOnTheCommandLine.add(r.option());
            if (!metavar.isEmpty()) {
                sameOnTheCommandLine.add(value);
            }
        }

        // A --config file of "name = value" lines means the same as the command line, which wins.
        Path config = work.resolve("isthmus.conf");
        StringBuilder text = new StringBuilder("# every option of the README's table\n");
        file.forEach((k, v) -> text.append(k).append(" = ").append(v).append('\n'));
        Files.writeString(config, text);
        BrokerConfig fromFile = Main.parse(new String[] {"--config", config.toString()});
        assertEquals(Main.parse(sameOnTheCommandLine.toArray(String[]::new)), fromFile, text.toString());
        assertEquals(7, Main.parse(new String[] {"--config", config.toString(), "--node-id", "7"}).nodeId(),
            "the command line wins over the file");
        assertEquals(Integer.parseInt(file.get("node-id")), fromFile.nodeId());

        // Bad configuration: one sentence, exit status 2.
        Result bad = run(List.of("./isthmus", "start", "--memory", "lots", "--data-dir", work.resolve("bad").toString()));
        assertEquals(2, bad.exitCode(), bad.both());
        List<String> said = bad.both().lines().filter(l -> !l.isBlank()).toList();
        assertEquals(1, said.size(), "one sentence: " + said);
        assertTrue(said.getFirst().startsWith("isthmus: ") && said.getFirst().contains("--memory"), said.getFirst());

        // Options the table says are not available are refused, naming them.
        List<String> refused = new ArrayList<>();
        for (Row r : rows) {
            if (r.meaning().contains("not available")) {
                refused.add(r.option());
                refused.add(sample(r.option(), helpOptions.get(r.option())));
            }
        }
        if (!refused.isEmpty()) {
            List<String> command = new ArrayList<>(List.of("./isthmus", "start", "--listen", "127.0.0.1:0",
                "--data-dir", work.resolve("refused").toString()));
            command.addAll(refused);
            Result r = run(command);
            assertNotEquals(0, r.exitCode(), r.both());
            String message = r.both().strip();
            assertTrue(message.contains("not available") && message.lines().count() == 1, message);
            for (int i = 0; i < refused.size(); i += 2) {
                assertTrue(message.contains(refused.get(i)), "the refusal names " + refused.get(i) + ": " + message);
            }
        }
    }

    @Test
    @Order(6)
    void shouldNameEveryModuleInThePictureAndTheTable() throws IOException {
        Set<String> modules = new TreeSet<>();
        Matcher m = Pattern.compile("<module>([^<]+)</module>").matcher(Files.readString(ROOT.resolve("pom.xml")));
        while (m.find()) {
            modules.add(m.group(1).strip());
        }
        assertTrue(modules.size() > 1, "the root pom's modules");
        Section picture = section("modules");
        String drawn = String.join("\n", picture.body());
        for (String module : modules) {
            // bench is not part of the broker the picture shows.
            assertTrue(module.equals("bench") || drawn.contains(module), picture.where() + " does not show " + module);
        }
        Set<String> tabled = new TreeSet<>();
        Pattern row = Pattern.compile("^\\| `([a-z][a-z-]*)` \\|");
        for (int i = picture.line(); i < readme.size() && !readme.get(i).startsWith("## "); i++) {
            Matcher r = row.matcher(readme.get(i));
            if (r.find()) {
                tabled.add(r.group(1));
            }
        }
        assertEquals(modules, tabled, "the README's module table lists the root pom's modules");
    }

    @Test
    @Order(7)
    void shouldPointToTheLogEngineExampleItsModuleRuns() throws IOException {
        assertTrue(String.join("\n", readme).contains("(log-engine/README.md)"), "the README links log-engine/README.md");
        String moduleReadme = Files.readString(ROOT.resolve("log-engine/README.md"));
        int start = moduleReadme.indexOf("<!-- example:start -->");
        int end = moduleReadme.indexOf("<!-- example:end -->");
        assertTrue(start >= 0 && end > start && moduleReadme.substring(start, end).contains("```java"),
            "log-engine/README.md marks a Java example");
        Path test = ROOT.resolve("log-engine/src/test/java/dev/isthmus/log/ReadmeExampleTest.java");
        assertTrue(Files.isRegularFile(test) && Files.readString(test).contains("<!-- example:start -->"),
            test + " compiles and runs that example");
    }

    @Test
    @Order(8)
    void shouldNameBenchmarkCommandsThatExist() throws Exception {
        Map<String, Class<?>> suites = benchmarkClasses();
        assertTrue(suites.size() > 1, "JMH suites in dev.isthmus.bench: " + suites.keySet());
        Section s = section("bench");
        assertTrue(!s.commands().isEmpty(), s.where() + " has commands");
        for (String command : s.commands()) {
            checkBenchCommand(s.where(), command, suites);
        }
        // bench/README.md's own command lines, the same way.
        boolean inBlock = false;
        int checked = 0;
        List<String> benchReadme = Files.readAllLines(ROOT.resolve("bench/README.md"));
        for (int i = 0; i < benchReadme.size(); i++) {
            String line = benchReadme.get(i);
            if (line.startsWith("```")) {
                inBlock = !inBlock;
            } else if (inBlock && line.startsWith("bench/")) {
                checkBenchCommand("bench/README.md:" + (i + 1), stripComment(line), suites);
                checked++;
            }
        }
        assertTrue(checked > 0, "bench/README.md has bench/ commands in fenced blocks");
        Set<String> suiteNames = new TreeSet<>();
        suites.values().forEach(c -> suiteNames.add(c.getSimpleName()));
        Matcher named = Pattern.compile("`([A-Z][A-Za-z]*Bench)[`.]").matcher(String.join("\n", benchReadme));
        while (named.find()) {
            assertTrue(suiteNames.contains(named.group(1)), "bench/README.md names " + named.group(1)
                + ", which is not a JMH suite of " + suiteNames);
        }
    }

    @Test
    @Order(9)
    void shouldStartSecuredAndServeOnlyAuthenticatedTlsClients() throws Exception {
        Section setup = section("secure-setup");
        Path dir = Files.createDirectories(work.resolve("secure"));
        String address;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            address = "127.0.0.1:" + free.getLocalPort();
        }
        for (String kind : List.of("secure-properties", "client-properties")) {
            Section s = section(kind);
            String text = String.join("\n", s.body()) + "\n";
            assertTrue(text.contains(README_SECURE_ADDRESS), s.where() + " does not name " + README_SECURE_ADDRESS);
            Files.writeString(dir.resolve(kind.replace('-', '.')), text.replace(README_SECURE_ADDRESS, address));
        }
        String path = Path.of(System.getProperty("java.home"), "bin") + File.pathSeparator + System.getenv("PATH");
        String start = null;
        for (String command : setup.commands()) {
            if (command.contains("./isthmus start")) {
                start = command;
                continue;
            }
            assertTrue(command.startsWith("keytool "), setup.where() + ": a line that is neither keytool nor "
                + "./isthmus start: " + command);
            Result r = run(List.of("bash", "-o", "pipefail", "-c", command), dir, Map.of("PATH", path));
            assertEquals(0, r.exitCode(), command + "\n" + r.both());
        }
        assertNotNull(start, setup.where() + " has no './isthmus start' line");
        assertTrue(Files.size(dir.resolve("broker.p12")) > 0 && Files.readString(dir.resolve("broker.pem"))
            .contains("BEGIN CERTIFICATE"), "keytool made broker.p12 and broker.pem");

        Map<String, String> env = new LinkedHashMap<>();
        List<String> command = new ArrayList<>();
        for (String word : start.split("\\s+")) {
            if (command.isEmpty() && word.matches("[A-Z_][A-Z0-9_]*=.*")) {
                env.put(word.substring(0, word.indexOf('=')), word.substring(word.indexOf('=') + 1));
            } else {
                command.add(word.equals("./isthmus") ? ROOT.resolve("isthmus").toString() : word);
            }
        }
        assertTrue(env.containsKey("ISTHMUS_SASL_ADMIN_PASSWORD"), start + ": the password comes from the environment");
        System.out.println("$ (in " + dir + ") " + env + " " + String.join(" ", command));
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process secured = pb.start();
        Output out = new Output(secured.getInputStream(), "secured");
        try {
            out.await(l -> l.contains(" ready on "), "the secured broker's ready line", GUARD_S);
            java.util.Properties client = new java.util.Properties();
            try (var in = Files.newBufferedReader(dir.resolve("client.properties"))) {
                client.load(in);
            }
            assertEquals(address, client.getProperty("bootstrap.servers"));
            // Relative file names in client.properties are relative to where the client runs, as for Kafka's tools.
            client.put("ssl.truststore.location", dir.resolve(client.getProperty("ssl.truststore.location")).toString());

            java.util.Properties p = copy(client);
            p.put("key.serializer", org.apache.kafka.common.serialization.StringSerializer.class.getName());
            p.put("value.serializer", org.apache.kafka.common.serialization.StringSerializer.class.getName());
            List<String> sent = List.of("secured 0", "secured 1", "secured 2");
            try (var producer = new org.apache.kafka.clients.producer.KafkaProducer<String, String>(p)) {
                for (String v : sent) {
                    producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>("secured", v))
                        .get(GUARD_S, TimeUnit.SECONDS);
                }
            }
            java.util.Properties c = copy(client);
            c.put("group.id", "secured-readers");
            c.put("auto.offset.reset", "earliest");
            c.put("key.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
            c.put("value.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
            List<String> got = new ArrayList<>();
            try (var consumer = new org.apache.kafka.clients.consumer.KafkaConsumer<String, String>(c)) {
                consumer.subscribe(List.of("secured"));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(GUARD_S);
                while (got.size() < sent.size() && System.nanoTime() < deadline) {
                    consumer.poll(java.time.Duration.ofSeconds(1)).forEach(r -> got.add(r.value()));
                }
            }
            assertEquals(sent, got, "the records come back over SASL_SSL, in order, once");

            java.util.Properties wrong = copy(client);
            wrong.put("sasl.jaas.config", client.getProperty("sasl.jaas.config").replace("admin-secret", "wrong"));
            assertNotEquals(client.getProperty("sasl.jaas.config"), wrong.getProperty("sasl.jaas.config"));
            var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                () -> listTopics(wrong));
            assertTrue(e.getCause() instanceof org.apache.kafka.common.errors.SaslAuthenticationException,
                "a wrong password fails authentication: " + e.getCause());

            java.util.Properties plain = new java.util.Properties();
            plain.put("bootstrap.servers", address);
            var p2 = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                () -> listTopics(plain), "a PLAINTEXT client gets no answer from the SASL_SSL listener");
            assertTrue(p2.getCause() instanceof org.apache.kafka.common.errors.TimeoutException,
                "a PLAINTEXT client is never answered: " + p2.getCause());
            assertTrue(secured.isAlive(), "the secured broker still runs:\n" + out.text());
        } finally {
            secured.toHandle().destroy(); // SIGTERM
            if (!secured.waitFor(GUARD_S, TimeUnit.SECONDS)) {
                secured.destroyForcibly();
                secured.waitFor();
            }
        }
        assertEquals(0, secured.exitValue(), "SIGTERM stops the secured broker with exit status 0:\n" + out.text());
        out.await(l -> l.contains("stopped cleanly"), "'stopped cleanly'", GUARD_S);
        assertTrue(!out.text().contains("admin-secret"), "the broker never prints the password:\n" + out.text());
    }

    private static java.util.Properties copy(java.util.Properties from) {
        java.util.Properties to = new java.util.Properties();
        to.putAll(from);
        return to;
    }

    /** Lists the topics with an admin client of {@code config}, giving up after 10 s (a guard, not a timing check). */
    private static void listTopics(java.util.Properties config) throws Exception {
        java.util.Properties a = copy(config);
        a.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        a.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        try (Admin admin = Admin.create(a)) {
            admin.listTopics().names().get();
        }
    }

    @Test
    @Order(Integer.MAX_VALUE)
    void shouldStopCleanlyOnSigterm() throws Exception {
        assertTrue(broker.isAlive(), "the broker is still running:\n" + brokerOut.text());
        broker.toHandle().destroy(); // SIGTERM (Process.destroy would also close the output still being read)
        if (!broker.waitFor(GUARD_S, TimeUnit.SECONDS)) {
            fail("the broker did not stop within " + GUARD_S + " s of SIGTERM:\n" + brokerOut.text());
        }
        assertEquals(0, broker.exitValue(), "SIGTERM stops the broker with exit status 0:\n" + brokerOut.text());
        brokerOut.await(l -> l.contains("stopped cleanly"), "'stopped cleanly'", GUARD_S);
    }

    // ---------------------------------------------------------------------------------------------------------

    /**
     * Collects the README's marked sections into {@code into}; a fenced block without a marker, or a marker
     * followed by neither a fenced block nor a table, goes into {@code errors} (failed by the first test, so
     * the broker still starts for the others).
     */
    private static void parse(List<String> lines, List<Section> into, List<String> errors) {
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.strip().startsWith("<!-- tested:")) {
                int markerLine = i + 1;
                StringBuilder comment = new StringBuilder(line.strip());
                while (!lines.get(i).contains("-->") && i + 1 < lines.size()) {
                    comment.append(' ').append(lines.get(++i).strip());
                }
                String kind = comment.substring("<!-- tested:".length()).strip().split("[\\s.,;:]", 2)[0];
                int j = i + 1;
                while (j < lines.size() && lines.get(j).isBlank()) {
                    j++;
                }
                List<String> body = new ArrayList<>();
                if (j < lines.size() && lines.get(j).startsWith("```")) {
                    int k = j + 1;
                    while (k < lines.size() && !lines.get(k).startsWith("```")) {
                        body.add(lines.get(k++));
                    }
                    i = k;
                } else if (j < lines.size() && lines.get(j).startsWith("|")) {
                    int k = j;
                    while (k < lines.size() && lines.get(k).startsWith("|")) {
                        body.add(lines.get(k++));
                    }
                    i = k - 1;
                } else {
                    errors.add("README.md:" + markerLine + ": a <!-- tested: --> marker must come right before a fenced "
                        + "block or a table");
                    continue;
                }
                into.add(new Section(kind, markerLine, body));
            } else if (line.startsWith("```")) {
                errors.add("README.md:" + (i + 1) + ": a fenced block without a <!-- tested: KIND --> marker before it; "
                    + "mark it and teach ReadmeTest to run it, so the README cannot rot");
                int k = i + 1;
                while (k < lines.size() && !lines.get(k).startsWith("```")) {
                    k++;
                }
                i = k;
            } else if (line.startsWith("    ") && !line.isBlank() && i > 0 && lines.get(i - 1).isBlank()) {
                errors.add("README.md:" + (i + 1) + ": an indented code block; make it a fenced block with a "
                    + "<!-- tested: KIND --> marker so ReadmeTest runs it");
            }
        }
    }

    private static Section section(String kind) {
        return SECTIONS.stream().filter(s -> s.kind().equals(kind)).findFirst()
            .orElseThrow(() -> new AssertionError("README.md has no <!-- tested: " + kind + " --> section"
                + (PARSE_ERRORS.isEmpty() ? "" : "\n" + String.join("\n", PARSE_ERRORS))));
    }

    /** The line up to a {@code #} that starts a shell comment (one after whitespace), stripped. */
    private static String stripComment(String line) {
        Matcher m = Pattern.compile("(^|\\s)#").matcher(line);
        return (m.find() ? line.substring(0, m.start()) : line).strip();
    }

    private static BrokerConfig parse(String... args) {
        return Main.parse(args);
    }

    /** A valid value for an option that has no concrete documented default, by the metavariable --help shows. */
    private static String sample(String option, String metavar) {
        return switch (metavar) {
            case "HOST:PORT" -> "127.0.0.1:19092";
            case "HOST:PORT,..." -> "127.0.0.1:19093,127.0.0.1:19094";
            case "ID@HOST:PORT,..." -> "0@127.0.0.1:19093,1@127.0.0.1:19094";
            case "NAME://HOST:PORT,..." -> "PLAINTEXT://127.0.0.1:19095";
            case "NAME:PROTOCOL,..." -> "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL";
            case "DIR" -> work.resolve("sample-dir").toString();
            case "N" -> "2";
            case "SIZE" -> "1G";
            case "B" -> "false";
            case "NAME" -> "none";
            case "PRINCIPALS" -> "User:admin;User:ops";
            default -> throw new AssertionError(option + " takes " + metavar + ": teach ReadmeTest a sample value");
        };
    }

    /** Checks one benchmark command line: its script exists, and what it names (suites, parameters, options) does. */
    private static void checkBenchCommand(String where, String command, Map<String, Class<?>> suites) {
        List<String> tokens = new ArrayList<>();
        Matcher t = Pattern.compile("'([^']*)'|(\\S+)").matcher(command);
        while (t.find()) {
            tokens.add(t.group(1) != null ? t.group(1) : t.group(2));
        }
        Path script = ROOT.resolve(tokens.getFirst());
        assertTrue(tokens.getFirst().startsWith("bench/") && Files.isExecutable(script),
            where + ": " + tokens.getFirst() + " is not an executable script of the repository");
        List<String> args = tokens.subList(1, tokens.size());
        switch (tokens.getFirst()) {
            case "bench/jmh" -> checkJmhArgs(where, args, suites);
            case "bench/compare" -> {
                ByteArrayOutputStream usage = new ByteArrayOutputStream();
                Compare.run(new String[] {"--help"}, new PrintStream(usage, true, StandardCharsets.UTF_8));
                String text = usage.toString(StandardCharsets.UTF_8);
                for (String a : args) {
                    assertTrue(!a.startsWith("-") || a.equals("--help") || text.contains(a + " ")
                            || text.contains(a + "\n"),
                        where + ": bench/compare has no option " + a);
                }
            }
            case "bench/chaos" -> {
                ByteArrayOutputStream usage = new ByteArrayOutputStream();
                dev.isthmus.bench.chaos.Chaos.run(new String[] {"--help"}, new PrintStream(usage, true, StandardCharsets.UTF_8));
                String text = usage.toString(StandardCharsets.UTF_8);
                for (String a : args) {
                    assertTrue(!a.startsWith("-") || a.equals("--help") || text.contains(a + " ")
                            || text.contains(a + "\n"),
                        where + ": bench/chaos has no option " + a);
                }
            }
            default -> {
                String text = assertDoesNotThrow(() -> Files.readString(script));
                for (String a : args) {
                    assertTrue(!a.startsWith("-") || text.contains(a), where + ": " + script + " has no option " + a);
                }
            }
        }
    }

    /** JMH options that take no value; every other option takes the next token. */
    private static final Set<String> JMH_FLAGS = Set.of("-h", "-l", "-lp", "-lprofs", "-lrf");

    private static void checkJmhArgs(String where, List<String> args, Map<String, Class<?>> suites) {
        List<String> regexes = new ArrayList<>();
        List<String> params = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("-p")) {
                params.add(args.get(++i).split("=", 2)[0]);
            } else if (a.startsWith("-")) {
                i += JMH_FLAGS.contains(a) ? 0 : 1;
            } else {
                regexes.add(a);
            }
        }
        Set<Class<?>> matched = new LinkedHashSet<>();
        for (String regex : regexes) {
            Pattern p = Pattern.compile(regex);
            Set<Class<?>> these = new LinkedHashSet<>();
            suites.forEach((name, c) -> {
                if (p.matcher(name).find()) {
                    these.add(c);
                }
            });
            assertTrue(!these.isEmpty(), where + ": '" + regex + "' matches no JMH benchmark of " + suites.keySet());
            matched.addAll(these);
        }
        if (regexes.isEmpty()) {
            matched.addAll(suites.values());
        }
        for (String param : params) {
            boolean found = matched.stream().flatMap(c -> Stream.of(c.getDeclaredFields()))
                .anyMatch(f -> f.getName().equals(param) && f.isAnnotationPresent(Param.class));
            assertTrue(found, where + ": no @Param " + param + " in " + matched.stream().map(Class::getSimpleName).toList());
        }
    }

    /** Every JMH benchmark of this module by its full name (class.method), as JMH's regex sees it. */
    private static Map<String, Class<?>> benchmarkClasses() throws IOException, ClassNotFoundException {
        Map<String, Class<?>> benchmarks = new LinkedHashMap<>();
        Path classes = ROOT.resolve("bench/target/classes/dev/isthmus/bench");
        List<Path> files;
        try (Stream<Path> s = Files.list(classes)) {
            files = s.filter(f -> f.getFileName().toString().endsWith(".class") && !f.getFileName().toString()
                .contains("$")).sorted().toList();
        }
        for (Path f : files) {
            String name = "dev.isthmus.bench." + f.getFileName().toString().replace(".class", "");
            Class<?> c = Class.forName(name, false, ReadmeTest.class.getClassLoader());
            for (Method m : c.getMethods()) {
                if (m.isAnnotationPresent(Benchmark.class)) {
                    benchmarks.put(name + "." + m.getName(), c);
                }
            }
        }
        return benchmarks;
    }

    private static Result run(List<String> command) throws IOException, InterruptedException {
        return run(command, ROOT, Map.of());
    }

    private static Result run(List<String> command, Path dir, Map<String, String> env)
            throws IOException, InterruptedException {
        Path out = Files.createTempFile(work, "out", ".txt");
        Path err = Files.createTempFile(work, "err", ".txt");
        System.out.println("$ " + String.join(" ", command));
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectOutput(out.toFile())
            .redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(GUARD_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor();
            fail(String.join(" ", command) + " did not finish within " + GUARD_S + " s:\n" + Files.readString(out)
                + Files.readString(err));
        }
        Result r = new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        System.out.print(r.both());
        return r;
    }

    private static String onPath(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }

    /** The lines a child process prints, collected by a daemon thread; tests wait for the ones they expect. */
    private static final class Output {
        private final List<String> lines = new ArrayList<>();
        private boolean ended;

        Output(InputStream in, String name) {
            Thread.ofPlatform().daemon().name("readme-" + name).start(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                    for (String l; (l = r.readLine()) != null; ) {
                        System.out.println(name + "| " + l);
                        synchronized (this) {
                            lines.add(l);
                            notifyAll();
                        }
                    }
                } catch (IOException e) {
                    System.out.println(name + "| (output ended: " + e + ")");
                } finally {
                    synchronized (this) {
                        ended = true;
                        notifyAll();
                    }
                }
            });
        }

        String await(Predicate<String> expected, String what, long guardS) throws InterruptedException {
            return await(expected, what, guardS, null);
        }

        /**
         * The first line matching {@code expected}; fails with everything printed (and {@code stderr}'s file)
         * when the process ends first or nothing matches within {@code guardS}, a guard against a hang.
         */
        synchronized String await(Predicate<String> expected, String what, long guardS, Path stderr)
                throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(guardS);
            for (int i = 0; ; ) {
                for (; i < lines.size(); i++) {
                    if (expected.test(lines.get(i))) {
                        return lines.get(i);
                    }
                }
                long leftNs = deadline - System.nanoTime();
                if (ended || leftNs <= 0) {
                    fail((ended ? "the process ended before " : "no ") + what + (ended ? "" : " within " + guardS
                        + " s") + "; it printed:\n" + text() + (stderr == null ? "" : "\nstderr:\n" + readQuietly(stderr)));
                }
                TimeUnit.NANOSECONDS.timedWait(this, leftNs);
            }
        }

        synchronized List<String> lines() {
            return List.copyOf(lines);
        }

        synchronized String text() {
            return String.join("\n", lines);
        }

        private static String readQuietly(Path file) {
            try {
                return Files.readString(file);
            } catch (IOException e) {
                return "(" + e + ")";
            }
        }
    }
}
