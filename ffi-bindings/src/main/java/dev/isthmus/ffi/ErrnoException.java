package dev.isthmus.ffi;

/**
 * A system call failed with an errno. The message names the call, its subject and the errno, e.g.
 * {@code open(/data/x.log): ENOENT (No such file or directory)}.
 */
public final class ErrnoException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int errno;

    public ErrnoException(String call, int errno) {
        super(call + ": " + Errno.describe(errno));
        this.errno = Math.abs(errno);
    }

    /** The positive errno value. */
    public int errno() {
        return errno;
    }
}
