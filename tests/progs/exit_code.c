/* Prints a line and exits with the code given (default 0). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int code = argc > 1 ? atoi(argv[1]) : 0;

	printf("exit_code: exiting with %d\n", code);
	return code;
}
