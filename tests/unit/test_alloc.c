/* Allocator classification and planning (daemon/probe/probe_alloc.c): which
 * allocator a set of symbols is, and the plan for programs on this host. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "probe_alloc.h"
#include "unit_check.h"

static bool has_in(const char *sym, void *arg)
{
	for (const char *const *s = arg; *s; s++)
		if (!strcmp(*s, sym))
			return true;
	return false;
}

static const char *classify(const char *const *syms, const char **prefix)
{
	return alloc_classify(has_in, (void *)syms, prefix);
}

static void test_classify(void)
{
	static const char *const je[] = {"malloc", "free", "mallocx", "sdallocx", NULL};
	static const char *const je_prefixed[] = {"main", "je_malloc", "je_mallocx", NULL};
	static const char *const tc[] = {"malloc", "tc_malloc", NULL};
	static const char *const mi[] = {"malloc", "mi_malloc", NULL};
	static const char *const gl[] = {"malloc", "__libc_malloc", NULL};
	static const char *const own[] = {"malloc", "free", NULL};
	const char *prefix = NULL, *k;

	k = classify(je, &prefix);
	CHECK(k && !strcmp(k, "jemalloc") && !strcmp(prefix, ""));
	k = classify(je_prefixed, &prefix);
	CHECK(k && !strcmp(k, "jemalloc") && !strcmp(prefix, "je_"));
	k = classify(tc, &prefix);
	CHECK(k && !strcmp(k, "tcmalloc"));
	k = classify(mi, &prefix);
	CHECK(k && !strcmp(k, "mimalloc"));
	k = classify(gl, &prefix);
	CHECK(k && !strcmp(k, "glibc"));
	CHECK(classify(own, &prefix) == NULL);
}

/* /bin/sh (dash or bash): glibc's malloc, from the C library. (Not this
 * test: an ASan build of it gets malloc from libasan.) */
static void test_plan_self(void)
{
	struct alloc_plan plan;
	bool has_free = false;

	CHECK(alloc_plan_for("/bin/sh", NULL, NULL, 0, &plan) == 0);
	CHECK(plan.known && !strcmp(plan.allocator, "glibc"));
	CHECK(strstr(plan.served_by, "libc.so") != NULL);
	for (size_t i = 0; i < plan.n; i++)
		has_free |= !strcmp(plan.t[i].sym, "free") && plan.t[i].sym_off > 0;
	CHECK(has_free);
	CHECK(alloc_plan_for("/nonexistent", NULL, NULL, 0, &plan) == -ENOENT);
	CHECK(!plan.known);
}

int main(void)
{
	test_classify();
	test_plan_self();
	return failures ? 1 : 0;
}
