/* The bug is in a child: the parent allocates, forks, and the child frees a
 * block it inherited (fine, but no tracker saw it allocated in the child)
 * and then frees one of its own twice in the fastbin way glibc tolerates.
 * Both exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TCACHE_FILL 7

static void release(void *p)
{
	free(p);
}

static int child(void *inherited)
{
	void *keep[TCACHE_FILL], *a, *b, *drained[3];

	usleep(300 * 1000);	/* faultd follows the child from its fork on */
	free(inherited);
	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(48);
	a = malloc(48);
	b = malloc(48);
	for (int i = 0; i < TCACHE_FILL; i++)
		free(keep[i]);
	release(a);
	release(b);
	release(a);		/* the bug */
	for (int i = 0; i < TCACHE_FILL; i++)
		keep[i] = malloc(48);
	for (int i = 0; i < 3; i++)
		drained[i] = malloc(48);
	(void)drained;
	printf("child: survived\n");
	return 0;
}

int main(void)
{
	void *inherited = malloc(100);
	pid_t pid;

	usleep(100 * 1000);
	pid = fork();
	if (pid == 0)
		return child(inherited);
	waitpid(pid, NULL, 0);
	free(inherited);
	return 0;
}
