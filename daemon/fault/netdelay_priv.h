/* Private to netdelay*.c: one delay's state, shared by the common part
 * (netdelay.c: the choice of mechanism and the API) and the two
 * mechanisms (netdelay_netem.c, netdelay_nfq.c). */
#ifndef FAULTD_NETDELAY_PRIV_H
#define FAULTD_NETDELAY_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <net/if.h>

#include "netdelay.h"

struct event;
struct event_base;
struct nfq_handle;
struct nfq_q_handle;
struct nl_sock;

#define ND_RCVBUF	(4u << 20)	/* socket buffer: a burst of 8192 metadata messages fits */
#define ND_MSG_MAX	65536		/* one netlink datagram; with COPY_META far less */
#define ND_DRAIN_MAX	4096		/* messages per wakeup; the read event is level-triggered */
#define ND_SLACK_NS	200000ull	/* release what is due this close, one wakeup per burst */
#define ND_IPT_WAIT	"2"		/* seconds iptables-legacy waits for the xtables lock */
#define ND_WHY_MAX	256

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
	struct netdelay_conf conf;	/* as last set */
	uint32_t reorder_ppm;		/* NFQUEUE: reorder_pct in parts per million */
	unsigned reorder_count;		/* packets delayed since the last sent at once */
	uint64_t rng;			/* splitmix64 state */
	uint64_t seq;
	struct nd_pkt *heap;		/* min-heap on (due, seq), NETDELAY_QUEUE_MAX slots */
	size_t n;
	char *buf;			/* ND_MSG_MAX bytes for recv */
	unsigned long long queued, released, dropped, overflows, reordered;
	bool enobufs_logged, recv_err_logged, verdict_err_logged;
};

/* What a probe found, once per process: a mechanism found missing stays
 * missing, as the capability it feeds does. */
struct nd_mech {
	bool tried;
	int err;			/* 0 or -errno */
	char why[ND_WHY_MAX];		/* what failed, or what works */
};


/* What a probe child hands back through its pipe: smaller than PIPE_BUF,
 * so one atomic write. */
struct nd_probe_result {
	int err;			/* 0 or -errno */
	int variant;			/* NFQUEUE: index in nd_variants that worked */
	char why[ND_WHY_MAX];
};

extern struct nd_mech nd_netem_mech, nd_nfq_mech;

/* netdelay.c */
int nd_in_child(void (*fn)(struct nd_probe_result *r, void *arg), void *arg,
		struct nd_probe_result *r);

/* netdelay_netem.c */
struct nd_netem_stats {
	unsigned long long sent;	/* packets that left after their delay */
	unsigned long long held;	/* in the queue now */
	unsigned long long dropped;	/* over the limit */
};

int nd_netem_available(void);
bool nd_netem_fits(const struct netdelay_where *w, unsigned dir, char *why, size_t len);
int nd_netem_open(struct netdelay *d, const struct netdelay_where *w, unsigned dir);
int nd_netem_set(struct netdelay *d, const struct netdelay_conf *c);
int nd_netem_stats(const struct netdelay *d, struct nd_netem_stats *st);
void nd_netem_close(struct netdelay *d);

/* netdelay_nfq.c */
extern char nd_ipt[];
int nd_nfq_available(void);
int nd_nfq_start(struct netdelay *d, const char *netns_path);
void nd_nfq_set(struct netdelay *d, const struct netdelay_conf *c);
void nd_nfq_close(struct netdelay *d);

#endif
