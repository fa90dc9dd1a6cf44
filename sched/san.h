/* SPDX-License-Identifier: MIT */
/*
 * Sanitizer bookkeeping for stack switches: ASan must be told which stack
 * is current (or it reports false stack overflows and misses fake-stack
 * frees), TSan must be given one fiber per task (or it merges all tasks of
 * a thread into one history). Everything here compiles to nothing in
 * normal builds.
 */
#ifndef ROOK_SCHED_SAN_H
#define ROOK_SCHED_SAN_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROOK_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define ROOK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ROOK_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define ROOK_TSAN 1
#endif

#ifdef ROOK_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define rook__asan_start(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define rook__asan_finish(save)              __sanitizer_finish_switch_fiber(save, NULL, NULL)
#else
#define rook__asan_start(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define rook__asan_finish(save)              ((void)(save))
#endif

/* Memory rook maps itself and keeps pointers to heap blocks in (the task
 * pool's chunks): LeakSanitizer scans only what malloc gave out, so it is
 * told to scan these too. */
#if defined(ROOK_ASAN) && __has_include(<sanitizer/lsan_interface.h>)
#include <sanitizer/lsan_interface.h>
#define rook__lsan_root(p, n) __lsan_register_root_region(p, n)
#else
#define rook__lsan_root(p, n) ((void)(p), (void)(n))
#endif

#ifdef ROOK_TSAN
#include <sanitizer/tsan_interface.h>
#define rook__tsan_current()  __tsan_get_current_fiber()
#define rook__tsan_create()   __tsan_create_fiber(0)
#define rook__tsan_destroy(f) __tsan_destroy_fiber(f)
#define rook__tsan_switch(f)  __tsan_switch_to_fiber(f, 0)
#else
#define rook__tsan_current()  NULL
#define rook__tsan_create()   NULL
#define rook__tsan_destroy(f) ((void)(f))
#define rook__tsan_switch(f)  ((void)(f))
#endif

#endif
