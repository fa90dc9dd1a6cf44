/* SPDX-License-Identifier: MIT */
/*
 * librook.so loaded with dlopen, as a plugin or a language binding would
 * load it. The library keeps its thread-local pointers in the initial-exec
 * TLS model (one %fs-relative load instead of a __tls_get_addr call), which
 * a dlopen'ed library may use only while glibc has static TLS to spare:
 * this checks that loading works and that tasks on several workers, their
 * queue operations and their switches see the right worker through it.
 * Built apart from the other tests: it must not link the static library.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <rook.h>

static struct {
	int (*run)(const struct rook_config *, rook_fn, void *);
	int (*spawn)(struct rook_task **, rook_fn, void *);
	int (*join)(struct rook_task *, int *);
	int (*yield)(void);
	int (*queue_create)(struct rook_queue **, size_t, size_t);
	int (*queue_put)(struct rook_queue *, const void *);
	int (*queue_get)(struct rook_queue *, void *);
	void (*queue_close)(struct rook_queue *);
	void (*queue_destroy)(struct rook_queue *);
} r;

#define PRODUCERS    4
#define PER_PRODUCER 20000L

static int producer(void *arg)
{
	struct rook_queue *q = arg;
	for (long i = 1; i <= PER_PRODUCER; i++) {
		int rc = r.queue_put(q, &i);
		if (rc < 0)
			return rc;
		if (i % 1000 == 0 && (rc = r.yield()) < 0)
			return rc;
	}
	return 0;
}

static int consumer(void *arg)
{
	struct rook_queue *q = arg;
	long v, sum = 0;
	int rc;
	while ((rc = r.queue_get(q, &v)) == 0)
		sum += v;
	return rc == -EPIPE ? (int)(sum % 1000003) : rc;
}

static int dl_main(void *arg)
{
	long *total = arg;
	struct rook_queue *q;
	struct rook_task *p[PRODUCERS], *c[PRODUCERS];
	int rc = r.queue_create(&q, sizeof(long), 64);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PRODUCERS; i++) {
		if ((rc = r.spawn(&p[i], producer, q)) < 0 ||
		    (rc = r.spawn(&c[i], consumer, q)) < 0)
			return rc;
	}
	for (int i = 0; i < PRODUCERS; i++) {
		int st;
		if ((rc = r.join(p[i], &st)) < 0 || st != 0)
			return rc < 0 ? rc : st;
	}
	r.queue_close(q);
	for (int i = 0; i < PRODUCERS; i++) {
		int st;
		if ((rc = r.join(c[i], &st)) < 0)
			return rc;
		if (st < 0)
			return st;
		*total += st;
	}
	r.queue_destroy(q);
	return 0;
}

#define SYM(field, name)                                                                           \
	do {                                                                                       \
		*(void **)&r.field = dlsym(h, name);                                               \
		cr_assert_not_null(r.field, "dlsym %s: %s", name, dlerror());                      \
	} while (0)

Test(shlib, dlopened_library_runs_tasks_on_two_workers, .timeout = 120)
{
	void *h = dlopen(ROOK_SHARED_LIB, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(h, "dlopen %s: %s", ROOK_SHARED_LIB, dlerror());
	SYM(run, "rook_run");
	SYM(spawn, "rook_spawn");
	SYM(join, "rook_join");
	SYM(yield, "rook_yield");
	SYM(queue_create, "rook_queue_create");
	SYM(queue_put, "rook_queue_put");
	SYM(queue_get, "rook_queue_get");
	SYM(queue_close, "rook_queue_close");
	SYM(queue_destroy, "rook_queue_destroy");

	/* Each consumer returns its sum modulo 1000003; add those up the same
	 * way: the total of all items is what every split adds up to. */
	long want = PRODUCERS * (PER_PRODUCER * (PER_PRODUCER + 1) / 2);
	for (unsigned workers = 1; workers <= 2; workers++) {
		struct rook_config cfg = {.workers = workers, .flags = ROOK_NO_PIN};
		long total = 0;
		cr_assert_eq(r.run(&cfg, dl_main, &total), 0, "workers=%u", workers);
		cr_assert_eq(total % 1000003, want % 1000003, "workers=%u", workers);
	}
	/* Not dlclose'd: the library leaves its stack-overflow SIGSEGV
	 * handler installed for the life of the process. */
}

/* struct rook_config as 0.1 laid it out, followed by bytes a 0.1 binary
 * never meant as reserved words. */
struct config_0_1 {
	unsigned workers;
	size_t stack_size;
	unsigned ring_entries;
	unsigned flags;
};

static int report_workers(void *arg)
{
	int (*workers)(void) = (int (*)(void))arg;
	return workers();
}

Test(shlib, binaries_built_against_0_1_get_the_old_config_layout, .timeout = 60)
{
	void *h = dlopen(ROOK_SHARED_LIB, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(h, "dlopen %s: %s", ROOK_SHARED_LIB, dlerror());
	int (*run_0_1)(const struct config_0_1 *, rook_fn, void *);
	int (*run_0_2)(const struct rook_config *, rook_fn, void *);
	*(void **)&run_0_1 = dlvsym(h, "rook_run", "ROOK_0");
	*(void **)&run_0_2 = dlvsym(h, "rook_run", "ROOK_0.2");
	void *workers = dlsym(h, "rook_workers");
	cr_assert_not_null(run_0_1, "rook_run@ROOK_0: %s", dlerror());
	cr_assert_not_null(run_0_2, "rook_run@ROOK_0.2: %s", dlerror());
	cr_assert_not_null(workers);
	cr_assert_neq((void *)run_0_1, (void *)run_0_2);

	struct {
		struct config_0_1 cfg;
		unsigned char after[64];
	} old;
	memset(&old, 0xa5, sizeof old);
	old.cfg = (struct config_0_1){.workers = 2, .flags = ROOK_NO_PIN};
	memset(old.after, 0xa5, sizeof old.after);
	cr_assert_eq(run_0_1(&old.cfg, report_workers, workers), 2);

	/* The current layout ignores its reserved words (a struct filled
	 * field by field leaves them as the stack had them); a new flags
	 * bit is still refused. */
	struct rook_config cfg;
	memset(&cfg, 0xa5, sizeof cfg);
	cfg.workers = 1;
	cfg.stack_size = 0;
	cfg.ring_entries = 0;
	cfg.flags = ROOK_NO_PIN;
	cr_assert_eq(run_0_2(&cfg, report_workers, workers), 1);
	cfg.flags = ROOK_NO_PIN | 0x80000000u;
	cr_assert_eq(run_0_2(&cfg, report_workers, workers), -EINVAL);
}
