/* Writes N lines (default 200000) to stdout and a last line to stderr: the
 * capture must keep the head and the tail and say what it left out. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;

	for (long i = 0; i < n; i++)
		printf("chatty line %ld\n", i);
	printf("chatty: last line\n");
	fprintf(stderr, "chatty: done\n");
	return 0;
}
