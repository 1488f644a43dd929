/* A reconnecting kernel TCP client: sends "ping N" to an echo server every
 * interval and prints "ok N" on stdout for each echo that comes back. On
 * any error it says so on stderr, shuts the socket down, closes it, and
 * connects again after a short backoff. argv: ADDR PORT [interval-ms]. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TIMEOUT_MS 500
#define BACKOFF_MS 100

static int dial(const struct sockaddr_in *to)
{
	struct timeval tv = {.tv_usec = TIMEOUT_MS * 1000};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	int interval = argc > 3 ? atoi(argv[3]) : 100, fd = -1;
	unsigned long n = 0, reconnects = 0;

	if (argc < 3 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "usage: tcp_client ADDR PORT [interval-ms]\n");
		return 2;
	}
	to.sin_port = htons((unsigned short)atoi(argv[2]));
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		char out[64], in[64];
		ssize_t len, got;

		if (fd < 0) {
			fd = dial(&to);
			if (fd < 0) {
				fprintf(stderr, "connect: %s\n", strerror(errno));
				usleep(BACKOFF_MS * 1000);
				continue;
			}
			if (reconnects++)
				fprintf(stderr, "reconnected (%lu)\n", reconnects - 1);
		}
		len = snprintf(out, sizeof(out), "ping %lu\n", ++n);
		got = send(fd, out, (size_t)len, MSG_NOSIGNAL) == len ? recv(fd, in, sizeof(in), 0) : -1;
		if (got != len || memcmp(in, out, (size_t)len) != 0) {
			fprintf(stderr, "echo %lu failed: %s\n", n, got < 0 ? strerror(errno) : "short");
			shutdown(fd, SHUT_RDWR);
			close(fd);
			fd = -1;
			usleep(BACKOFF_MS * 1000);
			continue;
		}
		printf("ok %lu\n", n);
		usleep((useconds_t)interval * 1000);
	}
}
