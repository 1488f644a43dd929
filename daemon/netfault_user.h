/* User side of bpf/netfault.bpf.c: packet faults on one direction of one
 * link end, attached as a tcx link inside the link's namespace. */
#ifndef FAULTD_NETFAULT_USER_H
#define FAULTD_NETFAULT_USER_H

#include "netfault.h"

struct netfault;

/* Attach to @ifname in the namespace at @netns_path, with the rates of
 * @initial (NULL: none) in force before the first packet. NULL with errno. */
struct netfault *netfault__attach(const char *netns_path, const char *ifname, int dir,
				  const struct netfault_conf *initial);
int netfault__set(struct netfault *nf, const struct netfault_conf *c);	/* 0 or -errno */
void netfault__stats(const struct netfault *nf, struct netfault_stats *out);
void netfault__destroy(struct netfault *nf);

#endif
