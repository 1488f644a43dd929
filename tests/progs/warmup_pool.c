/* A cache that fills in its first few intervals and then stays full, with
 * steady churn and fds opened once at start: growth that is warm-up, not a
 * leak. argv: iterations (40), interval ms (100). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL 64

static void *pool[POOL];

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 40, ms = argc > 2 ? atoi(argv[2]) : 100;

	for (int i = 0; i < n; i++) {
		/* The pool fills 16 blocks an interval for 4 intervals, then
		 * its blocks are replaced, never added. */
		for (int k = 0; k < 16; k++) {
			int slot = (i * 16 + k) % POOL;

			free(pool[slot]);
			pool[slot] = malloc(512);
			memset(pool[slot], k, 512);
		}
		if (i < 3)
			open("/dev/null", O_RDONLY);	/* kept open on purpose */
		usleep((useconds_t)ms * 1000);
	}
	for (int i = 0; i < POOL; i++)
		free(pool[i]);
	return 0;
}
