/* The packet family: what the packet program makes on one or both
 * directions of a link, in a window: packet (drop at a rate or in
 * Gilbert-Elliott bursts, corrupt, duplicate, blackhole), and the TCP
 * faults tcp_reset (established connections get a RST both ways) and
 * half_open (one direction's TCP segments vanish). None is visible to the
 * sender. The mechanism is bpf/netfault.bpf.c (netfault.c: tcx links, else
 * clsact with cls_bpf); the three share one program per direction. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fault_window.h"
#include "netfault_user.h"
#include "topo.h"

struct packet_fault {
	struct sc_fault f;
	double drop_pct, corrupt_pct, duplicate_pct;	/* packet */
	bool blackhole;
	bool burst;			/* burst_loss given */
	double burst_p_pct, burst_r_pct;	/* Gilbert-Elliott: good->bad, bad->good */
	double burst_bad_pct, burst_good_pct;	/* loss in the bad and good states */
	long long every_ms;		/* tcp_reset: again this long after; 0: once */
};

#define PK(field) offsetof(struct packet_fault, field)

/* Gilbert-Elliott burst loss, netem's "loss gemodel p r 1-h 1-k". */
static const struct sc_key burst_keys[] = {
	{"p_pct", SC_NUM, SC_REQ, PK(burst_p_pct), 0, 100, .doc = "good to bad, per packet"},
	{"r_pct", SC_NUM, SC_REQ, PK(burst_r_pct), 0.001, 100,
	 .doc = "bad to good, per packet: bursts last 100/r_pct packets on average"},
	{"bad_loss_pct", SC_NUM, 0, PK(burst_bad_pct), 0, 100, .def = "100",
	 .doc = "loss in the bad state (1-h)"},
	{"good_loss_pct", SC_NUM, 0, PK(burst_good_pct), 0, 100, .def = "0",
	 .doc = "loss in the good state (1-k)"},
	{NULL},
};

static int parse_burst_loss(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct packet_fault *p = target;

	p->burst = true;
	return sc_parse_object(ctx, val, burst_keys, target);
}

static const struct sc_key packet_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW, FAULT_KEY_DIR,
	{"drop_pct", SC_NUM, 0, PK(drop_pct), 0, 100, .def = "0", .doc = "packets dropped"},
	{"corrupt_pct", SC_NUM, 0, PK(corrupt_pct), 0, 100, .def = "0",
	 .doc = "UDP payloads with a byte flipped"},
	{"duplicate_pct", SC_NUM, 0, PK(duplicate_pct), 0, 100, .def = "0",
	 .doc = "packets sent twice"},
	{"blackhole", SC_BOOL, 0, PK(blackhole), .def = "false", .doc = "drop everything"},
	{"burst_loss", SC_CUSTOM, 0, 0, .parse = parse_burst_loss,
	 .doc = "Gilbert-Elliott loss: {p_pct, r_pct, bad_loss_pct, good_loss_pct}"},
	{NULL},
};
static const struct sc_key tcp_reset_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW, FAULT_KEY_DIR,
	{"every_ms", SC_INT, 0, PK(every_ms), 0, FAULT_MS_MAX, .def = "0",
	 .doc = "reset each connection again this long after; 0: once per window"},
	{NULL},
};
static const struct sc_key half_open_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW,
	{"direction", SC_ENUM, SC_REQ, FAULT_OFF(direction), .choices = fault_directions,
	 .doc = "the direction whose TCP segments vanish: \"ingress\" or \"egress\" at a"},
	{NULL},
};

/* Each type's actions are its code * 2 (on) and + 1 (off). */
enum { T_PACKET, T_TCP_RESET, T_HALF_OPEN };
static const struct fault_act_def packet_acts[] = {
	{"packet_on", false, FAULT_ON_LINK}, {"packet_off", true, FAULT_ON_LINK},
	{"tcp_reset_on", false, FAULT_ON_LINK}, {"tcp_reset_off", true, FAULT_ON_LINK},
	{"half_open_on", false, FAULT_ON_LINK}, {"half_open_off", true, FAULT_ON_LINK},
};

const struct fault_family fault_packet;
#define PACKET_TYPE(name, code, keys) \
	{name, &fault_packet, code, keys, sizeof(struct packet_fault), false}
static const struct fault_type packet_types[] = {
	PACKET_TYPE("packet", T_PACKET, packet_keys),
	PACKET_TYPE("tcp_reset", T_TCP_RESET, tcp_reset_keys),
	PACKET_TYPE("half_open", T_HALF_OPEN, half_open_keys),
	{NULL},
};

static int packet_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	(void)sc;
	if (f->type->code == T_HALF_OPEN && f->direction == SC_DIR_BOTH) {
		e->key = "direction";
		snprintf(e->msg, sizeof(e->msg), "half_open takes one direction, \"ingress\" or "
			 "\"egress\" (both ways is a TCP blackhole: use a packet fault's blackhole)");
		return -EINVAL;
	}
	return 0;
}

static void packet_conf(const struct sc_fault *f, bool on, struct netfault_conf *c)
{
	const struct packet_fault *p = (const struct packet_fault *)f;

	memset(c, 0, sizeof(*c));
	if (!on)
		return;
	c->drop_ppm = (__u32)(p->drop_pct * (NETFAULT_PPM / 100));
	c->corrupt_ppm = (__u32)(p->corrupt_pct * (NETFAULT_PPM / 100));
	c->duplicate_ppm = (__u32)(p->duplicate_pct * (NETFAULT_PPM / 100));
	c->blackhole = p->blackhole;
	c->burst = p->burst;
	c->ge_p_ppm = (__u32)(p->burst_p_pct * (NETFAULT_PPM / 100));
	c->ge_r_ppm = (__u32)(p->burst_r_pct * (NETFAULT_PPM / 100));
	c->ge_bad_ppm = (__u32)(p->burst_bad_pct * (NETFAULT_PPM / 100));
	c->ge_good_ppm = (__u32)(p->burst_good_pct * (NETFAULT_PPM / 100));
}

/* The rates a packet program starts with: those of a window on its link and
 * direction that opens at time 0, so not one packet passes before them. */
static bool packet_initial(const struct scenario *sc, int link, int dir,
			   struct netfault_conf *c)
{
	for (size_t i = 0; i < sc->n_faults; i++) {
		const struct sc_fault *f = sc->faults[i];

		if (fault_is(f, &fault_packet) && f->type->code == T_PACKET &&
		    f->link_idx == link && !f->at_ms && fault_window_covers(f, dir)) {
			packet_conf(f, true, c);
			return true;
		}
	}
	return false;
}

static int packet_open(struct fault_env *env, const struct sc_fault *f, int dir, void **inst)
{
	struct netfault_conf c;
	bool initial = packet_initial(env->sc, f->link_idx, dir, &c);
	unsigned long long slot = (unsigned long long)f->link_idx * 2 + (unsigned long long)dir;

	*inst = netfault__attach(topo__link_a_ns(env->topo, f->link_idx),
				 topo__link_kernel_name(env->topo, f->link_idx),
				 dir == FAULT_DIR_IN ? NETFAULT_INGRESS : NETFAULT_EGRESS,
				 initial ? &c : NULL, env->seed + slot);
	return *inst ? 0 : -errno;
}

static int packet_set(const struct sc_fault *f, void *inst, bool on)
{
	const struct packet_fault *p = (const struct packet_fault *)f;
	struct netfault_conf c;

	switch (f->type->code) {
	case T_TCP_RESET:
		return netfault__set_reset(inst, on, (unsigned)p->every_ms);
	case T_HALF_OPEN:
		return netfault__set_half_open(inst, on);
	}
	packet_conf(f, on, &c);
	return netfault__set_packet(inst, &c);
}

static void packet_count(void *inst, unsigned long long v[FC__MAX])
{
	struct netfault_stats st;

	netfault__stats(inst, &st);
	v[FC_SEEN] = st.seen;
	v[FC_DROPPED] = st.dropped;
	v[FC_CORRUPTED] = st.corrupted;
	v[FC_DUPLICATED] = st.duplicated;
	v[FC_BURST_DROPPED] = st.burst_dropped;
	v[FC_BURSTS] = st.bursts;
	v[FC_RESET] = st.reset;
}

static void packet_close(void *inst)
{
	netfault__destroy(inst);
}

static const struct fault_window_ops packet_ops = {
	.cap = CAPS_PACKET,
	.open = packet_open,
	.set = packet_set,
	.close = packet_close,
	.count = packet_count,
	.counts = (1u << FC_SEEN) | (1u << FC_DROPPED) | (1u << FC_CORRUPTED) |
		  (1u << FC_DUPLICATED) | (1u << FC_BURST_DROPPED) | (1u << FC_BURSTS) |
		  (1u << FC_RESET),
};

static int packet_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_packet, f->type->code * 2, f->link_idx);
}

static int packet_attach(struct fault_env *env)
{
	return fault_window_attach(env, &fault_packet, &packet_ops);
}

static int packet_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	(void)now_ms;
	return fault_window_fire(env, &fault_packet, &packet_ops, a);
}

static void packet_stats(struct fault_env *env, struct fault_stats *out)
{
	for (size_t l = 0; l < env->sc->n_links; l++)
		for (int dir = FAULT_DIR_IN; dir <= FAULT_DIR_OUT; dir++) {
			struct netfault *nf = fault_window_get(env, &fault_packet, l, dir);
			struct netfault_stats st;
			json_t *d;

			if (!nf)
				continue;
			netfault__stats(nf, &st);
			d = fault_stats_link(out, env->sc->links[l].name, fault_window_dir_name(dir));
			json_object_set_new(d, "seen", json_integer((json_int_t)st.seen));
			json_object_set_new(d, "dropped", json_integer((json_int_t)st.dropped));
			json_object_set_new(d, "corrupted", json_integer((json_int_t)st.corrupted));
			json_object_set_new(d, "duplicated", json_integer((json_int_t)st.duplicated));
			json_object_set_new(d, "burst_dropped",
					    json_integer((json_int_t)st.burst_dropped));
			json_object_set_new(d, "bursts", json_integer((json_int_t)st.bursts));
			json_object_set_new(d, "reset", json_integer((json_int_t)st.reset));
		}
	fault_window_stats(env, &fault_packet, &packet_ops, out);
}

static void packet_detach(struct fault_env *env)
{
	fault_window_detach(env, &fault_packet, &packet_ops);
}

const struct fault_family fault_packet = {
	.name = "packet",
	.types = packet_types,
	.acts = packet_acts,
	.n_acts = 6,
	.check = packet_check,
	.span = fault_window_span,
	.conflict = fault_window_conflict,
	.plan = packet_plan,
	.attach = packet_attach,
	.fire = packet_fire,
	.stats = packet_stats,
	.detach = packet_detach,
};
