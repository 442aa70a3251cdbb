package dev.isthmus.gateway;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small HTTP/1.1 server for GET endpoints (metrics and health), on one platform thread of its own running a
 * non-blocking {@link Selector} loop, so that no client can delay another: a client that sends half a request
 * line and waits, or never reads its response, holds only its own connection, and only until its deadline.
 *
 * <h2>Lifecycle and threads</h2>
 * {@link #start} binds and starts the thread; {@link #close} stops it and closes every connection. Routes run on
 * the endpoint's thread and must not block: they answer at once or later, from any thread, through
 * {@link Exchange#reply}. {@link #execute} and {@link #schedule} run work on the endpoint's thread.
 *
 * <h2>Limits (per connection)</h2>
 * <ul>
 *   <li>The request head (request line and headers) must arrive within {@link Limits#headTimeoutNs()} of the
 *       accept (else 408 and close) and fit in {@link Limits#maxHeadBytes()} (else 431 and close).</li>
 *   <li>A route must answer within {@link Limits#responseTimeoutNs()} (else 503), and the client must take the
 *       whole response within the same time once it is ready (else the connection is closed).</li>
 *   <li>At most {@link Limits#maxConnections()} connections: at the limit a new connection replaces the oldest
 *       one still sending its request head, or is closed when there is none.</li>
 * </ul>
 * One request per connection ({@code Connection: close}); a body sent with a GET is not read. Methods other
 * than GET and HEAD get 405, unknown paths 404, a request line that is not HTTP 400. After its response a
 * connection is half-closed and read to its end (at most 2 s) before it is closed, so that unread request bytes
 * do not turn the close into a reset that could destroy the response.
 */
final class HttpEndpoint implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(HttpEndpoint.class.getName());

    /** Deadlines and sizes; see the class comment. */
    record Limits(long headTimeoutNs, long responseTimeoutNs, int maxHeadBytes, int maxConnections) {
        static final Limits DEFAULT = new Limits(10_000_000_000L, 10_000_000_000L, 16 * 1024, 1024);

        Limits {
            if (headTimeoutNs <= 0 || responseTimeoutNs <= 0 || maxHeadBytes < 256 || maxConnections < 1) {
                throw new IllegalArgumentException("bad HTTP endpoint limits: " + headTimeoutNs + " ns, "
                    + responseTimeoutNs + " ns, " + maxHeadBytes + " bytes, " + maxConnections + " connections");
            }
        }
    }

    /** A finished response. */
    record Response(int status, String contentType, byte[] body) {
        static Response text(int status, String body) {
            return new Response(status, "text/plain; charset=utf-8", body.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** Handles the requests for one path; runs on the endpoint's thread and must not block. */
    @FunctionalInterface
    interface Route {
        void handle(Exchange exchange);
    }

    /** One request: its path, and the means to answer it (once, from any thread). */
    final class Exchange {
        private final Client client;
        private final String path;

        private Exchange(Client client, String path) {
            this.client = client;
            this.path = path;
        }

        String path() {
            return path;
        }

        /** Any thread: answers the request; a second answer, or one after the deadline, is dropped. */
        void reply(Response r) {
            execute(() -> client.respond(r));
        }
    }

    private enum State { HEAD, ROUTING, WRITING, DRAINING }

    /** How long a connection whose response went out may take to close its side (a lingering close). */
    private static final long DRAIN_NS = 2_000_000_000L;

    /** One connection; endpoint thread only. */
    private final class Client {
        final SocketChannel ch;
        final SelectionKey key;
        final ByteBuffer in;
        State state = State.HEAD;
        long deadlineNs;
        ByteBuffer out;
        boolean head;
        boolean closed;

        Client(SocketChannel ch, SelectionKey key, long nowNs) {
            this.ch = ch;
            this.key = key;
            this.in = ByteBuffer.allocate(limits.maxHeadBytes());
            this.deadlineNs = nowNs + limits.headTimeoutNs();
        }

        void respond(Response r) {
            if (closed || state != State.ROUTING) {
                return;
            }
            byte[] body = head ? new byte[0] : r.body();
            String headers = "HTTP/1.1 " + r.status() + " " + reason(r.status()) + "\r\nContent-Type: "
                + r.contentType() + "\r\nContent-Length: " + r.body().length + "\r\nConnection: close\r\n\r\n";
            byte[] h = headers.getBytes(StandardCharsets.US_ASCII);
            out = ByteBuffer.allocate(h.length + body.length).put(h).put(body).flip();
            state = State.WRITING;
            deadlineNs = System.nanoTime() + limits.responseTimeoutNs();
            key.interestOps(SelectionKey.OP_WRITE);
            write();
        }

        void write() {
            try {
                ch.write(out);
            } catch (IOException e) {
                close();
                return;
            }
            if (!out.hasRemaining()) {
                // A lingering close: closing now with unread request bytes would reset the connection and could
                // destroy the response before the client reads it. Half-close, then wait for the client's end.
                try {
                    ch.shutdownOutput();
                } catch (IOException e) {
                    close();
                    return;
                }
                state = State.DRAINING;
                deadlineNs = System.nanoTime() + Math.min(DRAIN_NS, limits.headTimeoutNs());
                key.interestOps(SelectionKey.OP_READ);
            }
        }

        void drain() {
            ByteBuffer sink = ByteBuffer.allocate(4096);
            try {
                int n;
                while ((n = ch.read(sink)) > 0) {
                    sink.clear();
                }
                if (n < 0) {
                    close();
                }
            } catch (IOException e) {
                close();
            }
        }

        void read() {
            int n;
            try {
                n = ch.read(in);
            } catch (IOException e) {
                close();
                return;
            }
            if (n < 0) {
                close();
                return;
            }
            int end = headEnd(in);
            if (end < 0) {
                if (!in.hasRemaining()) {
                    reject(431, "the request head is larger than " + limits.maxHeadBytes() + " bytes\n");
                }
                return;
            }
            key.interestOps(0); // one request per connection: nothing more is read
            String headText = new String(in.array(), 0, end, StandardCharsets.ISO_8859_1);
            int eol = headText.indexOf('\n');
            String line = (eol < 0 ? headText : headText.substring(0, eol)).strip();
            String[] parts = line.split(" ");
            if (parts.length != 3 || !parts[2].startsWith("HTTP/1.")) {
                state = State.ROUTING;
                respond(Response.text(400, "expected a request line like 'GET /metrics HTTP/1.1'\n"));
                return;
            }
            state = State.ROUTING;
            deadlineNs = System.nanoTime() + limits.responseTimeoutNs();
            head = parts[0].equals("HEAD");
            if (!head && !parts[0].equals("GET")) {
                respond(new Response(405, "text/plain; charset=utf-8",
                    ("method " + parts[0] + " is not allowed; use GET\n").getBytes(StandardCharsets.UTF_8)));
                return;
            }
            String path = parts[1];
            int q = path.indexOf('?');
            if (q >= 0) {
                path = path.substring(0, q);
            }
            Route route = routes.get(path);
            if (route == null) {
                respond(Response.text(404, "no such path: " + path + "; try " + String.join(", ", routes.keySet())
                    + "\n"));
                return;
            }
            try {
                route.handle(new Exchange(this, path));
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "HTTP route " + path + " failed", e);
                respond(Response.text(500, "internal error\n"));
            }
        }

        void reject(int status, String why) {
            key.interestOps(0);
            state = State.ROUTING;
            respond(Response.text(status, why));
        }

        void expire() {
            switch (state) {
                case HEAD -> {
                    timedOut.incrementAndGet();
                    reject(408, "the request head did not arrive within " + limits.headTimeoutNs() / 1_000_000
                        + " ms\n");
                }
                case ROUTING -> {
                    timedOut.incrementAndGet();
                    respond(Response.text(503, "no answer within " + limits.responseTimeoutNs() / 1_000_000 + " ms\n"));
                }
                case WRITING -> {
                    timedOut.incrementAndGet();
                    close(); // the client does not take its response
                }
                case DRAINING -> close(); // answered; the client did not close its side: done with it anyway
            }
        }

        void close() {
            if (closed) {
                return;
            }
            closed = true;
            clients.remove(this);
            key.cancel();
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing: nothing to do
            }
        }
    }

    private record Timer(long atNs, long seq, Runnable task) {
    }

    private final Selector selector;
    private final ServerSocketChannel server;
    private final Map<String, Route> routes;
    private final Limits limits;
    private final Thread thread;
    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    /** Open connections in accept order (the oldest first). Endpoint thread only. */
    private final Set<Client> clients = new LinkedHashSet<>();
    private final PriorityQueue<Timer> timers = new PriorityQueue<>((a, b) -> a.atNs != b.atNs
        ? Long.compare(a.atNs, b.atNs) : Long.compare(a.seq, b.seq));
    private long timerSeq;
    private final AtomicLong timedOut = new AtomicLong();
    private final AtomicLong replaced = new AtomicLong();
    private volatile boolean stopping;

    private HttpEndpoint(String name, Selector selector, ServerSocketChannel server, Map<String, Route> routes,
                         Limits limits) {
        this.selector = selector;
        this.server = server;
        this.routes = Map.copyOf(routes);
        this.limits = limits;
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
    }

    /** Binds {@code address} and starts serving {@code routes} (path -> route) on a thread named {@code name}. */
    static HttpEndpoint start(String name, InetSocketAddress address, Map<String, Route> routes, Limits limits)
        throws IOException {
        Selector selector = Selector.open();
        ServerSocketChannel server = ServerSocketChannel.open();
        try {
            server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            server.bind(address, 128);
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
        } catch (IOException e) {
            server.close();
            selector.close();
            throw e;
        }
        HttpEndpoint h = new HttpEndpoint(name, selector, server, routes, limits);
        h.thread.start();
        return h;
    }

    int port() {
        return ((InetSocketAddress) server.socket().getLocalSocketAddress()).getPort();
    }

    /** Any thread: connections closed or answered because a deadline passed. */
    long timedOutConnections() {
        return timedOut.get();
    }

    /** Any thread: connections closed at the connection limit to make room for a new one. */
    long replacedConnections() {
        return replaced.get();
    }

    /** Any thread: runs {@code task} on the endpoint's thread. */
    void execute(Runnable task) {
        tasks.add(task);
        selector.wakeup();
    }

    /** Endpoint thread: runs {@code task} there after {@code delayNs}. */
    void schedule(long delayNs, Runnable task) {
        timers.add(new Timer(System.nanoTime() + delayNs, timerSeq++, task));
    }

    private void run() {
        try {
            while (!stopping) {
                long now = System.nanoTime();
                long next = now + 1_000_000_000L;
                for (Client c : clients) {
                    next = Math.min(next, c.deadlineNs);
                }
                Timer t = timers.peek();
                if (t != null) {
                    next = Math.min(next, t.atNs);
                }
                long waitMs = Math.max(0, (next - now + 999_999) / 1_000_000);
                if (tasks.isEmpty()) {
                    if (waitMs == 0) {
                        selector.selectNow();
                    } else {
                        selector.select(waitMs);
                    }
                } else {
                    selector.selectNow();
                }
                Iterator<SelectionKey> it = selector.selectedKeys().iterator();
                while (it.hasNext()) {
                    SelectionKey k = it.next();
                    it.remove();
                    if (!k.isValid()) {
                        continue;
                    }
                    if (k.isAcceptable()) {
                        accept();
                    } else if (k.attachment() instanceof Client c) {
                        if (k.isReadable() && c.state == State.HEAD) {
                            c.read();
                        } else if (k.isReadable() && c.state == State.DRAINING) {
                            c.drain();
                        } else if (k.isWritable() && c.state == State.WRITING) {
                            c.write();
                        }
                    }
                }
                for (Runnable r; (r = tasks.poll()) != null; ) {
                    runSafely(r);
                }
                now = System.nanoTime();
                while ((t = timers.peek()) != null && t.atNs - now <= 0) {
                    timers.poll();
                    runSafely(t.task);
                }
                for (Client c : new ArrayList<>(clients)) {
                    if (!c.closed && c.deadlineNs - now <= 0) {
                        c.expire();
                    }
                }
            }
        } catch (IOException | ClosedSelectorException e) {
            if (!stopping) {
                LOG.log(System.Logger.Level.ERROR, "HTTP endpoint stopped: " + e.getMessage(), e);
            }
        } finally {
            for (Client c : new ArrayList<>(clients)) {
                c.close();
            }
            try {
                server.close();
                selector.close();
            } catch (IOException ignored) {
                // stopping
            }
        }
    }

    private static void runSafely(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "HTTP endpoint task failed", e);
        }
    }

    private void accept() throws IOException {
        while (true) {
            SocketChannel ch = server.accept();
            if (ch == null) {
                return;
            }
            if (clients.size() >= limits.maxConnections()) {
                Client oldest = null;
                for (Client c : clients) {
                    if (c.state == State.HEAD) {
                        oldest = c;
                        break;
                    }
                }
                if (oldest == null) {
                    ch.close(); // every connection is being answered: this one waits for none of them
                    continue;
                }
                replaced.incrementAndGet();
                oldest.close();
            }
            ch.configureBlocking(false);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            SelectionKey key = ch.register(selector, SelectionKey.OP_READ);
            Client c = new Client(ch, key, System.nanoTime());
            key.attach(c);
            clients.add(c);
        }
    }

    /** The length of the request head through its blank line, or -1 while it is incomplete. */
    private static int headEnd(ByteBuffer in) {
        byte[] a = in.array();
        int n = in.position();
        for (int i = 0; i < n; i++) {
            if (a[i] == '\n') {
                if (i + 1 < n && a[i + 1] == '\n') {
                    return i + 2;
                }
                if (i + 2 < n && a[i + 1] == '\r' && a[i + 2] == '\n') {
                    return i + 3;
                }
            }
        }
        return -1;
    }

    private static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 400 -> "Bad Request";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 408 -> "Request Timeout";
            case 431 -> "Request Header Fields Too Large";
            case 500 -> "Internal Server Error";
            case 503 -> "Service Unavailable";
            default -> "Status";
        };
    }

    /** Stops the thread and closes every connection; waits up to a few seconds for the thread. */
    @Override
    public void close() {
        stopping = true;
        selector.wakeup();
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
