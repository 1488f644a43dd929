/* An fd leak per loop (open without close), or with --sockets a UDP socket
 * leak per loop. argv: [--sockets] iterations (40) interval-ms (100). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	int sockets = argc > 1 && !strcmp(argv[1], "--sockets");
	int base = sockets ? 2 : 1;
	int n = argc > base ? atoi(argv[base]) : 40;
	int ms = argc > base + 1 ? atoi(argv[base + 1]) : 100;

	for (int i = 0; i < n; i++) {
		int fd = sockets ? socket(AF_INET, SOCK_DGRAM, 0) : open("/dev/null", O_RDONLY);

		if (fd < 0)
			return 1;
		/* The bug: fd is never closed. */
		usleep((useconds_t)ms * 1000);
	}
	return 0;
}
