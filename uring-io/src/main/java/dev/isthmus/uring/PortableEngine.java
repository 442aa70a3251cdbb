package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import org.jctools.queues.atomic.MpscUnboundedAtomicArrayQueue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The portable {@link IoEngine} for hosts where io_uring is blocked (seccomp, {@code io_uring_disabled}):
 * files through {@link java.nio.channels.FileChannel} with {@code ExtendedOpenOption.DIRECT} on a shared pool
 * of blocking worker threads (so many operations are still in flight and complete out of order), sockets
 * through NIO with one {@link Selector} per engine. Completions are delivered on the owner thread from
 * {@link #reap()} and {@link #submitAndWait(long)}, exactly as on io_uring.
 *
 * <p>Slower than io_uring (a thread hop per file operation, a small object per completion) but complete:
 * the same tests pass on both.
 */
public final class PortableEngine implements IoEngine {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring");
    static final int RECEIVE_BUFFER_COUNT = 256;
    static final int RECEIVE_BUFFER_BYTES = 16 * 1024;

    private static final ExecutorService FILE_WORKERS = Executors.newFixedThreadPool(
        Math.max(8, 2 * Runtime.getRuntime().availableProcessors()), new ThreadFactory() {
            private final AtomicInteger n = new AtomicInteger();

            @Override
            public Thread newThread(Runnable r) {
                Thread t = new Thread(r, "isthmus-portable-io-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            }
        });

    /** A completion travelling to the owner thread. */
    record Completion(CompletionHandler handler, int result, int flags, long attachment) {
    }

    private final Thread owner = Thread.currentThread();
    private final Selector selector;
    private final int maxInFlight;
    private final MpscUnboundedAtomicArrayQueue<Completion> fromWorkers = new MpscUnboundedAtomicArrayQueue<>(1024);
    private final ArrayDeque<Runnable> local = new ArrayDeque<>();
    private final AtomicInteger inFlight = new AtomicInteger();
    private long nextOpId;
    private Arena receiveArena;
    private MemorySegment receiveMemory;
    private ByteBuffer[] receiveViews;
    private int[] freeBuffers;
    private int freeTop;
    private final ArrayDeque<PortableTcpConnection> starved = new ArrayDeque<>();
    /** Connects in progress with a timeout (few at a time: a linear scan per loop turn is cheapest). */
    private final java.util.ArrayList<PortableConnect> connectDeadlines = new java.util.ArrayList<>();
    private boolean closed;

    public PortableEngine(int maxInFlight) {
        this.maxInFlight = maxInFlight;
        try {
            this.selector = Selector.open();
        } catch (IOException e) {
            throw new IllegalStateException("cannot open a NIO selector: " + e.getMessage(), e);
        }
    }

    void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("PortableEngine is owned by " + owner.getName() + ", called from "
                + Thread.currentThread().getName());
        }
    }

    // ------------------------------------------------------------------------------------------ driver

    @Override
    public int reap() {
        checkOwner();
        try {
            if (selector.selectNow() > 0) {
                processKeys();
            }
            expireConnects();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "selectNow failed", e);
        }
        return drain();
    }

    @Override
    public int submitAndWait(long timeoutNs) {
        checkOwner();
        try {
            int n;
            if (timeoutNs <= 0 || !local.isEmpty() || !fromWorkers.isEmpty()) {
                n = selector.selectNow();
            } else {
                long waitNs = untilNextDeadline(timeoutNs);
                n = selector.select(Math.max(1, (waitNs + 999_999) / 1_000_000));
            }
            if (n > 0) {
                processKeys();
            }
            expireConnects();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "select failed", e);
        }
        return drain();
    }

    private int drain() {
        int count = 0;
        Runnable r;
        while ((r = local.poll()) != null) {
            run(r);
            count++;
        }
        Completion c;
        while ((c = fromWorkers.relaxedPoll()) != null) {
            inFlight.decrementAndGet();
            deliver(c.handler(), c.result(), c.flags(), c.attachment());
            count++;
        }
        return count;
    }

    private static void run(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException | AssertionError e) {
            LOG.log(System.Logger.Level.ERROR, "completion failed", e);
        }
    }

    private static void deliver(CompletionHandler h, int result, int flags, long attachment) {
        try {
            h.onComplete(result, flags, attachment);
        } catch (RuntimeException | AssertionError e) {
            LOG.log(System.Logger.Level.ERROR, "completion handler " + h.getClass().getName() + " failed", e);
        }
    }

    private void processKeys() {
        Iterator<SelectionKey> it = selector.selectedKeys().iterator();
        while (it.hasNext()) {
            SelectionKey key = it.next();
            it.remove();
            Object a = key.attachment();
            try {
                if (!key.isValid()) {
                    continue;
                }
                if (a instanceof PortableTcpListener l) {
                    l.onAcceptable();
                } else if (a instanceof PortableTcpConnection c) {
                    c.onReady(key.readyOps());
                } else if (a instanceof PortableConnect p) {
                    p.onConnectable();
                }
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "socket event failed", e);
            }
        }
    }

    @Override
    public void wakeup() {
        selector.wakeup();
    }

    @Override
    public void signal(IoDriver target) {
        target.wakeup();
    }

    @Override
    public String backendName() {
        return "portable";
    }

    /** Runs {@code r} on the owner thread during the next reap (a completion produced on the owner thread). */
    void later(Runnable r) {
        local.add(r);
    }

    Selector selector() {
        return selector;
    }

    /**
     * Runs {@code work} on a file worker; its int result (bytes or -errno) completes {@code handler} on the
     * owner thread. Returns an operation id or -EBUSY.
     */
    long submitFileOp(java.util.function.IntSupplier work, CompletionHandler handler, long attachment) {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("engine is closed");
        }
        if (inFlight.get() >= maxInFlight) {
            return -Errno.EBUSY;
        }
        inFlight.incrementAndGet();
        long id = nextOpId++;
        FILE_WORKERS.execute(() -> {
            int result;
            try {
                result = work.getAsInt();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "file operation failed", e);
                result = -Errno.EIO;
            }
            fromWorkers.offer(new Completion(handler, result, 0, attachment));
            selector.wakeup();
        });
        return id;
    }

    /** Maps an I/O exception of the portable path to an errno (Java hides the real one). */
    static int errnoOf(IOException e) {
        if (e instanceof ClosedChannelException) {
            return -Errno.EBADF;
        }
        String m = String.valueOf(e.getMessage());
        if (m.contains("No space left")) {
            return -Errno.ENOSPC;
        }
        if (m.contains("Connection reset")) {
            return -Errno.ECONNRESET;
        }
        if (m.contains("Broken pipe")) {
            return -Errno.EPIPE;
        }
        if (m.contains("Connection refused")) {
            return -Errno.ECONNREFUSED;
        }
        if (m.contains("Connection timed out")) {
            return -Errno.ETIMEDOUT;
        }
        if (m.contains("Invalid argument")) {
            return -Errno.EINVAL;
        }
        return -Errno.EIO;
    }

    // ------------------------------------------------------------------------------------------ files

    @Override
    public DmaFile openDmaFile(Path path, boolean create) {
        checkOwner();
        return PortableDmaFile.open(this, path, create);
    }

    @Override
    public long syncDirectory(Path dir, CompletionHandler handler, long attachment) {
        checkOwner();
        return submitFileOp(() -> {
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir,
                java.nio.file.StandardOpenOption.READ)) {
                ch.force(true);
                return 0;
            } catch (java.io.IOException e) {
                return errnoOf(e);
            }
        }, handler, attachment);
    }

    // ------------------------------------------------------------------------------------------ sockets

    @Override
    public TcpListener listen(InetSocketAddress address, boolean reusePort, int backlog,
                              TcpListener.AcceptHandler handler) {
        checkOwner();
        try {
            ServerSocketChannel ch = ServerSocketChannel.open();
            try {
                ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                if (reusePort) {
                    ch.setOption(StandardSocketOptions.SO_REUSEPORT, true);
                }
                ch.bind(address, backlog);
                ch.configureBlocking(false);
                PortableTcpListener l = new PortableTcpListener(this, ch, handler);
                ch.register(selector, SelectionKey.OP_ACCEPT, l);
                return l;
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot listen on " + address + ": " + e.getMessage(), e);
        }
    }

    @Override
    public ConnectAttempt connect(InetSocketAddress address, long timeoutNs, TcpConnection.ConnectHandler handler) {
        checkOwner();
        if (handler == null) {
            throw new IllegalArgumentException("connect handler is null");
        }
        PortableConnect attempt = new PortableConnect(handler);
        try {
            attempt.ch = SocketChannel.open();
            attempt.ch.configureBlocking(false);
            if (attempt.ch.connect(address)) {
                later(attempt::connected); // loopback may connect at once; the handler still runs later
                return attempt;
            }
            attempt.key = attempt.ch.register(selector, SelectionKey.OP_CONNECT, attempt);
            if (timeoutNs > 0) {
                attempt.deadlineNs = System.nanoTime() + timeoutNs;
                connectDeadlines.add(attempt);
            }
        } catch (IOException e) {
            closeQuietly(attempt.ch);
            int err = errnoOf(e);
            later(() -> attempt.finish(null, err));
        }
        return attempt;
    }

    /** A connect in progress: waiting for OP_CONNECT, its deadline or a cancel. Owner thread only. */
    private final class PortableConnect implements ConnectAttempt {
        private final TcpConnection.ConnectHandler handler;
        SocketChannel ch;
        SelectionKey key;
        /** System.nanoTime() deadline, 0 for none. */
        long deadlineNs;
        private boolean done;

        PortableConnect(TcpConnection.ConnectHandler handler) {
            this.handler = handler;
        }

        void onConnectable() {
            if (done) {
                return;
            }
            try {
                if (ch.finishConnect()) {
                    connected();
                }
            } catch (IOException e) {
                abandon();
                finish(null, errnoOf(e));
            }
        }

        void connected() {
            if (done) {
                return;
            }
            connectDeadlines.remove(this);
            PortableTcpConnection c;
            try {
                c = newConnection(ch);
            } catch (IOException e) {
                abandon();
                finish(null, errnoOf(e));
                return;
            }
            finish(c, 0);
        }

        void expire() {
            if (!done) {
                abandon();
                finish(null, -Errno.ETIMEDOUT);
            }
        }

        void finish(TcpConnection c, int result) {
            if (!done) {
                done = true;
                handler.onConnect(c, result);
            }
        }

        /** Closes the socket (the selector drops the key on its next select, which closes the descriptor). */
        private void abandon() {
            connectDeadlines.remove(this);
            if (key != null) {
                key.cancel();
            }
            closeQuietly(ch);
        }

        @Override
        public boolean cancel() {
            if (done) {
                return false;
            }
            done = true;
            abandon();
            return true;
        }

        @Override
        public boolean isDone() {
            return done;
        }
    }

    /** Fails the connects whose deadline has passed. */
    private void expireConnects() {
        if (connectDeadlines.isEmpty()) {
            return;
        }
        long now = System.nanoTime();
        for (int i = connectDeadlines.size() - 1; i >= 0; i--) {
            if (i < connectDeadlines.size() && now - connectDeadlines.get(i).deadlineNs >= 0) {
                connectDeadlines.get(i).expire();
            }
        }
    }

    /** Nanoseconds until the earliest connect deadline (at least 1), or {@code limitNs} if that is sooner. */
    private long untilNextDeadline(long limitNs) {
        long now = System.nanoTime();
        long wait = limitNs;
        for (int i = 0; i < connectDeadlines.size(); i++) {
            wait = Math.min(wait, Math.max(1, connectDeadlines.get(i).deadlineNs - now));
        }
        return wait;
    }

    PortableTcpConnection newConnection(SocketChannel ch) throws IOException {
        ch.configureBlocking(false);
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        return new PortableTcpConnection(this, ch);
    }

    static void closeQuietly(java.io.Closeable c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing after a failure: the first error is what matters
            }
        }
    }

    // ------------------------------------------------------------------------------------------ receive buffers

    /** Takes a receive buffer id, or -1 when all are out. */
    int takeBuffer() {
        if (receiveMemory == null) {
            receiveArena = Arena.ofShared();
            receiveMemory = receiveArena.allocate((long) RECEIVE_BUFFER_COUNT * RECEIVE_BUFFER_BYTES, 4096);
            receiveViews = new ByteBuffer[RECEIVE_BUFFER_COUNT];
            freeBuffers = new int[RECEIVE_BUFFER_COUNT];
            for (int i = 0; i < RECEIVE_BUFFER_COUNT; i++) {
                receiveViews[i] = receiveMemory.asSlice((long) i * RECEIVE_BUFFER_BYTES, RECEIVE_BUFFER_BYTES)
                    .asByteBuffer();
                freeBuffers[freeTop++] = RECEIVE_BUFFER_COUNT - 1 - i;
            }
        }
        return freeTop == 0 ? -1 : freeBuffers[--freeTop];
    }

    ByteBuffer bufferView(int bid) {
        return receiveViews[bid].clear();
    }

    MemorySegment receiveMemory() {
        return receiveMemory;
    }

    void releaseBuffer(int bid) {
        Verify.that(bid >= 0 && bid < RECEIVE_BUFFER_COUNT && freeTop < RECEIVE_BUFFER_COUNT, "bad buffer id %d", bid);
        freeBuffers[freeTop++] = bid;
        // The first waiting connection that still wants to read (not closed or suspended meanwhile) reads again.
        PortableTcpConnection c;
        while ((c = starved.poll()) != null) {
            if (c.buffersAvailable()) {
                return;
            }
        }
    }

    void starved(PortableTcpConnection c) {
        starved.add(c);
    }

    @Override
    public void close() {
        checkOwner();
        if (closed) {
            return;
        }
        closed = true;
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            submitAndWait(10_000_000L);
        }
        drain();
        for (SelectionKey k : selector.keys()) {
            closeQuietly(k.channel());
        }
        closeQuietly(selector);
        if (receiveArena != null) {
            receiveArena.close();
        }
    }
}
