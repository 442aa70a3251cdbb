/**
 * io_uring driven from Java, and the portable engine that behaves the same where io_uring is blocked.
 *
 * <p>{@link dev.isthmus.uring.Ring} is one io_uring (SQEs filled and CQEs reaped in Java, one enter per loop
 * turn); {@link dev.isthmus.uring.IoEngine} adds O_DIRECT files ({@link dev.isthmus.uring.DmaFile}) and sockets
 * ({@link dev.isthmus.uring.TcpListener}, {@link dev.isthmus.uring.TcpConnection} with receive flow control,
 * {@link dev.isthmus.uring.ConnectAttempt}). Everything here is owned by one thread, the shard's; only
 * {@link dev.isthmus.uring.IoDriver#wakeup()} and statistics may be used from others. The shard runtime lives in
 * {@link dev.isthmus.uring.shard}.
 */
package dev.isthmus.uring;
