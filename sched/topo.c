/* SPDX-License-Identifier: MIT */
/*
 * Configuration and topology: how many workers (the PUs this process may
 * run on, capped by the cgroup v2 cpu.max quota), which PU each worker is
 * pinned to, and each worker's victim order for stealing (nearest first by
 * the depth of the common hwloc ancestor: same core, same cache, same
 * package, then the rest).
 */
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/alloc.h"
#include "sched/cpus.h"
#include "sched/runtime.h"
#include "sched/testing.h"
#include "sched/worker.h"

#define DEFAULT_STACK ((size_t)64 * 1024)

/* Parse an unsigned decimal environment variable: 0 unset, 1 set, -EINVAL. */
static int env_size(const char *name, size_t *out)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-')
		return -EINVAL;
	if (*end == '\0' && v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 1;
}

int rook__config_resolve(const struct rook_config *in, struct rook_config *out)
{
	struct rook_config c = {0};
	if (in)
		c = *in;
	size_t v;
	int r = env_size("ROOK_WORKERS", &v);
	if (r < 0)
		return r;
	if (r > 0) {
		if (v > UINT_MAX)
			return -EINVAL;
		c.workers = (unsigned)v;
	}
	r = env_size("ROOK_STACK_SIZE", &v);
	if (r < 0)
		return r;
	if (r > 0)
		c.stack_size = v;
	r = env_size("ROOK_NO_PIN", &v);
	if (r < 0)
		return r;
	if (r > 0 && v)
		c.flags |= ROOK_NO_PIN;
	if (c.flags & ~ROOK_FLAGS_ALL)
		return -EINVAL;
	if (c.workers > ROOK_MAX_WORKERS || c.ring_entries > ROOK_MAX_RING_ENTRIES)
		return -EINVAL;
	if (c.stack_size && (c.stack_size < ROOK_MIN_STACK || c.stack_size > ROOK_MAX_STACK))
		return -EINVAL;
	if (!c.stack_size)
		c.stack_size = DEFAULT_STACK;
	if (!c.workers)
		c.workers = rook__topo_ncpus();
	*out = c;
	return 0;
}

/* cgroup v2 quota of our own cgroup: ceil(quota / period), or 0 if none. */
static unsigned cgroup_cpus(void)
{
	char path[600] = "/sys/fs/cgroup/cpu.max";
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max",
					 strcmp(line + 3, "/") ? line + 3 : "");
				break;
			}
		}
		fclose(f);
	}
	f = fopen(path, "re");
	if (!f)
		return 0;
	char quota[32];
	unsigned long period = 0;
	unsigned n = 0;
	if (fscanf(f, "%31s %lu", quota, &period) == 2 && strcmp(quota, "max") != 0 && period) {
		unsigned long q = strtoul(quota, NULL, 10);
		n = (unsigned)((q + period - 1) / period);
	}
	fclose(f);
	return n;
}

static int load_topology(hwloc_topology_t *topo, hwloc_bitmap_t allowed)
{
	if (hwloc_topology_init(topo) < 0)
		return -ENOMEM;
	if (hwloc_topology_load(*topo) < 0) {
		hwloc_topology_destroy(*topo);
		return -ENOMEM;
	}
	if (hwloc_get_cpubind(*topo, allowed, HWLOC_CPUBIND_PROCESS) < 0)
		hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(*topo));
	hwloc_bitmap_and(allowed, allowed, hwloc_topology_get_allowed_cpuset(*topo));
	return 0;
}

unsigned rook__topo_ncpus(void)
{
	hwloc_topology_t topo;
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
	int n = 1;
	if (allowed && load_topology(&topo, allowed) == 0) {
		n = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU);
		hwloc_topology_destroy(topo);
	}
	hwloc_bitmap_free(allowed);
	unsigned cpus = n > 0 ? (unsigned)n : 1;
	unsigned quota = cgroup_cpus();
	if (quota && quota < cpus)
		cpus = quota;
	return cpus;
}

struct victim {
	unsigned v_index;
	int v_depth;
};

static int victim_cmp(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	if (x->v_depth != y->v_depth)
		return y->v_depth - x->v_depth; /* deeper common ancestor first */
	return (int)x->v_index - (int)y->v_index;
}

static pthread_mutex_t cpus_lock = PTHREAD_MUTEX_INITIALIZER;
static cpu_set_t cpus_all; /* under cpus_lock until cpus_set, then read-only */
static _Atomic bool cpus_set;

void rook__cpus_capture(void)
{
	pthread_mutex_lock(&cpus_lock);
	if (!atomic_load_explicit(&cpus_set, memory_order_relaxed) &&
	    sched_getaffinity(0, sizeof(cpus_all), &cpus_all) == 0)
		atomic_store_explicit(&cpus_set, true, memory_order_release);
	pthread_mutex_unlock(&cpus_lock);
}

void rook__cpus_attr(pthread_attr_t *a)
{
	if (atomic_load_explicit(&cpus_set, memory_order_acquire))
		pthread_attr_setaffinity_np(a, sizeof(cpus_all), &cpus_all);
}

bool rook__cpus_unpin(cpu_set_t *saved)
{
	if (!atomic_load_explicit(&cpus_set, memory_order_acquire) ||
	    sched_getaffinity(0, sizeof(*saved), saved) != 0 || CPU_EQUAL(saved, &cpus_all))
		return false;
	return sched_setaffinity(0, sizeof(cpus_all), &cpus_all) == 0;
}

void rook__cpus_restore(const cpu_set_t *saved)
{
	sched_setaffinity(0, sizeof(*saved), saved);
}

int rook__topo_plan(struct rook_rt *rt, bool pin)
{
	unsigned n = rt->rt_nworkers;
	rook__cpus_capture();
	hwloc_topology_t topo;
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
	if (!allowed)
		return -ENOMEM;
	int r = load_topology(&topo, allowed);
	if (r < 0) {
		hwloc_bitmap_free(allowed);
		return r;
	}
	int npu = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU);
	hwloc_obj_t *pus = rook__calloc(n, sizeof(*pus));
	struct victim *vs = rook__calloc(n, sizeof(*vs));
	if (!pus || !vs) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		pus[i] = npu > 0 ? hwloc_get_obj_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU,
								       (unsigned)((int)i % npu))
				 : NULL;
		rt->rt_workers[i].w_cpu = (pin && pus[i]) ? (int)pus[i]->os_index : -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct rook__worker *w = &rt->rt_workers[i];
		w->w_victims = rook__calloc(n > 1 ? n - 1 : 1, sizeof(unsigned));
		if (!w->w_victims) {
			r = -ENOMEM;
			goto out;
		}
		unsigned k = 0;
		for (unsigned j = 0; j < n; j++) {
			if (j == i)
				continue;
			hwloc_obj_t common =
			    (pus[i] && pus[j]) ? hwloc_get_common_ancestor_obj(topo, pus[i], pus[j])
					       : NULL;
			/* Rotate ties so that workers do not all raid worker 0. */
			vs[k].v_index = j;
			vs[k].v_depth = common ? common->depth : 0;
			k++;
		}
		qsort(vs, k, sizeof(*vs), victim_cmp);
		/* Within the nearest group keep a per-worker rotation. */
		for (unsigned a = 0; a < k; a++)
			w->w_victims[a] = vs[a].v_index;
		unsigned g = 0;
		while (g < k && vs[g].v_depth == vs[0].v_depth)
			g++;
		if (g > 1) {
			unsigned rot = i % g;
			for (unsigned a = 0; a < g; a++)
				w->w_victims[a] = vs[(a + rot) % g].v_index;
		}
	}
out:
	rook__free(pus);
	rook__free(vs);
	hwloc_topology_destroy(topo);
	hwloc_bitmap_free(allowed);
	return r;
}

/* A pinned worker whose core another thread keeps busy waits for it even
 * while other cores idle (a load generator, a sidecar, softirqs): served
 * wrk -t1 -c100 on 2 shared cores, 2 pinned workers did 115k req/s and 2
 * unpinned ones 193k. Pinned otherwise: fib at 2 workers ran 1.25x and
 * skynet 1.16x as fast pinned (perf/NOTES.md, issue 14). Contended: the
 * share of time spent waiting for the CPU, averaged over about CT_AVG
 * windows of CT_WINDOW_NS, is above 1/CT_RATIO. The average, not one
 * window, so that light background load (a 3 ms burst every 30 ms on each
 * core) neither lifts the pinning nor keeps it from coming back. A re-pin
 * that is undone within CT_FLAP_NS doubles the quiet time the next one
 * needs. */
#define CT_WINDOW_NS ((uint64_t)20 * 1000 * 1000)
#define CT_AVG       8
#define CT_RATIO     16
#define CT_ONE       65536u
#define CT_REPIN_NS  ((uint64_t)1000 * 1000 * 1000)
#define CT_REPIN_MAX (64 * CT_REPIN_NS)
#define CT_FLAP_NS   (5 * CT_WINDOW_NS)

#ifdef ROOK_TESTING
static _Atomic(uint64_t (*)(unsigned, uint64_t, uint64_t)) ct_hook;
#endif

void rook__topo_wait_hook(uint64_t (*fn)(unsigned worker, uint64_t now, uint64_t wait))
{
#ifdef ROOK_TESTING
	atomic_store_explicit(&ct_hook, fn, memory_order_release);
#else
	(void)fn;
#endif
}

void rook__topo_worker_start(struct rook__worker *w)
{
	w->w_ct_repin = CT_REPIN_NS;
	w->w_ct_fd = w->w_cpu < 0 ? -1 : open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
}

void rook__topo_worker_stop(struct rook__worker *w)
{
	if (w->w_ct_fd >= 0)
		close(w->w_ct_fd);
	w->w_ct_fd = -1;
}

/* The calling thread's run-queue wait so far, in ns (schedstat's second
 * field); false if unreadable. */
static bool runq_wait(int fd, uint64_t *ns)
{
	/* strtoull, not sscanf: busy workers sample on a task's stack, and
	 * sscanf's frame is ~2 KiB. */
	char buf[96], *end;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	(void)strtoull(buf, &end, 10); /* time run */
	char *p = end;
	*ns = strtoull(p, &end, 10);
	if (end == p)
		return false;
	return true;
}

static void pin_self(struct rook__worker *w, bool pin)
{
	cpu_set_t set;
	if (pin) {
		CPU_ZERO(&set);
		CPU_SET(w->w_cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	} else {
		rook__cpus_unpin(&set); /* to the process's CPUs; no restore */
	}
	w->w_unpinned = !pin;
}

/* Fold one sample (dw waited in dt) into the average, weighted by dt: a
 * sample spanning CT_AVG windows or more (a long park) replaces it. */
static void ct_average(struct rook__worker *w, uint64_t dt, uint64_t dw)
{
	int64_t span = (int64_t)(CT_AVG * CT_WINDOW_NS),
		k = dt >= (uint64_t)span ? span : (int64_t)dt;
	/* 128 bits: a park of days would overflow d * CT_ONE in 64. */
	int64_t f = (int64_t)((unsigned __int128)(dw >= dt ? dt : dw) * CT_ONE / dt);
	w->w_ct_avg = (uint32_t)((int64_t)w->w_ct_avg + (f - (int64_t)w->w_ct_avg) * k / span);
}

void rook__topo_contention(struct rook__worker *w)
{
	uint64_t now, wait;
	if (w->w_ct_fd < 0 || (now = rook__now()) - w->w_ct_at < CT_WINDOW_NS ||
	    !runq_wait(w->w_ct_fd, &wait))
		return;
#ifdef ROOK_TESTING
	uint64_t (*hook)(unsigned, uint64_t, uint64_t) =
	    atomic_load_explicit(&ct_hook, memory_order_acquire);
	if (hook)
		wait = hook(w->w_index, now, wait);
#endif
	uint64_t dt = now - w->w_ct_at, dw = wait - w->w_ct_wait;
	bool first = w->w_ct_at == 0;
	w->w_ct_at = now;
	w->w_ct_wait = wait;
	if (first)
		return;
	ct_average(w, dt, dw);
	bool contended = (uint64_t)w->w_ct_avg * CT_RATIO > CT_ONE;
	if (!w->w_unpinned) {
		if (!contended)
			return;
		if (w->w_ct_pinned_at && now - w->w_ct_pinned_at < CT_FLAP_NS)
			w->w_ct_repin =
			    w->w_ct_repin * 2 < CT_REPIN_MAX ? w->w_ct_repin * 2 : CT_REPIN_MAX;
		else if (w->w_ct_pinned_at && now - w->w_ct_pinned_at > CT_REPIN_MAX)
			w->w_ct_repin = CT_REPIN_NS;
		w->w_ct_quiet = 0;
		pin_self(w, false);
		return;
	}
	w->w_ct_quiet = contended ? 0 : w->w_ct_quiet + dt;
	if (w->w_ct_quiet >= w->w_ct_repin) {
		pin_self(w, true);
		w->w_ct_pinned_at = now;
	}
}

void rook__topo_pin(struct rook_rt *rt, struct rook__worker *w)
{
	if (w->w_cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->w_cpu, &set);
	/* Failure (e.g. a CPU taken away since start) leaves the thread free. */
	pthread_setaffinity_np(w->w_thread, sizeof(set), &set);
}
