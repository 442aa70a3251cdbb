package dev.isthmus.uring;

import dev.isthmus.ffi.Libc;
import dev.isthmus.ffi.gen.libc.sockaddr_in;
import dev.isthmus.ffi.gen.libc.sockaddr_in6;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;

/** Converts between {@link InetSocketAddress} and the kernel's sockaddr_in / sockaddr_in6. */
public final class SocketAddresses {
    /** Enough for a sockaddr_in6. */
    public static final int MAX_BYTES = (int) Math.max(sockaddr_in.layout().byteSize(), sockaddr_in6.layout().byteSize());

    private static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private SocketAddresses() {
    }

    /** Writes {@code address} into {@code dst} (at least {@link #MAX_BYTES}); returns the sockaddr length. */
    public static int write(InetSocketAddress address, MemorySegment dst) {
        if (address.isUnresolved()) {
            throw new IllegalArgumentException("unresolved address " + address);
        }
        InetAddress ip = address.getAddress();
        if (ip instanceof Inet4Address) {
            MemorySegment s = dst.asSlice(0, sockaddr_in.layout().byteSize());
            s.fill((byte) 0);
            sockaddr_in.sin_family(s, (short) Libc.AF_INET);
            s.set(NET_SHORT, sockaddr_in.sin_port$offset(), (short) address.getPort());
            MemorySegment.copy(ip.getAddress(), 0, s, ValueLayout.JAVA_BYTE, sockaddr_in.sin_addr$offset(), 4);
            return (int) s.byteSize();
        }
        if (ip instanceof Inet6Address v6) {
            MemorySegment s = dst.asSlice(0, sockaddr_in6.layout().byteSize());
            s.fill((byte) 0);
            sockaddr_in6.sin6_family(s, (short) Libc.AF_INET6);
            s.set(NET_SHORT, sockaddr_in6.sin6_port$offset(), (short) address.getPort());
            MemorySegment.copy(v6.getAddress(), 0, s, ValueLayout.JAVA_BYTE, sockaddr_in6.sin6_addr$offset(), 16);
            sockaddr_in6.sin6_scope_id(s, v6.getScopeId());
            return (int) s.byteSize();
        }
        throw new IllegalArgumentException("unsupported address family: " + address);
    }

    /** Reads a sockaddr_in or sockaddr_in6. */
    public static InetSocketAddress read(MemorySegment src) {
        short family = src.get(ValueLayout.JAVA_SHORT, 0);
        try {
            if (family == Libc.AF_INET) {
                byte[] a = new byte[4];
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, sockaddr_in.sin_addr$offset(), a, 0, 4);
                int port = Short.toUnsignedInt(src.get(NET_SHORT, sockaddr_in.sin_port$offset()));
                return new InetSocketAddress(InetAddress.getByAddress(a), port);
            }
            if (family == Libc.AF_INET6) {
                byte[] a = new byte[16];
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, sockaddr_in6.sin6_addr$offset(), a, 0, 16);
                int port = Short.toUnsignedInt(src.get(NET_SHORT, sockaddr_in6.sin6_port$offset()));
                return new InetSocketAddress(Inet6Address.getByAddress(null, a, sockaddr_in6.sin6_scope_id(src)), port);
            }
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e);
        }
        throw new IllegalArgumentException("unsupported address family " + family);
    }

    /** getsockname(2) of {@code fd}. */
    public static InetSocketAddress localAddress(int fd) {
        return name(fd, false);
    }

    /** getpeername(2) of {@code fd}, or null when it is not connected. */
    public static InetSocketAddress remoteAddress(int fd) {
        return name(fd, true);
    }

    private static InetSocketAddress name(int fd, boolean peer) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment addr = a.allocate(MAX_BYTES, 8);
            MemorySegment len = a.allocateFrom(ValueLayout.JAVA_INT, MAX_BYTES);
            int r = peer ? Libc.getpeername(fd, addr, len) : Libc.getsockname(fd, addr, len);
            if (peer && r < 0) {
                return null;
            }
            Libc.check(r, peer ? "getpeername" : "getsockname");
            return read(addr);
        }
    }

    /** A non-blocking-agnostic TCP socket of {@code address}'s family (CLOEXEC). */
    static int tcpSocket(InetSocketAddress address) {
        int family = address.getAddress() instanceof Inet6Address ? Libc.AF_INET6 : Libc.AF_INET;
        return Libc.check(Libc.socket(family, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0), "socket(" + address + ")");
    }
}
