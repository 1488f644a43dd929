/* A double free glibc does not notice: with the tcache full, chunks go to a
 * fastbin, whose only check is the top of the bin: free(a), free(b),
 * free(a) passes. The program goes on and exits 0; only a tracker of every
 * free sees it. (With an argument, it first sleeps that many ms: below.) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TCACHE_FILL 7

static void *keep[TCACHE_FILL];
static void *drained[3];

static void release(void *p)
{
	free(p);
}

int main(void)
{
	void *a, *b;

	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(32);
	a = malloc(32);
	b = malloc(32);
	usleep(300 * 1000);
	for (int i = 0; i < TCACHE_FILL; i++)
		free(keep[i]);		/* the tcache bin for 32 is now full */
	release(a);
	release(b);
	release(a);			/* the bug: a is freed twice */
	/* Take the a -> b -> a cycle back out of the fastbin (a comes out
	 * twice) and never free it, so glibc's later consolidation does
	 * not trip over it: the program really does go on. */
	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(32);
	for (int i = 0; i < 3; i++)
		drained[i] = malloc(32);
	printf("double_free_tolerated: survived\n");
	usleep(300 * 1000);
	return 0;
}

/* double_free_tolerated WAIT_MS sleeps that long before main, so that a
 * process whose heap probes come after its start (a child, followed from
 * its exec) has them before its first allocation. Here, below main, the
 * lines the tests name stay where they are; glibc passes a constructor
 * main's arguments. */
__attribute__((constructor)) static void wait_first(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 0;

	if (ms > 0)
		usleep((useconds_t)ms * 1000);
}
