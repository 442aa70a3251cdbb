package dev.isthmus.bench.chaos;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the system commands the suite needs ({@code ip}, {@code mount}, {@code mkfs.ext4}, {@code fallocate},
 * {@code kill}) and returns their exit code and output. Stateless; any thread.
 */
final class Sys {
    private static final long TIMEOUT_SEC = 60;

    /** Exit code and the merged stdout/stderr of one command. */
    record Result(int exit, String output) {
        boolean ok() {
            return exit == 0;
        }
    }

    private Sys() {
    }

    static Result run(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(TIMEOUT_SEC, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(-1, String.join(" ", cmd) + " did not finish within " + TIMEOUT_SEC + " s");
            }
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8).strip());
        } catch (IOException e) {
            return new Result(-1, "cannot run " + cmd.get(0) + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, "interrupted while running " + String.join(" ", cmd));
        }
    }

    static Result run(String... cmd) {
        return run(List.of(cmd));
    }

    /** Runs {@code cmd} and fails with its output when it exits non-zero. */
    static String must(String... cmd) {
        Result r = run(cmd);
        if (!r.ok()) {
            throw new ChaosException("'" + String.join(" ", cmd) + "' failed (exit " + r.exit() + "): " + r.output());
        }
        return r.output();
    }

    /** Whether {@code program} is on the PATH (or an absolute executable). */
    static boolean has(String program) {
        if (program.startsWith("/")) {
            return java.nio.file.Files.isExecutable(java.nio.file.Path.of(program));
        }
        String path = System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        List<String> dirs = new ArrayList<>(List.of(path.split(":")));
        dirs.addAll(List.of("/usr/sbin", "/sbin"));
        for (String d : dirs) {
            if (!d.isEmpty() && java.nio.file.Files.isExecutable(java.nio.file.Path.of(d, program))) {
                return true;
            }
        }
        return false;
    }

    static boolean root() {
        return "root".equals(System.getProperty("user.name")) || "0".equals(run("id", "-u").output());
    }

    /** Sends {@code signal} (e.g. "STOP", "CONT", "KILL") to one process. */
    static boolean signal(long pid, String signal) {
        return run("kill", "-" + signal, Long.toString(pid)).ok();
    }
}
