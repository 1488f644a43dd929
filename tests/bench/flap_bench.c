/* Link flaps through faultd's own topology code: the time from asking for
 * a link state to the kernel announcing it in the peer's namespace
 * (RTM_NEWLINK with the peer's carrier changed), and the highest flap rate
 * kept up for SECONDS with every change announced. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000	/* linux/if.h: the carrier is up */
#endif

#include "journal.h"
#include "log.h"
#include "scenario.h"
#include "topo.h"
#include "util.h"

#define ROUNDS 200

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A link-event socket inside namespace @path. */
static int monitor_in(const char *path)
{
	int self = open("/proc/self/ns/net", O_RDONLY), ns = open(path, O_RDONLY), fd = -1;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};

	if (self >= 0 && ns >= 0 && setns(ns, CLONE_NEWNET) == 0) {
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			fd = -1;
		}
		if (setns(self, CLONE_NEWNET) < 0)
			fd = -1;
	}
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	return fd;
}

/* Wait for a link message whose IFF_LOWER_UP matches @up; -1 on timeout. */
static int wait_carrier(int fd, bool up, int timeout_ms)
{
	char buf[16384];
	double deadline = now_us() + timeout_ms * 1000.0;

	while (now_us() < deadline) {
		struct timeval tv = {.tv_usec = 10000};
		ssize_t n;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = recv(fd, buf, sizeof(buf), 0);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct ifinfomsg *ifi = NLMSG_DATA(h);

			if (h->nlmsg_type == RTM_NEWLINK && ifi->ifi_index != 1 &&
			    !!(ifi->ifi_flags & IFF_LOWER_UP) == up)
				return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const char *namespaces[] = {"a", "b", NULL};
	struct sc_link link = {.name = "l0", .type = SC_LINK_VETH, .a = "a", .b = "b", .a_ns = 0, .b_ns = 1};
	struct scenario sc = {.namespaces = namespaces, .n_ns = 2, .links = &link, .n_links = 1};
	int seconds = argc > 1 ? atoi(argv[1]) : 60, fd, lost = 0;
	double lat[ROUNDS], t0;
	char id[RUN_ID_LEN];
	struct journal *j;
	struct topo *t;
	long flaps = 0;

	log_set_level(LOG_WARN);
	util_run_id(id);
	j = journal__open("/tmp/faultd-bench-journal", id);
	t = j ? topo__create(&sc, id, j) : NULL;
	fd = t ? monitor_in(topo__ns_path(t, 1)) : -1;
	if (fd < 0) {
		fprintf(stderr, "flap_bench: cannot set up: %s\n", strerror(errno));
		goto out;
	}
	for (int i = 0; i < ROUNDS; i++) {
		bool up = i % 2;

		t0 = now_us();
		topo__link_set(t, 0, up);
		lat[i] = wait_carrier(fd, up, 1000) == 0 ? now_us() - t0 : 1e9;
	}
	qsort(lat, ROUNDS, sizeof(double), cmp);
	printf("flap to state seen in the peer namespace: median %.0f us, max %.0f us "
	       "(%d changes)\n", lat[ROUNDS / 2], lat[ROUNDS - 1], ROUNDS);
	/* As fast as the kernel announces it, for the whole period. */
	t0 = now_us();
	while (now_us() - t0 < seconds * 1e6) {
		topo__link_set(t, 0, false);
		lost += wait_carrier(fd, false, 1000) != 0;
		topo__link_set(t, 0, true);
		lost += wait_carrier(fd, true, 1000) != 0;
		flaps++;
	}
	printf("sustained for %d s: %.0f flaps/s (down+up), %d state changes not seen\n",
	       seconds, flaps / ((now_us() - t0) / 1e6), lost);
out:
	if (fd >= 0)
		close(fd);
	topo__free(t);
	journal__replay(j);
	journal__free(j);
	return fd < 0;
}
