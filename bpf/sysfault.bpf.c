// SPDX-License-Identifier: GPL-2.0
/* socket() errors for one workload's cgroup: an inet socket creation fails
 * with the configured errno at the configured rate. Attached as a cgroup
 * BPF link, so it goes with its owner. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "sysfault.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_ALLOW 1
#define SOCK_DENY 0

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sysfault_conf);
} conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sysfault_stats);
} stats SEC(".maps");

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	__u32 key = 0;
	struct sysfault_conf *c = bpf_map_lookup_elem(&conf, &key);
	struct sysfault_stats *st = bpf_map_lookup_elem(&stats, &key);

	if (!c || !st || (sk->family != AF_INET && sk->family != AF_INET6))
		return SOCK_ALLOW;
	st->calls++;
	if (!c->ppm || bpf_get_prandom_u32() % SYSFAULT_PPM >= c->ppm)
		return SOCK_ALLOW;
	st->failed++;
	bpf_set_retval(-c->err);
	return SOCK_DENY;
}
