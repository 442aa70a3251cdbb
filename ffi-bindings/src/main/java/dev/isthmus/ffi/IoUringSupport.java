package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.uring.IoUring;
import dev.isthmus.ffi.gen.uring.io_uring_params;
import dev.isthmus.ffi.gen.uring.io_uring_probe;
import dev.isthmus.ffi.gen.uring.io_uring_probe_op;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Whether io_uring is usable on this host, and with what; when it is not, why not and how to enable it.
 *
 * <p>{@link #probe()} creates a tiny ring the way a shard would (SINGLE_ISSUER | DEFER_TASKRUN) through the
 * raw system calls ({@link Libc#ioUringSetup}: no liburing), enters it once, asks the kernel which opcodes it
 * supports (IORING_REGISTER_PROBE), and closes it: each of the three system calls is tried. It never throws and runs no static initialiser that can fail: the
 * result is a value. A host where io_uring cannot be used gets {@code usable == false}, a {@link Cause}, a
 * {@link #reason()} naming what was seen (the errno of io_uring_setup, {@code kernel.io_uring_disabled}, the
 * process's seccomp mode, the missing opcodes) and a {@link #remedy()} saying how to enable io_uring, so that
 * the caller can start on the portable backend and say why in one line ({@link #explanation()}).
 *
 * <p>Thread-safe. The probe runs once per process (a benign race may run it twice); the result is cached.
 *
 * @param usable       io_uring can be used with the features and opcodes Isthmus requires
 * @param cause        why not ({@link Cause#OK} when usable)
 * @param reason       what was seen, one line ("ok" when usable)
 * @param remedy       how to enable io_uring, one line ("" when usable)
 * @param features     the kernel's IORING_FEAT_* bits
 * @param supportedOps the opcodes the kernel supports (IORING_OP_*)
 * @param noSqArray    IORING_SETUP_NO_SQARRAY is accepted (kernel 6.6+)
 */
public record IoUringSupport(boolean usable, Cause cause, String reason, String remedy, int features,
                             BitSet supportedOps, boolean noSqArray) {

    /** Why io_uring cannot be used. */
    public enum Cause {
        /** It can. */
        OK,
        /** No io_uring system-call numbers are known for this CPU architecture. */
        UNKNOWN_ARCHITECTURE,
        /** {@code kernel.io_uring_disabled} is 1 (and this process is not in the allowed group) or 2. */
        DISABLED_BY_SYSCTL,
        /** A seccomp filter on this process (a container's default profile, systemd's SystemCallFilter). */
        BLOCKED_BY_SECCOMP,
        /** EPERM with neither of the above in sight: a security module (SELinux, ...) most likely. */
        BLOCKED,
        /** ENOSYS without a seccomp filter: the kernel has no io_uring. */
        NOT_IN_KERNEL,
        /** ENOMEM: the kernel could not allocate a ring (locked-memory limit on kernels before 5.12). */
        OUT_OF_MEMORY,
        /** The kernel lacks setup flags, features or opcodes the backend uses: Linux 6.1 or newer is needed. */
        KERNEL_TOO_OLD,
        /** Something else failed; the reason names it. */
        PROBE_FAILED
    }

    /**
     * What the host says about io_uring restrictions, read from /proc.
     *
     * @param osArch          the {@code os.arch} property
     * @param ioUringDisabled {@code /proc/sys/kernel/io_uring_disabled} (null when the kernel has no such sysctl)
     * @param ioUringGroup    {@code /proc/sys/kernel/io_uring_group} (null when absent)
     * @param seccompMode     the {@code Seccomp:} field of {@code /proc/self/status}: 0 none, 1 strict, 2 filter,
     *                        -1 unknown
     * @param memlockBytes    the soft RLIMIT_MEMLOCK (Long.MAX_VALUE for unlimited), or -1 when unknown
     */
    public record Host(String osArch, String ioUringDisabled, String ioUringGroup, int seccompMode,
                       long memlockBytes) {

        /** Reads this process's host facts; never throws. */
        public static Host current() {
            return new Host(System.getProperty("os.arch", "?"), readTrimmed(Path.of("/proc/sys/kernel/io_uring_disabled")),
                readTrimmed(Path.of("/proc/sys/kernel/io_uring_group")), readSeccompMode(), readMemlock());
        }

        private static String readTrimmed(Path p) {
            try {
                return Files.readString(p).trim();
            } catch (IOException | SecurityException e) {
                return null;
            }
        }

        private static int readSeccompMode() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                    if (line.startsWith("Seccomp:")) {
                        return Integer.parseInt(line.substring("Seccomp:".length()).trim());
                    }
                }
            } catch (IOException | SecurityException | NumberFormatException e) {
                return -1;
            }
            return -1;
        }

        private static long readMemlock() {
            try {
                long r = Libc.softLimit(Libc.RLIMIT_MEMLOCK);
                return r < 0 ? -1 : r;
            } catch (RuntimeException | LinkageError e) {
                return -1;
            }
        }
    }

    private static volatile IoUringSupport cached;

    /** What to do about a seccomp filter, said once. */
    private static final String SECCOMP_REMEDY = "allow the system calls io_uring_setup, io_uring_enter and"
        + " io_uring_register in the seccomp profile (Docker and Podman: --security-opt seccomp=PROFILE.json with"
        + " them allowed; Kubernetes: securityContext.seccompProfile; systemd: SystemCallFilter)";
    private static final String NEWER_KERNEL = "run on Linux 6.1 or newer";

    /** The opcodes the shard engines queue ({@code dev.isthmus.uring.UringEngine} and its files and sockets). */
    private static final int[] REQUIRED_OPS = {
        IoUring.IORING_OP_NOP(), IoUring.IORING_OP_READ(), IoUring.IORING_OP_WRITE(), IoUring.IORING_OP_READV(),
        IoUring.IORING_OP_WRITEV(), IoUring.IORING_OP_FSYNC(), IoUring.IORING_OP_FALLOCATE(),
        IoUring.IORING_OP_TIMEOUT(), IoUring.IORING_OP_ASYNC_CANCEL(), IoUring.IORING_OP_ACCEPT(),
        IoUring.IORING_OP_CONNECT(), IoUring.IORING_OP_RECV(), IoUring.IORING_OP_SEND(),
        IoUring.IORING_OP_SENDMSG(), IoUring.IORING_OP_CLOSE(), IoUring.IORING_OP_MSG_RING(),
    };
    private static final String[] REQUIRED_OP_NAMES = {
        "NOP", "READ", "WRITE", "READV", "WRITEV", "FSYNC", "FALLOCATE", "TIMEOUT", "ASYNC_CANCEL", "ACCEPT",
        "CONNECT", "RECV", "SEND", "SENDMSG", "CLOSE", "MSG_RING",
    };
    private static final int[] REQUIRED_FEATURES = {
        IoUring.IORING_FEAT_SINGLE_MMAP(), IoUring.IORING_FEAT_NODROP(), IoUring.IORING_FEAT_SUBMIT_STABLE(),
        IoUring.IORING_FEAT_EXT_ARG(),
    };
    private static final String[] REQUIRED_FEATURE_NAMES = {"SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "EXT_ARG"};

    /** The probe's result, computed once per process. Never throws. */
    public static IoUringSupport probe() {
        IoUringSupport s = cached;
        if (s == null) {
            s = probeNow(Host.current());
            cached = s;
        }
        return s;
    }

    /** Whether the kernel supports {@code opcode}. */
    public boolean supports(int opcode) {
        return supportedOps.get(opcode);
    }

    /**
     * One line for a log: {@code "io_uring is usable"}, or {@code "io_uring is unavailable: REASON. To enable
     * it: REMEDY."}.
     */
    public String explanation() {
        return usable ? "io_uring is usable" : "io_uring is unavailable: " + reason + ". To enable it: " + remedy + ".";
    }

    private static IoUringSupport probeNow(Host host) {
        try {
            if (Libc.SYS_IO_URING_SETUP < 0) {
                return unknownArchitecture(host.osArch());
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment params = arena.allocate(io_uring_params.layout());
                int flags = IoUring.IORING_SETUP_SINGLE_ISSUER() | IoUring.IORING_SETUP_DEFER_TASKRUN();
                io_uring_params.flags(params, flags | KernelAbi.IORING_SETUP_NO_SQARRAY);
                int fd = Libc.ioUringSetup(4, params);
                boolean noSqArray = fd >= 0;
                if (fd == -Errno.EINVAL) {
                    params.fill((byte) 0);
                    io_uring_params.flags(params, flags);
                    fd = Libc.ioUringSetup(4, params);
                }
                if (fd < 0) {
                    return setupFailed(-fd, host);
                }
                try {
                    int features = io_uring_params.features(params);
                    // Enter once (nothing to submit, nothing to wait for): a profile may allow setup but not enter.
                    int r = Libc.ioUringEnter(fd, 0, 0, 0, MemorySegment.NULL, 0);
                    if (r < 0) {
                        return callFailed("io_uring_enter", -r, host);
                    }
                    int opCount = 256;
                    long opSize = io_uring_probe_op.layout().byteSize();
                    MemorySegment probe = arena.allocate(io_uring_probe.layout().byteSize() + opCount * opSize, 8);
                    r = Libc.ioUringRegister(fd, IoUring.IORING_REGISTER_PROBE(), probe, opCount);
                    if (r < 0) {
                        return callFailed("io_uring_register(PROBE)", -r, host);
                    }
                    BitSet ops = new BitSet();
                    int n = Byte.toUnsignedInt(io_uring_probe.ops_len(probe));
                    for (int i = 0; i < n; i++) {
                        MemorySegment op = probe.asSlice(io_uring_probe.ops$offset() + i * opSize, opSize);
                        if ((io_uring_probe_op.flags(op) & IoUring.IO_URING_OP_SUPPORTED()) != 0) {
                            ops.set(Byte.toUnsignedInt(io_uring_probe_op.op(op)));
                        }
                    }
                    return fromKernel(features, ops, noSqArray);
                } finally {
                    Libc.close(fd);
                }
            }
        } catch (RuntimeException | LinkageError e) {
            return unusable(Cause.PROBE_FAILED, "the io_uring probe failed: " + oneLine(String.valueOf(e)),
                "run with --portable, and report this error");
        }
    }

    /** The verdict for an architecture without known io_uring system-call numbers. */
    static IoUringSupport unknownArchitecture(String osArch) {
        return unusable(Cause.UNKNOWN_ARCHITECTURE, "Isthmus has io_uring's system-call numbers for x86-64, aarch64"
            + " and riscv64, not for os.arch=" + osArch, "add this architecture's numbers to dev.isthmus.ffi.Libc");
    }

    /**
     * The verdict for io_uring_setup failing with {@code errno} (positive) on {@code host}: the cause, what was
     * seen and how to enable io_uring.
     */
    static IoUringSupport setupFailed(int errno, Host host) {
        String failed = "io_uring_setup failed with " + Errno.describe(errno);
        String disabled = host.ioUringDisabled();
        boolean filtered = host.seccompMode() == 2;
        if (errno == Errno.EPERM || errno == Errno.EACCES) {
            if ("2".equals(disabled)) {
                return unusable(Cause.DISABLED_BY_SYSCTL, failed + ": kernel.io_uring_disabled=2 turns io_uring off"
                    + " for every process", "sysctl -w kernel.io_uring_disabled=0 (as root; a file in /etc/sysctl.d"
                    + " keeps it across reboots)");
            }
            if ("1".equals(disabled)) {
                String group = host.ioUringGroup() == null || host.ioUringGroup().equals("-1") ? "no group"
                    : "group " + host.ioUringGroup();
                return unusable(Cause.DISABLED_BY_SYSCTL, failed + ": kernel.io_uring_disabled=1 allows io_uring only to"
                    + " processes in kernel.io_uring_group (" + group + ") or with CAP_SYS_ADMIN",
                    "sysctl -w kernel.io_uring_disabled=0, or run the broker in the group that"
                    + " kernel.io_uring_group names");
            }
            if (filtered) {
                return unusable(Cause.BLOCKED_BY_SECCOMP, failed + ": a seccomp filter on this process blocks io_uring"
                    + " (container runtimes' default profiles do)", SECCOMP_REMEDY);
            }
            return unusable(Cause.BLOCKED, failed + ": io_uring is denied although kernel.io_uring_disabled is "
                + (disabled == null ? "absent" : disabled) + " and no seccomp filter is set (a security module such as"
                + " SELinux can deny it)", "allow io_uring in the security module's policy");
        }
        if (errno == Errno.ENOSYS) {
            if (filtered) {
                return unusable(Cause.BLOCKED_BY_SECCOMP, failed + ": a seccomp filter on this process hides io_uring"
                    + " (container runtimes' default profiles do)", SECCOMP_REMEDY);
            }
            return unusable(Cause.NOT_IN_KERNEL, failed + ": this kernel has no io_uring (built without"
                + " CONFIG_IO_URING, or older than Linux 5.1)", NEWER_KERNEL + " built with CONFIG_IO_URING=y");
        }
        if (errno == Errno.ENOMEM) {
            String limit = host.memlockBytes() < 0 ? "unknown"
                : host.memlockBytes() == Long.MAX_VALUE ? "unlimited" : host.memlockBytes() + " bytes";
            return unusable(Cause.OUT_OF_MEMORY, failed + ": the kernel could not allocate a 4-entry ring (kernels"
                + " before 5.12 charge rings to the locked-memory limit, here " + limit + ")",
                "raise the locked-memory limit (ulimit -l; LimitMEMLOCK= for a systemd service; --ulimit memlock="
                + " for a container), or " + NEWER_KERNEL);
        }
        if (errno == Errno.EINVAL) {
            return unusable(Cause.KERNEL_TOO_OLD, failed + ": the kernel rejects IORING_SETUP_SINGLE_ISSUER |"
                + " DEFER_TASKRUN, which need Linux 6.1", NEWER_KERNEL);
        }
        return unusable(Cause.PROBE_FAILED, failed, "see io_uring_setup(2) for " + Errno.name(errno));
    }

    /**
     * The verdict for {@code call} (io_uring_enter or io_uring_register) failing with {@code errno} (positive) on a
     * ring that io_uring_setup created.
     */
    static IoUringSupport callFailed(String call, int errno, Host host) {
        String failed = call + " failed with " + Errno.describe(errno);
        if ((errno == Errno.EPERM || errno == Errno.EACCES || errno == Errno.ENOSYS) && host.seccompMode() == 2) {
            return unusable(Cause.BLOCKED_BY_SECCOMP, failed + ": a seccomp filter on this process allows"
                + " io_uring_setup but blocks " + call.replaceFirst("\\(.*", ""), SECCOMP_REMEDY);
        }
        if (errno == Errno.EINVAL) {
            return unusable(Cause.KERNEL_TOO_OLD, failed + ": the kernel's io_uring is older than the backend needs",
                NEWER_KERNEL);
        }
        return unusable(Cause.PROBE_FAILED, failed, "see " + call.replaceFirst("\\(.*", "") + "(2) for "
            + Errno.name(errno));
    }

    /** The verdict for a ring that was created, from its features and the opcodes the kernel supports. */
    static IoUringSupport fromKernel(int features, BitSet ops, boolean noSqArray) {
        List<String> missing = new ArrayList<>();
        for (int i = 0; i < REQUIRED_FEATURES.length; i++) {
            if ((features & REQUIRED_FEATURES[i]) == 0) {
                missing.add("IORING_FEAT_" + REQUIRED_FEATURE_NAMES[i]);
            }
        }
        if (!missing.isEmpty()) {
            return unusable(Cause.KERNEL_TOO_OLD, "the kernel's io_uring lacks the features " + String.join(", ", missing)
                + " (features=0x" + Integer.toHexString(features) + ")", NEWER_KERNEL);
        }
        for (int i = 0; i < REQUIRED_OPS.length; i++) {
            if (!ops.get(REQUIRED_OPS[i])) {
                missing.add("IORING_OP_" + REQUIRED_OP_NAMES[i]);
            }
        }
        if (!missing.isEmpty()) {
            return unusable(Cause.KERNEL_TOO_OLD, "the kernel's io_uring lacks the opcodes " + String.join(", ", missing)
                + " that the backend uses", NEWER_KERNEL);
        }
        return new IoUringSupport(true, Cause.OK, "ok", "", features, ops, noSqArray);
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ');
    }

    private static IoUringSupport unusable(Cause cause, String reason, String remedy) {
        return new IoUringSupport(false, cause, oneLine(reason), oneLine(remedy), 0, new BitSet(), false);
    }
}
