package dev.isthmus.gateway;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Test launcher: installs a seccomp filter on the whole JVM that fails {@code io_uring_setup} with an errno (as a
 * container runtime's default profile does), then runs the broker's {@link Main#main}. Used by
 * {@link PortableFallbackTest} in a child JVM, so the filter never touches the test's own process.
 *
 * <p>Usage: {@code SeccompLauncher ERRNO start [broker options]}. The filter is a five-instruction classic BPF
 * program: wrong architecture or any other system call is allowed; io_uring_setup returns ERRNO.
 */
public final class SeccompLauncher {
    private static final int PR_SET_NO_NEW_PRIVS = 38;
    private static final int SECCOMP_SET_MODE_FILTER = 1;
    private static final int SECCOMP_FILTER_FLAG_TSYNC = 1;
    private static final int SECCOMP_RET_ALLOW = 0x7fff0000;
    private static final int SECCOMP_RET_ERRNO = 0x00050000;
    // Classic BPF opcodes (linux/bpf_common.h).
    private static final short LD_W_ABS = 0x20;
    private static final short JEQ_K = 0x15;
    private static final short RET_K = 0x06;
    // struct seccomp_data: int nr at 0, __u32 arch at 4.
    private static final int DATA_NR = 0;
    private static final int DATA_ARCH = 4;

    private SeccompLauncher() {
    }

    public static void main(String[] args) throws Throwable {
        int errno = Integer.parseInt(args[0]);
        blockIoUringSetup(errno);
        Main.main(java.util.Arrays.copyOfRange(args, 1, args.length));
    }

    /** Makes io_uring_setup fail with {@code errno} in every thread of this process, from now on. */
    static void blockIoUringSetup(int errno) throws Throwable {
        String arch = System.getProperty("os.arch");
        int auditArch;
        long seccompNr;
        switch (arch) {
            case "amd64", "x86_64" -> {
                auditArch = 0xC000003E; // AUDIT_ARCH_X86_64
                seccompNr = 317;
            }
            case "aarch64" -> {
                auditArch = 0xC00000B7; // AUDIT_ARCH_AARCH64
                seccompNr = 277;
            }
            default -> throw new IllegalStateException("no seccomp numbers for os.arch=" + arch);
        }
        int ioUringSetup = 425; // the same on both

        Linker linker = Linker.nativeLinker();
        MemorySegment syscallAddress = linker.defaultLookup().find("syscall").orElseThrow();
        MemorySegment prctlAddress = linker.defaultLookup().find("prctl").orElseThrow();
        MethodHandle prctl = linker.downcallHandle(prctlAddress, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG), Linker.Option.firstVariadicArg(1));
        MethodHandle seccomp = linker.downcallHandle(syscallAddress, FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            Linker.Option.firstVariadicArg(1));

        int r = (int) prctl.invokeExact(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L);
        if (r != 0) {
            throw new IllegalStateException("prctl(PR_SET_NO_NEW_PRIVS) failed");
        }
        try (Arena arena = Arena.ofConfined()) {
            int[][] program = {
                {LD_W_ABS, 0, 0, DATA_ARCH},
                {JEQ_K, 0, 3, auditArch},             // another ABI: allow
                {LD_W_ABS, 0, 0, DATA_NR},
                {JEQ_K, 0, 1, ioUringSetup},
                {RET_K, 0, 0, SECCOMP_RET_ERRNO | (errno & 0xffff)},
                {RET_K, 0, 0, SECCOMP_RET_ALLOW},
            };
            MemorySegment filter = arena.allocate(8L * program.length, 8);
            for (int i = 0; i < program.length; i++) {
                long at = 8L * i;
                filter.set(ValueLayout.JAVA_SHORT, at, (short) program[i][0]);
                filter.set(ValueLayout.JAVA_BYTE, at + 2, (byte) program[i][1]);
                filter.set(ValueLayout.JAVA_BYTE, at + 3, (byte) program[i][2]);
                filter.set(ValueLayout.JAVA_INT, at + 4, program[i][3]);
            }
            MemorySegment fprog = arena.allocate(16, 8); // struct sock_fprog { unsigned short len; filter *; }
            fprog.set(ValueLayout.JAVA_SHORT, 0, (short) program.length);
            fprog.set(ValueLayout.ADDRESS, 8, filter);
            long s = (long) seccomp.invokeExact(seccompNr, (long) SECCOMP_SET_MODE_FILTER,
                (long) SECCOMP_FILTER_FLAG_TSYNC, fprog);
            if (s != 0) {
                throw new IllegalStateException("seccomp(SET_MODE_FILTER, TSYNC) returned " + s);
            }
        }
    }
}
