// SPDX-License-Identifier: GPL-2.0
/* Packet faults: drop, corrupt, duplicate or blackhole packets through a link
 * end, with rates read per packet from a map the daemon changes at run time.
 * Attached as tcx links where the kernel has them (they go with their owner
 * even after kill -9), else as cls_bpf filters on a clsact qdisc, in
 * direct-action mode: the return value is the verdict either way. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "netfault.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define IPPROTO_UDP 17
#define UDP_HLEN 8

/* One instance per link end and direction, so its maps hold one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netfault_conf);
} conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netfault_stats);
} stats SEC(".maps");

static __always_inline bool chance(__u32 ppm)
{
	return ppm && bpf_get_prandom_u32() % NETFAULT_PPM < ppm;
}

/* Flip the first byte of a UDP payload (IPv4). The UDP checksum is not
 * fixed: on veth it is not computed, so corruption arrives as corruption. */
static __always_inline bool corrupt(struct __sk_buff *skb)
{
	__u8 ver_ihl, proto, byte;
	__u32 off;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return false;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ver_ihl, 1) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) || proto != IPPROTO_UDP)
		return false;
	off = ETH_HLEN + (ver_ihl & 0xf) * 4 + UDP_HLEN;
	if (bpf_skb_load_bytes(skb, off, &byte, 1))
		return false;
	byte ^= 0xff;
	return bpf_skb_store_bytes(skb, off, &byte, 1, 0) == 0;
}

/* A clone goes out (or in) on the same device ahead of the original. It
 * passes this hook again, marked, and is let through untouched; the mark is
 * restored on the original. */
static __always_inline bool duplicate(struct __sk_buff *skb, bool ingress)
{
	__u32 mark = skb->mark;
	long err;

	skb->mark = NETFAULT_DUP_MARK;
	err = bpf_clone_redirect(skb, skb->ifindex, ingress ? BPF_F_INGRESS : 0);
	skb->mark = mark;
	return err == 0;
}

static __always_inline int netfault(struct __sk_buff *skb, bool ingress)
{
	__u32 key = 0;
	struct netfault_conf *c = bpf_map_lookup_elem(&conf, &key);
	struct netfault_stats *st = bpf_map_lookup_elem(&stats, &key);

	if (!c || !st || skb->mark == NETFAULT_DUP_MARK)
		return TC_ACT_OK;
	st->seen++;
	if (c->blackhole || chance(c->drop_ppm)) {
		st->dropped++;
		return TC_ACT_SHOT;
	}
	if (chance(c->corrupt_ppm) && corrupt(skb))
		st->corrupted++;
	if (chance(c->duplicate_ppm) && duplicate(skb, ingress))
		st->duplicated++;
	return TC_ACT_OK;
}

SEC("tc")
int netfault_in(struct __sk_buff *skb)
{
	return netfault(skb, true);
}

SEC("tc")
int netfault_out(struct __sk_buff *skb)
{
	return netfault(skb, false);
}
