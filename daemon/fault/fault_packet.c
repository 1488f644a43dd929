/* The packet family: drop, corrupt, duplicate or blackhole packets on one
 * or both directions of a link, in a window. The mechanism is
 * bpf/netfault.bpf.c (netfault.c: tcx links, else clsact with cls_bpf). */
#include <errno.h>
#include <string.h>

#include "fault_window.h"
#include "netfault_user.h"
#include "topo.h"

struct packet_fault {
	struct sc_fault f;
	double drop_pct, corrupt_pct, duplicate_pct;
	bool blackhole;
};

#define PK(field) offsetof(struct packet_fault, field)
static const struct sc_key packet_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW, FAULT_KEY_DIR,
	{"drop_pct", SC_NUM, 0, PK(drop_pct), 0, 100, .def = "0", .doc = "packets dropped"},
	{"corrupt_pct", SC_NUM, 0, PK(corrupt_pct), 0, 100, .def = "0",
	 .doc = "UDP payloads with a byte flipped"},
	{"duplicate_pct", SC_NUM, 0, PK(duplicate_pct), 0, 100, .def = "0",
	 .doc = "packets sent twice"},
	{"blackhole", SC_BOOL, 0, PK(blackhole), .def = "false", .doc = "drop everything"},
	{NULL},
};

enum { PACKET_ON, PACKET_OFF };
static const struct fault_act_def packet_acts[] = {
	[PACKET_ON] = {"packet_on", false, FAULT_ON_LINK},
	[PACKET_OFF] = {"packet_off", true, FAULT_ON_LINK},
};

const struct fault_family fault_packet;
static const struct fault_type packet_types[] = {
	{"packet", &fault_packet, 0, packet_keys, sizeof(struct packet_fault), false},
	{NULL},
};

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
}

/* The rates a packet program starts with: those of a window on its link and
 * direction that opens at time 0, so not one packet passes before them. */
static bool packet_initial(const struct scenario *sc, int link, int dir,
			   struct netfault_conf *c)
{
	for (size_t i = 0; i < sc->n_faults; i++) {
		const struct sc_fault *f = sc->faults[i];

		if (fault_is(f, &fault_packet) && f->link_idx == link && !f->at_ms &&
		    fault_window_covers(f, dir)) {
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

	*inst = netfault__attach(topo__link_a_ns(env->topo, f->link_idx),
				 topo__link_kernel_name(env->topo, f->link_idx),
				 dir == FAULT_DIR_IN ? NETFAULT_INGRESS : NETFAULT_EGRESS,
				 initial ? &c : NULL);
	return *inst ? 0 : -errno;
}

static int packet_set(const struct sc_fault *f, void *inst, bool on)
{
	struct netfault_conf c;

	packet_conf(f, on, &c);
	return netfault__set(inst, &c);
}

static void packet_close(void *inst)
{
	netfault__destroy(inst);
}

static const struct fault_window_ops packet_ops = {
	CAPS_PACKET, packet_open, packet_set, packet_close,
};

static int packet_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_packet, PACKET_ON, f->link_idx);
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
		}
}

static void packet_detach(struct fault_env *env)
{
	fault_window_detach(env, &fault_packet, &packet_ops);
}

const struct fault_family fault_packet = {
	.name = "packet",
	.types = packet_types,
	.acts = packet_acts,
	.n_acts = 2,
	.span = fault_window_span,
	.conflict = fault_window_conflict,
	.plan = packet_plan,
	.attach = packet_attach,
	.fire = packet_fire,
	.stats = packet_stats,
	.detach = packet_detach,
};
