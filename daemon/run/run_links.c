/* A run's link faults: packet programs (netfault), bandwidth limits
 * (netrate) and delay (netdelay), set up where the scenario's faults will
 * need them, switched by the fault timeline, and taken down before the
 * topology goes. Slots are [link * 2 + direction], direction at the link's a
 * end: ingress arrives at a, egress leaves it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "fault.h"
#include "log.h"
#include "netdelay.h"
#include "netfault_user.h"
#include "netrate_user.h"
#include "run_priv.h"
#include "topo.h"

#define DIR_IN 0
#define DIR_OUT 1

static bool covers(const struct sc_fault *f, int dir)
{
	return f->direction == SC_DIR_BOTH ||
	       (f->direction == SC_DIR_INGRESS) == (dir == DIR_IN);
}

static void packet_conf(const struct sc_fault *f, bool on, struct netfault_conf *c)
{
	memset(c, 0, sizeof(*c));
	if (!on)
		return;
	c->drop_ppm = (__u32)(f->drop_pct * (NETFAULT_PPM / 100));
	c->corrupt_ppm = (__u32)(f->corrupt_pct * (NETFAULT_PPM / 100));
	c->duplicate_ppm = (__u32)(f->duplicate_pct * (NETFAULT_PPM / 100));
	c->blackhole = f->blackhole;
	c->burst = f->burst;
	c->ge_p_ppm = (__u32)(f->burst_p_pct * (NETFAULT_PPM / 100));
	c->ge_r_ppm = (__u32)(f->burst_r_pct * (NETFAULT_PPM / 100));
	c->ge_bad_ppm = (__u32)(f->burst_bad_pct * (NETFAULT_PPM / 100));
	c->ge_good_ppm = (__u32)(f->burst_good_pct * (NETFAULT_PPM / 100));
}

/* The rates a packet program starts with: those of a window on its link and
 * direction that opens at time 0, so not one packet passes before them. */
static bool packet_initial(const struct run *r, int link, int dir, struct netfault_conf *c)
{
	for (size_t i = 0; i < r->sc->n_faults; i++) {
		const struct sc_fault *f = &r->sc->faults[i];

		if (f->type == SC_F_PACKET && f->link_idx == link && !f->at_ms && covers(f, dir)) {
			packet_conf(f, true, c);
			return true;
		}
	}
	return false;
}

/* Is a rate limit ever on this link and direction? Its tbf is then the
 * root qdisc where a netem would go, so the delay keeps to NFQUEUE (a
 * netem under the tbf, or the other way round, would have to be rebuilt
 * whenever either changes, and rate 0 removes the tbf). */
static bool rate_limited(const struct run *r, int link, int dir)
{
	bool found = false;

	for (size_t i = 0; i < r->sc->n_faults && !found; i++) {
		const struct sc_fault *f = &r->sc->faults[i];

		found = f->type == SC_F_RATE && f->link_idx == link && covers(f, dir);
	}
	return found;
}

static int attach_delay(struct run *r, const struct sc_fault *f, int dir, size_t slot)
{
	struct netdelay_where w = {
		.netns_path = topo__link_a_ns(r->topo, f->link_idx),
		.ifname = topo__link_kernel_name(r->topo, f->link_idx),
		.peer_netns_path = topo__link_b_ns(r->topo, f->link_idx),
		.peer_ifname = topo__link_b_name(r->topo, f->link_idx),
		.rate_limited = rate_limited(r, f->link_idx, dir),
	};

	/* Queue numbers are per namespace; one per link end and direction. */
	return netdelay__open(r->base, &w, dir == DIR_IN ? NETDELAY_INGRESS : NETDELAY_EGRESS,
			      (unsigned)slot, (unsigned long long)r->seed + slot,
			      &r->netdelays[slot]);
}

/* Faults made by the packet program (bpf/netfault.bpf.c). */
static bool is_netfault(const struct sc_fault *f)
{
	return f->type == SC_F_PACKET || f->type == SC_F_TCP_RESET || f->type == SC_F_HALF_OPEN;
}

/* The host feature a link fault needs. */
static enum caps_id fault_cap(const struct sc_fault *f)
{
	return is_netfault(f) ? CAPS_PACKET : f->type == SC_F_RATE ? CAPS_RATE : CAPS_DELAY;
}

static int not_applied(struct run *r, const struct sc_fault *f, int dir, int err)
{
	char what[128];

	if (caps_state(fault_cap(f)) != CAPS_MISSING)
		return err;
	snprintf(what, sizeof(what), "%s on %s %s", scenario_fault_name(f->type), f->link,
		 dir == DIR_IN ? "ingress" : "egress");
	run_not_applied(r, what, fault_cap(f));
	return 0;
}

static int attach_one(struct run *r, const struct sc_fault *f, int dir)
{
	size_t slot = (size_t)f->link_idx * 2 + (size_t)dir;
	const char *ns = topo__link_a_ns(r->topo, f->link_idx);
	const char *ifname = topo__link_kernel_name(r->topo, f->link_idx);
	int err = 0;

	switch (f->type) {
	case SC_F_PACKET:
	case SC_F_TCP_RESET:
	case SC_F_HALF_OPEN: {
		struct netfault_conf c;
		bool initial;

		if (r->netfaults[slot])
			break;
		initial = packet_initial(r, f->link_idx, dir, &c);
		r->netfaults[slot] = netfault__attach(ns, ifname, dir == DIR_IN ?
						      NETFAULT_INGRESS : NETFAULT_EGRESS,
						      initial ? &c : NULL,
						      (unsigned long long)r->seed + slot);
		err = r->netfaults[slot] ? 0 : -errno;
		break;
	}
	case SC_F_RATE:
		if (r->netrates[slot])
			break;
		/* A qdisc shapes what leaves: ingress at a is egress at b. */
		if (dir == DIR_IN) {
			ns = topo__link_b_ns(r->topo, f->link_idx);
			ifname = topo__link_b_name(r->topo, f->link_idx);
		}
		r->netrates[slot] = ns ? netrate__open(ns, ifname) : NULL;
		err = r->netrates[slot] ? 0 : ns ? -errno : -EINVAL;
		break;
	case SC_F_DELAY:
		if (!r->netdelays[slot])
			err = attach_delay(r, f, dir, slot);
		break;
	}
	if (err)
		log_warn("%s: run %s: %s on %s %s: %s", __func__, r->id,
			 scenario_fault_name(f->type), f->link, dir == DIR_IN ? "ingress" : "egress",
			 strerror(-err));
	return err ? not_applied(r, f, dir, err) : 0;
}

static int set_one(struct run *r, const struct sc_fault *f, int dir, bool on)
{
	size_t slot = (size_t)f->link_idx * 2 + (size_t)dir;

	switch (f->type) {
	case SC_F_PACKET: {
		struct netfault_conf c;

		packet_conf(f, on, &c);
		return r->netfaults[slot] ? netfault__set_packet(r->netfaults[slot], &c) : -ENODEV;
	}
	case SC_F_TCP_RESET:
		return r->netfaults[slot] ? netfault__set_reset(r->netfaults[slot], on,
							       (unsigned)f->every_ms) : -ENODEV;
	case SC_F_HALF_OPEN:
		return r->netfaults[slot] ? netfault__set_half_open(r->netfaults[slot], on)
					  : -ENODEV;
	case SC_F_RATE: {
		/* 10 ms at the rate makes a bucket that neither bursts far past
		 * the limit nor starves a full-size frame. */
		unsigned long long burst = f->burst_kb ? (unsigned long long)f->burst_kb * 1024 :
					   (unsigned long long)f->rate_kbit * 1000 / 8 / 100;

		if (burst < 4096)
			burst = 4096;
		return r->netrates[slot] ? netrate__set(r->netrates[slot],
							on ? (unsigned)f->rate_kbit : 0,
							(unsigned)burst, (unsigned)f->latency_ms)
					 : -ENODEV;
	}
	case SC_F_DELAY: {
		struct netdelay_conf c = {0};

		if (on)
			c = (struct netdelay_conf){
				.delay_ms = (unsigned)f->delay_ms,
				.jitter_ms = (unsigned)f->delay_jitter_ms,
				.dist = f->distribution == SC_DIST_NORMAL ? NETDELAY_NORMAL :
					f->distribution == SC_DIST_PARETO ? NETDELAY_PARETO :
					NETDELAY_UNIFORM,
				.reorder_pct = f->reorder_pct,
				.reorder_gap = (unsigned)f->reorder_gap,
			};
		return r->netdelays[slot] ? netdelay__set(r->netdelays[slot], &c) : -ENODEV;
	}
	}
	return -EINVAL;
}

/* What one link fault's window did, per direction: the mechanisms'
 * counters over the time it was on. */
struct run_link_window {
	bool open;
	struct wcount {
		unsigned long long seen, dropped, corrupted, duplicated, burst_dropped, bursts,
				   reset, delayed, reordered;
	} at_on[2], sum[2];
};

static void window_now(const struct run *r, size_t slot, struct wcount *c)
{
	memset(c, 0, sizeof(*c));
	if (r->netfaults[slot]) {
		struct netfault_stats st;

		netfault__stats(r->netfaults[slot], &st);
		*c = (struct wcount){st.seen, st.dropped, st.corrupted, st.duplicated,
				     st.burst_dropped, st.bursts, st.reset, 0, 0};
	}
	if (r->netdelays[slot]) {
		netdelay__stats(r->netdelays[slot], NULL, &c->delayed, NULL);
		c->reordered = netdelay__reordered(r->netdelays[slot]);
	}
}

/* @sum += now - @from, field by field. */
static void window_add(struct wcount *sum, const struct wcount *from, const struct wcount *now)
{
	const unsigned long long *f = (const void *)from, *n = (const void *)now;
	unsigned long long *s = (void *)sum;

	for (size_t i = 0; i < sizeof(*sum) / sizeof(*s); i++)
		s[i] += n[i] - f[i];
}

static void window_mark(struct run *r, const struct sc_fault *f, bool on)
{
	struct run_link_window *w = r->link_windows ? &r->link_windows[f - r->sc->faults] : NULL;

	if (!w || w->open == on)
		return;
	for (int dir = DIR_IN; dir <= DIR_OUT; dir++) {
		size_t slot = (size_t)f->link_idx * 2 + (size_t)dir;
		struct wcount now;

		if (!covers(f, dir))
			continue;
		window_now(r, slot, &now);
		if (on)
			w->at_on[dir] = now;
		else
			window_add(&w->sum[dir], &w->at_on[dir], &now);
	}
	w->open = on;
}

/* A fault not applied (its mechanism is missing here) stays off: the
 * timeline shows ENOTSUP for it. */
static int set_fault(struct run *r, const struct sc_fault *f, bool on)
{
	int err = 0;

	if (caps_state(fault_cap(f)) == CAPS_MISSING)
		return -ENOTSUP;
	/* Counted from before the change on, to after it off. */
	if (on)
		window_mark(r, f, true);
	for (int dir = DIR_IN; dir <= DIR_OUT && !err; dir++)
		if (covers(f, dir))
			err = set_one(r, f, dir, on);
	if (!on)
		window_mark(r, f, false);
	return err;
}

static bool is_link_window(const struct sc_fault *f)
{
	return is_netfault(f) || f->type == SC_F_RATE || f->type == SC_F_DELAY;
}

int run_links_attach(struct run *r)
{
	size_t n = r->sc->n_links * 2 + 1;
	int err = 0;

	r->netfaults = calloc(n, sizeof(*r->netfaults));
	r->netrates = calloc(n, sizeof(*r->netrates));
	r->netdelays = calloc(n, sizeof(*r->netdelays));
	r->link_windows = calloc(r->sc->n_faults + 1, sizeof(*r->link_windows));
	if (!r->netfaults || !r->netrates || !r->netdelays || !r->link_windows)
		return -ENOMEM;
	for (size_t i = 0; i < r->sc->n_faults && !err; i++) {
		const struct sc_fault *f = &r->sc->faults[i];

		for (int dir = DIR_IN; is_link_window(f) && dir <= DIR_OUT && !err; dir++)
			if (covers(f, dir))
				err = attach_one(r, f, dir);
	}
	/* A fault planned for time 0 holds from the moment the link exists,
	 * not from when its timer first fires. */
	for (size_t i = 0; i < r->sc->n_faults && !err; i++)
		if (is_link_window(&r->sc->faults[i]) && !r->sc->faults[i].at_ms &&
		    caps_state(fault_cap(&r->sc->faults[i])) != CAPS_MISSING)
			err = set_fault(r, &r->sc->faults[i], true);
	return err;
}

int run_links_fire(struct run *r, const struct fault_action *a)
{
	return set_fault(r, &r->sc->faults[a->fault], !fault_act_is_off(a->act));
}

static json_t *wcount_json(const struct wcount *c, bool nf, bool delay)
{
	json_t *o = json_object();

	if (o && nf)
		json_object_update_new(o, json_pack("{sIsIsIsIsIsIsI}",
			"seen", (json_int_t)c->seen, "dropped", (json_int_t)c->dropped,
			"corrupted", (json_int_t)c->corrupted, "duplicated", (json_int_t)c->duplicated,
			"burst_dropped", (json_int_t)c->burst_dropped, "bursts", (json_int_t)c->bursts,
			"reset", (json_int_t)c->reset));
	if (o && delay)
		json_object_update_new(o, json_pack("{sIsI}", "delayed", (json_int_t)c->delayed,
						    "reordered", (json_int_t)c->reordered));
	return o;
}

/* "windows": per link fault on link @l and direction @dir, what its
 * mechanisms did while it was on (one still on is counted to now). */
static void windows_json(const struct run *r, size_t l, int dir, json_t *d)
{
	size_t slot = l * 2 + (size_t)dir;
	json_t *arr = json_array();

	for (size_t i = 0; arr && r->link_windows && i < r->sc->n_faults; i++) {
		const struct sc_fault *f = &r->sc->faults[i];
		const struct run_link_window *w = &r->link_windows[i];
		struct wcount sum = w->sum[dir], now;
		json_t *o;

		if (f->link_idx != (int)l || !is_link_window(f) || f->type == SC_F_RATE ||
		    !covers(f, dir))
			continue;
		if (w->open) {
			window_now(r, slot, &now);
			window_add(&sum, &w->at_on[dir], &now);
		}
		o = wcount_json(&sum, r->netfaults[slot] != NULL, r->netdelays[slot] != NULL);
		if (o && !json_object_update_new(o, json_pack("{sisssIsI}", "fault", (int)i,
				"type", scenario_fault_name(f->type), "at_ms", (json_int_t)f->at_ms,
				"for_ms", (json_int_t)f->for_ms)))
			json_array_append_new(arr, o);
		else
			json_decref(o);
	}
	if (arr && json_array_size(arr))
		json_object_set_new(d, "windows", arr);
	else
		json_decref(arr);
}

/* What the link faults did, per link and direction, for the report. */
json_t *run_links_stats(const struct run *r)
{
	json_t *all = json_object();

	for (size_t l = 0; all && r->netfaults && l < r->sc->n_links; l++) {
		json_t *one = json_object();

		for (int dir = DIR_IN; one && dir <= DIR_OUT; dir++) {
			const char *name = dir == DIR_IN ? "ingress" : "egress";
			size_t slot = l * 2 + (size_t)dir;
			json_t *d = json_object();

			if (r->netfaults[slot]) {
				struct netfault_stats st;

				netfault__stats(r->netfaults[slot], &st);
				json_object_set_new(d, "seen", json_integer((json_int_t)st.seen));
				json_object_set_new(d, "dropped", json_integer((json_int_t)st.dropped));
				json_object_set_new(d, "corrupted",
						    json_integer((json_int_t)st.corrupted));
				json_object_set_new(d, "duplicated",
						    json_integer((json_int_t)st.duplicated));
				json_object_set_new(d, "burst_dropped",
						    json_integer((json_int_t)st.burst_dropped));
				json_object_set_new(d, "bursts", json_integer((json_int_t)st.bursts));
				json_object_set_new(d, "reset", json_integer((json_int_t)st.reset));
			}
			if (r->netdelays[slot]) {
				unsigned long long q, rel, drop;

				netdelay__stats(r->netdelays[slot], &q, &rel, &drop);
				json_object_set_new(d, "delay", json_pack("{sssIsIsIsIsI}",
					"via", netdelay__via(r->netdelays[slot]),
					"queued", (json_int_t)q, "released", (json_int_t)rel,
					"dropped", (json_int_t)drop, "overflow",
					(json_int_t)netdelay__overflows(r->netdelays[slot]),
					"reordered",
					(json_int_t)netdelay__reordered(r->netdelays[slot])));
			}
			if (d && json_object_size(d))
				windows_json(r, l, dir, d);
			if (d && json_object_size(d))
				json_object_set_new(one, name, d);
			else
				json_decref(d);
		}
		if (one && json_object_size(one))
			json_object_set_new(all, r->sc->links[l].name, one);
		else
			json_decref(one);
	}
	return all;
}

void run_links_detach(struct run *r)
{
	for (size_t i = 0; i < r->sc->n_links * 2; i++) {
		if (r->netfaults)
			netfault__destroy(r->netfaults[i]);
		if (r->netrates)
			netrate__close(r->netrates[i]);
		if (r->netdelays)
			netdelay__close(r->netdelays[i]);
	}
	free(r->netfaults);
	free(r->netrates);
	free(r->netdelays);
	free(r->link_windows);
	r->link_windows = NULL;
	r->netfaults = NULL;
	r->netrates = NULL;
	r->netdelays = NULL;
}
