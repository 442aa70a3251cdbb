package dev.isthmus.uring;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/** {@link TcpListener} over a non-blocking {@link ServerSocketChannel}. */
final class PortableTcpListener implements TcpListener {
    private final PortableEngine engine;
    private final ServerSocketChannel channel;
    private final AcceptHandler handler;
    private final InetSocketAddress local;

    PortableTcpListener(PortableEngine engine, ServerSocketChannel channel, AcceptHandler handler) throws IOException {
        this.engine = engine;
        this.channel = channel;
        this.handler = handler;
        this.local = (InetSocketAddress) channel.getLocalAddress();
    }

    void onAcceptable() {
        for (int i = 0; i < 64; i++) {
            SocketChannel ch;
            try {
                ch = channel.accept();
            } catch (IOException e) {
                handler.onAccept(null, PortableEngine.errnoOf(e));
                return;
            }
            if (ch == null) {
                return;
            }
            try {
                handler.onAccept(engine.newConnection(ch), 0);
            } catch (IOException e) {
                PortableEngine.closeQuietly(ch);
                handler.onAccept(null, PortableEngine.errnoOf(e));
            }
        }
    }

    @Override
    public InetSocketAddress localAddress() {
        return local;
    }

    @Override
    public void close() {
        PortableEngine.closeQuietly(channel);
    }
}
