/* A pool allocator of its own, as incident 1's client had: 64-byte chunks
 * carved from one malloc'ed slab, handed out by pool_get and taken back by
 * pool_put. malloc sees only the slab; a chunk put back twice or never is
 * invisible unless the scenario names pool_get/pool_put ("allocators").
 * argv: double-put | leak N MS | clean N MS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 64
#define CHUNKS 1024

struct pool {
	char *slab;
	void *free_list[CHUNKS];
	int n_free;
};

struct pool *pool_new(void);
void *pool_get(struct pool *p, size_t n);
void pool_put(struct pool *p, void *chunk);

__attribute__((noinline)) struct pool *pool_new(void)
{
	struct pool *p = malloc(sizeof(*p));

	p->slab = malloc(CHUNK * CHUNKS);
	p->n_free = 0;
	for (int i = CHUNKS - 1; i >= 0; i--)
		p->free_list[p->n_free++] = p->slab + i * CHUNK;
	return p;
}

__attribute__((noinline)) void *pool_get(struct pool *p, size_t n)
{
	if (n > CHUNK || !p->n_free)
		return NULL;
	return p->free_list[--p->n_free];
}

/* No check: a chunk put back twice is handed out twice later. */
__attribute__((noinline)) void pool_put(struct pool *p, void *chunk)
{
	if (p->n_free < CHUNKS)
		p->free_list[p->n_free++] = chunk;
}

static __attribute__((noinline)) void conn_close(struct pool *p, char *conn)
{
	pool_put(p, conn);
}

static void *kept;

static __attribute__((noinline)) void remember_one(struct pool *p)
{
	kept = pool_get(p, 40);	/* the previous one is lost to the pool */
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";
	int n = argc > 2 ? atoi(argv[2]) : 20, ms = argc > 3 ? atoi(argv[3]) : 100;
	struct pool *p = pool_new();

	if (!strcmp(mode, "double-put")) {
		char *c = pool_get(p, 48);

		memset(c, 0, 48);
		conn_close(p, c);
		usleep(100 * 1000);
		conn_close(p, c);	/* the bug */
		printf("put back twice\n");
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char *a = pool_get(p, 32), *b = pool_get(p, 64);

		memset(a, 1, 32);
		memset(b, 2, 64);
		pool_put(p, b);
		pool_put(p, a);
		if (!strcmp(mode, "leak"))
			remember_one(p);
		usleep((useconds_t)ms * 1000);
	}
	free(p->slab);
	free(p);
	return 0;
}
