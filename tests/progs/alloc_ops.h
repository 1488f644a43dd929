/* The same three programs for every allocator (each alloc_*.c includes this
 * after defining EXTRA_ALLOC/EXTRA_FREE, its allocator's own API):
 *   double-free [MS] a session released twice (free, then free again), MS ms in
 *   leak N MS       N times, every MS ms: leak_one() keeps a 1000-byte block
 *   clean N MS      the same loop, every block freed (the twin that passes)
 * Each loop also churns through malloc/calloc/realloc/posix_memalign and the
 * allocator's own calls, so a family member left unprobed shows up as a
 * leak or a bad free in the clean twin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *sink;

static __attribute__((noinline)) void session_release(char *s)
{
	free(s);
}

static __attribute__((noinline)) void leak_one(void)
{
	char *p = malloc(1000);

	memset(p, 1, 1000);
	sink = p;	/* the previous block is lost */
}

static __attribute__((noinline)) void churn(void)
{
	char *a = malloc(200), *b = calloc(4, 50), *c = malloc(10);
	void *d = NULL;
	void *e = EXTRA_ALLOC(300);

	c = realloc(c, 4000);
	if (posix_memalign(&d, 64, 256))
		d = NULL;
	memset(a, 2, 200);
	memset(e, 3, 300);
	free(a);
	free(b);
	free(c);
	free(d);
	EXTRA_FREE(e, 300);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";
	int n = argc > 2 ? atoi(argv[2]) : 20, ms = argc > 3 ? atoi(argv[3]) : 100;

	if (!strcmp(mode, "double-free")) {
		char *s = (usleep((useconds_t)(argc > 2 ? atoi(argv[2]) : 0) * 1000), malloc(48));

		memset(s, 0, 48);
		churn();
		session_release(s);
		usleep(100 * 1000);
		session_release(s);	/* the bug */
		printf("released twice\n");
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(mode, "leak"))
			leak_one();
		churn();
		usleep((useconds_t)ms * 1000);
	}
	free(sink);
	return 0;
}
