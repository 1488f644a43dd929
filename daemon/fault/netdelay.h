/* Packet delay and jitter on one link end of a namespace faultd created,
 * made one of two ways, chosen per delay:
 * - sch_netem, where the kernel has it (Debian's kernels build it as a
 *   module, which the kernel loads on first use): a root netem qdisc on the
 *   interface the delayed packets leave by, changed in place at run time.
 *   It shapes egress only, so a delay arriving at a link end is made on
 *   the far end of the veth;
 * - NFQUEUE: iptables rules (always --queue-bypass) inside the namespace
 *   steer the packets to a user-space verdict loop on faultd's libevent
 *   base, which accepts each one when its release time comes. Used where
 *   netem is missing (this build machine's kernel has none), where the
 *   delay arrives at a tap (whose far side is no kernel interface), where a
 *   rate limit's tbf already is the root qdisc there, where making the
 *   netem qdisc failed, and under FAULTD_NO_NETEM=1 (tests).
 * Which one each delay got is in the log, the report's packet_stats and
 * the "delay" capability. */
#ifndef FAULTD_NETDELAY_H
#define FAULTD_NETDELAY_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct netdelay;

/* Where a delay applies. */
struct netdelay_where {
	const char *netns_path;		/* the link end's namespace */
	const char *ifname;		/* the link end */
	const char *peer_netns_path;	/* the veth's far end; NULL for a tap */
	const char *peer_ifname;
	bool rate_limited;		/* a tbf is the root qdisc where netem would go */
};

enum { NETDELAY_INGRESS = 1, NETDELAY_EGRESS = 2, NETDELAY_BOTH = 3 };

#define NETDELAY_MAX_MS 60000u	/* largest delay_ms and jitter_ms accepted */
#define NETDELAY_QUEUE_MAX 8192u	/* packets held at once; beyond, NFQUEUE passes them
					 * at once and netem drops them */

/* Whether delay can work here, by either way: a netem qdisc made on the
 * lo of a throwaway namespace in a forked child, else an NFQUEUE probe
 * there (an iptables variant must accept an NFQUEUE --queue-bypass rule,
 * and a netlink queue must bind). The namespace dies with the child, so
 * nothing is left behind. Found once per process, and recorded as the
 * "delay" capability. 0 (with what works in @why), or -errno with a
 * one-line reason for each way in @why. */
int netdelay_available(char *why, size_t len);

/* Delay packets crossing the link end @w, in the directions @dir
 * (NETDELAY_INGRESS: arriving there, NETDELAY_EGRESS: leaving). Through
 * netem where it fits (one direction; see above), else through NFQUEUE
 * number @queue_num (free in that namespace, else -EBUSY; mangle
 * PREROUTING -i / POSTROUTING -o). @seed makes NFQUEUE's jitter draws
 * deterministic; netem draws from the kernel's own generator. The delay
 * starts at 0: every packet passes at once until netdelay__set. NFQUEUE
 * takes IPv4 only; netem delays every frame. 0 or -errno.
 *
 * With NFQUEUE, egress packets of a TCP socket in the same namespace stay
 * charged to it while held (netem orphans them; NFQUEUE cannot), so TCP
 * Small Queues throttle the sender to a couple of segments per delay:
 * delaying A->B bulk TCP is better done as INGRESS on B's end of the link.
 * Ping (unless -U) times replies at the driver, before PREROUTING, so it
 * does not show an NFQUEUE ingress delay; applications do. */
int netdelay__open(struct event_base *base, const struct netdelay_where *w, unsigned dir,
		   unsigned queue_num, unsigned long long seed, struct netdelay **out);

/* How a delay varies around its mean. */
enum netdelay_dist { NETDELAY_UNIFORM, NETDELAY_NORMAL, NETDELAY_PARETO };

#define NETDELAY_DIST_SIZE 4096		/* entries in a distribution table */
#define NETDELAY_DIST_SCALE 8192	/* a table entry of this is one jitter */

struct netdelay_conf {
	unsigned delay_ms;
	unsigned jitter_ms;		/* uniform: half-width; else standard deviation */
	enum netdelay_dist dist;
	double reorder_pct;		/* packets sent at once, ahead of delayed ones */
	unsigned reorder_gap;		/* only every gap-th may be (0 or 1: any) */
};

/* Delay each later packet by delay_ms, varied by jitter_ms after @c->dist
 * (uniform: ± jitter_ms; normal, pareto: jitter_ms is the standard
 * deviation, drawn as netem does, from a table of NETDELAY_DIST_SIZE
 * entries made here: netem is given the same table); a negative total is
 * no delay. With reorder_pct, netem's reordering: every reorder_gap-th
 * packet goes at once with that chance. NFQUEUE redraws packets already
 * held for longer than the new setting allows, so lowering the delay takes
 * effect at once; netem keeps each held packet's time (at most the old
 * delay). 0, or -EINVAL above NETDELAY_MAX_MS, or the kernel's error for
 * netem. */
int netdelay__set(struct netdelay *d, const struct netdelay_conf *c);

/* The distribution table of @dist (NULL for uniform): NETDELAY_DIST_SIZE
 * entries in units of NETDELAY_DIST_SCALE per jitter, mean 0, standard
 * deviation NETDELAY_DIST_SCALE, cut at 4 jitters. Made once. */
const short *netdelay_dist_table(enum netdelay_dist dist);

/* "netem" or "nfqueue": how @d delays. */
const char *netdelay__via(const struct netdelay *d);

/* @queued: packets taken in; @released: packets let go (held, immediate,
 * or overflow); @dropped: NFQUEUE: packets whose verdict could not be sent
 * (the kernel drops those when the queue closes), netem: packets over its
 * NETDELAY_QUEUE_MAX limit. Any out may be NULL. queued - released -
 * dropped are held right now. netem's come from the qdisc's counters,
 * read from the kernel on each call (zeros if they cannot be). */
void netdelay__stats(const struct netdelay *d, unsigned long long *queued,
		     unsigned long long *released, unsigned long long *dropped);

/* NFQUEUE: packets accepted at once because NETDELAY_QUEUE_MAX were
 * already held (netem drops those instead: see @dropped). */
unsigned long long netdelay__overflows(const struct netdelay *d);

/* NFQUEUE: packets sent at once by reorder_pct (netem keeps no count). */
unsigned long long netdelay__reordered(const struct netdelay *d);

/* NFQUEUE: remove the rules, accept everything still held; netem: remove
 * the qdisc (what it holds goes with it). Then close. Safe on NULL. */
void netdelay__close(struct netdelay *d);

#endif
