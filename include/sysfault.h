/* Syscall errors injected into a workload's cgroup, shared by
 * bpf/sysfault.bpf.c and daemon/sysfault.c: socket() of an inet family
 * fails with a chosen errno at a rate the daemon sets at run time. */
#ifndef FAULTD_SYSFAULT_H
#define FAULTD_SYSFAULT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SYSFAULT_PPM 1000000

struct sysfault_conf {
	__u32 ppm;			/* share of calls that fail */
	__s32 err;			/* the errno they fail with (positive) */
};

struct sysfault_stats {
	__u64 calls;
	__u64 failed;
};

#endif
