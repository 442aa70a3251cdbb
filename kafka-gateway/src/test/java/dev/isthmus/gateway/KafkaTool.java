package dev.isthmus.gateway;

import org.apache.kafka.common.utils.Exit;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs one of Kafka's command-line tools ({@code kafka-configs.sh}, {@code kafka-acls.sh}, {@code kafka-topics.sh},
 * ...) in this JVM as its script would, for tests that check what an operator sees: the tool's {@code main} (or
 * another entry point) is called with {@code System.in} fed from a string and {@code System.out} and
 * {@code System.err} captured, and Kafka's {@link Exit} hooked so that a tool's {@code Exit.exit(code)} ends the tool
 * (as an exception out of its {@code main}) instead of the JVM. The status is the first code the tool exited with (a
 * tool may catch that exception and exit again with 1); a normal return counts as 0. Shutdown hooks a tool adds are
 * dropped (they would outlive the test). What the tool printed is echoed, with the command, to the real
 * {@code System.out} (surefire's -output.txt), so a failing assertion can be read against it.
 *
 * <p>Lifecycle and threads: stateless; each {@link #run} installs the hooks and streams and restores them (and
 * Kafka's default exit procedures) before returning, whatever the tool did. {@code System.out/err/in} and
 * {@link Exit} are process-wide, so runs are serialized on this class; a test thread of its own printing at the same
 * time would have its output captured too (the test classes that use this run their tests one at a time).
 */
final class KafkaTool {
    private KafkaTool() {
    }

    /** What a tool printed and the status it exited with. */
    record Run(int code, String out, String err) {
        /** The non-blank lines of standard output, stripped. */
        List<String> lines() {
            return out.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
        }

        /** Standard output followed by standard error (for tools that print errors on either). */
        String printed() {
            return out + err;
        }
    }

    /** A tool's entry point, e.g. {@code () -> ConfigCommand.main(args)}. */
    @FunctionalInterface
    interface Main {
        void run() throws Exception;
    }

    /** A tool called {@code Exit.exit(code)}: carried out of the tool's main as an exception. */
    private static final class ToolExit extends RuntimeException {
        ToolExit(int code, String message) {
            super("exit " + code + (message == null ? "" : ": " + message), null, false, false);
        }
    }

    /** {@code --bootstrap-server BOOTSTRAP} followed by {@code args}. */
    static String[] withBootstrap(String bootstrap, String... args) {
        String[] all = new String[args.length + 2];
        all[0] = "--bootstrap-server";
        all[1] = bootstrap;
        System.arraycopy(args, 0, all, 2, args.length);
        return all;
    }

    /** Runs {@code main} with an empty standard input; {@code command} is the command line to echo. */
    static Run run(String command, Main main) throws Exception {
        return run(command, "", main);
    }

    /**
     * Runs {@code main} with {@code stdin} as its standard input, capturing what it prints; {@code command} is the
     * command line to echo (with any secret already masked). An exception out of the tool other than its exit
     * propagates (after the streams are restored).
     */
    static synchronized Run run(String command, String stdin, Main main) throws Exception {
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        InputStream savedIn = System.in;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        AtomicReference<Integer> firstExit = new AtomicReference<>();
        savedOut.println(command);
        Exit.setExitProcedure((code, message) -> {
            firstExit.compareAndSet(null, code);
            throw new ToolExit(code, message);
        });
        Exit.setShutdownHookAdder((name, hook) -> { });
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
        try {
            main.run();
        } catch (ToolExit e) {
            // the status is in firstExit
        } finally {
            System.out.flush();
            System.err.flush();
            System.setOut(savedOut);
            System.setErr(savedErr);
            System.setIn(savedIn);
            Exit.resetExitProcedure();
            Exit.resetShutdownHookAdder();
        }
        Run r = new Run(firstExit.get() == null ? 0 : firstExit.get(), out.toString(StandardCharsets.UTF_8),
            err.toString(StandardCharsets.UTF_8));
        savedOut.println("---- exit " + r.code + "\n" + r.out + (r.err.isBlank() ? "" : "---- stderr\n" + r.err));
        return r;
    }

    /** {@code a} followed by {@code b}. */
    static String[] concat(String[] a, String... b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
