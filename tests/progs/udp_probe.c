/* Sends N numbered UDP datagrams to an echo server, one every interval, and
 * counts the echoes that came back and those that came back changed.
 * Prints "sent N received M corrupted K" at the end.
 * argv: ADDR PORT [count (1000)] [interval-us (1000)]. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PAYLOAD 64

int main(int argc, char **argv)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	int n = argc > 3 ? atoi(argv[3]) : 1000, us = argc > 4 ? atoi(argv[4]) : 1000;
	struct timeval tv = {.tv_usec = 1000};
	int fd, received = 0, corrupted = 0;
	unsigned char out[PAYLOAD], in[PAYLOAD];

	if (argc < 3 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1)
		return 2;
	to.sin_port = htons((unsigned short)atoi(argv[2]));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < PAYLOAD; k++)
			out[k] = (unsigned char)(i + k);
		sendto(fd, out, sizeof(out), 0, (struct sockaddr *)&to, sizeof(to));
		usleep((useconds_t)us);
		/* Collect whatever came back so far. */
		for (;;) {
			ssize_t got = recv(fd, in, sizeof(in), MSG_DONTWAIT);

			if (got != PAYLOAD)
				break;
			received++;
			/* A datagram is intact if it matches its own number. */
			unsigned char base = (unsigned char)(in[1] - 1);
			for (int k = 0; k < PAYLOAD; k++)
				if (in[k] != (unsigned char)(base + k)) {
					corrupted++;
					break;
				}
		}
	}
	usleep(200 * 1000);
	while (recv(fd, in, sizeof(in), MSG_DONTWAIT) == PAYLOAD)
		received++;
	printf("sent %d received %d corrupted %d\n", n, received, corrupted);
	return 0;
}
