#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <linux/netfilter.h>

#include <event2/event.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/tc.h>

#include "caps.h"
#include "log.h"
#include "netdelay.h"
#include "topo.h"
#include "util.h"

#define ND_RCVBUF	(4u << 20)	/* socket buffer: a burst of 8192 metadata messages fits */
#define ND_MSG_MAX	65536		/* one netlink datagram; with COPY_META far less */
#define ND_DRAIN_MAX	4096		/* messages per wakeup; the read event is level-triggered */
#define ND_SLACK_NS	200000ull	/* release what is due this close, one wakeup per burst */
#define ND_IPT_WAIT	"2"		/* seconds iptables-legacy waits for the xtables lock */
#define ND_WHY_MAX	256
#define ND_NETEM_HANDLE	TC_HANDLE(0xfe, 0)	/* netrate's tbf is fd: */

/* How a delay is made. */
enum { ND_VIA_NFQUEUE = 1, ND_VIA_NETEM = 2 };

struct nd_pkt {
	uint64_t due;			/* release time, CLOCK_MONOTONIC ns */
	uint64_t enq;			/* arrival time, to redraw under a new setting */
	uint64_t seq;			/* arrival order: ties in due keep it */
	uint32_t id;			/* NFQUEUE packet id the verdict names */
};

struct netdelay {
	unsigned via;			/* ND_VIA_NFQUEUE or ND_VIA_NETEM */
	/* netem: a root qdisc on the interface the delayed packets leave by. */
	struct nl_sock *sk;		/* bound to that interface's namespace */
	int nm_ifindex;
	char nm_ifname[IFNAMSIZ];
	bool nm_on;			/* our qdisc is installed */
	/* NFQUEUE: rules steer the packets to a verdict loop in faultd. */
	struct event_base *base;
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	struct event *rx_ev;		/* the queue socket is readable */
	struct event *timer;		/* the earliest held packet is due */
	uint64_t armed;			/* due time the timer is armed for, 0 if idle */
	int fd;				/* the queue socket, bound to the namespace */
	int ns_fd;			/* the namespace, kept for removing the rules */
	unsigned dir;			/* NETDELAY_* bits asked for */
	unsigned rules;			/* NETDELAY_* bits whose rule is installed */
	unsigned queue_num;
	char ifname[IFNAMSIZ];
	uint64_t delay_ns, jitter_ns;
	uint64_t rng;			/* splitmix64 state */
	uint64_t seq;
	struct nd_pkt *heap;		/* min-heap on (due, seq), NETDELAY_QUEUE_MAX slots */
	size_t n;
	char *buf;			/* ND_MSG_MAX bytes for recv */
	unsigned long long queued, released, dropped, overflows;
	bool enobufs_logged, recv_err_logged, verdict_err_logged;
};

/* The iptables binary the probe found working, tried in this order:
 * iptables-nft is Debian's default and needs no legacy x_tables modules;
 * iptables-legacy is the fallback; plain iptables is whatever the system
 * links it to. */
static const char *const nd_variants[] = {"iptables-nft", "iptables-legacy", "iptables"};
static char nd_ipt[PATH_MAX];

static int nd_find_binary(const char *name, char *out, size_t len)
{
	static const char *const dirs[] = {"/usr/sbin", "/sbin"};
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(out, len, "%s/%s", dirs[i], name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	while (path && *path) {
		size_t n = strcspn(path, ":");

		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, path, n);
			dir[n] = '\0';
			if (snprintf(out, len, "%s/%s", dir, name) < (int)len && access(out, X_OK) == 0)
				return 0;
		}
		path += n + (path[n] == ':');
	}
	out[0] = '\0';
	return -ENOENT;
}

/* Run @ipt with one NFQUEUE rule: @op is "-A" or "-D". In the namespace
 * @ns_fd (a forked child joins it; -1: stay). The first line of iptables'
 * output goes to @why. 0, or -EIO when iptables fails. */
static int nd_iptables(const char *ipt, int ns_fd, const char *op, unsigned bit,
		       const char *ifname, unsigned queue_num, char *why, size_t len)
{
	char qnum[16], out[ND_WHY_MAX / 2];	/* half: room for the command in why */
	const char *argv[] = {
		ipt, "-w", ND_IPT_WAIT, "-t", "mangle", op,
		bit == NETDELAY_INGRESS ? "PREROUTING" : "POSTROUTING",
		bit == NETDELAY_INGRESS ? "-i" : "-o", ifname,
		"-j", "NFQUEUE", "--queue-num", qnum, "--queue-bypass", NULL,
	};
	size_t used = 0;
	int p[2], status, err = 0;
	pid_t pid;

	snprintf(qnum, sizeof(qnum), "%u", queue_num);
	if (pipe2(p, O_CLOEXEC) < 0) {
		err = -errno;
		snprintf(why, len, "pipe: %s", strerror(-err));
		return err;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		snprintf(why, len, "fork: %s", strerror(-err));
		goto out_close;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) < 0)
			_exit(126);
		execv(ipt, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	p[1] = -1;
	for (;;) {
		char chunk[512];
		ssize_t n = read(p[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used < sizeof(out) - 1) {
			size_t take = (size_t)n < sizeof(out) - 1 - used ? (size_t)n : sizeof(out) - 1 - used;

			memcpy(out + used, chunk, take);
			used += take;
		}
	}
	out[used] = '\0';
	out[strcspn(out, "\n")] = '\0';
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			err = -errno;
			snprintf(why, len, "waitpid: %s", strerror(-err));
			goto out_close;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		err = -EIO;
		snprintf(why, len, "%s %s %s: %s", ipt, op, ifname,
			 WIFEXITED(status) && WEXITSTATUS(status) == 126 ? "cannot enter the namespace" :
			 WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "cannot execute" :
			 out[0] ? out : "failed");
	}
out_close:
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return err;
}

/* --- what this host offers ----------------------------------------------------- */

/* What a probe found, once per process: a mechanism found missing stays
 * missing, as the capability it feeds does. */
struct nd_mech {
	bool tried;
	int err;			/* 0 or -errno */
	char why[ND_WHY_MAX];		/* what failed, or what works */
};

static struct nd_mech nd_netem_mech, nd_nfq_mech;
static unsigned nd_used;		/* ND_VIA_* bits opened so far */

/* What a probe child hands back through its pipe: smaller than PIPE_BUF,
 * so one atomic write. */
struct nd_probe_result {
	int err;			/* 0 or -errno */
	int variant;			/* NFQUEUE: index in nd_variants that worked */
	char why[ND_WHY_MAX];
};

/* Run @fn in a forked child and bring back what it filled in @r. A child
 * may unshare a throwaway network namespace: it and its sockets die with
 * the child, so a probe leaves nothing behind. 0, or -errno (with @r->why)
 * if the child could not run. */
static int nd_in_child(void (*fn)(struct nd_probe_result *r, void *arg), void *arg,
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

static int nd_nfq_probe_cb(struct nfq_q_handle *qh, struct nfgenmsg *msg,
			   struct nfq_data *nfa, void *data)
{
	(void)qh;
	(void)msg;
	(void)nfa;
	(void)data;
	return 0;
}

/* In a forked child: a throwaway namespace, one rule with each variant
 * until one takes, then a queue bound with the options netdelay__open sets. */
static void nd_nfq_probe_child(struct nd_probe_result *r, void *arg)
{
	char (*paths)[PATH_MAX] = arg;
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	char why[ND_WHY_MAX] = "";

	r->variant = -1;
	if (unshare(CLONE_NEWNET) < 0) {
		r->err = -errno;
		snprintf(r->why, sizeof(r->why), "unshare(CLONE_NEWNET): %s", strerror(errno));
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(nd_variants) && r->variant < 0; i++)
		if (paths[i][0] &&
		    nd_iptables(paths[i], -1, "-A", NETDELAY_EGRESS, "lo", 0, why, sizeof(why)) == 0)
			r->variant = (int)i;
	if (r->variant < 0) {
		r->err = -EOPNOTSUPP;
		snprintf(r->why, sizeof(r->why), "no iptables accepts an NFQUEUE rule: %.200s", why);
		return;
	}
	h = nfq_open();
	if (!h) {
		r->err = errno ? -errno : -EIO;
		snprintf(r->why, sizeof(r->why), "nfnetlink_queue: nfq_open: %s", strerror(-r->err));
		return;
	}
	qh = nfq_create_queue(h, 0, nd_nfq_probe_cb, NULL);
	if (!qh || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 ||
	    nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO,
				NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO) < 0) {
		r->err = errno ? -errno : -EIO;
		snprintf(r->why, sizeof(r->why), "nfnetlink_queue: cannot bind a fail-open queue: %s",
			 strerror(-r->err));
	}
	/* The child exits right away; the namespace and socket go with it. */
}

/* The iptables variants there are: FAULTD_IPTABLES names the one binary to
 * use (and lets a test see what a machine without iptables gets). 0, or
 * -ENOENT with the reason in @m. */
static int nd_nfq_binaries(char paths[][PATH_MAX], struct nd_mech *m)
{
	const char *forced = getenv("FAULTD_IPTABLES");
	bool found = false;

	if (forced) {
		snprintf(paths[0], PATH_MAX, "%s", forced);
		found = access(forced, X_OK) == 0;
		for (size_t i = 1; i < ARRAY_SIZE(nd_variants); i++)
			paths[i][0] = '\0';
	}
	for (size_t i = 0; !forced && i < ARRAY_SIZE(nd_variants); i++)
		found |= nd_find_binary(nd_variants[i], paths[i], PATH_MAX) == 0;
	if (found)
		return 0;
	if (forced)
		snprintf(m->why, sizeof(m->why), "FAULTD_IPTABLES=%.200s is not an executable",
			 forced);
	else
		snprintf(m->why, sizeof(m->why), "no iptables-nft, iptables-legacy or iptables in "
			 "/usr/sbin, /sbin or PATH (Debian package iptables)");
	return -ENOENT;
}

/* NFQUEUE: an iptables variant must accept an NFQUEUE --queue-bypass rule
 * in a throwaway namespace, and a netlink queue must bind. Found once; the
 * variant that worked is what netdelay__open runs. */
static int nd_nfq_available(void)
{
	static char paths[ARRAY_SIZE(nd_variants)][PATH_MAX];
	struct nd_mech *m = &nd_nfq_mech;
	struct nd_probe_result r = {.err = -EIO, .variant = -1};

	if (m->tried)
		goto out;
	m->tried = true;
	m->err = nd_nfq_binaries(paths, m);
	if (m->err)
		goto out;
	m->err = nd_in_child(nd_nfq_probe_child, paths, &r);
	if (!m->err)
		m->err = r.err;
	if (!m->err && (r.variant < 0 || r.variant >= (int)ARRAY_SIZE(nd_variants))) {
		m->err = -EIO;
		snprintf(r.why, sizeof(r.why), "probe child failed");
	}
	if (m->err) {
		snprintf(m->why, sizeof(m->why), "%s", r.why);
		goto out;
	}
	snprintf(nd_ipt, sizeof(nd_ipt), "%s", paths[r.variant]);
	snprintf(m->why, sizeof(m->why), "%.200s with NFQUEUE", nd_ipt);
out:
	return m->err;
}

/* A root netem qdisc for @ifindex that delays by @delay_ms ± @jitter_ms.
 * Its limit is NETDELAY_QUEUE_MAX packets, as the NFQUEUE loop's. NULL on
 * ENOMEM. */
static struct rtnl_qdisc *nd_netem_qdisc(int ifindex, unsigned delay_ms, unsigned jitter_ms)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();

	if (!q)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), ND_NETEM_HANDLE);
	if (rtnl_tc_set_kind(TC_CAST(q), "netem") < 0) {
		rtnl_qdisc_put(q);
		return NULL;
	}
	rtnl_netem_set_limit(q, (int)NETDELAY_QUEUE_MAX);
	/* libnl takes microseconds; NETDELAY_MAX_MS of them fit an int. */
	rtnl_netem_set_delay(q, (int)(delay_ms * 1000u));
	rtnl_netem_set_jitter(q, (int)(jitter_ms * 1000u));
	return q;
}

/* Make (or change in place) our netem on @ifindex. 0 or -errno; libnl's
 * words for a failure in @why, if given. */
static int nd_netem_put(struct nl_sock *sk, int ifindex, unsigned delay_ms, unsigned jitter_ms,
			char *why, size_t len)
{
	struct rtnl_qdisc *q = nd_netem_qdisc(ifindex, delay_ms, jitter_ms);
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
	r->err = nd_netem_put(sk, ifindex, 0, 0, why, sizeof(why));
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
static int nd_netem_available(void)
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

/* --- the NFQUEUE verdict loop ---------------------------------------------------- */

static uint64_t nd_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* delay ± jitter, uniform in ns, floored at 0. */
static uint64_t nd_draw(struct netdelay *d)
{
	uint64_t z;

	if (!d->jitter_ns)
		return d->delay_ns;
	z = nd_splitmix64(&d->rng) % (2 * d->jitter_ns + 1);
	return d->delay_ns + z > d->jitter_ns ? d->delay_ns + z - d->jitter_ns : 0;
}

static bool nd_before(const struct nd_pkt *a, const struct nd_pkt *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void nd_sift_down(struct netdelay *d, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct nd_pkt t;

		if (l < d->n && nd_before(&d->heap[l], &d->heap[m]))
			m = l;
		if (r < d->n && nd_before(&d->heap[r], &d->heap[m]))
			m = r;
		if (m == i)
			return;
		t = d->heap[i];
		d->heap[i] = d->heap[m];
		d->heap[m] = t;
		i = m;
	}
}

static void nd_push(struct netdelay *d, const struct nd_pkt *p)
{
	size_t i = d->n++;

	while (i > 0 && nd_before(p, &d->heap[(i - 1) / 2])) {
		d->heap[i] = d->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	d->heap[i] = *p;
}

static uint32_t nd_pop(struct netdelay *d)
{
	uint32_t id = d->heap[0].id;

	d->heap[0] = d->heap[--d->n];
	nd_sift_down(d, 0);
	return id;
}

static void nd_accept(struct netdelay *d, uint32_t id)
{
	if (nfq_set_verdict(d->qh, id, NF_ACCEPT, 0, NULL) < 0) {
		d->dropped++;
		if (!d->verdict_err_logged)
			log_warn("%s: %s queue %u: verdict: %s (logged once)", __func__, d->ifname,
				 d->queue_num, strerror(errno));
		d->verdict_err_logged = true;
		return;
	}
	d->released++;
}

static void nd_release_due(struct netdelay *d, uint64_t now)
{
	while (d->n && d->heap[0].due <= now + ND_SLACK_NS)
		nd_accept(d, nd_pop(d));
}

/* Keep the one timer on the earliest held packet. */
static void nd_arm(struct netdelay *d)
{
	uint64_t now, wait;
	struct timeval tv;

	if (!d->n) {
		if (d->armed)
			evtimer_del(d->timer);
		d->armed = 0;
		return;
	}
	if (d->armed == d->heap[0].due)
		return;
	now = util_now_ns();
	wait = d->heap[0].due > now ? d->heap[0].due - now : 0;
	tv.tv_sec = (time_t)(wait / 1000000000ull);
	tv.tv_usec = (suseconds_t)(wait % 1000000000ull / 1000ull);
	if (evtimer_add(d->timer, &tv) < 0) {
		log_warn("%s: %s queue %u: evtimer_add failed", __func__, d->ifname, d->queue_num);
		d->armed = 0;
		return;
	}
	d->armed = d->heap[0].due;
}

static int nd_on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
			void *data)
{
	struct netdelay *d = data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	struct nd_pkt p;

	(void)qh;
	(void)msg;
	if (!ph)
		return 0;
	d->queued++;
	p.id = ntohl(ph->packet_id);
	if (!d->delay_ns && !d->jitter_ns) {
		nd_accept(d, p.id);
		return 0;
	}
	if (d->n >= NETDELAY_QUEUE_MAX) {
		d->overflows++;
		nd_accept(d, p.id);
		return 0;
	}
	p.enq = util_now_ns();
	p.due = p.enq + nd_draw(d);
	p.seq = d->seq++;
	nd_push(d, &p);
	return 0;
}

/* Hand every message waiting on the socket to nd_on_packet. */
static void nd_drain(struct netdelay *d)
{
	for (int i = 0; i < ND_DRAIN_MAX; i++) {
		ssize_t n = recv(d->fd, d->buf, ND_MSG_MAX, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == ENOBUFS) {
			/* The queue is fail-open: what the kernel could not
			 * hand over it accepted undelayed. */
			if (!d->enobufs_logged)
				log_warn("%s: %s queue %u: receive buffer overran, some packets "
					 "passed undelayed (logged once)", __func__, d->ifname,
					 d->queue_num);
			d->enobufs_logged = true;
			continue;
		}
		if (n < 0) {
			if (!d->recv_err_logged)
				log_warn("%s: %s queue %u: recv: %s (logged once)", __func__,
					 d->ifname, d->queue_num, strerror(errno));
			d->recv_err_logged = true;
			break;
		}
		nfq_handle_packet(d->h, d->buf, (int)n);
	}
}

static void nd_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct netdelay *d = arg;

	(void)fd;
	(void)what;
	nd_drain(d);
	nd_release_due(d, util_now_ns());
	nd_arm(d);
}

static void nd_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct netdelay *d = arg;

	(void)fd;
	(void)what;
	d->armed = 0;
	nd_release_due(d, util_now_ns());
	nd_arm(d);
}

/* Inside the link's namespace: the interface is there, and the netlink
 * socket opened now belongs to that namespace, whatever this thread joins
 * later. */
static int nd_nfq_open(void *arg)
{
	struct netdelay *d = arg;
	int err = 0;

	if (!if_nametoindex(d->ifname)) {
		err = -ENODEV;
		log_warn("%s: no interface %s in the namespace", __func__, d->ifname);
	} else {
		d->h = nfq_open();
		if (!d->h) {
			err = errno ? -errno : -EIO;
			log_warn("%s: nfq_open: %s", __func__, strerror(-err));
		}
	}
	return err;
}

static int nd_queue_open(struct netdelay *d)
{
	unsigned flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO;
	int err;

	err = util_in_netns(d->ns_fd, nd_nfq_open, d);
	if (err) {
		log_warn("%s: in %s's namespace: %s", __func__, d->ifname, strerror(-err));
		goto out;
	}
	d->qh = nfq_create_queue(d->h, (uint16_t)d->queue_num, nd_on_packet, d);
	if (!d->qh) {
		/* The kernel answers EPERM when another socket holds the number. */
		err = errno == EPERM ? -EBUSY : errno ? -errno : -EIO;
		log_warn("%s: bind queue %u: %s", __func__, d->queue_num,
			 err == -EBUSY ? "taken in that namespace" : strerror(-err));
		goto out;
	}
	/* Metadata only: the verdict needs the id, never the payload. */
	if (nfq_set_mode(d->qh, NFQNL_COPY_META, 0) < 0 ||
	    nfq_set_queue_maxlen(d->qh, NETDELAY_QUEUE_MAX) < 0) {
		err = errno ? -errno : -EIO;
		log_warn("%s: configure queue %u: %s", __func__, d->queue_num, strerror(-err));
		goto out;
	}
	/* Fail-open: a full queue or socket passes packets undelayed rather
	 * than dropping them. GSO: no payload is read, so the kernel need not
	 * segment large packets before queueing them. */
	if (nfq_set_queue_flags(d->qh, flags, flags) < 0) {
		err = errno ? -errno : -EIO;
		log_warn("%s: fail-open on queue %u: %s", __func__, d->queue_num, strerror(-err));
		goto out;
	}
	nfnl_rcvbufsiz(nfq_nfnlh(d->h), ND_RCVBUF);
	d->fd = nfq_fd(d->h);
	/* Workloads faultd starts must not inherit the queue: a socket kept
	 * open by one after faultd died would hold packets no one accepts. */
	if (fcntl(d->fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) | O_NONBLOCK) < 0) {
		err = -errno;
		log_warn("%s: fcntl: %s", __func__, strerror(-err));
	}
out:
	return err;
}

/* --- netem ----------------------------------------------------------------------- */

/* Can netem give this delay? It shapes what leaves an interface, so a
 * delay arriving at a link end is made on the far end, which a tap lacks;
 * and the root qdisc there must not be a rate limit's tbf. If not, why in
 * @why. */
static bool nd_netem_fits(const struct netdelay_where *w, unsigned dir, char *why, size_t len)
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
static int nd_netem_open(struct netdelay *d, const struct netdelay_where *w, unsigned dir)
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
	err = nd_netem_put(d->sk, d->nm_ifindex, 0, 0, why, sizeof(why));
	if (err) {
		log_warn("%s: netem on %s: %s", __func__, ifname, why);
		goto out;
	}
	d->nm_on = true;
	d->via = ND_VIA_NETEM;
out:
	return err;
}

static int nd_netem_set(struct netdelay *d, unsigned delay_ms, unsigned jitter_ms)
{
	char why[ND_WHY_MAX / 2] = "";
	int err = nd_netem_put(d->sk, d->nm_ifindex, delay_ms, jitter_ms, why, sizeof(why));

	if (err)
		log_warn("%s: %s: delay %u ms, jitter %u ms: %s", __func__, d->nm_ifname, delay_ms,
			 jitter_ms, why);
	else
		log_info("%s: %s netem: delay %u ms, jitter %u ms", __func__, d->nm_ifname,
			 delay_ms, jitter_ms);
	return err;
}

struct nd_netem_stats {
	unsigned long long sent;	/* packets that left after their delay */
	unsigned long long held;	/* in the queue now */
	unsigned long long dropped;	/* over the limit */
};

/* Our netem's counters, as the kernel keeps them. 0 or -errno. */
static int nd_netem_stats(const struct netdelay *d, struct nd_netem_stats *st)
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
static void nd_netem_close(struct netdelay *d)
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

/* --- open, set, close ------------------------------------------------------------ */

/* The NFQUEUE way: a queue bound in the namespace, then rules that steer
 * the packets of @d->dir to it. */
static int nd_nfq_start(struct netdelay *d, const char *netns_path)
{
	static const unsigned bits[] = {NETDELAY_INGRESS, NETDELAY_EGRESS};
	char why[ND_WHY_MAX];
	int err;

	err = nd_nfq_available();
	if (err) {
		log_warn("%s: NFQUEUE: %s", __func__, nd_nfq_mech.why);
		goto out;
	}
	d->heap = calloc(NETDELAY_QUEUE_MAX, sizeof(*d->heap));
	d->buf = malloc(ND_MSG_MAX);
	if (!d->heap || !d->buf) {
		err = -ENOMEM;
		goto out;
	}
	d->ns_fd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (d->ns_fd < 0) {
		err = -errno;
		log_warn("%s: open %s: %s", __func__, netns_path, strerror(-err));
		goto out;
	}
	err = nd_queue_open(d);
	if (err)
		goto out;
	d->rx_ev = event_new(d->base, d->fd, EV_READ | EV_PERSIST, nd_on_readable, d);
	d->timer = evtimer_new(d->base, nd_on_timer, d);
	if (!d->rx_ev || !d->timer || event_add(d->rx_ev, NULL) < 0) {
		err = -ENOMEM;
		goto out;
	}
	d->via = ND_VIA_NFQUEUE;
	/* Rules last: the queue is listening before the first packet. */
	for (size_t i = 0; i < ARRAY_SIZE(bits) && !err; i++) {
		if (!(d->dir & bits[i]))
			continue;
		err = nd_iptables(nd_ipt, d->ns_fd, "-A", bits[i], d->ifname, d->queue_num, why,
				  sizeof(why));
		if (err)
			log_warn("%s: %s", __func__, why);
		else
			d->rules |= bits[i];
	}
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

/* NFQUEUE: later packets get the new draw; held ones past what it allows
 * are redrawn under it. */
static void nd_nfq_set(struct netdelay *d, unsigned delay_ms, unsigned jitter_ms)
{
	uint64_t most;
	bool redrawn = false;

	d->delay_ns = delay_ms * 1000000ull;
	d->jitter_ns = jitter_ms * 1000000ull;
	most = d->delay_ns + d->jitter_ns;
	for (size_t i = 0; i < d->n; i++) {
		if (d->heap[i].due > d->heap[i].enq + most) {
			d->heap[i].due = d->heap[i].enq + nd_draw(d);
			redrawn = true;
		}
	}
	if (redrawn) {
		for (size_t i = d->n / 2; i-- > 0;)
			nd_sift_down(d, i);
		nd_release_due(d, util_now_ns());
		nd_arm(d);
	}
	log_info("%s: %s queue %u: delay %u ms, jitter %u ms", __func__, d->ifname, d->queue_num,
		 delay_ms, jitter_ms);
}

int netdelay__set(struct netdelay *d, unsigned delay_ms, unsigned jitter_ms)
{
	if (!d || delay_ms > NETDELAY_MAX_MS || jitter_ms > NETDELAY_MAX_MS) {
		log_warn("%s: delay %u ms jitter %u ms: out of range (max %u ms)", __func__,
			 delay_ms, jitter_ms, NETDELAY_MAX_MS);
		return -EINVAL;
	}
	if (d->via == ND_VIA_NETEM)
		return nd_netem_set(d, delay_ms, jitter_ms);
	nd_nfq_set(d, delay_ms, jitter_ms);
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

static void nd_nfq_close(struct netdelay *d)
{
	static const unsigned bits[] = {NETDELAY_INGRESS, NETDELAY_EGRESS};
	struct timeval tmo = {.tv_sec = 1};
	char why[ND_WHY_MAX];

	/* Rules first, so no packet enters the queue after the last read. */
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		if ((d->rules & bits[i]) &&
		    nd_iptables(nd_ipt, d->ns_fd, "-D", bits[i], d->ifname, d->queue_num, why,
				sizeof(why)) < 0)
			log_warn("%s: %s", __func__, why);
	d->rules = 0;
	if (d->rx_ev)
		event_free(d->rx_ev);
	if (d->timer)
		event_free(d->timer);
	if (d->qh) {
		nd_drain(d);
		while (d->n)
			nd_accept(d, nd_pop(d));
		/* Unbinding waits for the kernel's ack: block, but boundedly. */
		if (fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
		    setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo)) < 0 ||
		    nfq_destroy_queue(d->qh) < 0)
			log_warn("%s: %s: unbind queue %u: %s", __func__, d->ifname, d->queue_num,
				 strerror(errno));
	}
	if (d->h)
		nfq_close(d->h);
	if (d->ns_fd >= 0)
		close(d->ns_fd);
	if (d->queued)
		log_info("%s: %s queue %u: %llu queued, %llu released, %llu dropped, %llu overflow",
			 __func__, d->ifname, d->queue_num, d->queued, d->released, d->dropped,
			 d->overflows);
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
