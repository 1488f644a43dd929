/* Delay through sch_netem: a root netem qdisc on the interface the
 * delayed packets leave by, changed in place at run time. */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <net/if.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/tc.h>

#include "log.h"
#include "netdelay_priv.h"
#include "topo.h"
#include "util.h"

#define ND_NETEM_HANDLE	TC_HANDLE(0xfe, 0)	/* netrate's tbf is fd: */

struct nd_mech nd_netem_mech;

/* libnl's errors as the errno the kernel gave (libnl keeps only its own
 * codes); what has no errno twin is an I/O error. */
static int nd_nl_errno(int nlerr)
{
	static const struct { int nl, sys; } map[] = {
		{NLE_OBJ_NOTFOUND, ENOENT}, {NLE_OPNOTSUPP, EOPNOTSUPP}, {NLE_PERM, EPERM},
		{NLE_NOMEM, ENOMEM}, {NLE_NODEV, ENODEV}, {NLE_INVAL, EINVAL},
		{NLE_EXIST, EEXIST}, {NLE_BUSY, EBUSY}, {NLE_RANGE, ERANGE},
		{NLE_NOACCESS, EACCES}, {NLE_AGAIN, EAGAIN},
	};
	int err = nlerr < 0 ? -nlerr : nlerr;

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].nl == err)
			return -map[i].sys;
	return err ? -EIO : 0;
}

/* A root netem qdisc for @ifindex that delays by @delay_ms ± @jitter_ms.
 * Its limit is NETDELAY_QUEUE_MAX packets, as the NFQUEUE loop's. NULL on
 * ENOMEM. */
/* A root netem qdisc for @ifindex that delays as @c says (NULL: not at
 * all). Its limit is NETDELAY_QUEUE_MAX packets, as the NFQUEUE loop's.
 * NULL on ENOMEM. */
static struct rtnl_qdisc *nd_netem_qdisc(int ifindex, const struct netdelay_conf *c)
{
	static const struct netdelay_conf none;
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	const short *table;

	if (!q)
		return NULL;
	if (!c)
		c = &none;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), ND_NETEM_HANDLE);
	if (rtnl_tc_set_kind(TC_CAST(q), "netem") < 0)
		goto err;
	rtnl_netem_set_limit(q, (int)NETDELAY_QUEUE_MAX);
	/* libnl takes microseconds; NETDELAY_MAX_MS of them fit an int. */
	rtnl_netem_set_delay(q, (int)(c->delay_ms * 1000u));
	rtnl_netem_set_jitter(q, (int)(c->jitter_ms * 1000u));
	/* The same table the NFQUEUE loop draws from. A table stays in the
	 * kernel until another replaces it; with uniform, jitter 0 or no
	 * delay none is read. */
	table = netdelay_dist_table(c->dist);
	if (table && rtnl_netem_set_delay_distribution_data(q, (const int16_t *)table,
							    NETDELAY_DIST_SIZE) < 0)
		goto err;
	if (c->reorder_pct > 0) {
		/* netem's probabilities are fractions of 2^32, which libnl
		 * passes through as they are. */
		rtnl_netem_set_gap(q, (int)(c->reorder_gap > 1 ? c->reorder_gap : 1));
		rtnl_netem_set_reorder_probability(q,
			(int)(uint32_t)(c->reorder_pct / 100.0 * UINT32_MAX));
	}
	return q;
err:
	rtnl_qdisc_put(q);
	return NULL;
}

/* Make (or change in place) our netem on @ifindex. 0 or -errno; libnl's
 * words for a failure in @why, if given. */
static int nd_netem_put(struct nl_sock *sk, int ifindex, const struct netdelay_conf *c,
			char *why, size_t len)
{
	struct rtnl_qdisc *q = nd_netem_qdisc(ifindex, c);
	int err;

	if (!q)
		return -ENOMEM;
	err = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_REPLACE);
	if (err && why)
		snprintf(why, len, "%s", nl_geterror(err));
	rtnl_qdisc_put(q);
	return nd_nl_errno(err);
}

/* In a forked child: a throwaway namespace, and a netem qdisc on its lo.
 * The kernel loads sch_netem itself on the first request for the kind (as
 * root in the initial user namespace, which faultd is). */
static void nd_netem_probe_child(struct nd_probe_result *r, void *arg)
{
	struct nl_sock *sk;
	char why[ND_WHY_MAX / 2] = "";
	int ifindex;

	(void)arg;
	if (unshare(CLONE_NEWNET) < 0) {
		r->err = -errno;
		snprintf(r->why, sizeof(r->why), "unshare(CLONE_NEWNET): %s", strerror(errno));
		return;
	}
	ifindex = (int)if_nametoindex("lo");
	sk = nl_socket_alloc();
	if (!sk || !ifindex || nl_connect(sk, NETLINK_ROUTE) < 0) {
		r->err = -EIO;
		snprintf(r->why, sizeof(r->why), "no rtnetlink socket in a new namespace");
		goto out;
	}
	r->err = nd_netem_put(sk, ifindex, NULL, why, sizeof(why));
	if (r->err == -ENOENT)
		snprintf(r->why, sizeof(r->why), "the kernel has no qdisc kind netem (module "
			 "sch_netem, CONFIG_NET_SCH_NETEM)");
	else if (r->err)
		snprintf(r->why, sizeof(r->why), "a netem qdisc was refused: %s", why);
out:
	nl_socket_free(sk);
}

/* sch_netem: can a netem qdisc be made? Found once per process, in a
 * throwaway namespace. FAULTD_NO_NETEM=1 says no (tests: the NFQUEUE path
 * on a kernel that has netem). */
int nd_netem_available(void)
{
	const char *off = getenv("FAULTD_NO_NETEM");
	struct nd_mech *m = &nd_netem_mech;
	struct nd_probe_result r = {.err = -EIO};

	if (m->tried)
		goto out;
	m->tried = true;
	if (off && *off && strcmp(off, "0")) {
		m->err = -EOPNOTSUPP;
		snprintf(m->why, sizeof(m->why), "FAULTD_NO_NETEM is set");
		goto out;
	}
	m->err = nd_in_child(nd_netem_probe_child, NULL, &r);
	if (!m->err)
		m->err = r.err;
	snprintf(m->why, sizeof(m->why), "%s", m->err ? r.why : "sch_netem");
	log_debug("%s: %s", __func__, m->err ? m->why : "a netem qdisc can be made");
out:
	return m->err;
}

/* --- netem ----------------------------------------------------------------------- */

/* Can netem give this delay? It shapes what leaves an interface, so a
 * delay arriving at a link end is made on the far end, which a tap lacks;
 * and the root qdisc there must not be a rate limit's tbf. If not, why in
 * @why. */
bool nd_netem_fits(const struct netdelay_where *w, unsigned dir, char *why, size_t len)
{
	const char *no = NULL;

	if (nd_netem_available())
		no = nd_netem_mech.why;
	else if (dir == NETDELAY_BOTH)
		no = "both directions in one queue";
	else if (dir == NETDELAY_INGRESS && (!w->peer_netns_path || !w->peer_ifname))
		no = "ingress at a tap: its far side is not a kernel interface";
	else if (w->rate_limited)
		no = "a rate limit's tbf is the root qdisc there";
	snprintf(why, len, "%s", no ? no : "");
	return !no;
}

/* Our netem, with no delay yet, on the interface the delayed packets
 * leave by: the link end for egress, its peer for ingress. */
int nd_netem_open(struct netdelay *d, const struct netdelay_where *w, unsigned dir)
{
	const char *ns = dir == NETDELAY_EGRESS ? w->netns_path : w->peer_netns_path;
	const char *ifname = dir == NETDELAY_EGRESS ? w->ifname : w->peer_ifname;
	struct rtnl_link *link = NULL;
	char why[ND_WHY_MAX / 2] = "";
	int err;

	snprintf(d->nm_ifname, sizeof(d->nm_ifname), "%s", ifname);
	d->sk = topo_nl_socket(ns);
	if (!d->sk) {
		err = errno ? -errno : -EIO;
		log_warn("%s: netlink in %s: %s", __func__, ns, strerror(-err));
		goto out;
	}
	err = nd_nl_errno(rtnl_link_get_kernel(d->sk, 0, ifname, &link));
	if (err) {
		log_warn("%s: no interface %s in %s", __func__, ifname, ns);
		goto out;
	}
	d->nm_ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	err = nd_netem_put(d->sk, d->nm_ifindex, NULL, why, sizeof(why));
	if (err) {
		log_warn("%s: netem on %s: %s", __func__, ifname, why);
		goto out;
	}
	d->nm_on = true;
	d->via = ND_VIA_NETEM;
out:
	return err;
}

int nd_netem_set(struct netdelay *d, const struct netdelay_conf *c)
{
	static const char *const dists[] = {"uniform", "normal", "pareto"};
	char why[ND_WHY_MAX / 2] = "";
	int err = nd_netem_put(d->sk, d->nm_ifindex, c, why, sizeof(why));

	if (err)
		log_warn("%s: %s: delay %u ms, jitter %u ms %s: %s", __func__, d->nm_ifname,
			 c->delay_ms, c->jitter_ms, dists[c->dist], why);
	else
		log_info("%s: %s netem: delay %u ms, jitter %u ms %s, reorder %.1f%% gap %u",
			 __func__, d->nm_ifname, c->delay_ms, c->jitter_ms, dists[c->dist],
			 c->reorder_pct, c->reorder_gap);
	return err;
}

/* Our netem's counters, as the kernel keeps them. 0 or -errno. */
int nd_netem_stats(const struct netdelay *d, struct nd_netem_stats *st)
{
	struct nl_cache *cache = NULL;
	struct rtnl_qdisc *q;
	int err;

	memset(st, 0, sizeof(*st));
	err = nd_nl_errno(rtnl_qdisc_alloc_cache(d->sk, &cache));
	if (err)
		goto out;
	q = rtnl_qdisc_get(cache, d->nm_ifindex, ND_NETEM_HANDLE);
	if (!q) {
		err = -ENOENT;
		goto out_free_cache;
	}
	st->sent = (unsigned long long)rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_PACKETS);
	st->held = (unsigned long long)rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_QLEN);
	st->dropped = (unsigned long long)rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_DROPS);
	rtnl_qdisc_put(q);
out_free_cache:
	nl_cache_free(cache);
out:
	return err;
}

/* Read the counters one last time, for the log, and remove the qdisc:
 * what it still holds goes with it. */
void nd_netem_close(struct netdelay *d)
{
	struct nd_netem_stats st;
	struct rtnl_qdisc *q;
	int err;

	if (d->nm_on && nd_netem_stats(d, &st) == 0 && st.sent)
		log_info("%s: %s netem: %llu sent, %llu held, %llu dropped", __func__,
			 d->nm_ifname, st.sent, st.held, st.dropped);
	q = d->nm_on ? rtnl_qdisc_alloc() : NULL;
	if (q) {
		rtnl_tc_set_ifindex(TC_CAST(q), d->nm_ifindex);
		rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
		rtnl_tc_set_handle(TC_CAST(q), ND_NETEM_HANDLE);
		err = nd_nl_errno(rtnl_qdisc_delete(d->sk, q));
		/* Gone already (with its interface) is what we want. */
		if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
			log_warn("%s: %s: remove netem: %s", __func__, d->nm_ifname,
				 strerror(-err));
		rtnl_qdisc_put(q);
	}
	d->nm_on = false;
	if (d->sk)
		nl_socket_free(d->sk);
	d->sk = NULL;
}
