/* SPDX-License-Identifier: MIT */
/*
 * ELF symbol lookup (see sym.h). Each object is found with dl_iterate_phdr,
 * its file mapped read-only, and its function symbols sorted by address
 * once; lookups are binary searches. The main program's file is
 * /proc/self/exe. The cache is a short list under one mutex: diagnostics
 * are rare and single-threaded in practice.
 */
#include "diag/sym.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sched/alloc.h"

struct fsym {
	uintptr_t f_lo, f_hi; /* [lo, hi) runtime addresses; hi == lo: size unknown */
	const char *f_name;
};

struct object {
	struct object *o_next;
	uintptr_t o_lo, o_hi; /* mapped range of its PT_LOAD segments */
	char o_path[256];
	void *o_map;
	size_t o_len;
	struct fsym *o_syms;
	size_t o_n;
};

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static struct object *objects;

struct find {
	uintptr_t pc;
	uintptr_t bias, lo, hi;
	char path[256];
	int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *ctx)
{
	struct find *f = ctx;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	int hit = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < lo)
			lo = a;
		if (a + ph->p_memsz > hi)
			hi = a + ph->p_memsz;
		if (f->pc >= a && f->pc < a + ph->p_memsz)
			hit = 1;
	}
	if (!hit)
		return 0;
	f->bias = info->dlpi_addr;
	f->lo = lo;
	f->hi = hi;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(f->path, sizeof(f->path), "%s", info->dlpi_name);
	} else { /* the main program */
		ssize_t n = readlink("/proc/self/exe", f->path, sizeof(f->path) - 1);
		f->path[n > 0 ? n : 0] = '\0';
	}
	f->found = 1;
	return 1;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct fsym *x = a, *y = b;
	return x->f_lo < y->f_lo ? -1 : x->f_lo > y->f_lo;
}

/* Function symbols of one section (SHT_SYMTAB or SHT_DYNSYM), or 0. */
static size_t load_syms(struct object *o, const ElfW(Ehdr) * eh, uint32_t type, uintptr_t bias)
{
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)((const char *)o->o_map + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum || !sh[i].sh_entsize)
			continue;
		if (sh[i].sh_offset + sh[i].sh_size > o->o_len)
			return 0;
		const ElfW(Sym) *sy = (const ElfW(Sym) *)((const char *)o->o_map + sh[i].sh_offset);
		size_t n = sh[i].sh_size / sh[i].sh_entsize;
		const char *str = (const char *)o->o_map + sh[sh[i].sh_link].sh_offset;
		size_t strsz = sh[sh[i].sh_link].sh_size;
		o->o_syms = rook__alloc(n * sizeof(*o->o_syms));
		if (!o->o_syms)
			return 0;
		size_t k = 0;
		for (size_t j = 0; j < n; j++) {
			if (ELF64_ST_TYPE(sy[j].st_info) != STT_FUNC || !sy[j].st_value ||
			    sy[j].st_name >= strsz)
				continue;
			o->o_syms[k].f_lo = bias + sy[j].st_value;
			o->o_syms[k].f_hi = o->o_syms[k].f_lo + sy[j].st_size;
			o->o_syms[k].f_name = str + sy[j].st_name;
			k++;
		}
		qsort(o->o_syms, k, sizeof(*o->o_syms), cmp_sym);
		return k;
	}
	return 0;
}

static struct object *object_load(const struct find *f)
{
	struct object *o = rook__alloc(sizeof(*o));
	if (!o)
		return NULL;
	memset(o, 0, sizeof(*o));
	o->o_lo = f->lo;
	o->o_hi = f->hi;
	snprintf(o->o_path, sizeof(o->o_path), "%s", f->path);
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(ElfW(Ehdr))) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			o->o_map = m;
			o->o_len = (size_t)st.st_size;
		}
	}
	if (fd >= 0)
		close(fd);
	const ElfW(Ehdr) *eh = o->o_map;
	if (eh && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff &&
	    eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) <= o->o_len) {
		o->o_n = load_syms(o, eh, SHT_SYMTAB, f->bias);
		if (!o->o_n) {
			rook__free(o->o_syms);
			o->o_syms = NULL;
			o->o_n = load_syms(o, eh, SHT_DYNSYM, f->bias);
		}
	}
	o->o_next = objects;
	objects = o;
	return o;
}

static struct object *object_of(uintptr_t pc)
{
	for (struct object *o = objects; o; o = o->o_next)
		if (pc >= o->o_lo && pc < o->o_hi)
			return o;
	struct find f = {.pc = pc};
	dl_iterate_phdr(find_cb, &f);
	return f.found ? object_load(&f) : NULL;
}

static const struct fsym *sym_of(const struct object *o, uintptr_t pc)
{
	size_t lo = 0, hi = o->o_n;
	while (lo < hi) { /* first symbol starting above pc */
		size_t mid = lo + (hi - lo) / 2;
		if (o->o_syms[mid].f_lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* Aliases share a start (with different sizes): try each of them. */
	uintptr_t start = o->o_syms[lo - 1].f_lo;
	for (size_t i = lo; i-- > 0 && o->o_syms[i].f_lo == start;) {
		const struct fsym *s = &o->o_syms[i];
		if (pc < s->f_hi || s->f_hi == s->f_lo)
			return s;
	}
	return NULL;
}

const char *rook__sym_lookup(uintptr_t pc, char *buf, size_t size)
{
	pthread_mutex_lock(&sym_lock);
	const struct object *o = object_of(pc);
	const struct fsym *s = o ? sym_of(o, pc) : NULL;
	const char *base = "?";
	if (o) {
		base = strrchr(o->o_path, '/');
		base = base ? base + 1 : o->o_path;
	}
	if (s)
		snprintf(buf, size, "%s+0x%lx (%s)", s->f_name, (unsigned long)(pc - s->f_lo),
			 base);
	else
		snprintf(buf, size, "0x%lx (%s)", (unsigned long)pc, base);
	pthread_mutex_unlock(&sym_lock);
	return s ? s->f_name : NULL;
}

bool rook__sym_is_start(uintptr_t pc)
{
	pthread_mutex_lock(&sym_lock);
	const struct object *o = object_of(pc);
	const struct fsym *s = o ? sym_of(o, pc) : NULL;
	bool start = s && s->f_lo == pc;
	pthread_mutex_unlock(&sym_lock);
	return start;
}

void rook__sym_fini(void)
{
	pthread_mutex_lock(&sym_lock);
	while (objects) {
		struct object *o = objects;
		objects = o->o_next;
		if (o->o_map)
			munmap(o->o_map, o->o_len);
		rook__free(o->o_syms);
		rook__free(o);
	}
	pthread_mutex_unlock(&sym_lock);
}
