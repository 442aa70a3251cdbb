package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.libc.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc calls Isthmus makes outside io_uring, with errno captured: every method returns the call's
 * result when it succeeds and {@code -errno} when it fails (the io_uring convention), so callers handle
 * one kind of error value. {@link #check(long, String)} turns a failure into an {@link ErrnoException}.
 *
 * <p>None of these calls is on a data path: they open, size and sync files, map memory, configure
 * sockets and pin threads. Data moves through io_uring ({@code dev.isthmus.uring.Ring}), whose three system
 * calls ({@link #ioUringSetup}, {@link #ioUringEnter}, {@link #ioUringRegister}) are here too, made through
 * libc's {@code syscall(2)}: no liburing is loaded.
 *
 * <p>Thread-safe. errno is captured into a per-thread segment.
 */
public final class Libc {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> CAPTURE =
        ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static final MethodHandle OPEN = LINKER.downcallHandle(LibC.open.address(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
        CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = capture(LibC.close$address(), LibC.close$descriptor());
    private static final MethodHandle READ = capture(LibC.read$address(), LibC.read$descriptor());
    private static final MethodHandle WRITE = capture(LibC.write$address(), LibC.write$descriptor());
    private static final MethodHandle PREAD = capture(LibC.pread$address(), LibC.pread$descriptor());
    private static final MethodHandle PWRITE = capture(LibC.pwrite$address(), LibC.pwrite$descriptor());
    private static final MethodHandle FALLOCATE = capture(LibC.fallocate$address(), LibC.fallocate$descriptor());
    private static final MethodHandle FDATASYNC = capture(LibC.fdatasync$address(), LibC.fdatasync$descriptor());
    private static final MethodHandle FSYNC = capture(LibC.fsync$address(), LibC.fsync$descriptor());
    private static final MethodHandle FTRUNCATE = capture(LibC.ftruncate$address(), LibC.ftruncate$descriptor());
    private static final MethodHandle UNLINK = capture(LibC.unlink$address(), LibC.unlink$descriptor());
    private static final MethodHandle STATX = capture(LibC.statx$address(), LibC.statx$descriptor());
    private static final MethodHandle MMAP = capture(LibC.mmap$address(), LibC.mmap$descriptor());
    private static final MethodHandle MUNMAP = capture(LibC.munmap$address(), LibC.munmap$descriptor());
    private static final MethodHandle MADVISE = capture(LibC.madvise$address(), LibC.madvise$descriptor());
    private static final MethodHandle SCHED_SETAFFINITY =
        capture(LibC.sched_setaffinity$address(), LibC.sched_setaffinity$descriptor());
    private static final MethodHandle SCHED_GETAFFINITY =
        capture(LibC.sched_getaffinity$address(), LibC.sched_getaffinity$descriptor());
    private static final MethodHandle SOCKET = capture(LibC.socket$address(), LibC.socket$descriptor());
    private static final MethodHandle BIND = capture(LibC.bind$address(), LibC.bind$descriptor());
    private static final MethodHandle LISTEN = capture(LibC.listen$address(), LibC.listen$descriptor());
    private static final MethodHandle CONNECT = capture(LibC.connect$address(), LibC.connect$descriptor());
    private static final MethodHandle SETSOCKOPT = capture(LibC.setsockopt$address(), LibC.setsockopt$descriptor());
    private static final MethodHandle GETSOCKOPT = capture(LibC.getsockopt$address(), LibC.getsockopt$descriptor());
    private static final MethodHandle GETSOCKNAME = capture(LibC.getsockname$address(), LibC.getsockname$descriptor());
    private static final MethodHandle GETPEERNAME = capture(LibC.getpeername$address(), LibC.getpeername$descriptor());
    private static final MethodHandle SHUTDOWN = capture(LibC.shutdown$address(), LibC.shutdown$descriptor());
    private static final MethodHandle EVENTFD = capture(LibC.eventfd$address(), LibC.eventfd$descriptor());
    private static final MethodHandle GETRLIMIT = capture(LibC.getrlimit$address(), LibC.getrlimit$descriptor());

    // io_uring's three system calls through syscall(2), so that no liburing is needed at run time. syscall is
    // variadic after the number: each argument is passed as a full long (or a pointer), so the callee's
    // va_arg(long) reads what we wrote on every ABI, and nothing is subject to default promotion.
    private static final MethodHandle SYSCALL_IO_URING_SETUP = syscall(
        ValueLayout.JAVA_LONG, ValueLayout.ADDRESS);
    private static final MethodHandle SYSCALL_IO_URING_ENTER = syscall(
        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);
    private static final MethodHandle SYSCALL_IO_URING_REGISTER = syscall(
        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);

    /**
     * The io_uring system-call numbers ({@code io_uring_setup}; enter and register follow it): 425 in
     * x86-64's table (arch/x86/entry/syscalls/syscall_64.tbl) and in the generic table that aarch64 and
     * riscv64 use (include/uapi/asm-generic/unistd.h). -1 on an architecture we have no numbers for; the
     * calls then return -ENOSYS.
     */
    public static final int SYS_IO_URING_SETUP = ioUringSyscallBase(System.getProperty("os.arch", ""));
    public static final int SYS_IO_URING_ENTER = SYS_IO_URING_SETUP < 0 ? -1 : SYS_IO_URING_SETUP + 1;
    public static final int SYS_IO_URING_REGISTER = SYS_IO_URING_SETUP < 0 ? -1 : SYS_IO_URING_SETUP + 2;

    /** Size of the kernel's cpu_set_t we pass (1024 CPUs), in bytes. */
    public static final int CPU_SET_BYTES = (int) dev.isthmus.ffi.gen.libc.cpu_set_t.layout().byteSize();

    public static final int O_RDONLY = LibC.O_RDONLY();
    public static final int O_WRONLY = LibC.O_WRONLY();
    public static final int O_RDWR = LibC.O_RDWR();
    public static final int O_CREAT = LibC.O_CREAT();
    public static final int O_EXCL = LibC.O_EXCL();
    public static final int O_TRUNC = LibC.O_TRUNC();
    /**
     * O_DIRECT and O_DIRECTORY differ by architecture and the generated constants are x86-64's (the generic
     * table's too, which riscv64 uses): arm64's asm/fcntl.h swaps them around (O_DIRECTORY 0x4000, O_DIRECT
     * 0x10000), so on aarch64 the x86-64 O_DIRECT would open a directory-only fd.
     */
    public static final int O_DIRECT = oDirect(System.getProperty("os.arch", ""));
    public static final int O_DSYNC = LibC.O_DSYNC();
    public static final int O_CLOEXEC = LibC.O_CLOEXEC();
    /** See {@link #O_DIRECT}. */
    public static final int O_DIRECTORY = oDirectory(System.getProperty("os.arch", ""));
    public static final int O_NONBLOCK = LibC.O_NONBLOCK();
    public static final int AT_FDCWD = LibC.AT_FDCWD();
    public static final int AT_EMPTY_PATH = LibC.AT_EMPTY_PATH();
    public static final int STATX_SIZE = LibC.STATX_SIZE();
    public static final int STATX_BLOCKS = LibC.STATX_BLOCKS();
    public static final int STATX_DIOALIGN = LibC.STATX_DIOALIGN();
    public static final int FALLOC_FL_KEEP_SIZE = LibC.FALLOC_FL_KEEP_SIZE();
    public static final int FALLOC_FL_PUNCH_HOLE = LibC.FALLOC_FL_PUNCH_HOLE();
    public static final int FALLOC_FL_ZERO_RANGE = LibC.FALLOC_FL_ZERO_RANGE();
    public static final int PROT_READ = LibC.PROT_READ();
    public static final int PROT_WRITE = LibC.PROT_WRITE();
    public static final int MAP_SHARED = LibC.MAP_SHARED();
    public static final int MAP_PRIVATE = LibC.MAP_PRIVATE();
    public static final int MAP_ANONYMOUS = LibC.MAP_ANONYMOUS();
    public static final int MAP_POPULATE = LibC.MAP_POPULATE();
    public static final int MAP_NORESERVE = LibC.MAP_NORESERVE();
    public static final int MADV_HUGEPAGE = LibC.MADV_HUGEPAGE();
    public static final int MADV_DONTFORK = LibC.MADV_DONTFORK();
    /** Prefault page tables writable (Linux 5.14; {@code <asm-generic/mman-common.h>}, not in the generated bindings). */
    public static final int MADV_POPULATE_WRITE = 23;
    public static final int AF_INET = LibC.AF_INET();
    public static final int AF_INET6 = LibC.AF_INET6();
    public static final int SOCK_STREAM = LibC.SOCK_STREAM();
    public static final int SOCK_NONBLOCK = LibC.SOCK_NONBLOCK();
    public static final int SOCK_CLOEXEC = LibC.SOCK_CLOEXEC();
    public static final int SOL_SOCKET = LibC.SOL_SOCKET();
    public static final int SO_REUSEADDR = LibC.SO_REUSEADDR();
    public static final int SO_REUSEPORT = LibC.SO_REUSEPORT();
    public static final int SO_RCVBUF = LibC.SO_RCVBUF();
    public static final int SO_SNDBUF = LibC.SO_SNDBUF();
    public static final int SO_KEEPALIVE = LibC.SO_KEEPALIVE();
    public static final int SO_ERROR = LibC.SO_ERROR();
    public static final int IPPROTO_TCP = LibC.IPPROTO_TCP();
    public static final int TCP_NODELAY = LibC.TCP_NODELAY();
    public static final int SHUT_RD = LibC.SHUT_RD();
    public static final int SHUT_WR = LibC.SHUT_WR();
    public static final int SHUT_RDWR = LibC.SHUT_RDWR();
    public static final int MSG_NOSIGNAL = LibC.MSG_NOSIGNAL();
    public static final int MSG_WAITALL = LibC.MSG_WAITALL();
    public static final int EFD_CLOEXEC = LibC.EFD_CLOEXEC();
    public static final int EFD_NONBLOCK = LibC.EFD_NONBLOCK();
    public static final int RLIMIT_MEMLOCK = LibC.RLIMIT_MEMLOCK();
    public static final int RLIMIT_NOFILE = LibC.RLIMIT_NOFILE();

    /** The system page size in bytes. */
    public static final long PAGE_SIZE = LibC.sysconf(LibC._SC_PAGESIZE());
    /** CPUs online. */
    public static final int CPUS_ONLINE = (int) LibC.sysconf(LibC._SC_NPROCESSORS_ONLN());

    private Libc() {
    }

    private static MethodHandle capture(MemorySegment address, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(address, descriptor, CAPTURE_ERRNO);
    }

    /**
     * A downcall handle for {@code long syscall(long number, ...)} with {@code args} after the number, or null
     * when this C library has no {@code syscall} symbol (then the io_uring calls return -ENOSYS).
     */
    private static MethodHandle syscall(MemoryLayout... args) {
        MemorySegment address = LINKER.defaultLookup().find("syscall").orElse(null);
        if (address == null) {
            return null;
        }
        MemoryLayout[] layouts = new MemoryLayout[args.length + 1];
        layouts[0] = ValueLayout.JAVA_LONG;
        System.arraycopy(args, 0, layouts, 1, args.length);
        return LINKER.downcallHandle(address, FunctionDescriptor.of(ValueLayout.JAVA_LONG, layouts),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    }

    /** O_DIRECT on {@code osArch} (the {@code os.arch} property). */
    static int oDirect(String osArch) {
        return osArch.equals("aarch64") ? 0x10000 : LibC.O_DIRECT();
    }

    /** O_DIRECTORY on {@code osArch} (the {@code os.arch} property). */
    static int oDirectory(String osArch) {
        return osArch.equals("aarch64") ? 0x4000 : LibC.O_DIRECTORY();
    }

    /** io_uring_setup's number for {@code osArch} (the {@code os.arch} property), or -1 when unknown. */
    static int ioUringSyscallBase(String osArch) {
        return switch (osArch) {
            case "amd64", "x86_64", "aarch64", "riscv64" -> 425;
            default -> -1;
        };
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static int result(int r, MemorySegment state) {
        return r >= 0 ? r : -errno(state);
    }

    private static long result(long r, MemorySegment state) {
        return r >= 0 ? r : -errno(state);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }

    /** Throws {@link ErrnoException} naming {@code call} when {@code result} is negative; returns it otherwise. */
    public static long check(long result, String call) {
        if (result < 0) {
            throw new ErrnoException(call, (int) -result);
        }
        return result;
    }

    /** Throws {@link ErrnoException} naming {@code call} when {@code result} is negative; returns it otherwise. */
    public static int check(int result, String call) {
        if (result < 0) {
            throw new ErrnoException(call, -result);
        }
        return result;
    }

    // ---------------------------------------------------------------- files

    /** open(2). {@code path} is a NUL-terminated string. Returns the fd or -errno. */
    public static int open(MemorySegment path, int flags, int mode) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) OPEN.invokeExact(st, path, flags, mode), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** open(2) of a Java path string. Returns the fd or -errno. */
    public static int open(String path, int flags, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            return open(arena.allocateFrom(path), flags, mode);
        }
    }

    public static int close(int fd) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) CLOSE.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long read(int fd, MemorySegment buf, long count) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((long) READ.invokeExact(st, fd, buf, count), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long write(int fd, MemorySegment buf, long count) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((long) WRITE.invokeExact(st, fd, buf, count), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long pread(int fd, MemorySegment buf, long count, long offset) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((long) PREAD.invokeExact(st, fd, buf, count, offset), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long pwrite(int fd, MemorySegment buf, long count, long offset) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((long) PWRITE.invokeExact(st, fd, buf, count, offset), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int fallocate(int fd, int mode, long offset, long length) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) FALLOCATE.invokeExact(st, fd, mode, offset, length), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int fdatasync(int fd) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) FDATASYNC.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int fsync(int fd) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) FSYNC.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int ftruncate(int fd, long length) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) FTRUNCATE.invokeExact(st, fd, length), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int unlink(String path) {
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            return result((int) UNLINK.invokeExact(st, arena.allocateFrom(path)), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** statx(2) into {@code buf} (a {@code struct statx}, see {@link dev.isthmus.ffi.gen.libc.statx}). */
    public static int statx(int dirfd, MemorySegment path, int flags, int mask, MemorySegment buf) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) STATX.invokeExact(st, dirfd, path, flags, mask, buf), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- memory

    /**
     * mmap(2). Returns the mapping as a segment of {@code length} bytes, or throws {@link ErrnoException}
     * (MAP_FAILED). The caller owns it and must {@link #munmap(MemorySegment)} it.
     */
    public static MemorySegment mmap(MemorySegment addr, long length, int prot, int flags, int fd, long offset) {
        MemorySegment st = CAPTURE.get();
        MemorySegment p;
        try {
            p = (MemorySegment) MMAP.invokeExact(st, addr, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (p.address() == -1L) {
            throw new ErrnoException("mmap(" + length + " bytes)", errno(st));
        }
        return p.reinterpret(length);
    }

    /** An anonymous private read-write mapping, pre-faulted when {@code populate}. */
    public static MemorySegment mmapAnonymous(long length, boolean populate) {
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0);
        return mmap(MemorySegment.NULL, length, PROT_READ | PROT_WRITE, flags, -1, 0);
    }

    public static int munmap(MemorySegment mapping) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) MUNMAP.invokeExact(st, mapping, mapping.byteSize()), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int madvise(MemorySegment mapping, int advice) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) MADVISE.invokeExact(st, mapping, mapping.byteSize(), advice), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- CPUs

    /** Pins the calling thread to {@code cpu}. Returns 0 or -errno (EINVAL: the CPU is not allowed). */
    public static int pinCurrentThread(int cpu) {
        if (cpu < 0 || cpu >= CPU_SET_BYTES * 8) {
            return -Errno.EINVAL;
        }
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(CPU_SET_BYTES, 8);
            set.set(ValueLayout.JAVA_BYTE, cpu >>> 3, (byte) (1 << (cpu & 7)));
            return result((int) SCHED_SETAFFINITY.invokeExact(st, 0, (long) CPU_SET_BYTES, set), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The CPUs the calling thread may run on, ascending. */
    public static int[] allowedCpus() {
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(CPU_SET_BYTES, 8);
            check(result((int) SCHED_GETAFFINITY.invokeExact(st, 0, (long) CPU_SET_BYTES, set), st), "sched_getaffinity");
            int n = 0;
            int[] cpus = new int[CPU_SET_BYTES * 8];
            for (int cpu = 0; cpu < CPU_SET_BYTES * 8; cpu++) {
                if ((set.get(ValueLayout.JAVA_BYTE, cpu >>> 3) & (1 << (cpu & 7))) != 0) {
                    cpus[n++] = cpu;
                }
            }
            return java.util.Arrays.copyOf(cpus, n);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- sockets

    public static int socket(int domain, int type, int protocol) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) SOCKET.invokeExact(st, domain, type, protocol), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int bind(int fd, MemorySegment addr, int addrLen) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) BIND.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int listen(int fd, int backlog) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) LISTEN.invokeExact(st, fd, backlog), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int connect(int fd, MemorySegment addr, int addrLen) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) CONNECT.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** setsockopt(2) for an int-valued option. */
    public static int setsockoptInt(int fd, int level, int option, int value) {
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(ValueLayout.JAVA_INT, value);
            return result((int) SETSOCKOPT.invokeExact(st, fd, level, option, v, 4), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getsockopt(2) for an int-valued option: the value (>= 0) or -errno. */
    public static int getsockoptInt(int fd, int level, int option) {
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment len = arena.allocateFrom(ValueLayout.JAVA_INT, 4);
            int r = result((int) GETSOCKOPT.invokeExact(st, fd, level, option, v, len), st);
            return r < 0 ? r : v.get(ValueLayout.JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getsockname(2) into {@code addr} (capacity in {@code addrLen[0]}, updated). */
    public static int getsockname(int fd, MemorySegment addr, MemorySegment addrLen) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) GETSOCKNAME.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getpeername(2) into {@code addr} (capacity in {@code addrLen[0]}, updated). */
    public static int getpeername(int fd, MemorySegment addr, MemorySegment addrLen) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) GETPEERNAME.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int shutdown(int fd, int how) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) SHUTDOWN.invokeExact(st, fd, how), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int eventfd(int initial, int flags) {
        MemorySegment st = CAPTURE.get();
        try {
            return result((int) EVENTFD.invokeExact(st, initial, flags), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- io_uring

    private static int syscallResult(long r, MemorySegment state) {
        return r == -1 ? -errno(state) : (int) r;
    }

    /**
     * io_uring_setup(2): creates a ring of {@code entries} SQEs as {@code params} (a {@code struct
     * io_uring_params}) asks, and fills in the rest of {@code params}. Returns the ring fd or -errno
     * (-ENOSYS also when this architecture's system-call numbers are unknown).
     */
    public static int ioUringSetup(int entries, MemorySegment params) {
        MethodHandle h = SYSCALL_IO_URING_SETUP;
        if (h == null || SYS_IO_URING_SETUP < 0) {
            return -Errno.ENOSYS;
        }
        MemorySegment st = CAPTURE.get();
        try {
            return syscallResult((long) h.invokeExact(st, (long) SYS_IO_URING_SETUP,
                Integer.toUnsignedLong(entries), params), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * io_uring_enter(2) with an argument of {@code argSize} bytes (with IORING_ENTER_EXT_ARG, a {@code struct
     * io_uring_getevents_arg}): submits and/or waits. Returns the number of SQEs consumed, or -errno. It may
     * block, so it is deliberately not a critical downcall.
     */
    public static int ioUringEnter(int fd, int toSubmit, int minComplete, int flags, MemorySegment arg,
                                   long argSize) {
        MethodHandle h = SYSCALL_IO_URING_ENTER;
        if (h == null || SYS_IO_URING_ENTER < 0) {
            return -Errno.ENOSYS;
        }
        MemorySegment st = CAPTURE.get();
        try {
            return syscallResult((long) h.invokeExact(st, (long) SYS_IO_URING_ENTER, Integer.toUnsignedLong(fd),
                Integer.toUnsignedLong(toSubmit), Integer.toUnsignedLong(minComplete), Integer.toUnsignedLong(flags),
                arg, argSize), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** io_uring_register(2): 0 or a positive result, or -errno. */
    public static int ioUringRegister(int fd, int opcode, MemorySegment arg, int count) {
        MethodHandle h = SYSCALL_IO_URING_REGISTER;
        if (h == null || SYS_IO_URING_REGISTER < 0) {
            return -Errno.ENOSYS;
        }
        MemorySegment st = CAPTURE.get();
        try {
            return syscallResult((long) h.invokeExact(st, (long) SYS_IO_URING_REGISTER, Integer.toUnsignedLong(fd),
                Integer.toUnsignedLong(opcode), arg, Integer.toUnsignedLong(count)), st);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The soft limit of {@code resource} (RLIMIT_*), or -errno. RLIM_INFINITY is Long.MAX_VALUE. */
    public static long softLimit(int resource) {
        MemorySegment st = CAPTURE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rl = arena.allocate(dev.isthmus.ffi.gen.libc.rlimit.layout());
            int r = result((int) GETRLIMIT.invokeExact(st, resource, rl), st);
            if (r < 0) {
                return r;
            }
            long cur = dev.isthmus.ffi.gen.libc.rlimit.rlim_cur(rl);
            return cur < 0 ? Long.MAX_VALUE : cur;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
