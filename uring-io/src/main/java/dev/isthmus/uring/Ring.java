package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.ErrnoException;
import dev.isthmus.ffi.IoUringSupport;
import dev.isthmus.ffi.KernelAbi;
import dev.isthmus.ffi.Libc;
import dev.isthmus.ffi.gen.uring.IoUring;
import dev.isthmus.ffi.gen.uring.__kernel_timespec;
import dev.isthmus.ffi.gen.uring.io_cqring_offsets;
import dev.isthmus.ffi.gen.uring.io_sqring_offsets;
import dev.isthmus.ffi.gen.uring.io_uring_getevents_arg;
import dev.isthmus.ffi.gen.uring.io_uring_params;
import dev.isthmus.ffi.gen.uring.io_uring_rsrc_update;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * One io_uring, driven from Java: SQEs are filled and CQEs reaped directly in the mmapped rings, and each
 * loop turn makes one {@code io_uring_enter} (with IORING_ENTER_EXT_ARG) that both submits and waits. The
 * three io_uring system calls go through {@link Libc} (libc's {@code syscall(2)}); no liburing is loaded.
 *
 * <h2>Lifecycle and threads</h2>
 * Created by {@link #create(RingConfig)} on its owner thread, with IORING_SETUP_SINGLE_ISSUER |
 * DEFER_TASKRUN | SUBMIT_ALL (and NO_SQARRAY where the kernel has it), a CQ at least 4x the SQ and the ring
 * fd registered. Every method is owner-thread only except {@link #wakeup()} and {@link #stats()}. With
 * DEFER_TASKRUN the kernel posts completions only inside {@code io_uring_enter(GETEVENTS)} on the owner
 * thread, so {@link #submitAndWait(long)} is where completions appear; {@link #reap()} dispatches those
 * already posted.
 *
 * <h2>Operations</h2>
 * Each queue method fills one SQE and returns the operation's {@code user_data} (&gt;= 0), or a negative
 * errno when it cannot be queued: {@code -EBUSY} when {@link RingConfig#maxInFlight()} operations are
 * already in flight. Its completion reaches the given {@link CompletionHandler} with the attachment.
 * Nothing is submitted to the kernel until {@link #submitAndWait(long)} (or until the SQ fills, when it is
 * flushed early). Buffers and structures passed by address must stay valid until the completion, except
 * socket addresses, which are copied.
 *
 * <h2>user_data and the operation table</h2>
 * <pre>
 *  63  62 ....... 56 55 .............. 32 31 ..................... 0
 *  +---+------------+------------------+--------------------------+
 *  | 0 |  opcode    | generation (24)  |  slot (32)               |   an operation
 *  +---+------------+------------------+--------------------------+
 *  | 1 |  token kind (7)  | token argument (56)                    |   internal: wake, eventfd, signal
 * </pre>
 * Slots live in preallocated parallel arrays (handler, attachment, generation, parameters for
 * resubmission); no map and no allocation per operation. A completion whose generation no longer matches
 * its slot is stale and dropped (counted).
 *
 * <h2>Error handling</h2>
 * Reads and writes of files and sends complete only when all bytes moved: short transfers are resubmitted
 * for the rest (rounded down to the operation's alignment for O_DIRECT), -EINTR and -EAGAIN are retried a
 * bounded number of times, a read that reaches end of file completes with the bytes read. Every other
 * failure is delivered as {@code -errno}, never dropped. A CQ overflow is flushed by entering again;
 * -EBUSY from enter (overflowed completions pending) is handled by reaping and retrying.
 */
public final class Ring implements IoDriver {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring");
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final VarHandle WAKE_PENDING;

    static {
        try {
            WAKE_PENDING = MethodHandles.lookup().findVarHandle(Ring.class, "wakePending", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    // Opcodes and flags, read once from the generated bindings.
    static final byte OP_NOP = (byte) IoUring.IORING_OP_NOP();
    static final byte OP_READV = (byte) IoUring.IORING_OP_READV();
    static final byte OP_WRITEV = (byte) IoUring.IORING_OP_WRITEV();
    static final byte OP_FSYNC = (byte) IoUring.IORING_OP_FSYNC();
    static final byte OP_READ_FIXED = (byte) IoUring.IORING_OP_READ_FIXED();
    static final byte OP_WRITE_FIXED = (byte) IoUring.IORING_OP_WRITE_FIXED();
    static final byte OP_SENDMSG = (byte) IoUring.IORING_OP_SENDMSG();
    static final byte OP_TIMEOUT = (byte) IoUring.IORING_OP_TIMEOUT();
    static final byte OP_TIMEOUT_REMOVE = (byte) IoUring.IORING_OP_TIMEOUT_REMOVE();
    static final byte OP_ACCEPT = (byte) IoUring.IORING_OP_ACCEPT();
    static final byte OP_ASYNC_CANCEL = (byte) IoUring.IORING_OP_ASYNC_CANCEL();
    static final byte OP_CONNECT = (byte) IoUring.IORING_OP_CONNECT();
    static final byte OP_FALLOCATE = (byte) IoUring.IORING_OP_FALLOCATE();
    static final byte OP_OPENAT = (byte) IoUring.IORING_OP_OPENAT();
    static final byte OP_CLOSE = (byte) IoUring.IORING_OP_CLOSE();
    static final byte OP_STATX = (byte) IoUring.IORING_OP_STATX();
    static final byte OP_READ = (byte) IoUring.IORING_OP_READ();
    static final byte OP_WRITE = (byte) IoUring.IORING_OP_WRITE();
    static final byte OP_SEND = (byte) IoUring.IORING_OP_SEND();
    static final byte OP_RECV = (byte) IoUring.IORING_OP_RECV();
    static final byte OP_SHUTDOWN = (byte) IoUring.IORING_OP_SHUTDOWN();
    static final byte OP_MSG_RING = (byte) IoUring.IORING_OP_MSG_RING();

    static final byte SQE_IO_LINK = (byte) IoUring.IOSQE_IO_LINK();
    static final byte SQE_BUFFER_SELECT = (byte) IoUring.IOSQE_BUFFER_SELECT();
    static final byte SQE_CQE_SKIP_SUCCESS = (byte) IoUring.IOSQE_CQE_SKIP_SUCCESS();
    static final byte SQE_FIXED_FILE = (byte) IoUring.IOSQE_FIXED_FILE();
    /** CQE flag: more completions follow for this multishot operation. */
    public static final int CQE_F_MORE = IoUring.IORING_CQE_F_MORE();
    /** CQE flag: a provided buffer was used; its id is {@code flags >>> CQE_BUFFER_SHIFT}. */
    public static final int CQE_F_BUFFER = IoUring.IORING_CQE_F_BUFFER();
    public static final int CQE_BUFFER_SHIFT = IoUring.IORING_CQE_BUFFER_SHIFT();
    private static final int ENTER_GETEVENTS = IoUring.IORING_ENTER_GETEVENTS();
    private static final int ENTER_EXT_ARG = IoUring.IORING_ENTER_EXT_ARG();
    private static final int ENTER_REGISTERED_RING = IoUring.IORING_ENTER_REGISTERED_RING();
    private static final int SQ_CQ_OVERFLOW = IoUring.IORING_SQ_CQ_OVERFLOW();

    // Operation modes: how a completion is treated.
    private static final byte MODE_ONESHOT = 0;
    /** File read/write, send: resubmit until all bytes moved. */
    private static final byte MODE_FULL = 1;
    /** Multishot: the slot stays allocated while CQEs carry F_MORE. */
    private static final byte MODE_MULTISHOT = 2;

    private static final int MAX_RETRIES = 16;
    private static final int SCRATCH_BYTES = 64;

    // Internal tokens (top bit set).
    private static final long TOKEN = 1L << 63;
    private static final long TOKEN_KIND_SHIFT = 56;
    private static final long TOKEN_WAKE = TOKEN | (1L << TOKEN_KIND_SHIFT);
    private static final long TOKEN_EVENTFD = TOKEN | (2L << TOKEN_KIND_SHIFT);
    private static final long TOKEN_SIGNAL = TOKEN | (3L << TOKEN_KIND_SHIFT);
    private static final long TOKEN_CANCEL = TOKEN | (4L << TOKEN_KIND_SHIFT);
    /** A detached operation ({@link #cancelDetached}, {@link #closeDetached}): its completion is dropped. */
    private static final long TOKEN_DETACHED = TOKEN | (5L << TOKEN_KIND_SHIFT);
    private static final long TOKEN_KIND_MASK = 0x7FL << TOKEN_KIND_SHIFT;

    private static final MemorySegment ONE = Arena.global().allocateFrom(ValueLayout.JAVA_LONG, 1L);

    private final Thread owner;
    private final RingConfig config;
    private final int ringFd;
    private final int enterFd;
    private final int enterFlags;
    private final boolean noSqArray;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment ringMem;
    private final MemorySegment sqes;
    private final long sqHeadOff;
    private final long sqTailOff;
    private final int sqMask;
    private final int sqEntries;
    private final long cqHeadOff;
    private final long cqTailOff;
    private final long cqOverflowOff;
    private final long cqesOff;
    private final long sqFlagsOff;
    private final int cqMask;
    private final MemorySegment enterArg;
    private final MemorySegment enterTimespec;
    private final int eventFd;
    private final MemorySegment eventFdValue;
    private final RingStats stats = new RingStats();

    private int sqTail;
    private int sqSubmitted;
    private int cqHead;
    private long lastSqeOffset = -1;

    // Operation table.
    private CompletionHandler[] handlers;
    private long[] attachments;
    private int[] generations;
    private byte[] opcodes;
    private byte[] modes;
    private int[] fds;
    private long[] addrs;
    private int[] lens;
    private long[] offsets;
    private int[] opFlags;
    private int[] dones;
    private int[] aligns;
    private byte[] retries;
    private short[] bufIndexes;
    private int[] freeSlots;
    private int freeTop;
    private int inFlight;
    private MemorySegment scratch;

    // Cross-thread wakeup through the eventfd, and cross-ring signals.
    @SuppressWarnings("unused") // through WAKE_PENDING
    private volatile int wakePending;
    private boolean wokenSinceWait;
    private IoDriver[] signalTargets = new IoDriver[8];
    private int signalCount;
    private boolean closed;

    private Ring(RingConfig config, int ringFd, MemorySegment params, boolean noSqArray) {
        this.owner = Thread.currentThread();
        this.config = config;
        this.ringFd = ringFd;
        this.noSqArray = noSqArray;
        int features = io_uring_params.features(params);
        if ((features & IoUring.IORING_FEAT_SINGLE_MMAP()) == 0 || (features & IoUring.IORING_FEAT_EXT_ARG()) == 0) {
            Libc.close(ringFd);
            throw new IllegalStateException("io_uring lacks SINGLE_MMAP or EXT_ARG (kernel 5.11+ required)");
        }
        MemorySegment sqOff = io_uring_params.sq_off(params);
        MemorySegment cqOff = io_uring_params.cq_off(params);
        sqEntries = io_uring_params.sq_entries(params);
        int cqEntries = io_uring_params.cq_entries(params);
        long sqSize = io_sqring_offsets.array(sqOff) + (long) sqEntries * Integer.BYTES;
        long cqSize = io_cqring_offsets.cqes(cqOff) + (long) cqEntries * SqeDescriptor.CQE_SIZE;
        long ringSize = Math.max(sqSize, cqSize);
        MemorySegment rm;
        MemorySegment se;
        try {
            rm = Libc.mmap(MemorySegment.NULL, ringSize, Libc.PROT_READ | Libc.PROT_WRITE,
                Libc.MAP_SHARED | Libc.MAP_POPULATE, ringFd, IoUring.IORING_OFF_SQ_RING());
            se = Libc.mmap(MemorySegment.NULL, (long) sqEntries * SqeDescriptor.SQE_SIZE,
                Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, ringFd,
                IoUring.IORING_OFF_SQES());
        } catch (ErrnoException e) {
            Libc.close(ringFd);
            throw e;
        }
        ringMem = rm;
        sqes = se;
        sqHeadOff = io_sqring_offsets.head(sqOff);
        sqTailOff = io_sqring_offsets.tail(sqOff);
        sqFlagsOff = io_sqring_offsets.flags(sqOff);
        sqMask = ringMem.get(ValueLayout.JAVA_INT, io_sqring_offsets.ring_mask(sqOff));
        cqHeadOff = io_cqring_offsets.head(cqOff);
        cqTailOff = io_cqring_offsets.tail(cqOff);
        cqOverflowOff = io_cqring_offsets.overflow(cqOff);
        cqesOff = io_cqring_offsets.cqes(cqOff);
        cqMask = ringMem.get(ValueLayout.JAVA_INT, io_cqring_offsets.ring_mask(cqOff));
        if (!noSqArray) {
            long arrayOff = io_sqring_offsets.array(sqOff);
            for (int i = 0; i < sqEntries; i++) {
                ringMem.set(ValueLayout.JAVA_INT, arrayOff + 4L * i, i);
            }
        }
        sqTail = (int) INT.getAcquire(ringMem, sqTailOff);
        sqSubmitted = sqTail;
        cqHead = (int) INT.getAcquire(ringMem, cqHeadOff);

        // Registered ring fd: each enter skips the fd table lookup.
        int registered = -1;
        if (config.registerRingFd()) {
            MemorySegment upd = arena.allocate(io_uring_rsrc_update.layout());
            io_uring_rsrc_update.offset(upd, -1);
            io_uring_rsrc_update.data(upd, ringFd);
            int r = Libc.ioUringRegister(ringFd, IoUring.IORING_REGISTER_RING_FDS(), upd, 1);
            if (r == 1) {
                registered = io_uring_rsrc_update.offset(upd);
            } else {
                LOG.log(System.Logger.Level.DEBUG, "ring fd registration unavailable: " + Errno.describe(r));
            }
        }
        enterFd = registered >= 0 ? registered : ringFd;
        enterFlags = ENTER_GETEVENTS | ENTER_EXT_ARG | (registered >= 0 ? ENTER_REGISTERED_RING : 0);

        if (config.ioWorkersBounded() > 0 || config.ioWorkersUnbounded() > 0) {
            MemorySegment caps = arena.allocate(ValueLayout.JAVA_INT, 2);
            caps.setAtIndex(ValueLayout.JAVA_INT, 0, config.ioWorkersBounded());
            caps.setAtIndex(ValueLayout.JAVA_INT, 1, config.ioWorkersUnbounded());
            int r = Libc.ioUringRegister(ringFd, IoUring.IORING_REGISTER_IOWQ_MAX_WORKERS(), caps, 2);
            if (r < 0) {
                LOG.log(System.Logger.Level.WARNING, "could not cap io-wq workers: " + Errno.describe(r));
            }
        }

        enterArg = arena.allocate(io_uring_getevents_arg.layout());
        enterTimespec = arena.allocate(__kernel_timespec.layout());
        io_uring_getevents_arg.ts(enterArg, enterTimespec.address());

        allocateTable(config.initialSlots());

        eventFdValue = arena.allocate(ValueLayout.JAVA_LONG);
        eventFd = Libc.eventfd(0, Libc.EFD_CLOEXEC);
        if (eventFd < 0) {
            releaseMemory();
            throw new ErrnoException("eventfd", -eventFd);
        }
        armEventFd();
    }

    /**
     * Creates a ring owned by the calling thread.
     *
     * @throws ErrnoException        io_uring_setup failed (EPERM when io_uring is blocked, ENOMEM, ...)
     */
    public static Ring create(RingConfig config) {
        try (Arena setupArena = Arena.ofConfined()) {
            MemorySegment params = setupArena.allocate(io_uring_params.layout());
            int flags = IoUring.IORING_SETUP_SINGLE_ISSUER() | IoUring.IORING_SETUP_DEFER_TASKRUN()
                | IoUring.IORING_SETUP_SUBMIT_ALL() | IoUring.IORING_SETUP_CQSIZE();
            boolean noSqArray = IoUringSupport.probe().noSqArray();
            io_uring_params.flags(params, flags | (noSqArray ? KernelAbi.IORING_SETUP_NO_SQARRAY : 0));
            io_uring_params.cq_entries(params, config.cqEntries());
            int fd = Libc.ioUringSetup(config.sqEntries(), params);
            if (fd == -Errno.EINVAL && noSqArray) {
                noSqArray = false;
                params.fill((byte) 0);
                io_uring_params.flags(params, flags);
                io_uring_params.cq_entries(params, config.cqEntries());
                fd = Libc.ioUringSetup(config.sqEntries(), params);
            }
            if (fd < 0) {
                throw new ErrnoException("io_uring_setup(" + config.sqEntries() + " entries)", -fd);
            }
            return new Ring(config, fd, params, noSqArray);
        }
    }

    /** Creates a ring with {@link RingConfig#defaults()}. */
    public static Ring create() {
        return create(RingConfig.defaults());
    }

    // ------------------------------------------------------------------------------------------ table

    private void allocateTable(int slots) {
        int old = handlers == null ? 0 : handlers.length;
        handlers = handlers == null ? new CompletionHandler[slots] : Arrays.copyOf(handlers, slots);
        attachments = attachments == null ? new long[slots] : Arrays.copyOf(attachments, slots);
        generations = generations == null ? new int[slots] : Arrays.copyOf(generations, slots);
        opcodes = opcodes == null ? new byte[slots] : Arrays.copyOf(opcodes, slots);
        modes = modes == null ? new byte[slots] : Arrays.copyOf(modes, slots);
        fds = fds == null ? new int[slots] : Arrays.copyOf(fds, slots);
        addrs = addrs == null ? new long[slots] : Arrays.copyOf(addrs, slots);
        lens = lens == null ? new int[slots] : Arrays.copyOf(lens, slots);
        offsets = offsets == null ? new long[slots] : Arrays.copyOf(offsets, slots);
        opFlags = opFlags == null ? new int[slots] : Arrays.copyOf(opFlags, slots);
        dones = dones == null ? new int[slots] : Arrays.copyOf(dones, slots);
        aligns = aligns == null ? new int[slots] : Arrays.copyOf(aligns, slots);
        retries = retries == null ? new byte[slots] : Arrays.copyOf(retries, slots);
        bufIndexes = bufIndexes == null ? new short[slots] : Arrays.copyOf(bufIndexes, slots);
        MemorySegment newScratch = arena.allocate((long) slots * SCRATCH_BYTES, 64);
        if (scratch != null) {
            // In-flight operations may point into the old scratch (timespecs, socket addresses); the kernel
            // copied those at submission (IORING_FEAT_SUBMIT_STABLE), so only unsubmitted SQEs matter, and
            // growth only happens between submissions of a full table. Keep the old contents anyway.
            MemorySegment.copy(scratch, 0, newScratch, 0, scratch.byteSize());
        }
        scratch = newScratch;
        int[] newFree = new int[slots];
        if (freeSlots != null) {
            System.arraycopy(freeSlots, 0, newFree, 0, freeTop);
        }
        freeSlots = newFree;
        for (int s = slots - 1; s >= old; s--) {
            freeSlots[freeTop++] = s;
        }
    }

    /** Returns a free slot, growing the table up to maxInFlight, or -1. */
    private int allocateSlot() {
        if (freeTop == 0) {
            int size = handlers.length;
            if (size >= config.maxInFlight()) {
                return -1;
            }
            // Submit first: SQEs already filled may reference the old scratch segment.
            flushSubmissions();
            allocateTable(Math.min(config.maxInFlight(), size * 2));
        }
        int slot = freeSlots[--freeTop];
        inFlight++;
        return slot;
    }

    private void freeSlot(int slot) {
        handlers[slot] = null;
        generations[slot] = (generations[slot] + 1) & 0xFFFFFF;
        freeSlots[freeTop++] = slot;
        inFlight--;
    }

    private static long userData(byte opcode, int generation, int slot) {
        return ((long) (opcode & 0x7F) << 56) | ((long) generation << 32) | (slot & 0xFFFFFFFFL);
    }

    // ------------------------------------------------------------------------------------------ SQEs

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("Ring is owned by " + owner.getName() + ", called from "
                + Thread.currentThread().getName());
        }
    }

    /** Offset of a zeroed SQE in {@link #sqes}; flushes the SQ to the kernel when it is full. */
    private long nextSqe() {
        int spins = 0;
        while (sqTail - (int) INT.getAcquire(ringMem, sqHeadOff) >= sqEntries) {
            flushSubmissions();
            if (++spins > 1000) {
                throw new IllegalStateException("io_uring SQ stays full: the kernel consumes no SQEs");
            }
        }
        long off = (long) (sqTail & sqMask) * SqeDescriptor.SQE_SIZE;
        for (long i = 0; i < SqeDescriptor.SQE_SIZE; i += 8) {
            sqes.set(ValueLayout.JAVA_LONG, off + i, 0L);
        }
        sqTail++;
        lastSqeOffset = off;
        return off;
    }

    private void fillSqe(long sqe, byte opcode, int fd, long addr, int len, long offset, int flags, long userData) {
        sqes.set(ValueLayout.JAVA_BYTE, sqe + SqeDescriptor.OPCODE, opcode);
        sqes.set(ValueLayout.JAVA_INT, sqe + SqeDescriptor.FD, fd);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SqeDescriptor.OFF, offset);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SqeDescriptor.ADDR, addr);
        sqes.set(ValueLayout.JAVA_INT, sqe + SqeDescriptor.LEN, len);
        sqes.set(ValueLayout.JAVA_INT, sqe + SqeDescriptor.OP_FLAGS, flags);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SqeDescriptor.USER_DATA, userData);
    }

    /**
     * Queues one operation in a new slot. Returns user_data or -EBUSY.
     */
    private long queue(byte opcode, byte mode, int fd, long addr, int len, long offset, int flags, int align,
                       CompletionHandler handler, long attachment) {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("Ring is closed");
        }
        int slot = allocateSlot();
        if (slot < 0) {
            return -Errno.EBUSY;
        }
        handlers[slot] = handler;
        attachments[slot] = attachment;
        opcodes[slot] = opcode;
        modes[slot] = mode;
        fds[slot] = fd;
        addrs[slot] = addr;
        lens[slot] = len;
        offsets[slot] = offset;
        opFlags[slot] = flags;
        dones[slot] = 0;
        aligns[slot] = align;
        retries[slot] = 0;
        bufIndexes[slot] = 0;
        long ud = userData(opcode, generations[slot], slot);
        fillSqe(nextSqe(), opcode, fd, addr, len, offset, flags, ud);
        stats.set(RingStats.IN_FLIGHT, inFlight);
        return ud;
    }

    private void resubmit(int slot, long ud) {
        int done = dones[slot];
        long sqe = nextSqe();
        fillSqe(sqe, opcodes[slot], fds[slot], addrs[slot] + done, lens[slot] - done,
            offsets[slot] == -1 ? -1 : offsets[slot] + done, opFlags[slot], ud);
        if (opcodes[slot] == OP_READ_FIXED || opcodes[slot] == OP_WRITE_FIXED) {
            sqes.set(ValueLayout.JAVA_SHORT, sqe + SqeDescriptor.BUF_INDEX, bufIndexes[slot]);
        }
        stats.add(RingStats.RESUBMITTED, 1);
    }

    private static void checkLength(long length) {
        if (length < 0 || length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("I/O length must be in [0, 2^31), got " + length);
        }
    }

    /**
     * Links the most recently queued operation to the next one (IOSQE_IO_LINK): the next starts only after
     * it succeeds, and is completed with -ECANCELED if it fails or transfers fewer bytes than asked.
     */
    public void linkNext() {
        checkOwner();
        Verify.that(lastSqeOffset >= 0 && sqTail != sqSubmitted, "linkNext() needs an unsubmitted operation");
        byte f = sqes.get(ValueLayout.JAVA_BYTE, lastSqeOffset + SqeDescriptor.FLAGS);
        sqes.set(ValueLayout.JAVA_BYTE, lastSqeOffset + SqeDescriptor.FLAGS, (byte) (f | SQE_IO_LINK));
    }

    private void orFlags(byte flag) {
        byte f = sqes.get(ValueLayout.JAVA_BYTE, lastSqeOffset + SqeDescriptor.FLAGS);
        sqes.set(ValueLayout.JAVA_BYTE, lastSqeOffset + SqeDescriptor.FLAGS, (byte) (f | flag));
    }

    // ------------------------------------------------------------------------------------------ operations

    /** A no-op that completes with 0. */
    public long nop(CompletionHandler handler, long attachment) {
        return queue(OP_NOP, MODE_ONESHOT, -1, 0, 0, 0, 0, 1, handler, attachment);
    }

    /**
     * Reads {@code buffer.byteSize()} bytes at {@code offset} (-1: the file position), resubmitting short
     * reads; completes with the bytes read (fewer only at end of file) or -errno.
     *
     * @param alignment the alignment a resubmitted remainder must keep (the file's O_DIRECT alignment, or 1)
     */
    public long read(int fd, MemorySegment buffer, long offset, int alignment, CompletionHandler handler,
                     long attachment) {
        checkLength(buffer.byteSize());
        return queue(OP_READ, MODE_FULL, fd, buffer.address(), (int) buffer.byteSize(), offset, 0, alignment,
            handler, attachment);
    }

    /** Writes all of {@code buffer} at {@code offset}, resubmitting short writes; completes with its size or -errno. */
    public long write(int fd, MemorySegment buffer, long offset, int alignment, CompletionHandler handler,
                      long attachment) {
        checkLength(buffer.byteSize());
        return queue(OP_WRITE, MODE_FULL, fd, buffer.address(), (int) buffer.byteSize(), offset, 0, alignment,
            handler, attachment);
    }

    /**
     * {@link #write(int, MemorySegment, long, int, CompletionHandler, long)} of {@code length} bytes at native
     * {@code address} (inside memory the caller keeps alive until the completion).
     */
    public long write(int fd, long address, long length, long offset, int alignment, CompletionHandler handler,
                      long attachment) {
        checkLength(length);
        return queue(OP_WRITE, MODE_FULL, fd, address, (int) length, offset, 0, alignment, handler, attachment);
    }

    /** A single read(2) at {@code offset}; completes with whatever it returned (a socket, a pipe, an eventfd). */
    public long readOnce(int fd, MemorySegment buffer, long offset, CompletionHandler handler, long attachment) {
        checkLength(buffer.byteSize());
        return queue(OP_READ, MODE_ONESHOT, fd, buffer.address(), (int) buffer.byteSize(), offset, 0, 1,
            handler, attachment);
    }

    /** readv(2) into {@code count} iovecs at {@code iovecs}; completes with bytes read (may be short) or -errno. */
    public long readv(int fd, MemorySegment iovecs, int count, long offset, CompletionHandler handler, long attachment) {
        return queue(OP_READV, MODE_ONESHOT, fd, iovecs.address(), count, offset, 0, 1, handler, attachment);
    }

    /** writev(2) from {@code count} iovecs; completes with bytes written (may be short) or -errno. */
    public long writev(int fd, MemorySegment iovecs, int count, long offset, CompletionHandler handler,
                       long attachment) {
        return queue(OP_WRITEV, MODE_ONESHOT, fd, iovecs.address(), count, offset, 0, 1, handler, attachment);
    }

    /** Reads into registered buffer {@code bufIndex} (see {@link #registerBuffers}); {@code buffer} lies inside it. */
    public long readFixed(int fd, MemorySegment buffer, long offset, int bufIndex, int alignment,
                         CompletionHandler handler, long attachment) {
        checkLength(buffer.byteSize());
        long ud = queue(OP_READ_FIXED, MODE_FULL, fd, buffer.address(), (int) buffer.byteSize(), offset, 0,
            alignment, handler, attachment);
        if (ud >= 0) {
            bufIndexes[(int) ud] = (short) bufIndex;
            sqes.set(ValueLayout.JAVA_SHORT, lastSqeOffset + SqeDescriptor.BUF_INDEX, (short) bufIndex);
        }
        return ud;
    }

    /** Writes from registered buffer {@code bufIndex}; {@code buffer} lies inside it. */
    public long writeFixed(int fd, MemorySegment buffer, long offset, int bufIndex, int alignment,
                          CompletionHandler handler, long attachment) {
        checkLength(buffer.byteSize());
        long ud = queue(OP_WRITE_FIXED, MODE_FULL, fd, buffer.address(), (int) buffer.byteSize(), offset, 0,
            alignment, handler, attachment);
        if (ud >= 0) {
            bufIndexes[(int) ud] = (short) bufIndex;
            sqes.set(ValueLayout.JAVA_SHORT, lastSqeOffset + SqeDescriptor.BUF_INDEX, (short) bufIndex);
        }
        return ud;
    }

    /** fsync(2), or fdatasync(2) when {@code dataOnly}. */
    public long fsync(int fd, boolean dataOnly, CompletionHandler handler, long attachment) {
        return queue(OP_FSYNC, MODE_ONESHOT, fd, 0, 0, 0, dataOnly ? IoUring.IORING_FSYNC_DATASYNC() : 0, 1,
            handler, attachment);
    }

    /** fallocate(2): mode in {@code len}, length in {@code addr}, as the kernel expects for this opcode. */
    public long fallocate(int fd, int mode, long offset, long length, CompletionHandler handler, long attachment) {
        return queue(OP_FALLOCATE, MODE_ONESHOT, fd, length, mode, offset, 0, 1, handler, attachment);
    }

    /**
     * openat(2). {@code path} is a NUL-terminated string that must stay valid until the completion, which
     * carries the new fd or -errno.
     */
    public long openat(int dirFd, MemorySegment path, int flags, int mode, CompletionHandler handler, long attachment) {
        return queue(OP_OPENAT, MODE_ONESHOT, dirFd, path.address(), mode, 0, flags, 1, handler, attachment);
    }

    /** close(2). */
    public long close(int fd, CompletionHandler handler, long attachment) {
        return queue(OP_CLOSE, MODE_ONESHOT, fd, 0, 0, 0, 0, 1, handler, attachment);
    }

    /** statx(2) into {@code statxBuf} (a {@code struct statx}); path and buffer stay valid until completion. */
    public long statx(int dirFd, MemorySegment path, int flags, int mask, MemorySegment statxBuf,
                      CompletionHandler handler, long attachment) {
        return queue(OP_STATX, MODE_ONESHOT, dirFd, path.address(), mask, statxBuf.address(), flags, 1, handler,
            attachment);
    }

    /** A relative timeout that completes with -ETIME after {@code timeoutNs} (or -ECANCELED when removed). */
    public long timeout(long timeoutNs, CompletionHandler handler, long attachment) {
        long ud = queue(OP_TIMEOUT, MODE_ONESHOT, -1, 0, 1, 0, 0, 1, handler, attachment);
        if (ud >= 0) {
            long off = (ud & 0xFFFFFFFFL) * SCRATCH_BYTES;
            scratch.set(ValueLayout.JAVA_LONG, off, timeoutNs / 1_000_000_000L);
            scratch.set(ValueLayout.JAVA_LONG, off + 8, timeoutNs % 1_000_000_000L);
            sqes.set(ValueLayout.JAVA_LONG, lastSqeOffset + SqeDescriptor.ADDR, scratch.address() + off);
            sqes.set(ValueLayout.JAVA_LONG, lastSqeOffset + SqeDescriptor.OFF, 0L);
        }
        return ud;
    }

    /** Removes the timeout {@code timeoutUserData}; completes with 0, -ENOENT or -EALREADY. */
    public long timeoutRemove(long timeoutUserData, CompletionHandler handler, long attachment) {
        return queue(OP_TIMEOUT_REMOVE, MODE_ONESHOT, -1, timeoutUserData, 0, 0, 0, 1, handler, attachment);
    }

    /**
     * Cancels the operation {@code userData}; it completes with -ECANCELED (or its own result if it was
     * already done). This completion carries 0, -ENOENT (not found: already completed) or -EALREADY.
     */
    public long cancel(long userData, CompletionHandler handler, long attachment) {
        return queue(OP_ASYNC_CANCEL, MODE_ONESHOT, -1, userData, 0, 0, 0, 1, handler, attachment);
    }

    /**
     * Queues IORING_OP_ASYNC_CANCEL for the operation {@code userData} without taking an operation slot and
     * without a completion of its own, so it cannot fail with -EBUSY however many operations are in flight. The
     * target completes as with {@link #cancel}: -ECANCELED, or its own result if it had already finished (then
     * this finds nothing, which is harmless: a finished operation's {@code user_data} is never reused, because
     * its slot's generation moves on). For owners that learn the outcome from the target's completion. Does
     * nothing once {@link #close()} has begun (that cancels everything).
     */
    public void cancelDetached(long userData) {
        checkOwner();
        Verify.that(userData >= 0, "cancelDetached needs an operation's user_data, got %d", userData);
        if (closed) {
            return;
        }
        long sqe = nextSqe();
        fillSqe(sqe, OP_ASYNC_CANCEL, -1, userData, 0, 0, 0, TOKEN_DETACHED);
        sqes.set(ValueLayout.JAVA_BYTE, sqe + SqeDescriptor.FLAGS, SQE_CQE_SKIP_SUCCESS);
    }

    /**
     * Queues close(2) of {@code fd} without an operation slot or a completion (never -EBUSY). Operations queued
     * on {@code fd} before it and issued inline (socket and O_DIRECT file I/O) still see the file: SQEs are
     * issued in order and each takes its own reference. Not an operation that always goes to an io-wq worker
     * (fsync): the worker looks the fd up when it runs, after this close, and fails with EBADF.
     * Once {@link #close()} has begun, closes synchronously.
     */
    public void closeDetached(int fd) {
        checkOwner();
        if (closed) {
            Libc.close(fd);
            return;
        }
        long sqe = nextSqe();
        fillSqe(sqe, OP_CLOSE, fd, 0, 0, 0, 0, TOKEN_DETACHED);
        sqes.set(ValueLayout.JAVA_BYTE, sqe + SqeDescriptor.FLAGS, SQE_CQE_SKIP_SUCCESS);
    }

    /**
     * accept(2) on listening socket {@code fd}; with {@code multishot} one completion per connection (new fd
     * or -errno) while {@link #CQE_F_MORE} is set, after which the caller re-arms.
     */
    public long accept(int fd, boolean multishot, CompletionHandler handler, long attachment) {
        long ud = queue(OP_ACCEPT, multishot ? MODE_MULTISHOT : MODE_ONESHOT, fd, 0, 0, 0, Libc.SOCK_CLOEXEC, 1,
            handler, attachment);
        if (ud >= 0 && multishot) {
            sqes.set(ValueLayout.JAVA_SHORT, lastSqeOffset + SqeDescriptor.IOPRIO,
                (short) IoUring.IORING_ACCEPT_MULTISHOT());
        }
        return ud;
    }

    /** connect(2); {@code address} (a sockaddr, at most 64 bytes) is copied. */
    public long connect(int fd, MemorySegment address, CompletionHandler handler, long attachment) {
        if (address.byteSize() > SCRATCH_BYTES) {
            throw new IllegalArgumentException("socket address larger than " + SCRATCH_BYTES + " bytes");
        }
        long ud = queue(OP_CONNECT, MODE_ONESHOT, fd, 0, 0, address.byteSize(), 0, 1, handler, attachment);
        if (ud >= 0) {
            long off = (ud & 0xFFFFFFFFL) * SCRATCH_BYTES;
            MemorySegment.copy(address, 0, scratch, off, address.byteSize());
            sqes.set(ValueLayout.JAVA_LONG, lastSqeOffset + SqeDescriptor.ADDR, scratch.address() + off);
            addrs[(int) ud] = scratch.address() + off;
        }
        return ud;
    }

    /** One recv(2) into {@code buffer}; completes with bytes received (0: peer closed) or -errno. */
    public long recv(int fd, MemorySegment buffer, int msgFlags, CompletionHandler handler, long attachment) {
        checkLength(buffer.byteSize());
        return queue(OP_RECV, MODE_ONESHOT, fd, buffer.address(), (int) buffer.byteSize(), 0, msgFlags, 1,
            handler, attachment);
    }

    /**
     * Multishot recv(2) with buffers from {@code buffers}: one completion per arrival with the byte count and
     * {@link #CQE_F_BUFFER} (buffer id in {@code flags >>> CQE_BUFFER_SHIFT}) while {@link #CQE_F_MORE} is set.
     * -ENOBUFS means the buffer ring ran dry: recycle buffers, then re-arm. A completion without F_MORE ends
     * the operation (re-arm to continue).
     */
    public long recvMultishot(int fd, BufferRing buffers, CompletionHandler handler, long attachment) {
        long ud = queue(OP_RECV, MODE_MULTISHOT, fd, 0, 0, 0, 0, 1, handler, attachment);
        if (ud >= 0) {
            sqes.set(ValueLayout.JAVA_SHORT, lastSqeOffset + SqeDescriptor.IOPRIO,
                (short) IoUring.IORING_RECV_MULTISHOT());
            sqes.set(ValueLayout.JAVA_SHORT, lastSqeOffset + SqeDescriptor.BUF_INDEX, (short) buffers.groupId());
            orFlags(SQE_BUFFER_SELECT);
        }
        return ud;
    }

    /** send(2) of all of {@code buffer} (short sends are resubmitted); MSG_NOSIGNAL is always added. */
    public long send(int fd, MemorySegment buffer, int msgFlags, CompletionHandler handler, long attachment) {
        checkLength(buffer.byteSize());
        return queue(OP_SEND, MODE_FULL, fd, buffer.address(), (int) buffer.byteSize(), 0,
            msgFlags | Libc.MSG_NOSIGNAL, 1, handler, attachment);
    }

    /**
     * sendmsg(2) with a {@code struct msghdr} (iovec gather) that stays valid until completion; completes with
     * bytes sent, which may be short: the caller advances its iovecs and sends the rest.
     */
    public long sendmsg(int fd, MemorySegment msghdr, int msgFlags, CompletionHandler handler, long attachment) {
        return queue(OP_SENDMSG, MODE_ONESHOT, fd, msghdr.address(), 1, 0, msgFlags | Libc.MSG_NOSIGNAL, 1,
            handler, attachment);
    }

    /** shutdown(2). */
    public long shutdown(int fd, int how, CompletionHandler handler, long attachment) {
        return queue(OP_SHUTDOWN, MODE_ONESHOT, fd, 0, how, 0, 0, 1, handler, attachment);
    }

    /**
     * IORING_OP_MSG_RING: posts a CQE with {@code targetUserData} and {@code value} as its result on the
     * ring whose fd is {@code targetRingFd}. This completion carries 0 or -errno.
     */
    public long msgRing(int targetRingFd, long targetUserData, int value, CompletionHandler handler,
                        long attachment) {
        return queue(OP_MSG_RING, MODE_ONESHOT, targetRingFd, IoUring.IORING_MSG_DATA(), value, targetUserData, 0,
            1, handler, attachment);
    }

    /**
     * Registers fixed buffers (IORING_REGISTER_BUFFERS) for {@link #readFixed}/{@link #writeFixed}; index i
     * is {@code buffers[i]}. Counts against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
     */
    public void registerBuffers(MemorySegment... buffers) {
        checkOwner();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment iov = a.allocate(16L * buffers.length, 8);
            for (int i = 0; i < buffers.length; i++) {
                iov.set(ValueLayout.JAVA_LONG, 16L * i, buffers[i].address());
                iov.set(ValueLayout.JAVA_LONG, 16L * i + 8, buffers[i].byteSize());
            }
            int r = Libc.ioUringRegister(ringFd, IoUring.IORING_REGISTER_BUFFERS(), iov, buffers.length);
            if (r < 0) {
                throw new ErrnoException("io_uring_register(BUFFERS, " + buffers.length + ")", -r);
            }
        }
    }

    /** Unregisters the fixed buffers. */
    public void unregisterBuffers() {
        checkOwner();
        int r = Libc.ioUringRegister(ringFd, IoUring.IORING_UNREGISTER_BUFFERS(), MemorySegment.NULL, 0);
        if (r < 0) {
            throw new ErrnoException("io_uring_register(UNREGISTER_BUFFERS)", -r);
        }
    }

    // ------------------------------------------------------------------------------------------ loop

    /** Publishes filled SQEs to the kernel without waiting (used when the SQ is full). */
    private void flushSubmissions() {
        int toSubmit = sqTail - sqSubmitted;
        if (toSubmit == 0) {
            return;
        }
        INT.setRelease(ringMem, sqTailOff, sqTail);
        enter(toSubmit, 0, 0L);
    }

    /** One io_uring_enter; handles EINTR, EBUSY and EAGAIN. Returns what the kernel returned, or -ETIME. */
    private int enter(int toSubmit, int minComplete, long timeoutNs) {
        if (timeoutNs > 0) {
            enterTimespec.set(ValueLayout.JAVA_LONG, 0, timeoutNs / 1_000_000_000L);
            enterTimespec.set(ValueLayout.JAVA_LONG, 8, timeoutNs % 1_000_000_000L);
        }
        int attempts = 0;
        while (true) {
            stats.add(RingStats.ENTERS, 1);
            int r = Libc.ioUringEnter(enterFd, toSubmit, minComplete, enterFlags, enterArg,
                io_uring_getevents_arg.layout().byteSize());
            if (r >= 0) {
                sqSubmitted += r;
                stats.add(RingStats.SUBMITTED, r);
                if (r < toSubmit) {
                    // SUBMIT_ALL stops only on an SQE it could not even prepare; those are reported as CQEs.
                    toSubmit -= r;
                    minComplete = 0;
                    if (++attempts > MAX_RETRIES) {
                        throw new IllegalStateException("io_uring_enter keeps consuming fewer SQEs than submitted");
                    }
                    continue;
                }
                return r;
            }
            if (r == -Errno.ETIME || (r == -Errno.EINTR && minComplete > 0)) {
                // Timed out, or a signal interrupted the wait: submissions (if any) were consumed already.
                return toSubmit == 0 ? r : 0;
            }
            if (r == -Errno.EINTR || r == -Errno.EBUSY || r == -Errno.EAGAIN) {
                stats.add(RingStats.EBUSY_RETRIES, 1);
                if (++attempts > MAX_RETRIES * 64) {
                    throw new ErrnoException("io_uring_enter (retried " + attempts + " times)", -r);
                }
                // Overflowed completions are pending (EBUSY) or the kernel is short of memory (EAGAIN):
                // make room by dispatching what is in the CQ, then try again without waiting.
                reap();
                minComplete = 0;
                continue;
            }
            throw new ErrnoException("io_uring_enter", -r);
        }
    }

    @Override
    public int submitAndWait(long timeoutNs) {
        checkOwner();
        sendSignals();
        boolean wait = timeoutNs > 0 && !wokenSinceWait && cqReady() == 0;
        wokenSinceWait = false;
        int toSubmit = sqTail - sqSubmitted;
        INT.setRelease(ringMem, sqTailOff, sqTail);
        enter(toSubmit, wait ? 1 : 0, wait ? timeoutNs : 0);
        int n = reap();
        // Completions the kernel could not fit into the CQ wait in its overflow list: flush them now.
        for (int i = 0; i < 4 && (((int) INT.getAcquire(ringMem, sqFlagsOff)) & SQ_CQ_OVERFLOW) != 0; i++) {
            stats.add(RingStats.CQ_OVERFLOWS, 1);
            enter(0, 0, 0);
            n += reap();
        }
        return n;
    }

    private int cqReady() {
        return (int) INT.getAcquire(ringMem, cqTailOff) - cqHead;
    }

    @Override
    public int reap() {
        checkOwner();
        int count = 0;
        while (true) {
            int tail = (int) INT.getAcquire(ringMem, cqTailOff);
            if (tail == cqHead) {
                break;
            }
            while (cqHead != tail) {
                long cqe = cqesOff + (long) (cqHead & cqMask) * SqeDescriptor.CQE_SIZE;
                long ud = ringMem.get(ValueLayout.JAVA_LONG, cqe + SqeDescriptor.CQE_USER_DATA);
                int res = ringMem.get(ValueLayout.JAVA_INT, cqe + SqeDescriptor.CQE_RES);
                int flags = ringMem.get(ValueLayout.JAVA_INT, cqe + SqeDescriptor.CQE_FLAGS);
                cqHead++;
                // Release the CQE before dispatching: the handler may queue work that enters the kernel.
                INT.setRelease(ringMem, cqHeadOff, cqHead);
                dispatch(ud, res, flags);
                count++;
            }
        }
        if (count > 0) {
            stats.add(RingStats.COMPLETED, count);
        }
        return count;
    }

    private void dispatch(long ud, int res, int flags) {
        if (ud < 0) {
            internal(ud, res);
            return;
        }
        int slot = (int) ud;
        int gen = (int) ((ud >>> 32) & 0xFFFFFF);
        if (slot < 0 || slot >= handlers.length || generations[slot] != gen || handlers[slot] == null) {
            stats.add(RingStats.STALE_COMPLETIONS, 1);
            return;
        }
        byte mode = modes[slot];
        if (mode == MODE_FULL) {
            if ((res == -Errno.EINTR || res == -Errno.EAGAIN) && retries[slot] < MAX_RETRIES) {
                retries[slot]++;
                resubmit(slot, ud);
                return;
            }
            if (res > 0) {
                int align = aligns[slot];
                int done = dones[slot] + res;
                int total = lens[slot];
                boolean isRead = opcodes[slot] == OP_READ || opcodes[slot] == OP_READ_FIXED;
                if (done < total && isRead && align > 1 && done % align != 0) {
                    // A direct read stops short of an aligned boundary only at end of file.
                    res = done;
                } else if (done < total) {
                    int aligned = align > 1 ? done - (done % align) : done;
                    if (aligned > dones[slot]) {
                        dones[slot] = aligned;
                        resubmit(slot, ud);
                        return;
                    }
                    // A short transfer that did not advance an aligned boundary cannot be continued.
                    res = -Errno.EIO;
                } else {
                    res = done;
                }
            } else if (res == 0 && dones[slot] > 0) {
                res = dones[slot]; // end of file after a partial read
            }
        }
        if (res < 0) {
            stats.add(RingStats.ERRORS, 1);
        }
        CompletionHandler handler = handlers[slot];
        long attachment = attachments[slot];
        if (mode != MODE_MULTISHOT || (flags & CQE_F_MORE) == 0) {
            freeSlot(slot);
            stats.set(RingStats.IN_FLIGHT, inFlight);
        }
        try {
            handler.onComplete(res, flags, attachment);
        } catch (RuntimeException | AssertionError e) {
            stats.add(RingStats.HANDLER_FAILURES, 1);
            LOG.log(System.Logger.Level.ERROR, "completion handler " + handler.getClass().getName()
                + " failed for result " + res, e);
        }
    }

    private void internal(long ud, int res) {
        long kind = ud & TOKEN_KIND_MASK;
        if (kind == (TOKEN_WAKE & TOKEN_KIND_MASK)) {
            stats.add(RingStats.WAKEUPS, 1);
        } else if (kind == (TOKEN_EVENTFD & TOKEN_KIND_MASK)) {
            stats.add(RingStats.WAKEUPS, 1);
            WAKE_PENDING.setVolatile(this, 0);
            wokenSinceWait = true;
            if (!closed) {
                if (res < 0 && res != -Errno.ECANCELED) {
                    LOG.log(System.Logger.Level.WARNING, "eventfd read failed: " + Errno.describe(res));
                }
                armEventFd();
            }
        } else if (kind == (TOKEN_SIGNAL & TOKEN_KIND_MASK)) {
            // Our MSG_RING to another shard failed (success CQEs are skipped): wake it the slow way.
            int target = (int) (ud & 0xFFFFFFL);
            LOG.log(System.Logger.Level.WARNING, "MSG_RING to ring fd " + target + " failed: " + Errno.describe(res));
            for (int i = 0; i < signalTargets.length; i++) {
                if (signalTargets[i] instanceof Ring r && r.ringFd == target) {
                    r.wakeup();
                }
            }
        } else if (kind == (TOKEN_DETACHED & TOKEN_KIND_MASK)) {
            // A detached cancel that found nothing (the target had completed) or a detached close that failed:
            // the owner learns what it needs from the target's own completion.
            if (res < 0 && res != -Errno.ENOENT && res != -Errno.EALREADY) {
                stats.add(RingStats.ERRORS, 1);
            }
        } else if (kind != (TOKEN_CANCEL & TOKEN_KIND_MASK)) {
            stats.add(RingStats.STALE_COMPLETIONS, 1);
        }
    }

    private void armEventFd() {
        fillSqe(nextSqe(), OP_READ, eventFd, eventFdValue.address(), 8, 0, 0, TOKEN_EVENTFD);
    }

    @Override
    public void wakeup() {
        if (WAKE_PENDING.compareAndSet(this, 0, 1)) {
            long r = Libc.write(eventFd, ONE, 8);
            if (r < 0 && r != -Errno.EAGAIN) {
                LOG.log(System.Logger.Level.WARNING, "eventfd write failed: " + Errno.describe((int) r));
            }
        }
    }

    @Override
    public void signal(IoDriver target) {
        checkOwner();
        if (target == this) {
            return;
        }
        if (!(target instanceof Ring)) {
            target.wakeup();
            return;
        }
        for (int i = 0; i < signalCount; i++) {
            if (signalTargets[i] == target) {
                return;
            }
        }
        if (signalCount == signalTargets.length) {
            signalTargets = Arrays.copyOf(signalTargets, signalCount * 2);
        }
        signalTargets[signalCount++] = target;
    }

    private void sendSignals() {
        for (int i = 0; i < signalCount; i++) {
            Ring target = (Ring) signalTargets[i];
            long sqe = nextSqe();
            fillSqe(sqe, OP_MSG_RING, target.ringFd, IoUring.IORING_MSG_DATA(), 0, TOKEN_WAKE, 0,
                TOKEN_SIGNAL | target.ringFd);
            sqes.set(ValueLayout.JAVA_BYTE, sqe + SqeDescriptor.FLAGS, SQE_CQE_SKIP_SUCCESS);
            signalTargets[i] = null;
            stats.add(RingStats.SIGNALS_SENT, 1);
        }
        signalCount = 0;
    }

    // ------------------------------------------------------------------------------------------ info

    /** The ring's fd (for MSG_RING from other rings). */
    public int ringFd() {
        return ringFd;
    }

    /** Whether {@link #close()} has begun: no new operations are accepted. */
    public boolean isClosed() {
        return closed;
    }

    /** Operations queued or in flight. */
    public int inFlight() {
        return inFlight;
    }

    /** Whether the kernel accepted IORING_SETUP_NO_SQARRAY. */
    public boolean noSqArray() {
        return noSqArray;
    }

    public RingConfig config() {
        return config;
    }

    /** Any thread. */
    public RingStats stats() {
        return stats;
    }

    public Thread owner() {
        return owner;
    }

    @Override
    public String backendName() {
        return "io_uring";
    }

    /**
     * Cancels every operation in flight (they complete with -ECANCELED or their own result), waits for their
     * completions (bounded: 5 s), then unmaps the rings and closes the ring and eventfd. Owner thread.
     */
    @Override
    public void close() {
        checkOwner();
        if (closed) {
            return;
        }
        closed = true;
        long sqe = nextSqe();
        fillSqe(sqe, OP_ASYNC_CANCEL, -1, 0, 0, 0, IoUring.IORING_ASYNC_CANCEL_ANY(), TOKEN_CANCEL);
        long deadline = System.nanoTime() + 5_000_000_000L;
        submitAndWait(0);
        while (inFlight > 0 && System.nanoTime() < deadline) {
            submitAndWait(10_000_000L);
        }
        if (inFlight > 0) {
            LOG.log(System.Logger.Level.WARNING, inFlight + " io_uring operations did not complete within 5 s of"
                + " close; their buffers must not be reused");
        }
        // The eventfd read was cancelled with the rest; drain its completion if it is still pending.
        submitAndWait(0);
        Libc.close(eventFd);
        releaseMemory();
    }

    private void releaseMemory() {
        Libc.munmap(sqes);
        Libc.munmap(ringMem);
        Libc.close(ringFd);
        arena.close();
    }

    @Override
    public String toString() {
        return "Ring{fd=" + ringFd + ", sq=" + sqEntries + ", inFlight=" + inFlight + ", owner=" + owner.getName() + "}";
    }
}
