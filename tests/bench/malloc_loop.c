/* The benchmark workload: N malloc(SIZE)+free pairs, or a mixed workload
 * (--mixed: sizes 16..4096, a window of live blocks, calloc and realloc),
 * or --compute: a pair per ~1 KiB of hashing, like code that does work
 * between allocations. Times itself and prints ns per pair. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int mixed = argc > 2 && !strcmp(argv[2], "--mixed");
	int compute = argc > 2 && !strcmp(argv[2], "--compute");
	unsigned char data[1024];
	unsigned long h = 5381;
	void *window[256] = {0};

	memset(data, 1, sizeof(data));
	unsigned seed = 1;
	double t0, t1;

	t0 = now();
	for (long i = 0; i < n; i++) {
		if (compute) {
			char *p = malloc(64);

			for (size_t k = 0; k < sizeof(data); k++)
				h = h * 33 + (data[k] ^= (unsigned char)(h >> 7));
			*(volatile char *)p = (char)h;	/* or gcc drops the pair */
			free(p);
			continue;
		}
		if (!mixed) {
			void *p = malloc(64);

			*(volatile char *)p = 1;
			free(p);
			continue;
		}
		/* A realistic mix: blocks of many sizes that live a while. */
		unsigned slot = (seed = seed * 1103515245u + 12345u) % 256;
		size_t size = 16u << (seed >> 16) % 9;

		free(window[slot]);
		switch ((seed >> 8) % 8) {
		case 0: window[slot] = calloc(1, size); break;
		case 1: window[slot] = realloc(malloc(size / 2 + 1), size); break;
		default: window[slot] = malloc(size); break;
		}
		memset(window[slot], (int)i, 8);
	}
	t1 = now();
	for (int i = 0; i < 256; i++)
		free(window[i]);
	printf("%s %ld pairs %.1f ns/pair (%lx)\n", compute ? "compute" : mixed ? "mixed" : "malloc64",
	       n, (t1 - t0) / (double)n, h & 0xf);
	return 0;
}
