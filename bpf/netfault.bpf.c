// SPDX-License-Identifier: GPL-2.0
/* Packet faults: drop (at a rate or in Gilbert-Elliott bursts), corrupt,
 * duplicate or blackhole packets through a link end, turn TCP segments into
 * resets or blackhole TCP, with rates read per packet from a map the daemon
 * changes at run time. Attached as tcx links where the kernel has them
 * (they go with their owner even after kill -9), else as cls_bpf filters
 * on a clsact qdisc, in direct-action mode: the return value is the
 * verdict either way.
 *
 * No fault is visible to the sender, as on a wire. Where a packet arrives
 * (ingress), TC_ACT_SHOT is already past its sender. Where it leaves
 * (egress), TC_ACT_SHOT makes the send fail (NET_XMIT_DROP: ENOBUFS to a
 * socket with IP_RECVERR, such as ping's, which then neither counts the
 * packet nor loses it; a local drop to TCP), and tcx has no TC_ACT_STOLEN
 * (it reads any code but pass, drop and redirect as "next"). So a drop
 * there is a redirect to ifindex 0, which no device has: the kernel frees
 * the packet and reports it sent (NET_XMIT_SUCCESS, as netem's loss does),
 * through tcx and cls_bpf alike, on every kernel faultd supports. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "netfault.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IPV6_HLEN 40
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define UDP_HLEN 8
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

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

/* xorshift64* state per CPU, seeded by the daemon from the run's seed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rng SEC(".maps");

/* The burst model's state: nonzero while bad. Shared by the CPUs: a race
 * between two of them costs one transition, not correctness. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ge_bad SEC(".maps");

/* tcp_reset: which generation reset each flow, and when. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NETFAULT_FLOWS_MAX);
	__type(key, struct netfault_flow);
	__type(value, struct netfault_flow_state);
} flows SEC(".maps");

static __always_inline __u32 draw(void)
{
	__u32 key = 0;
	__u64 *s = bpf_map_lookup_elem(&rng, &key);
	__u64 x;

	if (!s)
		return bpf_get_prandom_u32();
	x = *s ? *s : ((__u64)bpf_get_prandom_u32() << 32) | 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (__u32)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A draw is taken only for a nonzero rate, so the sequence of draws (and
 * with a seed, the faults) depends only on the rates asked for. */
static __always_inline bool chance(__u32 ppm)
{
	return ppm && (ppm >= NETFAULT_PPM || draw() % NETFAULT_PPM < ppm);
}

/* Gilbert-Elliott: the state a packet meets decides its loss, then the
 * state moves on. With loss 100 % in bad and 0 % in good, a burst lasts
 * 1/r packets on average and starts after 1/p. */
static __always_inline bool burst_lost(const struct netfault_conf *c, struct netfault_stats *st)
{
	__u32 key = 0;
	__u32 *bad = bpf_map_lookup_elem(&ge_bad, &key);
	bool lost;

	if (!bad)
		return false;
	if (*bad) {
		lost = chance(c->ge_bad_ppm);
		if (chance(c->ge_r_ppm))
			*bad = 0;
	} else {
		lost = chance(c->ge_good_ppm);
		if (chance(c->ge_p_ppm)) {
			*bad = 1;
			st->bursts++;
		}
	}
	return lost;
}

/* Where the L4 header starts and which protocol it is, IPv4 or IPv6
 * (without extension headers); the flow's addresses into @fl if given. */
static __always_inline int l4(struct __sk_buff *skb, __u32 *off, struct netfault_flow *fl)
{
	__u8 b, proto = 0;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &b, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1))
			return -1;
		*off = ETH_HLEN + (b & 0xf) * 4;
		if (fl && (bpf_skb_load_bytes(skb, ETH_HLEN + 12, fl->saddr, 4) ||
			   bpf_skb_load_bytes(skb, ETH_HLEN + 16, fl->daddr, 4)))
			return -1;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &proto, 1))
			return -1;
		*off = ETH_HLEN + IPV6_HLEN;
		if (fl && (bpf_skb_load_bytes(skb, ETH_HLEN + 8, fl->saddr, 16) ||
			   bpf_skb_load_bytes(skb, ETH_HLEN + 24, fl->daddr, 16)))
			return -1;
	} else {
		return -1;
	}
	return proto;
}

/* Flip the first byte of a UDP payload (IPv4). The UDP checksum is not
 * fixed: on veth it is not computed, so corruption arrives as corruption. */
static __always_inline bool corrupt(struct __sk_buff *skb)
{
	__u32 off;
	__u8 byte;

	if (skb->protocol != bpf_htons(ETH_P_IP) || l4(skb, &off, NULL) != IPPROTO_UDP)
		return false;
	off += UDP_HLEN;
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

/* Write a flow's addresses and ports into the packet, @swap: reversed. */
static __always_inline int put_flow(struct __sk_buff *skb, __u32 off,
				    const struct netfault_flow *fl, bool v6, bool swap)
{
	const __u8 *src = swap ? fl->daddr : fl->saddr, *dst = swap ? fl->saddr : fl->daddr;
	__u16 sport = swap ? fl->dport : fl->sport, dport = swap ? fl->sport : fl->dport;
	int err;

	if (v6)
		err = bpf_skb_store_bytes(skb, ETH_HLEN + 8, src, 16, 0) ||
		      bpf_skb_store_bytes(skb, ETH_HLEN + 24, dst, 16, 0);
	else
		err = bpf_skb_store_bytes(skb, ETH_HLEN + 12, src, 4, 0) ||
		      bpf_skb_store_bytes(skb, ETH_HLEN + 16, dst, 4, 0);
	return err || bpf_skb_store_bytes(skb, off, &sport, 2, 0) ||
	       bpf_skb_store_bytes(skb, off + 2, &dport, 2, 0);
}

/* Change the 16-bit word at @at (or the 32-bit one, @size 4) and the TCP
 * checksum at @off + 16 with it. Swapping addresses or ports leaves the
 * checksums as they are. (With CHECKSUM_PARTIAL the helper leaves the sum
 * to the device.) */
static __always_inline int put_tcp(struct __sk_buff *skb, __u32 off, __u32 at, __u32 from,
				   __u32 to, __u32 size)
{
	if (bpf_l4_csum_replace(skb, off + 16, from, to, size))
		return -1;
	return size == 4 ? bpf_skb_store_bytes(skb, at, &to, 4, 0)
			 : bpf_skb_store_bytes(skb, at, &to, 2, 0);
}

/* Reset both ends of the segment's connection, with sequence numbers
 * they accept:
 * - to its sender, a RST at the sequence number the segment acknowledged
 *   (exactly what the sender expects next): a clone of the segment with
 *   the MACs, addresses and ports swapped, sent back the way it came (into
 *   the stack at egress, out of the device at ingress), marked so this
 *   hook lets it pass;
 * - to its receiver, the segment itself as a RST|ACK if it carries data:
 *   in order it is at the sequence number the receiver expects and resets
 *   it; out of order (a retransmission) the receiver answers with a
 *   challenge ACK, which the sender, reset already, answers with a RST the
 *   receiver accepts. A segment without data (an ACK, a window probe, which
 *   may sit below the window) goes on as it is: the receiver's next
 *   segment meets the reset sender, whose stack answers with that RST. */
static __always_inline bool make_reset(struct __sk_buff *skb, __u32 off,
				       const struct netfault_flow *fl, bool v6, bool ingress)
{
	__u8 macs[12], swapped[12];
	__u32 seq, ack, mark = skb->mark;
	__u16 word, back, fwd;
	__u8 doff, *b;
	long err;

	if (bpf_skb_load_bytes(skb, 0, macs, 12) || bpf_skb_load_bytes(skb, off + 4, &seq, 4) ||
	    bpf_skb_load_bytes(skb, off + 8, &ack, 4) ||
	    bpf_skb_load_bytes(skb, off + 12, &word, 2))
		return false;
	back = fwd = word;
	b = (__u8 *)&back;
	b[1] = TCP_RST;
	b = (__u8 *)&fwd;
	doff = (b[0] >> 4) * 4;
	if (skb->len > off + doff)
		b[1] = TCP_RST | TCP_ACK;
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	if (bpf_skb_store_bytes(skb, 0, swapped, 12, 0) || put_flow(skb, off, fl, v6, true) ||
	    put_tcp(skb, off, off + 4, seq, ack, 4) || put_tcp(skb, off, off + 12, word, back, 2))
		return false;
	skb->mark = NETFAULT_DUP_MARK;
	err = bpf_clone_redirect(skb, skb->ifindex, ingress ? 0 : BPF_F_INGRESS);
	skb->mark = mark;
	if (bpf_skb_store_bytes(skb, 0, macs, 12, 0) || put_flow(skb, off, fl, v6, false) ||
	    put_tcp(skb, off, off + 4, ack, seq, 4) || put_tcp(skb, off, off + 12, back, fwd, 2))
		return false;
	return err == 0;
}

/* tcp_reset: a flow's first segment in a generation (other than a SYN: a
 * connection opened after the reset began is left alone) is made a RST,
 * and with every_ms another one that long after. */
static __always_inline bool want_reset(const struct netfault_conf *c, struct netfault_flow *fl,
				       __u8 flags)
{
	struct netfault_flow_state *v = bpf_map_lookup_elem(&flows, fl);
	struct netfault_flow_state nv = {.gen = c->tcp_reset_gen};
	__u64 now = bpf_ktime_get_ns();

	if (flags & TCP_RST)
		return false;
	if (!v || v->gen != c->tcp_reset_gen) {
		nv.last_ns = now;
		bpf_map_update_elem(&flows, fl, &nv, BPF_ANY);
		return !(flags & TCP_SYN);
	}
	if (c->tcp_reset_every_ms && now - v->last_ns >= c->tcp_reset_every_ms * 1000000ull) {
		v->last_ns = now;
		return true;
	}
	return false;
}

/* TCP faults: true if the segment is to be dropped (half_open). */
static __always_inline bool tcp_fault(struct __sk_buff *skb, const struct netfault_conf *c,
				      struct netfault_stats *st, bool ingress)
{
	struct netfault_flow fl = {};
	__u32 off;
	__u8 flags;

	if (l4(skb, &off, &fl) != IPPROTO_TCP)
		return false;
	if (c->tcp_blackhole)
		return true;
	if (bpf_skb_load_bytes(skb, off, &fl.sport, 2) ||
	    bpf_skb_load_bytes(skb, off + 2, &fl.dport, 2) ||
	    bpf_skb_load_bytes(skb, off + 13, &flags, 1))
		return false;
	if (want_reset(c, &fl, flags) &&
	    make_reset(skb, off, &fl, skb->protocol == bpf_htons(ETH_P_IPV6), ingress))
		st->reset++;
	return false;
}

static __always_inline int netfault(struct __sk_buff *skb, bool ingress)
{
	__u32 key = 0;
	struct netfault_conf *c = bpf_map_lookup_elem(&conf, &key);
	struct netfault_stats *st = bpf_map_lookup_elem(&stats, &key);

	if (!c || !st || skb->mark == NETFAULT_DUP_MARK)
		return TC_ACT_OK;
	st->seen++;
	if (c->burst && burst_lost(c, st)) {
		st->burst_dropped++;
		goto drop;
	}
	if (c->blackhole || chance(c->drop_ppm))
		goto drop;
	if ((c->tcp_blackhole || c->tcp_reset_gen) && tcp_fault(skb, c, st, ingress))
		goto drop;
	if (chance(c->corrupt_ppm) && corrupt(skb))
		st->corrupted++;
	if (chance(c->duplicate_ppm) && duplicate(skb, ingress))
		st->duplicated++;
	return TC_ACT_OK;
drop:
	st->dropped++;
	return ingress ? TC_ACT_SHOT : bpf_redirect(0, 0);	/* to no device: see above */
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
