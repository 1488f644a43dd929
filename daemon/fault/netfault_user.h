/* User side of bpf/netfault.bpf.c: packet faults on one direction of one
 * link end, attached inside the link's namespace as a tcx link, or where
 * the kernel has no tcx (before Linux 6.6) as a cls_bpf filter on a clsact
 * qdisc. The choice is made by trying, once per process, and recorded as
 * the "packet" capability's mechanism. FAULTD_NO_TCX=1 skips tcx (tests). */
#ifndef FAULTD_NETFAULT_USER_H
#define FAULTD_NETFAULT_USER_H

#include <stdbool.h>

#include "netfault.h"

struct netfault;

/* Attach to @ifname in the namespace at @netns_path, with the rates of
 * @initial (NULL: none) in force before the first packet. @seed seeds the
 * program's draws (one generator per CPU). NULL with errno (ENOTSUP once
 * packet faults are known missing here). */
struct netfault *netfault__attach(const char *netns_path, const char *ifname, int dir,
				  const struct netfault_conf *initial, unsigned long long seed);
/* The packet fields of @c (rates, blackhole, burst model); the TCP fields
 * keep what netfault__set_tcp set. 0 or -errno. */
int netfault__set_packet(struct netfault *nf, const struct netfault_conf *c);
/* tcp_reset: on begins a generation (each flow's next segment other than
 * a SYN becomes a RST, and again every @every_ms if nonzero), off ends it.
 * 0 or -errno. */
int netfault__set_reset(struct netfault *nf, bool on, unsigned every_ms);
/* half_open: every TCP segment through this hook dropped, or not. */
int netfault__set_half_open(struct netfault *nf, bool on);
void netfault__stats(const struct netfault *nf, struct netfault_stats *out);
/* Detach (a tc filter inside its namespace, if that still exists; the
 * clsact qdisc with the last filter of ours on it, if faultd made it). The
 * ingress and egress instances of one link end share that qdisc. */
void netfault__destroy(struct netfault *nf);

#endif
