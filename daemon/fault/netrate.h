/* Bandwidth limits on a link end: a TBF root qdisc, made through
 * libnl-route-3 inside the link's namespace and changed in place at run
 * time. The qdisc lives on an interface of a namespace faultd made, so it
 * goes with that namespace. The first tbf made (or refused for its kind)
 * records the "rate" capability. A delay on the same interface keeps to
 * NFQUEUE rather than a netem that would have to share the root with it. */
#ifndef FAULTD_NETRATE_H
#define FAULTD_NETRATE_H

struct netrate;

/* For @ifname in the namespace at @netns_path. NULL with errno. */
struct netrate *netrate__open(const char *netns_path, const char *ifname);
/* Limit what leaves @ifname to @rate_kbit with a @burst_b byte bucket,
 * dropping what would wait longer than @latency_ms; rate 0 removes the
 * limit. 0 or -errno. */
int netrate__set(struct netrate *nr, unsigned rate_kbit, unsigned burst_b,
		 unsigned latency_ms);
void netrate__close(struct netrate *nr);	/* removes the limit; NULL is fine */

#endif
