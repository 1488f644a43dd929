/* Calls abort(): a crash by SIGABRT, as glibc does on a corrupt heap. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	fprintf(stderr, "abort: calling abort()\n");
	abort();
}
