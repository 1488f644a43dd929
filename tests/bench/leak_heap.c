/* The workload of the no_leak benchmark: MB megabytes of live heap in
 * blocks of SIZE bytes, linked in a list a global keeps, every LEAK-th
 * block dropped (a leak); then it prints when it calls exit() and exits.
 * argv: MB (100), SIZE (1024), LEAK (10; 0: none). Built as it is for
 * faultd, and with -fsanitize=address for LeakSanitizer (tests/bench/run.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct blk {
	struct blk *next;
	uint64_t data[];
};

static struct blk *head;

int main(int argc, char **argv)
{
	long mb = argc > 1 ? atol(argv[1]) : 100, size = argc > 2 ? atol(argv[2]) : 1024;
	long every = argc > 3 ? atol(argv[3]) : 10, n = mb * 1024 * 1024 / size, leaked = 0;
	struct timespec ts;

	for (long i = 0; i < n; i++) {
		struct blk *b = malloc((size_t)size);

		/* Words that are no pointers, as most of a heap is. */
		for (size_t w = 0; w < ((size_t)size - sizeof(*b)) / 8; w++)
			b->data[w] = 0x5a5a5a5a00000000ull | (uint64_t)i;
		if (every && i % every == every - 1) {
			b->next = NULL;
			leaked++;
			continue;
		}
		b->next = head;
		head = b;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("blocks %ld leaked %ld exit_at_ns %lld\n", n, leaked,
	       (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec);
	fflush(stdout);
	exit(0);
}
