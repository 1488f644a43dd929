/* Packet delay and jitter on one interface inside a namespace faultd
 * created: iptables NFQUEUE rules (always --queue-bypass) steer the packets
 * to a user-space verdict loop on faultd's libevent base, which accepts each
 * one when its release time comes. There is no sch_netem on this platform. */
#ifndef FAULTD_NETDELAY_H
#define FAULTD_NETDELAY_H

#include <stddef.h>

struct event_base;
struct netdelay;

enum { NETDELAY_INGRESS = 1, NETDELAY_EGRESS = 2, NETDELAY_BOTH = 3 };

#define NETDELAY_MAX_MS 60000u	/* largest delay_ms and jitter_ms accepted */
#define NETDELAY_QUEUE_MAX 8192u	/* packets held at once; beyond, accept at once */

/* Whether delay can work here. Probes in a forked child that unshares a
 * throwaway network namespace: an iptables variant must accept an NFQUEUE
 * --queue-bypass rule there, and an NFQUEUE netlink queue must bind. The
 * namespace dies with the child, so nothing is left behind. 0, or -errno
 * with a one-line reason in @why. A success is cached (and names the
 * iptables binary netdelay__open then uses). */
int netdelay_available(char *why, size_t len);

/* Delay packets crossing @ifname in the namespace at @netns_path, in the
 * directions @dir (NETDELAY_INGRESS: mangle PREROUTING -i, NETDELAY_EGRESS:
 * mangle POSTROUTING -o), through NFQUEUE number @queue_num (free in that
 * namespace, else -EBUSY). @seed makes the jitter draws deterministic. The
 * delay starts at 0: every packet is accepted at once until netdelay__set.
 * IPv4 only. 0 or -errno.
 *
 * Egress packets of a TCP socket in the same namespace stay charged to it
 * while held (netem orphans them; NFQUEUE cannot), so TCP Small Queues
 * throttle the sender to a couple of segments per delay: delaying A->B bulk
 * TCP is better done as INGRESS on B's end of the link. Ping (unless -U)
 * times replies at the driver, before PREROUTING, so it does not show
 * ingress delay; applications do. */
int netdelay__open(struct event_base *base, const char *netns_path, const char *ifname,
		   unsigned dir, unsigned queue_num, unsigned long long seed,
		   struct netdelay **out);

/* Delay each later packet by @delay_ms ± @jitter_ms (uniform; a negative
 * total is no delay). Packets already held for longer than the new setting
 * allows are redrawn under it, so lowering the delay takes effect at once.
 * 0, or -EINVAL above NETDELAY_MAX_MS. */
int netdelay__set(struct netdelay *d, unsigned delay_ms, unsigned jitter_ms);

/* @queued: packets the kernel handed over; @released: packets accepted
 * (held, immediate, or overflow); @dropped: packets whose verdict could not
 * be sent (the kernel drops those when the queue closes). Any out may be
 * NULL. queued - released - dropped are held right now. */
void netdelay__stats(const struct netdelay *d, unsigned long long *queued,
		     unsigned long long *released, unsigned long long *dropped);

/* Packets accepted at once because NETDELAY_QUEUE_MAX were already held. */
unsigned long long netdelay__overflows(const struct netdelay *d);

/* Remove the rules, accept everything still held, close. Safe on NULL. */
void netdelay__close(struct netdelay *d);

#endif
