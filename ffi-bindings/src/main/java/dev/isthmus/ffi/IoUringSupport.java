package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.uring.IoUring;
import dev.isthmus.ffi.gen.uring.io_uring_params;
import dev.isthmus.ffi.gen.uring.io_uring_probe;
import dev.isthmus.ffi.gen.uring.io_uring_probe_op;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;

/**
 * Whether io_uring is usable on this host, and with what. {@link #probe()} creates a tiny ring the way a
 * shard would (SINGLE_ISSUER | DEFER_TASKRUN), asks the kernel which opcodes it supports, and closes it.
 * It never throws: a host where io_uring is blocked gets {@code usable == false} and a reason saying why
 * (liburing missing, {@code kernel.io_uring_disabled}, a seccomp profile such as Docker's default, or a
 * kernel too old for the features we require), so the caller can pick the portable backend and log it.
 *
 * @param usable          io_uring can be used with the features Isthmus requires
 * @param reason          why not (or "ok")
 * @param features        the kernel's IORING_FEAT_* bits
 * @param supportedOps    the opcodes the kernel supports (IORING_OP_*)
 * @param noSqArray       IORING_SETUP_NO_SQARRAY is accepted (kernel 6.6+)
 */
public record IoUringSupport(boolean usable, String reason, int features, BitSet supportedOps, boolean noSqArray) {

    private static volatile IoUringSupport cached;

    /** The opcodes a shard ring needs. */
    private static final int[] REQUIRED_OPS = {
        IoUring.IORING_OP_NOP(), IoUring.IORING_OP_READ(), IoUring.IORING_OP_WRITE(), IoUring.IORING_OP_READV(),
        IoUring.IORING_OP_WRITEV(), IoUring.IORING_OP_FSYNC(), IoUring.IORING_OP_TIMEOUT(),
        IoUring.IORING_OP_ASYNC_CANCEL(), IoUring.IORING_OP_ACCEPT(), IoUring.IORING_OP_CONNECT(),
        IoUring.IORING_OP_RECV(), IoUring.IORING_OP_SEND(), IoUring.IORING_OP_MSG_RING(),
    };

    /** The probe's result, computed once per process. */
    public static IoUringSupport probe() {
        IoUringSupport s = cached;
        if (s == null) {
            s = probeNow();
            cached = s;
        }
        return s;
    }

    /** Whether the kernel supports {@code opcode}. */
    public boolean supports(int opcode) {
        return supportedOps.get(opcode);
    }

    private static IoUringSupport probeNow() {
        if (!LibUring.isAvailable()) {
            return unusable(LibUring.unavailableReason());
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(io_uring_params.layout());
            int flags = IoUring.IORING_SETUP_SINGLE_ISSUER() | IoUring.IORING_SETUP_DEFER_TASKRUN();
            io_uring_params.flags(params, flags | KernelAbi.IORING_SETUP_NO_SQARRAY);
            int fd = LibUring.setup(4, params);
            boolean noSqArray = fd >= 0;
            if (fd == -Errno.EINVAL) {
                params.fill((byte) 0);
                io_uring_params.flags(params, flags);
                fd = LibUring.setup(4, params);
            }
            if (fd < 0) {
                return unusable(setupFailure(-fd));
            }
            try {
                int features = io_uring_params.features(params);
                int required = IoUring.IORING_FEAT_EXT_ARG() | IoUring.IORING_FEAT_NODROP()
                    | IoUring.IORING_FEAT_SINGLE_MMAP() | IoUring.IORING_FEAT_SUBMIT_STABLE();
                if ((features & required) != required) {
                    return unusable("io_uring lacks required features (EXT_ARG, NODROP, SINGLE_MMAP, SUBMIT_STABLE):"
                        + " kernel 5.11 or newer is needed; features=0x" + Integer.toHexString(features));
                }
                int opCount = 256;
                MemorySegment probe = arena.allocate(io_uring_probe.layout().byteSize()
                    + opCount * io_uring_probe_op.layout().byteSize(), 8);
                int r = LibUring.register(fd, IoUring.IORING_REGISTER_PROBE(), probe, opCount);
                if (r < 0) {
                    return unusable("io_uring_register(PROBE): " + Errno.describe(r));
                }
                BitSet ops = new BitSet();
                int n = Byte.toUnsignedInt(io_uring_probe.ops_len(probe));
                long opSize = io_uring_probe_op.layout().byteSize();
                for (int i = 0; i < n; i++) {
                    MemorySegment op = probe.asSlice(io_uring_probe.ops$offset() + i * opSize, opSize);
                    if ((io_uring_probe_op.flags(op) & IoUring.IO_URING_OP_SUPPORTED()) != 0) {
                        ops.set(Byte.toUnsignedInt(io_uring_probe_op.op(op)));
                    }
                }
                for (int op : REQUIRED_OPS) {
                    if (!ops.get(op)) {
                        return unusable("io_uring opcode " + op + " is not supported by this kernel");
                    }
                }
                return new IoUringSupport(true, "ok", features, ops, noSqArray);
            } finally {
                Libc.close(fd);
            }
        } catch (RuntimeException | LinkageError e) {
            return unusable("io_uring probe failed: " + e);
        }
    }

    private static String setupFailure(int errno) {
        String disabled = readSysctl();
        if (errno == Errno.EPERM || errno == Errno.EACCES) {
            return "io_uring_setup: " + Errno.describe(errno) + ": io_uring is blocked"
                + (disabled != null && !disabled.equals("0") ? " by kernel.io_uring_disabled=" + disabled
                : " (kernel.io_uring_disabled, or a seccomp profile such as a container's default)");
        }
        if (errno == Errno.ENOSYS) {
            return "io_uring_setup: " + Errno.describe(errno) + ": the kernel has no io_uring or a seccomp"
                + " filter hides it";
        }
        if (errno == Errno.EINVAL) {
            return "io_uring_setup: " + Errno.describe(errno) + ": SINGLE_ISSUER | DEFER_TASKRUN need kernel 6.1+";
        }
        return "io_uring_setup: " + Errno.describe(errno);
    }

    private static String readSysctl() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/io_uring_disabled")).trim();
        } catch (java.io.IOException | SecurityException e) {
            return null;
        }
    }

    private static IoUringSupport unusable(String reason) {
        return new IoUringSupport(false, reason, 0, new BitSet(), false);
    }
}
