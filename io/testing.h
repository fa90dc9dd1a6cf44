/* SPDX-License-Identifier: MIT */
/*
 * Internal hooks of the IO layer for rook's own tests and perf suite. Not
 * installed, not exported from the shared library (tests link the static
 * archive).
 */
#ifndef ROOK_IO_TESTING_H
#define ROOK_IO_TESTING_H

/* Make every later rook__park_init fail as if io_uring setup had returned
 * err (a negative errno: -ENOSYS, -EPERM, -ENOMEM); 0 turns it off. */
void rook__io_force_unavailable(int err);

/* How a worker wakes a parked one: ROOK__WAKE_EVENTFD (any thread writes
 * the parked worker's eventfd) or ROOK__WAKE_MSG_RING (a worker sends
 * IORING_OP_MSG_RING from its own ring; plain threads still use the
 * eventfd). For measurements; returns the previous mode. */
enum { ROOK__WAKE_EVENTFD = 0, ROOK__WAKE_MSG_RING = 1 };
int rook__io_set_wake_mode(int mode);

/* Number of worker wake-ups sent through each path so far (process-wide). */
void rook__io_wake_counts(unsigned long *eventfd, unsigned long *msg_ring);

/* How rook_write and rook_writev write to a regular file: ROOK__FILE_WRITE_
 * AUTO (inline when it is a buffered page-cache write, see io/uring.c) or
 * ROOK__FILE_WRITE_RING (always through io_uring). For measurements and
 * tests; returns the previous mode. */
enum { ROOK__FILE_WRITE_AUTO = 0, ROOK__FILE_WRITE_RING = 1 };
int rook__io_set_file_write_mode(int mode);

/* Writes done inline so far (process-wide). */
unsigned long rook__io_inline_writes(void);

/* Ring error injection (ROOK_TESTING builds; no-ops elsewhere): from now
 * on every every-th submit of any ring returns err (-EAGAIN, -EBUSY,
 * -EINTR) without submitting, and every every-th sleep of a worker in
 * io_uring_enter returns at once as if interrupted (EINTR). every 0: off.
 * every 1 for submit never lets an SQE out: use 2 or more. */
void rook__io_inject_submit(int err, unsigned every);
void rook__io_inject_enter_eintr(unsigned every);
/* Failures injected so far (both kinds, process-wide). */
unsigned long rook__io_injected(void);

#endif
