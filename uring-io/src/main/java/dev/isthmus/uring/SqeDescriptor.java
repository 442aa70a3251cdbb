package dev.isthmus.uring;

import dev.isthmus.ffi.gen.uring.io_uring_cqe;
import dev.isthmus.ffi.gen.uring.io_uring_sqe;

/**
 * Layout of a submission queue entry ({@code struct io_uring_sqe}, 64 bytes) and a completion queue entry
 * ({@code struct io_uring_cqe}, 16 bytes), as {@link Ring} writes and reads them.
 * <pre>
 *  0       1       2               4                               8
 *  +-------+-------+---------------+-------------------------------+
 *  |opcode | flags |    ioprio     |              fd               |
 *  +-------+-------+---------------+-------------------------------+
 *  8  off / addr2 (u64)                                            16
 *  16 addr / splice_off_in (u64)                                   24
 *  24 len (u32)                    | op flags (rw/fsync/msg/...)   32
 *  32 user_data (u64)                                              40
 *  40 buf_index/buf_group (u16) | personality (u16) | file_index/addr_len (u32)  48
 *  48 addr3 (u64)                                                  56
 *  56 pad (u64)                                                    64
 * </pre>
 * CQE: user_data u64 at 0, res s32 at 8, flags u32 at 12. The static block checks these offsets against
 * the jextract-generated layouts, so a header change cannot silently shift a field.
 */
public final class SqeDescriptor {
    public static final int SQE_SIZE = 64;
    public static final long OPCODE = 0;
    public static final long FLAGS = 1;
    public static final long IOPRIO = 2;
    public static final long FD = 4;
    public static final long OFF = 8;
    public static final long ADDR = 16;
    public static final long LEN = 24;
    public static final long OP_FLAGS = 28;
    public static final long USER_DATA = 32;
    public static final long BUF_INDEX = 40;
    public static final long PERSONALITY = 42;
    public static final long FILE_INDEX = 44;
    public static final long ADDR3 = 48;

    public static final int CQE_SIZE = 16;
    public static final long CQE_USER_DATA = 0;
    public static final long CQE_RES = 8;
    public static final long CQE_FLAGS = 12;

    static {
        Verify.that(io_uring_sqe.layout().byteSize() == SQE_SIZE, "sqe size");
        Verify.that(io_uring_sqe.opcode$offset() == OPCODE, "sqe.opcode");
        Verify.that(io_uring_sqe.flags$offset() == FLAGS, "sqe.flags");
        Verify.that(io_uring_sqe.ioprio$offset() == IOPRIO, "sqe.ioprio");
        Verify.that(io_uring_sqe.fd$offset() == FD, "sqe.fd");
        Verify.that(io_uring_sqe.off$offset() == OFF, "sqe.off");
        Verify.that(io_uring_sqe.addr$offset() == ADDR, "sqe.addr");
        Verify.that(io_uring_sqe.len$offset() == LEN, "sqe.len");
        Verify.that(io_uring_sqe.rw_flags$offset() == OP_FLAGS, "sqe.rw_flags");
        Verify.that(io_uring_sqe.user_data$offset() == USER_DATA, "sqe.user_data");
        Verify.that(io_uring_sqe.buf_index$offset() == BUF_INDEX, "sqe.buf_index");
        Verify.that(io_uring_sqe.personality$offset() == PERSONALITY, "sqe.personality");
        Verify.that(io_uring_sqe.file_index$offset() == FILE_INDEX, "sqe.file_index");
        Verify.that(io_uring_sqe.addr3$offset() == ADDR3, "sqe.addr3");
        Verify.that(io_uring_cqe.layout().byteSize() == CQE_SIZE, "cqe size");
        Verify.that(io_uring_cqe.user_data$offset() == CQE_USER_DATA, "cqe.user_data");
        Verify.that(io_uring_cqe.res$offset() == CQE_RES, "cqe.res");
        Verify.that(io_uring_cqe.flags$offset() == CQE_FLAGS, "cqe.flags");
    }

    private SqeDescriptor() {
    }
}
