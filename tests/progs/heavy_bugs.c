/* A program whose frames take long to name: 8,192 generated functions
 * (each with a few inlined helpers) make its debug info a few MB, one
 * compile unit, which libdwfl walks to name a frame. It frees one block
 * twice, the fastbin way glibc tolerates (faultd holds it there and names
 * the three stacks), goes on, then dereferences NULL (a crash faultd names
 * the backtrace of). respawn runs it over and over: a workload that keeps
 * faultd's symbolizer busy. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TCACHE_FILL 7

/* Debug info by the megabyte: each function has its own locals, types and
 * inlined calls; volatile keeps gcc from folding any of it away. */
#define HEAVY(n)								\
	struct heavy_##n { int a[4]; long b; };				\
	static inline __attribute__((always_inline)) int heavy_in_##n(int x)	\
	{								\
		volatile struct heavy_##n h = {{x, x + 1, x + 2, (int)(n)}, n};	\
		return h.a[x & 3] + (int)h.b;				\
	}								\
	__attribute__((noinline)) int heavy_##n(int x)			\
	{								\
		volatile int y = heavy_in_##n(x);			\
		return heavy_in_##n(y) + heavy_in_##n(y + 1);		\
	}
#define H2(n) HEAVY(n##0) HEAVY(n##1)
#define H4(n) H2(n##0) H2(n##1)
#define H8(n) H4(n##0) H4(n##1)
#define H16(n) H8(n##0) H8(n##1)
#define H32(n) H16(n##0) H16(n##1)
#define H64(n) H32(n##0) H32(n##1)
#define H128(n) H64(n##0) H64(n##1)
#define H256(n) H128(n##0) H128(n##1)
#define H512(n) H256(n##0) H256(n##1)
#define H1024(n) H512(n##0) H512(n##1)
#define H2048(n) H1024(n##0) H1024(n##1)
#define H4096(n) H2048(n##0) H2048(n##1)
H4096(1)
H4096(2)

static void *keep[TCACHE_FILL];
static void *drained[3];

static void release(void *p)
{
	free(p);
}

static void double_free(void)
{
	void *a, *b;

	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(40);
	a = malloc(40);
	b = malloc(40);
	for (int i = 0; i < TCACHE_FILL; i++)
		free(keep[i]);		/* the tcache bin for 40 is now full */
	release(a);
	release(b);
	release(a);			/* the first bug: a is freed twice */
	/* The a -> b -> a cycle comes back out of the fastbin and is never
	 * freed again: glibc goes on. */
	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(40);
	for (int i = 0; i < 3; i++)
		drained[i] = malloc(40);
}

static int crash(int x)
{
	volatile int *p = NULL;

	return *p + heavy_1000000000000(x);	/* the second bug */
}

int main(int argc, char **argv)
{
	(void)argv;
	usleep(150 * 1000);	/* faultd follows it from its exec on */
	if (argc < 2)
		double_free();
	printf("heavy_bugs: survived the double free\n");
	fflush(stdout);
	return crash(heavy_2000000000000(argc));
}
