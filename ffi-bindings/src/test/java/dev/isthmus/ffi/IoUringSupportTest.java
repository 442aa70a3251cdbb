package dev.isthmus.ffi;

import dev.isthmus.ffi.IoUringSupport.Cause;
import dev.isthmus.ffi.IoUringSupport.Host;
import dev.isthmus.ffi.gen.uring.IoUring;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IoUringSupportTest {
    private static final Host PLAIN = new Host("amd64", "0", "-1", 0, 8L << 20);

    private static void assertOneLine(IoUringSupport s) {
        assertFalse(s.usable());
        assertFalse(s.explanation().contains("\n"), s.explanation());
        assertTrue(s.explanation().startsWith("io_uring is unavailable: "), s.explanation());
        assertFalse(s.reason().isBlank());
        assertFalse(s.remedy().isBlank());
    }

    @Test
    void shouldProbeWithoutThrowingAndExplainTheOutcome() {
        IoUringSupport s = IoUringSupport.probe();
        if (s.usable()) {
            assertEquals(Cause.OK, s.cause());
            assertEquals("ok", s.reason());
            assertTrue(s.supports(IoUring.IORING_OP_MSG_RING()));
            assertTrue((s.features() & IoUring.IORING_FEAT_EXT_ARG()) != 0);
        } else {
            assertOneLine(s);
        }
    }

    @Test
    void shouldProbeWithoutMappingLiburing() throws Exception {
        IoUringSupport.probe();
        IoUring.IORING_OP_NOP(); // the generated constants class initialises without looking up any library
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            assertFalse(line.contains("liburing"), "liburing is mapped: " + line);
        }
    }

    @Test
    void shouldNameTheSysctlWhenIoUringIsDisabledForEveryone() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EPERM, new Host("amd64", "2", "-1", 0, 0));
        assertOneLine(s);
        assertEquals(Cause.DISABLED_BY_SYSCTL, s.cause());
        assertTrue(s.reason().contains("EPERM") && s.reason().contains("kernel.io_uring_disabled=2"), s.reason());
        assertTrue(s.remedy().contains("sysctl -w kernel.io_uring_disabled=0"), s.remedy());
    }

    @Test
    void shouldNameTheGroupWhenIoUringIsLimitedToOne() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EPERM, new Host("amd64", "1", "1234", 0, 0));
        assertEquals(Cause.DISABLED_BY_SYSCTL, s.cause());
        assertTrue(s.reason().contains("kernel.io_uring_disabled=1") && s.reason().contains("group 1234"), s.reason());
        assertTrue(s.remedy().contains("sysctl -w kernel.io_uring_disabled=0"), s.remedy());
    }

    @Test
    void shouldBlameTheSeccompFilterForEperm() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EPERM, new Host("amd64", "0", "-1", 2, 0));
        assertOneLine(s);
        assertEquals(Cause.BLOCKED_BY_SECCOMP, s.cause());
        assertTrue(s.reason().contains("seccomp"), s.reason());
        assertTrue(s.remedy().contains("io_uring_setup, io_uring_enter and io_uring_register")
            && s.remedy().contains("--security-opt seccomp="), s.remedy());
    }

    @Test
    void shouldBlameTheSeccompFilterForEnosys() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.ENOSYS, new Host("aarch64", null, null, 2, 0));
        assertEquals(Cause.BLOCKED_BY_SECCOMP, s.cause());
        assertTrue(s.reason().contains("ENOSYS"), s.reason());
    }

    @Test
    void shouldPreferTheSysctlOverTheSeccompFilterWhenBothCouldBlock() {
        assertEquals(Cause.DISABLED_BY_SYSCTL,
            IoUringSupport.setupFailed(Errno.EPERM, new Host("amd64", "2", "-1", 2, 0)).cause());
    }

    @Test
    void shouldPointAtASecurityModuleForEpermWithNothingElseInSight() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EPERM, PLAIN);
        assertOneLine(s);
        assertEquals(Cause.BLOCKED, s.cause());
        assertTrue(s.reason().contains("SELinux"), s.reason());
    }

    @Test
    void shouldSayTheKernelHasNoIoUringOnEnosysWithoutAFilter() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.ENOSYS, PLAIN);
        assertOneLine(s);
        assertEquals(Cause.NOT_IN_KERNEL, s.cause());
        assertTrue(s.remedy().contains("CONFIG_IO_URING"), s.remedy());
    }

    @Test
    void shouldNameTheLockedMemoryLimitOnEnomem() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.ENOMEM, new Host("amd64", "0", "-1", 0, 65536));
        assertOneLine(s);
        assertEquals(Cause.OUT_OF_MEMORY, s.cause());
        assertTrue(s.reason().contains("65536 bytes"), s.reason());
        assertTrue(s.remedy().contains("ulimit -l"), s.remedy());
    }

    @Test
    void shouldAskForLinux61WhenSetupFlagsAreRejected() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EINVAL, PLAIN);
        assertOneLine(s);
        assertEquals(Cause.KERNEL_TOO_OLD, s.cause());
        assertTrue(s.reason().contains("DEFER_TASKRUN"), s.reason());
        assertTrue(s.remedy().contains("Linux 6.1"), s.remedy());
    }

    @Test
    void shouldNameAnyOtherSetupErrno() {
        IoUringSupport s = IoUringSupport.setupFailed(Errno.EFAULT, PLAIN);
        assertOneLine(s);
        assertEquals(Cause.PROBE_FAILED, s.cause());
        assertTrue(s.reason().contains("EFAULT"), s.reason());
    }

    @Test
    void shouldBlameTheSeccompFilterWhenItAllowsSetupButNotEnter() {
        IoUringSupport s = IoUringSupport.callFailed("io_uring_enter", Errno.EPERM, new Host("amd64", "0", "-1", 2, 0));
        assertOneLine(s);
        assertEquals(Cause.BLOCKED_BY_SECCOMP, s.cause());
        assertTrue(s.reason().contains("blocks io_uring_enter"), s.reason());
    }

    @Test
    void shouldAskForANewerKernelWhenTheOpcodeProbeIsRefused() {
        IoUringSupport s = IoUringSupport.callFailed("io_uring_register(PROBE)", Errno.EINVAL, PLAIN);
        assertOneLine(s);
        assertEquals(Cause.KERNEL_TOO_OLD, s.cause());
        assertTrue(s.reason().startsWith("io_uring_register(PROBE) failed with EINVAL"), s.reason());
        assertEquals(Cause.PROBE_FAILED, IoUringSupport.callFailed("io_uring_register(PROBE)", Errno.EFAULT, PLAIN).cause());
    }

    @Test
    void shouldNameMissingOpcodes() {
        BitSet ops = new BitSet();
        ops.set(0, 64);
        ops.clear(IoUring.IORING_OP_MSG_RING());
        ops.clear(IoUring.IORING_OP_SENDMSG());
        int features = IoUring.IORING_FEAT_SINGLE_MMAP() | IoUring.IORING_FEAT_NODROP()
            | IoUring.IORING_FEAT_SUBMIT_STABLE() | IoUring.IORING_FEAT_EXT_ARG();
        IoUringSupport s = IoUringSupport.fromKernel(features, ops, false);
        assertOneLine(s);
        assertEquals(Cause.KERNEL_TOO_OLD, s.cause());
        assertTrue(s.reason().contains("IORING_OP_SENDMSG, IORING_OP_MSG_RING"), s.reason());

        ops.set(IoUring.IORING_OP_MSG_RING());
        ops.set(IoUring.IORING_OP_SENDMSG());
        assertTrue(IoUringSupport.fromKernel(features, ops, true).usable());
    }

    @Test
    void shouldNameMissingFeatures() {
        BitSet ops = new BitSet();
        ops.set(0, 64);
        IoUringSupport s = IoUringSupport.fromKernel(IoUring.IORING_FEAT_SINGLE_MMAP(), ops, false);
        assertEquals(Cause.KERNEL_TOO_OLD, s.cause());
        assertTrue(s.reason().contains("IORING_FEAT_NODROP, IORING_FEAT_SUBMIT_STABLE, IORING_FEAT_EXT_ARG"),
            s.reason());
    }

    @Test
    void shouldRefuseAnArchitectureWithoutKnownSyscallNumbers() {
        assertEquals(-1, Libc.ioUringSyscallBase("ppc"));
        IoUringSupport s = IoUringSupport.unknownArchitecture("ppc");
        assertOneLine(s);
        assertEquals(Cause.UNKNOWN_ARCHITECTURE, s.cause());
        assertTrue(s.reason().contains("os.arch=ppc"), s.reason());
    }
}
