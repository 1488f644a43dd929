/* The "workloads" section: kinds, commands, environment, probes, CPUs and
 * the link a bundled workload sits on. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

static const char *const kind_names[] = {"exec", "echo-server", "lwip-client", "msgq",
	"qpair", "ws-server", "dpdk-client", NULL};
static const char *const probe_names[] = {"proc", "heap", "fds", "lifecycle", NULL};

static int parse_kind(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;
	char known[128];
	const char *s;

	sc_join_list(kind_names, known, sizeof(known));
	if (!json_is_string(val)) {
		sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(val));
		return -EINVAL;
	}
	s = json_string_value(val);
	w->kind = sc_in_list(kind_names, s);
	if (w->kind >= 0)
		return 0;
	sc_error(ctx, false, "unknown workload kind '%s' (known: %s)", s, known);
	return -EINVAL;
}

static int parse_env(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;
	const char *key;
	json_t *v;
	size_t i = 0;
	int err = 0;

	if (!json_is_object(val)) {
		sc_error(ctx, false, "expected an object of strings, got %s",
			 sc_json_type_name(val));
		return -EINVAL;
	}
	w->env = sc_track(ctx, calloc(json_object_size(val) + 1, sizeof(*w->env)));
	if (!w->env)
		return -ENOMEM;
	json_object_foreach(val, key, v) {
		jpath_push_key(&ctx->path, key);
		if (!json_is_string(v)) {
			sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(v));
			err = -EINVAL;
		} else if (!*key || strchr(key, '=')) {
			sc_error(ctx, true, "not a valid environment variable name");
			err = -EINVAL;
		} else {
			char *kv = NULL;

			if (asprintf(&kv, "%s=%s", key, json_string_value(v)) < 0)
				kv = NULL;
			w->env[i++] = sc_track(ctx, kv);
		}
		jpath_pop(&ctx->path);
	}
	return err;
}

static int parse_probes(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;
	char known[128];
	int err;

	err = sc_parse_strv(ctx, val, &w->probes);
	if (err)
		return err;
	sc_join_list(probe_names, known, sizeof(known));
	for (size_t i = 0; w->probes[i]; i++) {
		jpath_push_idx(&ctx->path, i);
		if (sc_in_list(probe_names, w->probes[i]) < 0) {
			sc_error(ctx, false, "unknown probe '%s' (known: %s)",
				 w->probes[i], known);
			err = -EINVAL;
		}
		jpath_pop(&ctx->path);
	}
	return err;
}

#define AL(f) offsetof(struct sc_allocator, f)
static const struct sc_key allocator_keys[] = {
	{"alloc", SC_STR, 0, AL(alloc), .doc = "a function that allocates (symbol)"},
	{"free", SC_STR, 0, AL(free), .doc = "a function that releases (symbol)"},
	{"lib", SC_STR, 0, AL(lib), .doc = "the library that has it (a path or a file name "
	 "prefix, \"libpool.so\"); default: the program"},
	{"size_arg", SC_INT, 0, AL(size_arg), 0, 5, .def = "0",
	 .doc = "alloc: the argument (1-5) holding the size; 0: unknown"},
	{"ptr_arg", SC_INT, 0, AL(ptr_arg), 0, 5, .def = "0",
	 .doc = "free: the argument (1-5) holding the pointer (default 1); alloc: an "
		"argument the pointer is written through; 0: the pointer is returned"},
	{NULL},
};

/* "allocators": [{"alloc": "pool_get", "size_arg": 2}, {"free": "pool_put",
 * "ptr_arg": 2}]: a program's own allocator, tracked like malloc. */
/* One of alloc and free; a free's pointer is argument 1 unless named. */
static int check_allocator(struct sc_ctx *ctx, void *elem, size_t i, void *arg)
{
	struct sc_allocator *a = elem;
	int e = 0;

	(void)i;
	(void)arg;
	if (!a->alloc == !a->free) {
		sc_error(ctx, false, "name exactly one of \"alloc\" and \"free\"");
		e = -EINVAL;
	}
	if (!e && a->free && !a->ptr_arg)
		a->ptr_arg = 1;
	if (!e && a->free && a->size_arg) {
		sc_error(ctx, false, "\"size_arg\" is for \"alloc\"");
		e = -EINVAL;
	}
	return e;
}

static int parse_allocators(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;
	int err;

	w->allocators = sc_parse_array(ctx, val, "objects", allocator_keys,
				       sizeof(*w->allocators), &w->n_allocators, check_allocator,
				       NULL, &err);
	return err;
}

#define WL(f) offsetof(struct sc_workload, f)
static const struct sc_key workload_keys[] = {
	{"name", SC_STR, SC_REQ, WL(name), .doc = "unique name, [A-Za-z0-9_-], at most 32"},
	{"kind", SC_CUSTOM, SC_REQ, 0, .parse = parse_kind,
	 .doc = "exec, echo-server, lwip-client, msgq, qpair, dpdk-client or ws-server"},
	{"netns", SC_STR, 0, WL(netns), .doc = "a namespace of topology.namespaces"},
	{"link", SC_STR, 0, WL(link), .doc = "lwip-client: the tap link its stack drives"},
	{"cmd", SC_STRV, 0, WL(cmd), .doc = "exec: the command and its arguments"},
	{"args", SC_STRV, 0, WL(args), .doc = "bundled kinds: extra arguments"},
	{"env", SC_CUSTOM, 0, 0, .parse = parse_env, .doc = "extra environment"},
	{"cwd", SC_STR, 0, WL(cwd), .doc = "working directory"},
	{"probes", SC_CUSTOM, 0, 0, .parse = parse_probes, .doc = "probes to attach"},
	{"allocators", SC_CUSTOM, 0, 0, .parse = parse_allocators,
	 .doc = "the program's own allocate/free functions, tracked by the heap probe like "
		"malloc and free"},
	{"asan", SC_BOOL, 0, WL(asan), .def = "false",
	 .doc = "bundled kinds: run the ASan+UBSan build (make SANITIZER=address harness)"},
	{"cpus", SC_CPUS, 0, WL(cpus), .doc = "pin to these CPUs"},
	{"service", SC_BOOL, 0, WL(service), .doc = "runs until the others end"},
	{"timeout_s", SC_NUM, 0, WL(timeout_s), 0.001, 604800, .doc = "kill after this long"},
	{"stop_grace_ms", SC_INT, 0, WL(stop_grace_ms), 0, 600000, .def = "2000",
	 .doc = "SIGTERM to SIGKILL when stopping"},
	{"output_max_kb", SC_INT, 0, WL(output_max_kb), 1, 1048576, .def = "1024",
	 .doc = "captured bytes per stream (head and tail kept)"},
	{NULL},
};

/* A user-space stack owns one tap: the workload names it, runs in the tap's
 * namespace (the tap is opened there), and only such kinds take a link. */
static int check_wl_link(struct sc_ctx *ctx, struct scenario *sc, struct sc_workload *w)
{
	int err = 0;

	/* lwIP reads and writes a tap; DPDK's af_packet port sits on a veth end. */
	bool stack = w->kind == WL_LWIP_CLIENT || w->kind == WL_DPDK_CLIENT;
	int want = w->kind == WL_LWIP_CLIENT ? SC_LINK_TAP : SC_LINK_VETH;

	w->link_idx = -1;
	if (!w->link) {
		if (stack) {
			sc_error(ctx, false, "kind %s needs \"link\": a %s link of "
				 "topology.links", scenario_kind_name(w->kind),
				 want == SC_LINK_TAP ? "tap" : "veth");
			err = -EINVAL;
		}
		return err;
	}
	jpath_push_key(&ctx->path, "link");
	w->link_idx = scenario_link_idx(sc, w->link);
	if (!stack) {
		sc_error(ctx, true, "only kinds lwip-client and dpdk-client take \"link\"");
		err = -EINVAL;
	} else if (w->link_idx < 0) {
		sc_error(ctx, false, "no link named '%s' in topology.links", w->link);
		err = -EINVAL;
	} else if (sc->links[w->link_idx].type != want) {
		sc_error(ctx, false, "link '%s' is a %s; %s needs a %s", w->link,
			 want == SC_LINK_TAP ? "veth" : "tap", scenario_kind_name(w->kind),
			 want == SC_LINK_TAP ? "tap" : "veth");
		err = -EINVAL;
	} else if (!w->netns) {
		w->netns = sc->links[w->link_idx].a;
	} else if (sc->links[w->link_idx].a && strcmp(w->netns, sc->links[w->link_idx].a)) {
		sc_error(ctx, false, "link '%s' has its a end in namespace '%s' but the "
			 "workload runs in '%s'", w->link, sc->links[w->link_idx].a, w->netns);
		err = -EINVAL;
	}
	if (!err && w->kind == WL_DPDK_CLIENT &&
	    sc->links[w->link_idx].offloads == SC_OFFLOADS_AUTO)
		sc->links[w->link_idx].offloads = SC_OFFLOADS_OFF;
	jpath_pop(&ctx->path);
	return err;
}

int sc_parse_workloads(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val) || json_array_size(val) == 0) {
		sc_error(ctx, false, "expected a non-empty array of workloads, got %s",
			 json_is_array(val) ? "an empty array" : sc_json_type_name(val));
		return -EINVAL;
	}
	sc->n_wl = json_array_size(val);
	sc->wl = sc_track(ctx, calloc(sc->n_wl, sizeof(*sc->wl)));
	if (!sc->wl)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_workload *w = &sc->wl[i];
		int e;

		jpath_push_idx(&ctx->path, i);
		w->kind = -1;
		w->service_set = json_is_object(item) && json_object_get(item, "service");
		e = sc_parse_object(ctx, item, workload_keys, w);
		if (!e) {
			if (!sc_valid_name(w->name)) {
				jpath_push_key(&ctx->path, "name");
				sc_error(ctx, false, "'%s' is not a valid name "
					 "([A-Za-z0-9_-], 1 to 32 characters)", w->name);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			for (size_t j = 0; j < i && !e; j++) {
				if (sc->wl[j].name && strcmp(sc->wl[j].name, w->name) == 0) {
					jpath_push_key(&ctx->path, "name");
					sc_error(ctx, false, "duplicate workload name '%s' "
						 "(also workloads[%zu])", w->name, j);
					jpath_pop(&ctx->path);
					e = -EINVAL;
				}
			}
			if (w->kind == WL_EXEC && (!w->cmd || !w->cmd[0])) {
				sc_error(ctx, false, "kind exec needs a non-empty \"cmd\"");
				e = -EINVAL;
			}
			if (w->kind != WL_EXEC && w->cmd) {
				jpath_push_key(&ctx->path, "cmd");
				sc_error(ctx, true, "only kind exec takes \"cmd\"; use \"args\"");
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			if (w->kind == WL_ECHO_SERVER && !w->service_set)
				w->service = true;
			if (w->kind == WL_EXEC && w->asan) {
				jpath_push_key(&ctx->path, "asan");
				sc_error(ctx, true, "only bundled kinds have an ASan build; build "
					 "your own program with -fsanitize=address and run it");
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			if (w->netns && scenario_ns_idx(sc, w->netns) < 0) {
				jpath_push_key(&ctx->path, "netns");
				sc_error(ctx, false, "namespace '%s' is not declared in "
					 "topology.namespaces", w->netns);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			if (!e)
				e = check_wl_link(ctx, sc, w);
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

bool scenario_wl_has_probe(const struct sc_workload *w, const char *probe)
{
	for (size_t i = 0; w->probes && w->probes[i]; i++)
		if (strcmp(w->probes[i], probe) == 0)
			return true;
	return false;
}

const char *scenario_kind_name(int kind)
{
	return kind >= 0 && kind < (int)ARRAY_SIZE(kind_names) - 1 ? kind_names[kind] : "?";
}
