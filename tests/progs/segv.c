/* Dereferences NULL after a short delay: a crash by SIGSEGV. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	volatile int *p = NULL;

	printf("segv: about to crash\n");
	fflush(stdout);
	usleep(100 * 1000);
	return *p;
}
