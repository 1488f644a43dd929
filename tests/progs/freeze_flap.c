/* A process with a bug that shows only when two faults overlap: it polls
 * its namespace's links every 10 ms, and when it wakes from a freeze (a
 * gap of more than 150 ms) to find that a link changed carrier while it was
 * frozen, it aborts, as a program whose link watcher misses an event it
 * slept through might. A flap alone or a pause alone never trips it.
 * Counts carrier changes with RTM_GETLINK (IFLA_CARRIER_CHANGES): /sys
 * shows the host's namespace, not ours. */
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GAP_MS 150

static long long carrier_changes(int fd)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {.nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1},
		.ifi = {.ifi_family = AF_UNSPEC},
	};
	static char buf[32768];
	long long total = 0;

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			return -1;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct ifinfomsg *ifi = NLMSG_DATA(nh);
			int len = (int)IFLA_PAYLOAD(nh);

			if (nh->nlmsg_type == NLMSG_DONE)
				return total;
			if (nh->nlmsg_type != RTM_NEWLINK)
				continue;
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
				if (a->rta_type == IFLA_CARRIER_CHANGES)
					total += *(uint32_t *)RTA_DATA(a);
		}
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	long long t = now_ms(), cc = carrier_changes(fd);

	if (fd < 0 || cc < 0) {
		perror("freeze_flap: netlink");
		return 2;
	}
	printf("watching: %lld carrier changes so far\n", cc);
	fflush(stdout);
	for (;;) {
		long long t2, cc2;

		usleep(10000);
		t2 = now_ms();
		cc2 = carrier_changes(fd);
		if (t2 - t > GAP_MS && cc2 != cc) {
			fprintf(stderr, "freeze_flap: woke after %lld ms to %lld carrier changes "
				"made while frozen\n", t2 - t, cc2 - cc);
			abort();
		}
		if (cc2 != cc)
			printf("carrier changed (%lld)\n", cc2);
		if (t2 - t > GAP_MS)
			printf("woke after %lld ms, links as before\n", t2 - t);
		fflush(stdout);
		t = t2;
		cc = cc2;
	}
}
