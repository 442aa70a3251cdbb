/*
 * What jextract reads for the libc bindings (package dev.isthmus.ffi.gen.libc): files, memory,
 * CPU affinity, sockets, eventfd, errno text. Functions here set errno; dev.isthmus.ffi.Libc wraps them
 * with errno capture and returns -errno, the same convention as io_uring completions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* Under __USE_GNU glibc declares sockaddr parameters as transparent unions, which jextract would bind
 * as unions passed by value. Declare the socket API in its plain POSIX form instead. */
#undef __USE_GNU
#include <sys/socket.h>
#define __USE_GNU 1
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/falloc.h>
#include <time.h>
