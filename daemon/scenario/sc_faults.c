/* The "faults" section: one key table per fault type, and the checks
 * between faults (targets exist, windows on one link or call do not
 * overlap). */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

#define FT(f) offsetof(struct sc_fault, f)
#define MS_MAX 604800000.0
#define F_LINK {"link", SC_STR, SC_REQ, FT(link), .doc = "a link of topology.links"}
#define F_WL {"workload", SC_STR, SC_REQ, FT(workload), .doc = "a workload"}
#define F_AT {"at_ms", SC_INT, SC_REQ, FT(at_ms), 0, MS_MAX, .doc = "when, from the run's start"}
#define F_TYPE {"type", SC_STR, SC_REQ, FT(type_name), .doc = "the fault"}
#define F_START {"start_ms", SC_INT, 0, FT(start_ms), 0, MS_MAX, .def = "0", .doc = "first down"}
#define F_SETTLE {"settle_ms", SC_INT, 0, FT(settle_ms), 0, MS_MAX, \
		  .doc = "after up, before the cycle is sampled (default: the whole up time)"}

static const struct sc_key flap_keys[] = {
	F_TYPE, F_LINK, F_START, F_SETTLE,
	{"down_ms", SC_INT, SC_REQ, FT(down_ms), 1, MS_MAX, .doc = "down time per cycle"},
	{"up_ms", SC_INT, SC_REQ, FT(up_ms), 1, MS_MAX, .doc = "up time per cycle"},
	{"cycles", SC_INT, 0, FT(cycles), 0, 1e9, .def = "0", .doc = "0: until the run ends"},
	{"jitter_ms", SC_INT, 0, FT(jitter_ms), 0, MS_MAX, .def = "0",
	 .doc = "each down moves by up to this, drawn from the seed"},
	{NULL},
};
static const struct sc_key random_keys[] = {
	F_TYPE, F_LINK, F_START, F_SETTLE,
	{"count", SC_INT, SC_REQ, FT(cycles), 1, 1e6, .doc = "how many outages"},
	{"min_down_ms", SC_INT, 0, FT(min_down_ms), 1, MS_MAX, .def = "100"},
	{"max_down_ms", SC_INT, 0, FT(max_down_ms), 1, MS_MAX, .def = "1000"},
	{"min_up_ms", SC_INT, 0, FT(min_up_ms), 1, MS_MAX, .def = "500"},
	{"max_up_ms", SC_INT, 0, FT(max_up_ms), 1, MS_MAX, .def = "2000"},
	{NULL},
};
static const struct sc_key link_at_keys[] = {F_TYPE, F_LINK, F_AT, {NULL}};
static const struct sc_key proc_at_keys[] = {F_TYPE, F_WL, F_AT, {NULL}};
static const struct sc_key kill_keys[] = {
	F_TYPE, F_WL, F_AT,
	{"signal", SC_STR, 0, FT(signal), .def = "\"SIGKILL\"", .doc = "the signal"},
	{"every_ms", SC_INT, 0, FT(every_ms), 0, MS_MAX, .def = "0",
	 .doc = "send it again this often; 0: once"},
	{"count", SC_INT, 0, FT(count), 0, 1e6, .def = "0",
	 .doc = "with every_ms: how many in all; 0: until the run ends"},
	{NULL},
};
static const struct sc_key pause_flap_keys[] = {
	F_TYPE, F_WL, F_START,
	{"pause_ms", SC_INT, SC_REQ, FT(pause_ms), 1, MS_MAX, .doc = "frozen this long"},
	{"run_ms", SC_INT, SC_REQ, FT(run_ms), 1, MS_MAX, .doc = "then running this long"},
	{"count", SC_INT, 0, FT(count), 0, 1e6, .def = "0", .doc = "pauses; 0: until the run ends"},
	{NULL},
};

static const char *const directions[] = {"both", "ingress", "egress", NULL};
#define F_WINDOW \
	{"at_ms", SC_INT, 0, FT(at_ms), 0, MS_MAX, .def = "0", .doc = "window start"}, \
	{"for_ms", SC_INT, 0, FT(for_ms), 0, MS_MAX, .def = "0", .doc = "window length; 0: to the end"}
#define F_DIR \
	{"direction", SC_ENUM, 0, FT(direction), .choices = directions, .def = "\"both\"", \
	 .doc = "at the link's a end: egress leaves a, ingress arrives at a"}

static const struct sc_key packet_keys[] = {
	F_TYPE, F_LINK, F_WINDOW, F_DIR,
	{"drop_pct", SC_NUM, 0, FT(drop_pct), 0, 100, .def = "0", .doc = "packets dropped"},
	{"corrupt_pct", SC_NUM, 0, FT(corrupt_pct), 0, 100, .def = "0",
	 .doc = "UDP payloads with a byte flipped"},
	{"duplicate_pct", SC_NUM, 0, FT(duplicate_pct), 0, 100, .def = "0",
	 .doc = "packets sent twice"},
	{"blackhole", SC_BOOL, 0, FT(blackhole), .def = "false", .doc = "drop everything"},
	{NULL},
};

static const struct sc_key rate_keys[] = {
	F_TYPE, F_LINK, F_WINDOW, F_DIR,
	{"rate_kbit", SC_INT, SC_REQ, FT(rate_kbit), 8, 10000000, .doc = "bandwidth, kbit/s"},
	{"burst_kb", SC_INT, 0, FT(burst_kb), 0, 1048576, .def = "0",
	 .doc = "bucket size; 0: 10 ms at the rate, at least 4 KiB"},
	{"latency_ms", SC_INT, 0, FT(latency_ms), 1, 60000, .def = "100",
	 .doc = "longest a packet may wait before it is dropped"},
	{NULL},
};
static const struct sc_key delay_keys[] = {
	F_TYPE, F_LINK, F_WINDOW, F_DIR,
	{"delay_ms", SC_INT, SC_REQ, FT(delay_ms), 0, 60000, .doc = "added latency"},
	{"jitter_ms", SC_INT, 0, FT(delay_jitter_ms), 0, 60000, .def = "0",
	 .doc = "each packet's delay varies uniformly by up to this"},
	{NULL},
};

static const struct sc_key cpu_hog_keys[] = {
	F_TYPE, F_WINDOW,
	{"cpus", SC_CUSTOM, 0, 0, .parse = sc_parse_fault_cpus, .def = "[0]",
	 .doc = "the CPUs kept busy"},
	{"threads", SC_INT, 0, FT(threads), 1, 64, .def = "1", .doc = "busy processes per CPU"},
	{NULL},
};

/* socket() fails through cgroup/sock_create at run time; the other calls
 * through a seccomp filter fixed at exec (secfault.c). */
static const struct {
	const char *name;
	int value;
} errnos[] = {
	{"ENFILE", ENFILE}, {"EMFILE", EMFILE}, {"ENOBUFS", ENOBUFS}, {"ENOMEM", ENOMEM},
	{"EACCES", EACCES}, {"EPERM", EPERM}, {"EAFNOSUPPORT", EAFNOSUPPORT},
	{"ECONNREFUSED", ECONNREFUSED}, {"ECONNRESET", ECONNRESET}, {"ETIMEDOUT", ETIMEDOUT},
	{"ENETUNREACH", ENETUNREACH}, {"EHOSTUNREACH", EHOSTUNREACH},
	{"EADDRINUSE", EADDRINUSE}, {"EAGAIN", EAGAIN}, {"EINTR", EINTR}, {"EIO", EIO},
	{"ENOSPC", ENOSPC},
};
static const struct sc_key syserr_keys[] = {
	F_TYPE, F_WL,
	{"syscall", SC_ENUM, 0, FT(syscall), .choices = secfault_calls, .def = "\"socket\"",
	 .doc = "the call that fails"},
	{"errno", SC_STR, 0, FT(errno_name), .def = "\"ENFILE\"", .doc = "how it fails"},
	{"pct", SC_NUM, 0, FT(pct), 0, 100, .def = "100", .doc = "share of calls that fail"},
	F_WINDOW,
	{NULL},
};

static const struct {
	const char *name;
	int type;
	const struct sc_key *keys;
} fault_types[] = {
	{"link_flap", SC_F_LINK_FLAP, flap_keys}, {"link_down", SC_F_LINK_DOWN, link_at_keys},
	{"link_up", SC_F_LINK_UP, link_at_keys}, {"random", SC_F_RANDOM, random_keys},
	{"pause", SC_F_PAUSE, proc_at_keys}, {"resume", SC_F_RESUME, proc_at_keys},
	{"kill", SC_F_KILL, kill_keys}, {"packet", SC_F_PACKET, packet_keys},
	{"syscall_error", SC_F_SYSCALL_ERROR, syserr_keys}, {"rate", SC_F_RATE, rate_keys},
	{"delay", SC_F_DELAY, delay_keys}, {"cpu_hog", SC_F_CPU_HOG, cpu_hog_keys},
	{"pause_flap", SC_F_PAUSE_FLAP, pause_flap_keys},
};

const char *scenario_fault_name(int type)
{
	for (size_t i = 0; i < ARRAY_SIZE(fault_types); i++)
		if (fault_types[i].type == type)
			return fault_types[i].name;
	return "?";
}

bool scenario_has_cyclic_fault(const struct scenario *sc)
{
	for (size_t i = 0; i < sc->n_faults; i++)
		if (sc->faults[i].type == SC_F_LINK_FLAP || sc->faults[i].type == SC_F_RANDOM)
			return true;
	return false;
}

int scenario_ns_idx(const struct scenario *sc, const char *name)
{
	/* A name the parser rejected (missing, wrong type) is NULL here. */
	for (size_t i = 0; i < sc->n_ns; i++)
		if (sc->namespaces[i] && name && !strcmp(sc->namespaces[i], name))
			return (int)i;
	return -1;
}

int scenario_link_idx(const struct scenario *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_links; i++)
		if (sc->links[i].name && name && !strcmp(sc->links[i].name, name))
			return (int)i;
	return -1;
}

/* The time a link fault holds its link: [from, to); to < 0 is the end. */
static void fault_span(const struct sc_fault *f, long long *from, long long *to)
{
	switch (f->type) {
	case SC_F_LINK_FLAP:
		*from = f->start_ms;
		*to = f->cycles ? f->start_ms + f->cycles * (f->down_ms + f->up_ms + f->jitter_ms) : -1;
		break;
	case SC_F_RANDOM:
		*from = f->start_ms;
		*to = f->start_ms + f->cycles * (f->max_down_ms + f->max_up_ms);
		break;
	case SC_F_PACKET:
	case SC_F_RATE:
	case SC_F_DELAY:
	case SC_F_SYSCALL_ERROR:
		*from = f->at_ms;
		*to = f->for_ms ? f->at_ms + f->for_ms : -1;
		break;
	default:
		*from = f->at_ms;
		*to = f->at_ms + 1;
	}
}

static bool is_window(const struct sc_fault *f)
{
	return f->type == SC_F_PACKET || f->type == SC_F_RATE || f->type == SC_F_DELAY;
}

/* What a fault's type asks of its link, and of the machine. */
static int check_fault_kind(struct sc_ctx *ctx, struct scenario *sc, struct sc_fault *f)
{
	int err = 0;

	if (f->link_idx >= 0 && sc->links[f->link_idx].type == SC_LINK_TAP &&
	    f->type == SC_F_RATE && f->direction != SC_DIR_EGRESS) {
		/* A qdisc shapes what leaves; a tap's far side is not ours. */
		jpath_push_key(&ctx->path, "direction");
		sc_error(ctx, false, "a rate on tap '%s' can only be \"egress\" (toward the "
			 "workload's stack)", f->link);
		jpath_pop(&ctx->path);
		err = -EINVAL;
	}
	if (f->type == SC_F_DELAY && f->delay_jitter_ms > f->delay_ms) {
		jpath_push_key(&ctx->path, "jitter_ms");
		sc_error(ctx, false, "%lld is larger than delay_ms (%lld)", f->delay_jitter_ms,
			 f->delay_ms);
		jpath_pop(&ctx->path);
		err = -EINVAL;
	}
	if (f->type == SC_F_SYSCALL_ERROR && f->syscall != SECFAULT_SOCKET &&
	    (f->pct != 100 || f->at_ms || f->for_ms)) {
		jpath_push_key(&ctx->path, "syscall");
		sc_error(ctx, false, "'%s' fails through a seccomp filter fixed at exec: it "
			 "takes pct 100, at_ms 0 and for_ms 0 (only 'socket' has rates and "
			 "windows)", secfault_calls[f->syscall]);
		jpath_pop(&ctx->path);
		err = -EINVAL;
	}
	return err;
}

static int check_fault(struct sc_ctx *ctx, struct scenario *sc, struct sc_fault *f, size_t i)
{
	int err = 0;

	f->link_idx = f->wl_idx = -1;
	if (f->link) {
		f->link_idx = scenario_link_idx(sc, f->link);
		if (f->link_idx < 0) {
			jpath_push_key(&ctx->path, "link");
			sc_error(ctx, false, "no link named '%s' in topology.links", f->link);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
	}
	if (f->workload) {
		f->wl_idx = scenario_workload_idx(sc, f->workload);
		if (f->wl_idx < 0) {
			jpath_push_key(&ctx->path, "workload");
			sc_error(ctx, false, "no workload named '%s'", f->workload);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
	}
	if (f->signal) {
		f->signo = util_parse_signame(f->signal);
		if (f->signo <= 0) {
			jpath_push_key(&ctx->path, "signal");
			sc_error(ctx, false, "'%s' is not a signal name", f->signal);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
	}
	if (f->errno_name) {
		size_t e;

		for (e = 0; e < ARRAY_SIZE(errnos) && strcmp(errnos[e].name, f->errno_name); e++)
			;
		if (e == ARRAY_SIZE(errnos)) {
			char known[256];
			size_t off = 0;

			known[0] = '\0';
			for (size_t k = 0; k < ARRAY_SIZE(errnos) && off < sizeof(known); k++)
				off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s",
							k ? ", " : "", errnos[k].name);
			jpath_push_key(&ctx->path, "errno");
			sc_error(ctx, false, "'%s' is not one of %s", f->errno_name, known);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
		f->err = errnos[e].value;
	}
	err = check_fault_kind(ctx, sc, f);
	if (err)
		return err;
	if (f->type == SC_F_LINK_FLAP && !f->settle_ms)
		f->settle_ms = f->up_ms;
	if (f->type == SC_F_RANDOM && !f->settle_ms)
		f->settle_ms = f->min_up_ms;
	if ((f->type == SC_F_LINK_FLAP && f->settle_ms > f->up_ms) ||
	    (f->type == SC_F_RANDOM && f->settle_ms > f->min_up_ms)) {
		jpath_push_key(&ctx->path, "settle_ms");
		sc_error(ctx, false, "%lld is longer than the link stays up", f->settle_ms);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	if (f->type == SC_F_RANDOM && (f->min_down_ms > f->max_down_ms ||
				       f->min_up_ms > f->max_up_ms)) {
		sc_error(ctx, false, "min_*_ms must not exceed max_*_ms");
		return -EINVAL;
	}
	/* Two faults may not hold the same link at the same time, and only
	 * one fault may define the cycles. */
	for (size_t j = 0; j < i; j++) {
		const struct sc_fault *g = &sc->faults[j];
		long long f0, f1, g0, g1;
		bool cyc_f = f->type == SC_F_LINK_FLAP || f->type == SC_F_RANDOM;
		bool cyc_g = g->type == SC_F_LINK_FLAP || g->type == SC_F_RANDOM;

		if (cyc_f && cyc_g) {
			sc_error(ctx, false, "a second cyclic fault (faults[%zu] is one): only "
				 "one fault may define the cycles", j);
			return -EINVAL;
		}
		if (f->type == SC_F_SYSCALL_ERROR && g->type == SC_F_SYSCALL_ERROR &&
		    f->wl_idx == g->wl_idx && f->syscall == g->syscall) {
			fault_span(f, &f0, &f1);
			fault_span(g, &g0, &g1);
			if ((f1 < 0 || g0 < f1) && (g1 < 0 || f0 < g1)) {
				sc_error(ctx, false, "conflicts with faults[%zu]: both make %s() of "
					 "'%s' fail at the same time", j,
					 secfault_calls[f->syscall], f->workload);
				err = -EINVAL;
			}
			continue;
		}
		bool win_f = is_window(f), win_g = is_window(g);
		bool same = f->type == g->type && win_f &&
			    (f->direction == SC_DIR_BOTH || g->direction == SC_DIR_BOTH ||
			     f->direction == g->direction);

		/* Flaps conflict with what else holds the same link state;
		 * windows of one kind (packet, rate, delay) with each other on
		 * a shared direction. */
		if (f->link_idx < 0 || f->link_idx != g->link_idx ||
		    (!same && ((!cyc_f && !cyc_g) || win_f || win_g)))
			continue;
		fault_span(f, &f0, &f1);
		fault_span(g, &g0, &g1);
		if ((f1 < 0 || g0 < f1) && (g1 < 0 || f0 < g1)) {
			sc_error(ctx, false, "conflicts with faults[%zu] on link '%s' (their "
				 "windows overlap)", j, f->link);
			err = -EINVAL;
		}
	}
	return err;
}

int sc_parse_faults(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of faults, got %s", sc_json_type_name(val));
		return -EINVAL;
	}
	sc->n_faults = json_array_size(val);
	sc->faults = sc_track(ctx, calloc(sc->n_faults + 1, sizeof(*sc->faults)));
	if (!sc->faults)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		json_t *type = json_is_object(item) ? json_object_get(item, "type") : NULL;
		struct sc_fault *f = &sc->faults[i];
		const char *name = json_string_value(type);
		size_t t;
		int e = -EINVAL;

		jpath_push_idx(&ctx->path, i);
		for (t = 0; name && t < ARRAY_SIZE(fault_types); t++)
			if (!strcmp(fault_types[t].name, name))
				break;
		if (!json_is_object(item)) {
			sc_error(ctx, false, "expected an object, got %s", sc_json_type_name(item));
		} else if (!type) {
			sc_error(ctx, false, "missing required key \"type\"");
		} else if (!name) {
			jpath_push_key(&ctx->path, "type");
			sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(type));
			jpath_pop(&ctx->path);
		} else if (t == ARRAY_SIZE(fault_types)) {
			jpath_push_key(&ctx->path, "type");
			sc_error(ctx, false, "unknown fault type '%s'", name);
			jpath_pop(&ctx->path);
		} else {
			f->type = fault_types[t].type;
			e = sc_parse_object(ctx, item, fault_types[t].keys, f);
			if (!e)
				e = check_fault(ctx, sc, f, i);
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}
