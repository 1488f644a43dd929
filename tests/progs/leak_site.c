/* A steady leak at one call site: every interval, leak_one() allocates a
 * block and forgets it. argv: iterations (default 40), interval ms (100). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *sink;

static void leak_one(void)
{
	char *p = malloc(1000);

	memset(p, 1, 1000);
	sink = p;	/* the previous block is lost */
}

static void churn(void)
{
	void *p = malloc(200);

	memset(p, 2, 200);
	free(p);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 40, ms = argc > 2 ? atoi(argv[2]) : 100;

	for (int i = 0; i < n; i++) {
		leak_one();
		churn();
		usleep((useconds_t)ms * 1000);
	}
	return 0;
}
