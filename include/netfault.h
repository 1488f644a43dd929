/* Packet faults on a link end, shared by bpf/netfault.bpf.c and
 * daemon/netfault.c: a tcx program on each direction reads its rates from a
 * map the daemon updates while the run goes on. */
#ifndef FAULTD_NETFAULT_H
#define FAULTD_NETFAULT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define NETFAULT_PPM 1000000		/* rates are parts per million */

enum netfault_dir { NETFAULT_INGRESS = 0, NETFAULT_EGRESS = 1 };

/* A duplicate carries this mark through its second pass over the hook, so
 * it is neither duplicated nor dropped again. */
#define NETFAULT_DUP_MARK 0xfd0dfd0d

struct netfault_conf {
	__u32 drop_ppm;
	__u32 corrupt_ppm;
	__u32 duplicate_ppm;
	__u32 blackhole;		/* drop everything */
};

struct netfault_stats {
	__u64 seen;
	__u64 dropped;
	__u64 corrupted;
	__u64 duplicated;
};

#endif
