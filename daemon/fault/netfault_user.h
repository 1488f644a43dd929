/* User side of bpf/netfault.bpf.c: packet faults on one direction of one
 * link end, attached inside the link's namespace as a tcx link, or where
 * the kernel has no tcx (before Linux 6.6) as a cls_bpf filter on a clsact
 * qdisc. The choice is made by trying, once per process, and recorded as
 * the "packet" capability's mechanism. FAULTD_NO_TCX=1 skips tcx (tests). */
#ifndef FAULTD_NETFAULT_USER_H
#define FAULTD_NETFAULT_USER_H

#include "netfault.h"

struct netfault;

/* Attach to @ifname in the namespace at @netns_path, with the rates of
 * @initial (NULL: none) in force before the first packet. NULL with errno
 * (ENOTSUP once packet faults are known missing here). */
struct netfault *netfault__attach(const char *netns_path, const char *ifname, int dir,
				  const struct netfault_conf *initial);
int netfault__set(struct netfault *nf, const struct netfault_conf *c);	/* 0 or -errno */
void netfault__stats(const struct netfault *nf, struct netfault_stats *out);
/* Detach (a tc filter inside its namespace, if that still exists; the
 * clsact qdisc with the last filter of ours on it, if faultd made it). The
 * ingress and egress instances of one link end share that qdisc. */
void netfault__destroy(struct netfault *nf);

#endif
