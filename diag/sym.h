/* SPDX-License-Identifier: MIT */
/*
 * Symbolizer for diagnostics: maps a code address to the function that
 * contains it, from the ELF symbol tables of the loaded objects (.symtab,
 * else .dynsym), so hidden library functions and the executable's static
 * functions have names too (dladdr sees exported symbols only). Objects
 * are read once and cached until rook__sym_fini. Not async-signal-safe.
 */
#ifndef ROOK_DIAG_SYM_H
#define ROOK_DIAG_SYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes "name+0xoff (object)" or "0xaddr (object)" into buf (always
 * NUL-terminated). Returns the function's name, or NULL if unknown; the
 * name stays valid until rook__sym_fini. */
const char *rook__sym_lookup(uintptr_t pc, char *buf, size_t size);

/* Whether pc is the first byte of a known function. */
bool rook__sym_is_start(uintptr_t pc);

/* Forget the cached objects (runtime teardown, tests). */
void rook__sym_fini(void);

#endif
