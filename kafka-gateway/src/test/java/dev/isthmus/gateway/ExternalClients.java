package dev.isthmus.gateway;

import org.junit.jupiter.api.Assumptions;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test helper: finds and runs the non-Java clients (kcat, confluent-kafka-python, kafkajs with its codec
 * plug-ins) and Kafka's own command-line tools as child processes. A client that is not installed skips the
 * test that needs it with the command that installs it, except under CI ({@code CI=true}), where
 * {@code .ci/run} installs them and a missing one fails. Stateless; any test thread.
 */
final class ExternalClients {
    /** The client scripts beside the tests. */
    static final Path SCRIPTS = Path.of("src/test/clients");
    /** The kafkajs packages .ci/run installs, pinned; the codec plug-ins are what snappy, lz4 and zstd need. */
    static final List<String> KAFKAJS_PACKAGES =
        List.of("kafkajs@2.2.4", "kafkajs-snappy@1.1.0", "@2l/kafkajs-lz4@1.3.2", "@mongodb-js/zstd@1.2.2");

    private ExternalClients() {
    }

    /** What a child process did. */
    record Result(int exit, boolean timedOut, String out, String err) {
        String both() {
            return "exit " + exit + (timedOut ? " (timed out, killed)" : "") + "\n--- stdout\n" + tail(out)
                + "\n--- stderr\n" + tail(err);
        }

        private static String tail(String s) {
            return s.length() <= 6000 ? s : "..." + s.substring(s.length() - 6000);
        }
    }

    /** Runs {@code command} in {@code work} with {@code stdin}, killing it after {@code timeoutS} seconds. */
    static Result exec(int timeoutS, Path work, String stdin, Map<String, String> env, List<String> command)
        throws IOException, InterruptedException {
        Path out = Files.createTempFile(work, "out", ".txt");
        Path err = Files.createTempFile(work, "err", ".txt");
        Path in = Files.createTempFile(work, "in", ".txt");
        Files.writeString(in, stdin, StandardCharsets.UTF_8);
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile())
            .redirectInput(in.toFile());
        pb.environment().putAll(env);
        String shown = String.join(" ", command);
        System.out.println("$ " + (shown.length() > 400 ? shown.substring(0, 400) + "..." : shown));
        Process p = pb.start();
        boolean done = p.waitFor(timeoutS, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        Result r = new Result(done ? p.exitValue() : -1, !done, Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
        System.out.println("exit " + r.exit + (r.timedOut ? " (timed out)" : "") + ", " + r.out.length()
            + " chars out, " + r.err.length() + " chars err");
        return r;
    }

    /** True under CI, where every client must be installed. */
    static boolean underCi() {
        return "true".equals(System.getenv("CI"));
    }

    /** Skips (locally) or fails (CI) when a client is missing, with the way to install it. */
    static void require(boolean present, String what, String install) {
        if (present) {
            return;
        }
        String msg = what + " is not installed (" + install + ")";
        if (underCi()) {
            fail(msg + ": .ci/run installs it, so under CI it must be there");
        }
        Assumptions.abort(msg + "; skipped locally, required under CI");
    }

    static String onPath(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }

    /** kcat, or null. */
    static String kcat() {
        return onPath("kcat");
    }

    /** A python with confluent_kafka, or null. */
    static String python() throws IOException, InterruptedException {
        String py = System.getenv().getOrDefault("ISTHMUS_PYTHON", "/usr/bin/python3");
        boolean ok = Files.isExecutable(Path.of(py))
            && new ProcessBuilder(py, "-c", "import confluent_kafka").start().waitFor() == 0;
        return ok ? py : null;
    }

    /** The kafkajs package directory (its codec plug-ins beside it), or null when any package is missing. */
    static Path kafkajs() {
        Path kafkajs = Path.of(System.getenv().getOrDefault("ISTHMUS_KAFKAJS",
            System.getProperty("user.home") + "/.cache/isthmus-clients/node_modules/kafkajs"));
        Path modules = kafkajs.getParent();
        for (String pkg : KAFKAJS_PACKAGES) {
            String name = pkg.substring(0, pkg.lastIndexOf('@'));
            if (!Files.isRegularFile(modules.resolve(name).resolve("package.json"))) {
                return null;
            }
        }
        return onPath("node") == null ? null : kafkajs;
    }

    static String kafkajsInstall() {
        return "apt-get install nodejs npm; npm install --prefix ~/.cache/isthmus-clients "
            + String.join(" ", KAFKAJS_PACKAGES) + "; or set ISTHMUS_KAFKAJS";
    }

    /** The command that runs {@code mainClass} of the test classpath in a new JVM. */
    static List<String> javaCommand(String mainClass, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
            .toString(), "-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(List.of(args));
        return cmd;
    }
}
