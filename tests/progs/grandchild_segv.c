/* The crash is two generations down: this process forks a child, which forks
 * a grandchild that dereferences NULL. Both parents reap and exit 0, so
 * only a tracer of the whole tree sees the crash. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	pid_t child = fork();

	if (child == 0) {
		pid_t grandchild = fork();

		if (grandchild == 0) {
			volatile int *p = NULL;

			return *p;
		}
		waitpid(grandchild, NULL, 0);
		return 0;
	}
	waitpid(child, NULL, 0);
	printf("grandchild_segv: parent exiting 0\n");
	return 0;
}
