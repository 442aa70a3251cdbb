/*
 * What jextract reads for the io_uring bindings (package dev.isthmus.ffi.gen.uring).
 * liburing.h pulls in liburing's copy of <linux/io_uring.h> (the 6.1 kernel ABI for liburing 2.3);
 * both share one include guard, so the structs and constants come from exactly one of them.
 * Only structs and constants are generated from it (see uring.includes): liburing's headers are needed
 * to run native-headers/regen, never to run Isthmus.
 */
#define _GNU_SOURCE
#include <liburing.h>
