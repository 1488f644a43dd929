/* A free of a pointer that malloc never returned: the middle of a block. */
#include <stdlib.h>
#include <unistd.h>

static void drop(char *p)
{
	free(p);
}

int main(void)
{
	char *block = malloc(256);

	usleep(300 * 1000);
	drop(block + 16);	/* the bug */
	free(block);
	return 0;
}
