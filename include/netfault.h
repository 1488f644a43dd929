/* Packet faults on a link end, shared by bpf/netfault.bpf.c and
 * daemon/fault/netfault.c: a tc program on each direction reads its rates
 * from a map the daemon updates while the run goes on. */
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

/* Flows a tcp_reset remembers (LRU: the oldest are forgotten first). */
#define NETFAULT_FLOWS_MAX 4096

struct netfault_conf {
	__u32 drop_ppm;			/* independent loss */
	__u32 corrupt_ppm;
	__u32 duplicate_ppm;
	__u32 blackhole;		/* drop everything */
	/* Gilbert-Elliott burst loss, netem's "gemodel p r 1-h 1-k": */
	__u32 burst;			/* nonzero: the model is on */
	__u32 ge_p_ppm;			/* good -> bad, per packet */
	__u32 ge_r_ppm;			/* bad -> good, per packet */
	__u32 ge_bad_ppm;		/* loss in the bad state (1-h) */
	__u32 ge_good_ppm;		/* loss in the good state (1-k) */
	/* TCP faults: */
	__u32 tcp_reset_gen;		/* nonzero: flows not yet reset in this
					 * generation get a RST on their next segment */
	__u32 tcp_reset_every_ms;	/* and again this often; 0: once */
	__u32 tcp_blackhole;		/* half_open: every TCP segment dropped */
};

struct netfault_stats {
	__u64 seen;
	__u64 dropped;			/* every way: rate, burst, blackhole, half_open */
	__u64 corrupted;
	__u64 duplicated;
	__u64 burst_dropped;		/* of dropped: by the burst model */
	__u64 bursts;			/* times the burst model went bad */
	__u64 reset;			/* TCP segments turned into a RST */
};

/* One TCP flow as a packet names it (IPv4 in the first 4 bytes). */
struct netfault_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

struct netfault_flow_state {
	__u64 last_ns;			/* last reset, or first seen in this generation */
	__u32 gen;
	__u32 pad;
};

#endif
