/* Delay through NFQUEUE: iptables rules (always --queue-bypass) inside the
 * link's namespace steer packets to a verdict loop on faultd's libevent
 * base, which accepts each one when its release time comes. */
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

#include "log.h"
#include "netdelay_priv.h"
#include "util.h"

struct nd_mech nd_nfq_mech;

/* The iptables binary the probe found working, tried in this order:
 * iptables-nft is Debian's default and needs no legacy x_tables modules;
 * iptables-legacy is the fallback; plain iptables is whatever the system
 * links it to. */
static const char *const nd_variants[] = {"iptables-nft", "iptables-legacy", "iptables"};
char nd_ipt[PATH_MAX];

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
int nd_nfq_available(void)
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

/* --- the NFQUEUE verdict loop ---------------------------------------------------- */

static uint64_t nd_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* delay ± jitter, uniform in ns, or delay + jitter * an entry of the
 * distribution's table (as netem's tabledist), floored at 0. */
static uint64_t nd_draw(struct netdelay *d)
{
	const short *table = netdelay_dist_table(d->conf.dist);
	uint64_t z;
	int64_t v;

	if (!d->jitter_ns)
		return d->delay_ns;
	z = nd_splitmix64(&d->rng);
	if (!table) {
		z %= 2 * d->jitter_ns + 1;
		return d->delay_ns + z > d->jitter_ns ? d->delay_ns + z - d->jitter_ns : 0;
	}
	v = (int64_t)d->delay_ns +
	    (int64_t)d->jitter_ns * table[z % NETDELAY_DIST_SIZE] / NETDELAY_DIST_SCALE;
	return v > 0 ? (uint64_t)v : 0;
}

/* netem's reordering: unless every reorder_gap-th packet, or if the draw
 * says no, a packet is delayed; else it goes at once, ahead of those held. */
static bool nd_reorder(struct netdelay *d)
{
	unsigned gap = d->conf.reorder_gap;

	if (!d->reorder_ppm)
		return false;
	if ((gap > 1 && d->reorder_count < gap - 1) ||
	    nd_splitmix64(&d->rng) % 1000000u >= d->reorder_ppm) {
		d->reorder_count++;
		return false;
	}
	d->reorder_count = 0;
	return true;
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
	if (nd_reorder(d)) {
		d->reordered++;
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

/* The NFQUEUE way: a queue bound in the namespace, then rules that steer
 * the packets of @d->dir to it. */
int nd_nfq_start(struct netdelay *d, const char *netns_path)
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

/* NFQUEUE: later packets get the new draw; held ones past what it allows
 * are redrawn under it. */
void nd_nfq_set(struct netdelay *d, const struct netdelay_conf *c)
{
	static const char *const dists[] = {"uniform", "normal", "pareto"};
	uint64_t most;
	bool redrawn = false;

	d->delay_ns = c->delay_ms * 1000000ull;
	d->jitter_ns = c->jitter_ms * 1000000ull;
	d->reorder_ppm = (uint32_t)(c->reorder_pct * 10000.0);
	d->reorder_count = 0;
	/* The tables stop at 4 jitters. */
	most = d->delay_ns + d->jitter_ns * (c->dist == NETDELAY_UNIFORM ? 1 : 4);
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
	log_info("%s: %s queue %u: delay %u ms, jitter %u ms %s, reorder %.1f%% gap %u",
		 __func__, d->ifname, d->queue_num, c->delay_ms, c->jitter_ms, dists[c->dist],
		 c->reorder_pct, c->reorder_gap);
}

void nd_nfq_close(struct netdelay *d)
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
