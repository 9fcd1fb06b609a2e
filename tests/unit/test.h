/*
 * test.h: the unit-test harness. A test is a function returning 0 on
 * success; CHECK() reports the failed expression and jumps to its "out:"
 * label. main() is a list of RUN() calls ending in "return TEST_REPORT();",
 * whose last line is "N passed, N failed".
 */
#ifndef HAVEN_TEST_H
#define HAVEN_TEST_H

#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		goto out; \
	} \
} while (0)

#define RUN(fn) do { \
	if (fn() == 0) { \
		test_passed++; \
		printf("ok - %s\n", #fn); \
	} else { \
		test_failed++; \
		printf("not ok - %s\n", #fn); \
	} \
	fflush(stdout); \
} while (0)

#define TEST_REPORT() \
	(printf("%d passed, %d failed\n", test_passed, test_failed), \
	 test_failed ? 1 : 0)

#endif
