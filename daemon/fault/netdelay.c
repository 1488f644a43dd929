/* Delay and jitter: the API, the probe of what this host offers, and the
 * choice of mechanism per delay (netem in netdelay_netem.c, NFQUEUE in
 * netdelay_nfq.c). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <net/if.h>

#include "caps.h"
#include "log.h"
#include "netdelay_priv.h"
#include "util.h"

static unsigned nd_used;		/* ND_VIA_* bits opened so far */

/* Run @fn in a forked child and bring back what it filled in @r. A child
 * may unshare a throwaway network namespace: it and its sockets die with
 * the child, so a probe leaves nothing behind. 0, or -errno (with @r->why)
 * if the child could not run. */
int nd_in_child(void (*fn)(struct nd_probe_result *r, void *arg), void *arg,
		       struct nd_probe_result *r)
{
	int p[2], status, err = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		err = -errno;
		snprintf(r->why, sizeof(r->why), "pipe: %s", strerror(-err));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		snprintf(r->why, sizeof(r->why), "fork: %s", strerror(-err));
		goto out_close;
	}
	if (pid == 0) {
		struct nd_probe_result mine = {.err = 0, .variant = -1};

		close(p[0]);
		fn(&mine, arg);
		_exit(write(p[1], &mine, sizeof(mine)) == (ssize_t)sizeof(mine) ? 0 : 1);
	}
	close(p[1]);
	p[1] = -1;
	r->err = -EIO;
	snprintf(r->why, sizeof(r->why), "probe child failed");
	while (read(p[0], r, sizeof(*r)) < 0 && errno == EINTR)
		;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r->why[sizeof(r->why) - 1] = '\0';
out_close:
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
out:
	return err;
}

/* The capability names every mechanism this process has delayed with. */
static void nd_record(unsigned via)
{
	nd_used |= via;
	caps_set_ok(CAPS_DELAY, nd_used == (ND_VIA_NETEM | ND_VIA_NFQUEUE) ? "netem, nfqueue" :
				nd_used & ND_VIA_NETEM ? "netem" : "nfqueue");
}

int netdelay_available(char *why, size_t len)
{
	int err = nd_netem_available();

	if (!err) {
		nd_record(ND_VIA_NETEM);
		snprintf(why, len, "%s", nd_netem_mech.why);
		goto out;
	}
	err = nd_nfq_available();
	if (!err) {
		nd_record(ND_VIA_NFQUEUE);
		snprintf(why, len, "%s", nd_nfq_mech.why);
		goto out;
	}
	snprintf(why, len, "NFQUEUE: %s; sch_netem: %s", nd_nfq_mech.why, nd_netem_mech.why);
	caps_set_missing(CAPS_DELAY, "%s", why);
out:
	return err;
}

/* netem where it can (no user-space loop, and what real networks do);
 * NFQUEUE where it cannot, or where making the qdisc failed. */
static int nd_open_mech(struct netdelay *d, const struct netdelay_where *w, unsigned dir)
{
	char why[ND_WHY_MAX];
	int err = -EOPNOTSUPP;

	if (nd_netem_fits(w, dir, why, sizeof(why))) {
		err = nd_netem_open(d, w, dir);
		if (err) {
			snprintf(why, sizeof(why), "netem on %s failed (%s)", d->nm_ifname,
				 strerror(-err));
			nd_netem_close(d);
		}
	}
	if (err) {
		log_debug("%s: %s %s: NFQUEUE, not netem: %s", __func__, w->ifname,
			  dir == NETDELAY_INGRESS ? "ingress" : dir == NETDELAY_EGRESS ? "egress" :
			  "both", why);
		err = nd_nfq_start(d, w->netns_path);
	}
	return err;
}

static bool nd_where_valid(const struct netdelay_where *w)
{
	return w && w->netns_path && w->ifname && w->ifname[0] &&
	       strlen(w->ifname) < IFNAMSIZ && (!w->peer_ifname || strlen(w->peer_ifname) < IFNAMSIZ);
}

int netdelay__open(struct event_base *base, const struct netdelay_where *w, unsigned dir,
		   unsigned queue_num, unsigned long long seed, struct netdelay **out)
{
	struct netdelay *d = NULL;
	char why[ND_WHY_MAX];
	int err;

	if (out)
		*out = NULL;
	if (!base || !nd_where_valid(w) || !out || !dir || (dir & ~(unsigned)NETDELAY_BOTH) ||
	    queue_num > UINT16_MAX) {
		err = -EINVAL;
		goto err_log;
	}
	err = netdelay_available(why, sizeof(why));
	if (err) {
		log_warn("%s: %s", __func__, why);
		goto err_log;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto err_log;
	}
	d->base = base;
	d->fd = -1;
	d->ns_fd = -1;
	d->dir = dir;
	d->queue_num = queue_num;
	d->rng = seed;
	snprintf(d->ifname, sizeof(d->ifname), "%s", w->ifname);
	err = nd_open_mech(d, w, dir);
	if (err)
		goto err_close;
	nd_record(d->via);
	if (d->via == ND_VIA_NETEM)
		log_info("%s: %s in %s: %s via netem on %s", __func__, w->ifname, w->netns_path,
			 dir == NETDELAY_INGRESS ? "ingress" : "egress", d->nm_ifname);
	else
		log_info("%s: %s in %s: %s%s%s via queue %u (%s)", __func__, w->ifname,
			 w->netns_path, dir & NETDELAY_INGRESS ? "ingress" : "",
			 dir == NETDELAY_BOTH ? "+" : "", dir & NETDELAY_EGRESS ? "egress" : "",
			 queue_num, nd_ipt);
	*out = d;
	return 0;
err_close:
	netdelay__close(d);
err_log:
	log_warn("%s: %s %s: %s", __func__, w && w->netns_path ? w->netns_path : "(null)",
		 w && w->ifname ? w->ifname : "(null)", strerror(-err));
	return err;
}

/* The inverse of the standard normal CDF at @p in (0, 1), by bisection on
 * erfc: a table is made once, so speed does not matter. */
static double nd_normal_quantile(double p)
{
	double lo = -10.0, hi = 10.0;

	for (int i = 0; i < 100; i++) {
		double mid = (lo + hi) / 2;

		if (0.5 * erfc(-mid / sqrt(2.0)) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/* One jitter is NETDELAY_DIST_SCALE; 4 jitters fit a short. */
static short nd_dist_entry(double x)
{
	double v = x * NETDELAY_DIST_SCALE;

	if (v > 4.0 * NETDELAY_DIST_SCALE - 1)
		v = 4.0 * NETDELAY_DIST_SCALE - 1;
	if (v < -4.0 * NETDELAY_DIST_SCALE)
		v = -4.0 * NETDELAY_DIST_SCALE;
	return (short)lround(v);
}

/* Tables as netem's: the quantiles of the distribution at
 * (i + 0.5) / NETDELAY_DIST_SIZE, scaled to mean 0 and standard deviation
 * 1. Pareto: alpha 3, x_m 1 (mean 1.5, standard deviation sqrt(3)/2), a
 * tail toward long delays. */
static short nd_normal[NETDELAY_DIST_SIZE], nd_pareto[NETDELAY_DIST_SIZE];

static void nd_dist_make(void)
{
	for (size_t i = 0; i < NETDELAY_DIST_SIZE; i++) {
		double p = (i + 0.5) / NETDELAY_DIST_SIZE;

		nd_normal[i] = nd_dist_entry(nd_normal_quantile(p));
		nd_pareto[i] = nd_dist_entry((pow(1.0 - p, -1.0 / 3.0) - 1.5) / (sqrt(3.0) / 2));
	}
}

/* Made once, by whichever run's thread comes first. */
const short *netdelay_dist_table(enum netdelay_dist dist)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, nd_dist_make);
	return dist == NETDELAY_NORMAL ? nd_normal : dist == NETDELAY_PARETO ? nd_pareto : NULL;
}

int netdelay__set(struct netdelay *d, const struct netdelay_conf *c)
{
	if (!d || !c || c->delay_ms > NETDELAY_MAX_MS || c->jitter_ms > NETDELAY_MAX_MS ||
	    c->reorder_pct < 0 || c->reorder_pct > 100 || c->dist > NETDELAY_PARETO) {
		log_warn("%s: delay %u ms jitter %u ms: out of range (max %u ms)", __func__,
			 c ? c->delay_ms : 0, c ? c->jitter_ms : 0, NETDELAY_MAX_MS);
		return -EINVAL;
	}
	d->conf = *c;
	if (d->via == ND_VIA_NETEM)
		return nd_netem_set(d, c);
	nd_nfq_set(d, c);
	return 0;
}

const char *netdelay__via(const struct netdelay *d)
{
	return d && d->via == ND_VIA_NETEM ? "netem" : "nfqueue";
}

void netdelay__stats(const struct netdelay *d, unsigned long long *queued,
		     unsigned long long *released, unsigned long long *dropped)
{
	struct nd_netem_stats st = {0};
	unsigned long long q = 0, r = 0, x = 0;

	if (d && d->via == ND_VIA_NETEM && nd_netem_stats(d, &st) == 0) {
		q = st.sent + st.held + st.dropped;
		r = st.sent;
		x = st.dropped;
	} else if (d && d->via == ND_VIA_NFQUEUE) {
		q = d->queued;
		r = d->released;
		x = d->dropped;
	}
	if (queued)
		*queued = q;
	if (released)
		*released = r;
	if (dropped)
		*dropped = x;
}

unsigned long long netdelay__overflows(const struct netdelay *d)
{
	return d ? d->overflows : 0;
}

unsigned long long netdelay__reordered(const struct netdelay *d)
{
	return d ? d->reordered : 0;
}

void netdelay__close(struct netdelay *d)
{
	if (!d)
		return;
	nd_netem_close(d);
	nd_nfq_close(d);
	free(d->buf);
	free(d->heap);
	free(d);
}
