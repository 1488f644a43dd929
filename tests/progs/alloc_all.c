/* Correct use of every allocator entry point faultd probes, from threads
 * that start and exit (glibc frees their per-thread data then): a clean
 * run must show no invalid free at all. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void use_everything(void)
{
	void *p = malloc(100), *q = calloc(10, 10), *r = NULL, *m = NULL;

	p = realloc(p, 1000);
	q = reallocarray(q, 20, 10);
	if (posix_memalign(&r, 64, 256) != 0)
		abort();
	m = aligned_alloc(64, 128);
	free(p);
	free(q);
	free(r);
	free(m);
	free(memalign(32, 64));
	free(valloc(100));
	free(pvalloc(100));
	free(realloc(NULL, 50));
	p = malloc(10);
	p = realloc(p, 0);	/* frees it (returns NULL) */
	free(p);
	free(NULL);
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++)
		use_everything();
	return NULL;
}

int main(void)
{
	for (int round = 0; round < 5; round++) {
		pthread_t t[4];

		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, worker, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		usleep(100 * 1000);
	}
	use_everything();
	printf("alloc_all: done\n");
	return 0;
}
