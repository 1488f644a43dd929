/* Prints a line and exits with the code given (default 0). With WAIT_MS,
 * it first sleeps that long: a process that lives long enough for a probe
 * attached after its start to see its allocation (stdout's buffer). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int code = argc > 1 ? atoi(argv[1]) : 0;
	long wait_ms = argc > 2 ? atol(argv[2]) : 0;

	if (wait_ms > 0)
		usleep((useconds_t)wait_ms * 1000);
	printf("exit_code: exiting with %d\n", code);
	return code;
}
