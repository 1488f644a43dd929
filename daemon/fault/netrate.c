#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "caps.h"
#include "log.h"
#include "netrate.h"
#include "topo.h"

struct netrate {
	struct nl_sock *sk;		/* bound to the link's namespace */
	int ifindex;
	bool on;			/* our qdisc is installed */
	char ifname[IFNAMSIZ];
};

struct netrate *netrate__open(const char *netns_path, const char *ifname)
{
	struct rtnl_link *link = NULL;
	struct netrate *nr;
	int err;

	nr = calloc(1, sizeof(*nr));
	if (!nr) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(nr->ifname, sizeof(nr->ifname), "%s", ifname);
	nr->sk = topo_nl_socket(netns_path);
	if (!nr->sk) {
		err = -errno;
		goto err_free;
	}
	err = rtnl_link_get_kernel(nr->sk, 0, ifname, &link);
	if (err) {
		log_warn("%s: %s: %s", __func__, ifname, nl_geterror(err));
		err = -ENODEV;
		goto err_free;
	}
	nr->ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return nr;
err_free:
	if (nr->sk)
		nl_socket_free(nr->sk);
	free(nr);
	errno = -err;
	return NULL;
}

static struct rtnl_qdisc *root_qdisc(const struct netrate *nr)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();

	if (!q)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(q), nr->ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(0xfd, 0));
	return q;
}

/* The first tbf made, or refused for its kind, tells the capability. The
 * kernel answers ENOENT (libnl: object not found) for a qdisc kind it has
 * not and cannot load; EOPNOTSUPP where it refuses qdiscs on the device.
 * Anything else (a bad rate, a vanished interface) is the run's, not the
 * host's. */
static void nr_record(int nlerr)
{
	if (!nlerr)
		caps_set_ok(CAPS_RATE, "tbf");
	else if (nlerr == -NLE_OBJ_NOTFOUND || nlerr == -NLE_OPNOTSUPP)
		caps_set_missing(CAPS_RATE, "a tbf qdisc was refused: %s", nl_geterror(nlerr));
}

int netrate__set(struct netrate *nr, unsigned rate_kbit, unsigned burst_b,
		 unsigned latency_ms)
{
	struct rtnl_qdisc *q = root_qdisc(nr);
	int err = 0;

	if (!q)
		return -ENOMEM;
	if (!rate_kbit) {
		if (nr->on)
			err = rtnl_qdisc_delete(nr->sk, q);
		if (!err)
			nr->on = false;
		goto out;
	}
	err = rtnl_tc_set_kind(TC_CAST(q), "tbf");
	if (err)
		goto out;
	/* libnl takes bytes per second; the cell log is its to choose. */
	rtnl_qdisc_tbf_set_rate(q, (int)((unsigned long long)rate_kbit * 1000 / 8),
				(int)burst_b, 0);
	err = rtnl_qdisc_tbf_set_limit_by_latency(q, (int)(latency_ms * 1000));
	if (!err)
		err = rtnl_qdisc_add(nr->sk, q, NLM_F_CREATE | NLM_F_REPLACE);
	nr_record(err);
	if (!err)
		nr->on = true;
out:
	if (err)
		log_warn("%s: %s: rate %u kbit/s: %s", __func__, nr->ifname, rate_kbit,
			 nl_geterror(err));
	rtnl_qdisc_put(q);
	return err ? -EIO : 0;
}

void netrate__close(struct netrate *nr)
{
	if (!nr)
		return;
	if (nr->on)
		netrate__set(nr, 0, 0, 0);
	nl_socket_free(nr->sk);
	free(nr);
}
