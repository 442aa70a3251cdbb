package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.libc.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * errno names and texts. Isthmus reports failed system calls as negative errno values (the io_uring
 * convention: {@code cqe.res = -errno}); this turns them into {@code "EAGAIN (Resource temporarily
 * unavailable)"}.
 *
 * <p>Thread-safe: texts are computed once per errno and cached (benign races).
 */
public final class Errno {
    private static final int MAX_ERRNO = 4096;
    private static final String[] NAMES = new String[MAX_ERRNO];
    private static final String[] TEXTS = new String[MAX_ERRNO];

    static {
        name(LibC.EPERM(), "EPERM");
        name(LibC.ENOENT(), "ENOENT");
        name(LibC.EINTR(), "EINTR");
        name(LibC.EIO(), "EIO");
        name(LibC.EBADF(), "EBADF");
        name(LibC.EAGAIN(), "EAGAIN");
        name(LibC.ENOMEM(), "ENOMEM");
        name(LibC.EACCES(), "EACCES");
        name(LibC.EFAULT(), "EFAULT");
        name(LibC.EBUSY(), "EBUSY");
        name(LibC.EEXIST(), "EEXIST");
        name(LibC.EXDEV(), "EXDEV");
        name(LibC.EINVAL(), "EINVAL");
        name(LibC.ENFILE(), "ENFILE");
        name(LibC.EMFILE(), "EMFILE");
        name(LibC.ENOSPC(), "ENOSPC");
        name(LibC.EPIPE(), "EPIPE");
        name(LibC.ERANGE(), "ERANGE");
        name(LibC.ENOSYS(), "ENOSYS");
        name(LibC.ETIME(), "ETIME");
        name(LibC.EOVERFLOW(), "EOVERFLOW");
        name(LibC.EOPNOTSUPP(), "EOPNOTSUPP");
        name(LibC.EADDRINUSE(), "EADDRINUSE");
        name(LibC.EADDRNOTAVAIL(), "EADDRNOTAVAIL");
        name(LibC.ECONNABORTED(), "ECONNABORTED");
        name(LibC.ECONNRESET(), "ECONNRESET");
        name(LibC.ENOBUFS(), "ENOBUFS");
        name(LibC.ENOTCONN(), "ENOTCONN");
        name(LibC.ETIMEDOUT(), "ETIMEDOUT");
        name(LibC.ECONNREFUSED(), "ECONNREFUSED");
        name(LibC.EALREADY(), "EALREADY");
        name(LibC.EINPROGRESS(), "EINPROGRESS");
        name(LibC.ECANCELED(), "ECANCELED");
    }

    public static final int EPERM = LibC.EPERM();
    public static final int ENOENT = LibC.ENOENT();
    public static final int EINTR = LibC.EINTR();
    public static final int EIO = LibC.EIO();
    public static final int EBADF = LibC.EBADF();
    public static final int EAGAIN = LibC.EAGAIN();
    public static final int ENOMEM = LibC.ENOMEM();
    public static final int EFAULT = LibC.EFAULT();
    public static final int EACCES = LibC.EACCES();
    public static final int EBUSY = LibC.EBUSY();
    public static final int EEXIST = LibC.EEXIST();
    public static final int EINVAL = LibC.EINVAL();
    public static final int ENOSPC = LibC.ENOSPC();
    public static final int EPIPE = LibC.EPIPE();
    public static final int ENOSYS = LibC.ENOSYS();
    public static final int ETIME = LibC.ETIME();
    public static final int EOPNOTSUPP = LibC.EOPNOTSUPP();
    public static final int EADDRINUSE = LibC.EADDRINUSE();
    public static final int ECONNRESET = LibC.ECONNRESET();
    public static final int ECONNREFUSED = LibC.ECONNREFUSED();
    public static final int ENOBUFS = LibC.ENOBUFS();
    public static final int ENOTCONN = LibC.ENOTCONN();
    public static final int ETIMEDOUT = LibC.ETIMEDOUT();
    public static final int EALREADY = LibC.EALREADY();
    public static final int EINPROGRESS = LibC.EINPROGRESS();
    public static final int ECANCELED = LibC.ECANCELED();

    private Errno() {
    }

    private static void name(int errno, String name) {
        NAMES[errno] = name;
    }

    /** The symbolic name of {@code errno} (sign ignored), or {@code "errno N"}. */
    public static String name(int errno) {
        int e = Math.abs(errno);
        String n = e < MAX_ERRNO ? NAMES[e] : null;
        return n != null ? n : "errno " + e;
    }

    /** The C library's text for {@code errno} (sign ignored). */
    public static String text(int errno) {
        int e = Math.abs(errno);
        if (e >= MAX_ERRNO) {
            return "Unknown error " + e;
        }
        String t = TEXTS[e];
        if (t == null) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate(256);
                // GNU strerror_r: returns a pointer to the text, which may or may not be buf.
                MemorySegment p = LibC.strerror_r(e, buf, buf.byteSize());
                t = p.reinterpret(1024).getString(0);
            }
            TEXTS[e] = t;
        }
        return t;
    }

    /** {@code "ENOENT (No such file or directory)"} for 2 or -2. */
    public static String describe(int errno) {
        return name(errno) + " (" + text(errno) + ")";
    }
}
