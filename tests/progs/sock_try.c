/* Tries socket() N times (default 1000), closing what it gets, and prints
 * "tried N failed M errno NAME" with the errno of the first failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000, failed = 0, first = 0;

	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0) {
			if (!failed++)
				first = errno;
			continue;
		}
		close(fd);
	}
	printf("tried %d failed %d errno %s\n", n, failed,
	       first == ENFILE ? "ENFILE" : first == EMFILE ? "EMFILE" : first ? strerror(first) : "-");
	return 0;
}
