/* Never ends by itself. With --ignore-term it ignores SIGTERM too, so only
 * SIGKILL ends it (a supervisor's escalation is then tested). With
 * --fork N it starts N children that hang the same way. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int children = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ignore-term"))
			signal(SIGTERM, SIG_IGN);
		else if (!strcmp(argv[i], "--fork") && i + 1 < argc)
			children = atoi(argv[++i]);
	}
	for (int i = 0; i < children; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			/* Leave the process group, as a daemonising child would. */
			setsid();
			break;
		}
	}
	printf("hang: pid %d waiting forever\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
