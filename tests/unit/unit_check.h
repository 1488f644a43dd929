/* The unit tests' one assertion: a failed check is printed with its place
 * and counted, and the test goes on; main returns failures ? 1 : 0. */
#ifndef FAULTD_UNIT_CHECK_H
#define FAULTD_UNIT_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		failures++; \
	} \
} while (0)

#endif
