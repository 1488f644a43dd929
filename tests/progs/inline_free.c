/* A bad free inside a helper that -O2 inlines into main (built with -O2,
 * see PROG_CFLAGS_inline_free): the evidence must name the helper and its
 * own line, then main at the call site, as addr2line -i does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) void buf_release(char *buf)
{
	free(buf);
}

int main(int argc, char **argv)
{
	char *buf = malloc(64 + (size_t)argc);
	volatile int sink = 0;

	memset(buf, 'x', 64);
	buf_release(buf);
	sink += argv[0][0];
	buf_release(buf + 16);	/* the bug: a pointer into the block, never allocated */
	sink += argv[0][1];
	printf("done %d\n", sink);
	return 0;
}
