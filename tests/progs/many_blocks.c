/* Keeps N blocks alive at once (default 1.2 million): more than the heap
 * probe's live map holds, so some blocks go untracked and the verdict must
 * say INCONCLUSIVE, not PASS. */
#include <stdlib.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1200000;
	void **blocks = malloc((size_t)n * sizeof(*blocks));

	for (long i = 0; i < n; i++)
		blocks[i] = malloc(16);
	for (long i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	return 0;
}
