/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the subset of Criterion's API that rook's tests use, for
 * the ThreadSanitizer build only. Criterion 2.4 cannot start under TSan: its
 * boxfort arena fails to map ("Could not initialize inheritable arena",
 * Criterion issue #274, open). Everywhere else the real Criterion runs the
 * same test sources.
 *
 * Each test runs in a forked child (as Criterion does), with SIGALRM as its
 * timeout. Fatal assertions end the child with status 1; cr_expect_* record
 * a failure and continue; cr_skip_test ends it with status 77.
 */
#ifndef ROOK_TEST_SHIM_CRITERION_H
#define ROOK_TEST_SHIM_CRITERION_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct rook_shim_opts {
	double timeout;
	int signal;
	int exit_code;
	bool disabled;
	const char *description;
};

struct rook_shim_test {
	const char *suite;
	const char *name;
	void (*fn)(void);
	struct rook_shim_opts opts;
	struct rook_shim_test *next;
};

void rook_shim_register(struct rook_shim_test *t);
void rook_shim_check(bool ok, bool fatal, const char *file, int line, const char *expr,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void rook_shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void rook_shim_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                        \
	static void suite##_##name##_body(void);                                     \
	static struct rook_shim_test suite##_##name##_test = {                       \
		#suite, #name, suite##_##name##_body, { __VA_ARGS__ }, NULL };       \
	__attribute__((constructor)) static void suite##_##name##_reg(void)          \
	{                                                                            \
		rook_shim_register(&suite##_##name##_test);                          \
	}                                                                            \
	static void suite##_##name##_body(void)

#define ROOK_SHIM_CHECK(fatal, cond, text, ...) \
	rook_shim_check((cond), (fatal), __FILE__, __LINE__, text, "" __VA_ARGS__)

#define cr_assert(c, ...) ROOK_SHIM_CHECK(true, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) ROOK_SHIM_CHECK(true, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) ROOK_SHIM_CHECK(true, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) ROOK_SHIM_CHECK(true, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) ROOK_SHIM_CHECK(true, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) ROOK_SHIM_CHECK(true, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) ROOK_SHIM_CHECK(true, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) ROOK_SHIM_CHECK(true, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) ROOK_SHIM_CHECK(true, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) ROOK_SHIM_CHECK(true, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) ROOK_SHIM_CHECK(true, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect(c, ...) ROOK_SHIM_CHECK(false, (c), #c, __VA_ARGS__)
#define cr_expect_not(c, ...) ROOK_SHIM_CHECK(false, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_eq(a, b, ...) ROOK_SHIM_CHECK(false, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) ROOK_SHIM_CHECK(false, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) ROOK_SHIM_CHECK(false, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) ROOK_SHIM_CHECK(false, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) ROOK_SHIM_CHECK(false, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) ROOK_SHIM_CHECK(false, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_expect_null(p, ...) ROOK_SHIM_CHECK(false, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) ROOK_SHIM_CHECK(false, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) ROOK_SHIM_CHECK(false, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_log_info(...) rook_shim_log(__VA_ARGS__)
#define cr_skip_test(...) rook_shim_skip("" __VA_ARGS__)

#endif
