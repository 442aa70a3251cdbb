package dev.isthmus.ffi;

/**
 * Kernel ABI constants newer than the headers we generate from (Debian 12: the 6.1 kernel ABI, liburing
 * 2.3). Each is copied from the mainline uapi header named in its comment and used only after a probe or
 * with a fallback, because the running kernel may be older than the one that defined it.
 */
public final class KernelAbi {
    private KernelAbi() {
    }

    /**
     * include/uapi/linux/io_uring.h (6.6): IORING_SETUP_NO_SQARRAY. The SQ ring has no index array; the
     * kernel consumes SQEs in ring order. Older kernels fail io_uring_setup with -EINVAL.
     */
    public static final int IORING_SETUP_NO_SQARRAY = 1 << 16;
}
