#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

#define SC_MAX_FILE (1u << 20)	/* a scenario larger than 1 MiB is a mistake */
#define SC_MAX_ERRORS 20
#define SC_MAX_LINKS 64	/* kernel names hold a two-digit index */

struct sc_ctx {
	struct scenario *sc;
	struct jpath path;
	char *errors;		/* newline-separated messages */
	size_t errors_len;
	int n_errors;
	int oom;
};

static const char *const expect_names[] = {"PASS", "FAIL", "INCONCLUSIVE", NULL};
static const char *const kind_names[] = {"exec", "echo-server", "lwip-client", "msgq",
	"qpair", "ws-server", "dpdk-client", NULL};
static const char *const probe_names[] = {"proc", "heap", "fds", "lifecycle", NULL};

static int in_list(const char *const *list, const char *s)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

static void join_list(const char *const *list, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; list[i] && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", list[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

struct jpath *sc_path(struct sc_ctx *ctx)
{
	return &ctx->path;
}

void sc_error(struct sc_ctx *ctx, bool at_key, const char *fmt, ...)
{
	char msg[512], where[256], line[1024];
	int lno, col, n;
	va_list ap;

	ctx->n_errors++;
	if (ctx->n_errors > SC_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jpath_format(&ctx->path, where, sizeof(where));
	jpos_find(ctx->sc->text, ctx->sc->text_len, &ctx->path, at_key, &lno, &col);
	n = snprintf(line, sizeof(line), "%s:%d:%d: %s: %s\n", ctx->sc->path, lno,
		     col, where, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	char *grown = realloc(ctx->errors, ctx->errors_len + (size_t)n + 1);
	if (!grown) {
		ctx->oom = 1;
		return;
	}
	ctx->errors = grown;
	memcpy(ctx->errors + ctx->errors_len, line, (size_t)n + 1);
	ctx->errors_len += (size_t)n;
}

static void *sc_track(struct sc_ctx *ctx, void *p)
{
	struct scenario *sc = ctx->sc;
	void **grown;

	if (!p) {
		ctx->oom = 1;
		return NULL;
	}
	grown = realloc(sc->allocs, (sc->n_allocs + 1) * sizeof(*grown));
	if (!grown) {
		free(p);
		ctx->oom = 1;
		return NULL;
	}
	sc->allocs = grown;
	sc->allocs[sc->n_allocs++] = p;
	return p;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static int parse_strv(struct sc_ctx *ctx, json_t *val, const char ***out)
{
	const char **v;
	size_t i, n;
	json_t *item;
	int bad = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of strings, got %s",
			 json_type_name(val));
		return -EINVAL;
	}
	n = json_array_size(val);
	v = sc_track(ctx, calloc(n + 1, sizeof(*v)));
	if (!v)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		jpath_push_idx(&ctx->path, i);
		if (!json_is_string(item)) {
			sc_error(ctx, false, "expected a string, got %s",
				 json_type_name(item));
			bad = 1;
		} else {
			v[i] = json_string_value(item);
		}
		jpath_pop(&ctx->path);
	}
	*out = v;
	return bad ? -EINVAL : 0;
}

/* Check @val against @k and store it at target + k->off. */
static int parse_value(struct sc_ctx *ctx, const struct sc_key *k, json_t *val,
		       void *target)
{
	char *field = (char *)target + k->off;
	char choices[256];
	double num;
	int idx;

	switch (k->type) {
	case SC_STR:
		if (!json_is_string(val)) {
			sc_error(ctx, false, "expected a string, got %s", json_type_name(val));
			return -EINVAL;
		}
		if (json_string_length(val) == 0) {
			sc_error(ctx, false, "must not be empty");
			return -EINVAL;
		}
		*(const char **)field = json_string_value(val);
		return 0;
	case SC_BOOL:
		if (!json_is_boolean(val)) {
			sc_error(ctx, false, "expected true or false, got %s", json_type_name(val));
			return -EINVAL;
		}
		*(bool *)field = json_is_true(val);
		return 0;
	case SC_INT:
		if (!json_is_integer(val)) {
			sc_error(ctx, false, "expected an integer, got %s", json_type_name(val));
			return -EINVAL;
		}
		num = (double)json_integer_value(val);
		if (num < k->min || num > k->max) {
			sc_error(ctx, false, "%lld is out of range [%.0f, %.0f]",
				 json_integer_value(val), k->min, k->max);
			return -EINVAL;
		}
		*(long long *)field = json_integer_value(val);
		return 0;
	case SC_NUM:
		if (!json_is_number(val)) {
			sc_error(ctx, false, "expected a number, got %s", json_type_name(val));
			return -EINVAL;
		}
		num = json_number_value(val);
		if (!isfinite(num) || num < k->min || num > k->max) {
			sc_error(ctx, false, "%g is out of range [%g, %g]", num, k->min, k->max);
			return -EINVAL;
		}
		*(double *)field = num;
		return 0;
	case SC_STRV:
		return parse_strv(ctx, val, (const char ***)field);
	case SC_ENUM:
		join_list(k->choices, choices, sizeof(choices));
		if (!json_is_string(val)) {
			sc_error(ctx, false, "expected one of %s, got %s", choices,
				 json_type_name(val));
			return -EINVAL;
		}
		idx = in_list(k->choices, json_string_value(val));
		if (idx < 0) {
			sc_error(ctx, false, "'%s' is not one of %s",
				 json_string_value(val), choices);
			return -EINVAL;
		}
		*(int *)field = idx;
		return 0;
	case SC_CUSTOM:
		return k->parse(ctx, val, target);
	}
	return -EINVAL;
}

int sc_parse_object(struct sc_ctx *ctx, json_t *obj, const struct sc_key *keys,
		    void *target)
{
	const char *name;
	json_t *val;
	int err = 0;

	if (!json_is_object(obj)) {
		sc_error(ctx, false, "expected an object, got %s", json_type_name(obj));
		return -EINVAL;
	}
	json_object_foreach(obj, name, val) {
		const struct sc_key *k = keys;

		while (k->name && strcmp(k->name, name) != 0)
			k++;
		if (!k->name) {
			char known[512];
			size_t off = 0;

			known[0] = '\0';
			for (k = keys; k->name && off < sizeof(known); k++)
				off += (size_t)snprintf(known + off, sizeof(known) - off,
							"%s%s", k == keys ? "" : ", ", k->name);
			jpath_push_key(&ctx->path, name);
			sc_error(ctx, true, "unknown key (known keys: %s)", known);
			jpath_pop(&ctx->path);
			err = -EINVAL;
		}
	}
	for (const struct sc_key *k = keys; k->name; k++) {
		json_t *dflt = NULL;
		int e;

		val = json_object_get(obj, k->name);
		if (!val && (k->flags & SC_REQ)) {
			jpath_push_key(&ctx->path, k->name);
			sc_error(ctx, false, "missing required key%s%s",
				 k->doc ? ": " : "", k->doc ? k->doc : "");
			jpath_pop(&ctx->path);
			err = -EINVAL;
			continue;
		}
		if (!val && !k->def)
			continue;
		if (!val) {
			/* Defaults are JSON text in the table; keep the value
			 * alive in the root so strings stay valid. */
			dflt = json_loads(k->def, JSON_DECODE_ANY, NULL);
			if (!dflt) {
				ctx->oom = 1;
				return -ENOMEM;
			}
			json_array_append(json_object_get(ctx->sc->root, "defaults"), dflt);
			val = dflt;
		}
		jpath_push_key(&ctx->path, k->name);
		e = parse_value(ctx, k, val, target);
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
		json_decref(dflt);
	}
	return err;
}

/* --- scenario-specific keys ------------------------------------------------ */

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

static int parse_kind(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;
	char known[128];
	const char *s;

	join_list(kind_names, known, sizeof(known));
	if (!json_is_string(val)) {
		sc_error(ctx, false, "expected a string, got %s", json_type_name(val));
		return -EINVAL;
	}
	s = json_string_value(val);
	w->kind = in_list(kind_names, s);
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
			 json_type_name(val));
		return -EINVAL;
	}
	w->env = sc_track(ctx, calloc(json_object_size(val) + 1, sizeof(*w->env)));
	if (!w->env)
		return -ENOMEM;
	json_object_foreach(val, key, v) {
		jpath_push_key(&ctx->path, key);
		if (!json_is_string(v)) {
			sc_error(ctx, false, "expected a string, got %s", json_type_name(v));
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

	err = parse_strv(ctx, val, &w->probes);
	if (err)
		return err;
	join_list(probe_names, known, sizeof(known));
	for (size_t i = 0; w->probes[i]; i++) {
		jpath_push_idx(&ctx->path, i);
		if (in_list(probe_names, w->probes[i]) < 0) {
			sc_error(ctx, false, "unknown probe '%s' (known: %s)",
				 w->probes[i], known);
			err = -EINVAL;
		}
		jpath_pop(&ctx->path);
	}
	return err;
}

/* "cpus": [0, 1]: CPU numbers, each once, into @cpus (SC_MAX_CPUS of
 * them) and their count into *@n. */
static int parse_cpus(struct sc_ctx *ctx, json_t *val, int *cpus, size_t *n)
{
	json_t *item;
	size_t i;

	if (!json_is_array(val) || json_array_size(val) == 0 ||
	    json_array_size(val) > SC_MAX_CPUS) {
		sc_error(ctx, false, "expected an array of 1 to %d CPU numbers", SC_MAX_CPUS);
		return -EINVAL;
	}
	json_array_foreach(val, i, item) {
		json_int_t c = json_integer_value(item);

		if (!json_is_integer(item) || c < 0 || c >= CPU_SETSIZE) {
			jpath_push_idx(&ctx->path, i);
			sc_error(ctx, false, "expected a CPU number in [0, %d]", CPU_SETSIZE - 1);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
		cpus[i] = (int)c;
	}
	*n = json_array_size(val);
	return 0;
}

static int parse_wl_cpus(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_workload *w = target;

	return parse_cpus(ctx, val, w->cpus, &w->n_cpus);
}

static int parse_fault_cpus(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct sc_fault *f = target;

	return parse_cpus(ctx, val, f->cpus, &f->n_cpus);
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
	{"asan", SC_BOOL, 0, WL(asan), .def = "false",
	 .doc = "bundled kinds: run the ASan+UBSan build (make SANITIZER=address harness)"},
	{"cpus", SC_CUSTOM, 0, 0, .parse = parse_wl_cpus, .doc = "pin to these CPUs"},
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
	} else if (strcmp(w->netns, sc->links[w->link_idx].a)) {
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

static int parse_workloads(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val) || json_array_size(val) == 0) {
		sc_error(ctx, false, "expected a non-empty array of workloads, got %s",
			 json_is_array(val) ? "an empty array" : json_type_name(val));
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
			if (!valid_name(w->name)) {
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

/* An invariant that reads a probe needs a workload that has it. */
static int check_probe(struct sc_ctx *ctx, struct scenario *sc, struct sc_invariant *inv)
{
	const char *probe = inv->def->probe_for ? inv->def->probe_for(inv->params) : NULL;
	int idx = inv->workload_idx;

	if (!probe)
		probe = inv->def->needs_probe;
	if (!probe)
		return 0;

	if (idx >= 0 && !scenario_wl_has_probe(&sc->wl[idx], probe)) {
		jpath_push_key(&ctx->path, "workload");
		sc_error(ctx, false, "%s needs \"%s\" in workloads[%d].probes", inv->name,
			 probe, idx);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	for (size_t w = 0; idx < 0 && w < sc->n_wl; w++)
		if (sc->wl[w].name && scenario_wl_has_probe(&sc->wl[w], probe))
			return 0;
	if (idx < 0) {
		jpath_push_key(&ctx->path, "name");
		sc_error(ctx, false, "%s needs a workload with \"%s\" in its probes",
			 inv->name, probe);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	return 0;
}

static int parse_invariants(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of invariants, got %s",
			 json_type_name(val));
		return -EINVAL;
	}
	sc->n_inv = json_array_size(val);
	sc->inv = sc_track(ctx, calloc(sc->n_inv + 1, sizeof(*sc->inv)));
	if (!sc->inv)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_invariant *inv = &sc->inv[i];
		const struct inv_def *def;
		char known[256];
		json_t *jname;
		int e = 0;

		jpath_push_idx(&ctx->path, i);
		inv->workload_idx = -1;
		jname = json_is_object(item) ? json_object_get(item, "name") : NULL;
		if (!json_is_object(item)) {
			sc_error(ctx, false, "expected an object, got %s", json_type_name(item));
			e = -EINVAL;
			goto next;
		}
		if (!jname) {
			sc_error(ctx, false, "missing required key \"name\"");
			e = -EINVAL;
			goto next;
		}
		jpath_push_key(&ctx->path, "name");
		def = json_is_string(jname) ? inv_lookup(json_string_value(jname)) : NULL;
		inv_names(known, sizeof(known), true);
		if (!json_is_string(jname)) {
			sc_error(ctx, false, "expected a string, got %s", json_type_name(jname));
			e = -EINVAL;
		} else if (!def) {
			sc_error(ctx, false, "unknown invariant '%s' (known: %s)",
				 json_string_value(jname), known);
			e = -EINVAL;
		} else if (!def->available) {
			sc_error(ctx, false, "invariant '%s' is not supported by this build yet "
				 "(supported: %s)", def->name, known);
			e = -EINVAL;
		}
		jpath_pop(&ctx->path);
		if (e)
			goto next;
		inv->def = def;
		inv->params = sc_track(ctx, calloc(1, def->params_size ? def->params_size : 1));
		if (!inv->params) {
			e = -ENOMEM;
			goto next;
		}
		/* The parameter struct of every invariant starts with the
		 * common keys (name, workload). */
		e = sc_parse_object(ctx, item, def->keys, inv->params);
		if (e)
			goto next;
		inv->name = def->name;
		inv->workload = *(const char **)((char *)inv->params + sizeof(const char *));
		if (inv->workload) {
			inv->workload_idx = scenario_workload_idx(sc, inv->workload);
			if (inv->workload_idx < 0) {
				jpath_push_key(&ctx->path, "workload");
				sc_error(ctx, false, "no workload named '%s'", inv->workload);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
		}
		if (!e)
			e = check_probe(ctx, sc, inv);
next:
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

#define LK(f) offsetof(struct sc_link, f)
static const char *const link_types[] = {"veth", "tap", NULL};
static const char *const offload_modes[] = {"auto", "on", "off", NULL};
static const struct sc_key link_keys[] = {
	{"name", SC_STR, SC_REQ, LK(name), .doc = "link name"},
	{"type", SC_ENUM, SC_REQ, LK(type), .choices = link_types, .doc = "veth or tap"},
	{"a", SC_STR, SC_REQ, LK(a), .doc = "namespace of end a (a tap's kernel side)"},
	{"b", SC_STR, 0, LK(b), .doc = "namespace of end b (veth only)"},
	{"a_addr", SC_STR, 0, LK(a_addr), .doc = "address/prefix of end a"},
	{"b_addr", SC_STR, 0, LK(b_addr), .doc = "address/prefix of end b"},
	{"offloads", SC_ENUM, 0, LK(offloads), .choices = offload_modes, .def = "\"auto\"",
	 .doc = "TSO/GSO/GRO of a veth's ends: auto is off where a dpdk-client "
		"attaches (it takes no frame over the MTU), else on"},
	{NULL},
};

static bool valid_cidr(const char *s)
{
	unsigned a, b, c, d, len;
	char extra;

	return sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &extra) == 5 &&
	       a < 256 && b < 256 && c < 256 && d < 256 && len >= 1 && len <= 30;
}

static int parse_topo_links(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of links, got %s", json_type_name(val));
		return -EINVAL;
	}
	if (json_array_size(val) > SC_MAX_LINKS) {
		sc_error(ctx, false, "at most %d links", SC_MAX_LINKS);
		return -EINVAL;
	}
	sc->n_links = json_array_size(val);
	sc->links = sc_track(ctx, calloc(sc->n_links + 1, sizeof(*sc->links)));
	if (!sc->links)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_link *l = &sc->links[i];
		int e;

		jpath_push_idx(&ctx->path, i);
		l->b_ns = -1;
		e = sc_parse_object(ctx, item, link_keys, l);
		if (!e && l->type == SC_LINK_VETH && !l->b) {
			sc_error(ctx, false, "missing required key \"b\" (a veth joins two "
				 "namespaces)");
			e = -EINVAL;
		}
		if (!e && l->type == SC_LINK_TAP && l->b) {
			jpath_push_key(&ctx->path, "b");
			sc_error(ctx, true, "a tap has one end in a namespace; its other end is "
				 "the workload's own stack (give its address as b_addr)");
			jpath_pop(&ctx->path);
			e = -EINVAL;
		}
		for (int end = 0; !e && end < 2; end++) {
			const char *ns = end ? l->b : l->a, *addr = end ? l->b_addr : l->a_addr;
			int idx = ns ? scenario_ns_idx(sc, ns) : -1;

			if (ns && idx < 0) {
				jpath_push_key(&ctx->path, end ? "b" : "a");
				sc_error(ctx, false, "namespace '%s' is not declared in "
					 "topology.namespaces", ns);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			if (addr && !valid_cidr(addr)) {
				jpath_push_key(&ctx->path, end ? "b_addr" : "a_addr");
				sc_error(ctx, false, "'%s' is not an IPv4 address/prefix "
					 "(e.g. 198.18.0.1/24)", addr);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			*(end ? &l->b_ns : &l->a_ns) = idx;
		}
		if (!e && l->type == SC_LINK_VETH && l->a_ns == l->b_ns) {
			sc_error(ctx, false, "a link joins two different namespaces");
			e = -EINVAL;
		}
		for (size_t j = 0; !e && j < i; j++) {
			if (!strcmp(sc->links[j].name, l->name)) {
				jpath_push_key(&ctx->path, "name");
				sc_error(ctx, false, "duplicate link name '%s'", l->name);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

static int parse_namespaces(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	int err = parse_strv(ctx, val, &sc->namespaces);

	if (err)
		return err;
	while (sc->namespaces[sc->n_ns])
		sc->n_ns++;
	for (size_t i = 0; i < sc->n_ns; i++) {
		jpath_push_idx(&ctx->path, i);
		if (!valid_name(sc->namespaces[i])) {
			sc_error(ctx, false, "'%s' is not a valid name", sc->namespaces[i]);
			err = -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(sc->namespaces[i], sc->namespaces[j])) {
				sc_error(ctx, false, "duplicate namespace '%s'", sc->namespaces[i]);
				err = -EINVAL;
			}
		jpath_pop(&ctx->path);
	}
	return err;
}

static bool valid_ip(const char *s)
{
	unsigned a, b, c, d;
	char extra;

	return sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a < 256 && b < 256 &&
	       c < 256 && d < 256;
}

#define BR(f) offsetof(struct sc_bridge, f)
static const struct sc_key bridge_keys[] = {
	{"name", SC_STR, SC_REQ, BR(name), .doc = "bridge name"},
	{"ns", SC_STR, SC_REQ, BR(ns), .doc = "the namespace it lives in"},
	{"ports", SC_STRV, SC_REQ, BR(ports), .doc = "links whose end in ns joins it"},
	{"addr", SC_STR, 0, BR(addr), .doc = "address/prefix on the bridge"},
	{NULL},
};

static int check_bridge(struct sc_ctx *ctx, struct scenario *sc, struct sc_bridge *br)
{
	int err = 0;

	br->ns_idx = scenario_ns_idx(sc, br->ns);
	if (br->ns_idx < 0) {
		jpath_push_key(&ctx->path, "ns");
		sc_error(ctx, false, "namespace '%s' is not declared in topology.namespaces",
			 br->ns);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	if (br->addr && !valid_cidr(br->addr)) {
		jpath_push_key(&ctx->path, "addr");
		sc_error(ctx, false, "'%s' is not an IPv4 address/prefix", br->addr);
		jpath_pop(&ctx->path);
		err = -EINVAL;
	}
	jpath_push_key(&ctx->path, "ports");
	for (size_t p = 0; br->ports[p]; p++) {
		int l = scenario_link_idx(sc, br->ports[p]);

		jpath_push_idx(&ctx->path, p);
		if (p >= SC_MAX_PORTS) {
			sc_error(ctx, false, "at most %d ports", SC_MAX_PORTS);
			err = -EINVAL;
		} else if (l < 0) {
			sc_error(ctx, false, "no link named '%s' in topology.links", br->ports[p]);
			err = -EINVAL;
		} else if (sc->links[l].a_ns != br->ns_idx && sc->links[l].b_ns != br->ns_idx) {
			sc_error(ctx, false, "link '%s' has no end in namespace '%s'", br->ports[p],
				 br->ns);
			err = -EINVAL;
		} else {
			br->port_link[p] = l;
			br->port_b[p] = sc->links[l].a_ns != br->ns_idx;
			br->n_ports = p + 1;
		}
		jpath_pop(&ctx->path);
	}
	jpath_pop(&ctx->path);
	return err;
}

static int parse_bridges(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of bridges, got %s", json_type_name(val));
		return -EINVAL;
	}
	sc->n_bridges = json_array_size(val);
	sc->bridges = sc_track(ctx, calloc(sc->n_bridges + 1, sizeof(*sc->bridges)));
	if (!sc->bridges)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		int e;

		jpath_push_idx(&ctx->path, i);
		e = sc_parse_object(ctx, item, bridge_keys, &sc->bridges[i]);
		if (!e)
			e = check_bridge(ctx, sc, &sc->bridges[i]);
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

#define RT(f) offsetof(struct sc_route, f)
static const struct sc_key route_keys[] = {
	{"ns", SC_STR, SC_REQ, RT(ns), .doc = "the namespace whose table gets it"},
	{"dst", SC_STR, SC_REQ, RT(dst), .doc = "A.B.C.D/LEN or default"},
	{"via", SC_STR, SC_REQ, RT(via), .doc = "the gateway"},
	{NULL},
};

static int parse_routes(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of routes, got %s", json_type_name(val));
		return -EINVAL;
	}
	sc->n_routes = json_array_size(val);
	sc->routes = sc_track(ctx, calloc(sc->n_routes + 1, sizeof(*sc->routes)));
	if (!sc->routes)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_route *rt = &sc->routes[i];
		int e;

		jpath_push_idx(&ctx->path, i);
		e = sc_parse_object(ctx, item, route_keys, rt);
		if (!e && (rt->ns_idx = scenario_ns_idx(sc, rt->ns)) < 0) {
			jpath_push_key(&ctx->path, "ns");
			sc_error(ctx, false, "namespace '%s' is not declared in "
				 "topology.namespaces", rt->ns);
			jpath_pop(&ctx->path);
			e = -EINVAL;
		}
		if (!e && strcmp(rt->dst, "default") && !valid_cidr(rt->dst)) {
			jpath_push_key(&ctx->path, "dst");
			sc_error(ctx, false, "'%s' is not A.B.C.D/LEN or \"default\"", rt->dst);
			jpath_pop(&ctx->path);
			e = -EINVAL;
		}
		if (!e && !valid_ip(rt->via)) {
			jpath_push_key(&ctx->path, "via");
			sc_error(ctx, false, "'%s' is not an IPv4 address", rt->via);
			jpath_pop(&ctx->path);
			e = -EINVAL;
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

static int parse_topology(struct sc_ctx *ctx, json_t *val, void *target)
{
	static const struct sc_key topo_keys[] = {
		{"namespaces", SC_CUSTOM, 0, 0, .parse = parse_namespaces,
		 .doc = "namespace names"},
		{"links", SC_CUSTOM, 0, 0, .parse = parse_topo_links,
		 .doc = "veth pairs and taps"},
		{"bridges", SC_CUSTOM, 0, 0, .parse = parse_bridges,
		 .doc = "bridges joining link ends in a namespace"},
		{"routes", SC_CUSTOM, 0, 0, .parse = parse_routes,
		 .doc = "routes inside the namespaces"},
		{NULL},
	};

	/* Keys are parsed in table order, so namespaces are known before
	 * the links that refer to them, whatever the order in the file. */
	return sc_parse_object(ctx, val, topo_keys, target);
}

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
	{"cpus", SC_CUSTOM, 0, 0, .parse = parse_fault_cpus, .def = "[0]",
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
	for (size_t i = 0; i < sc->n_ns; i++)
		if (!strcmp(sc->namespaces[i], name))
			return (int)i;
	return -1;
}

int scenario_link_idx(const struct scenario *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_links; i++)
		if (!strcmp(sc->links[i].name, name))
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

static int parse_faults(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of faults, got %s", json_type_name(val));
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
			sc_error(ctx, false, "expected an object, got %s", json_type_name(item));
		} else if (!type) {
			sc_error(ctx, false, "missing required key \"type\"");
		} else if (!name) {
			jpath_push_key(&ctx->path, "type");
			sc_error(ctx, false, "expected a string, got %s", json_type_name(type));
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

#define SC(f) offsetof(struct scenario, f)
static const struct sc_key scenario_keys[] = {
	{"version", SC_INT, 0, SC(version), 1, 1, .def = "1", .doc = "format version"},
	{"name", SC_STR, SC_REQ, SC(name), .doc = "scenario name"},
	{"description", SC_STR, 0, SC(description), .doc = "free text"},
	{"seed", SC_INT, 0, SC(seed), 0, 9007199254740991.0, .doc = "replays random choices"},
	{"duration_s", SC_NUM, 0, SC(duration_s), 0.001, 604800, .def = "60",
	 .doc = "the run ends after this long"},
	{"sample_ms", SC_INT, 0, SC(sample_ms), 10, 3600000, .def = "1000",
	 .doc = "a cycle when no fault makes cycles"},
	{"expect", SC_ENUM, 0, SC(expect), .choices = expect_names, .def = "\"PASS\"",
	 .doc = "the verdict a canary scenario must give"},
	{"topology", SC_CUSTOM, 0, 0, .parse = parse_topology},
	{"workloads", SC_CUSTOM, SC_REQ, 0, .parse = parse_workloads},
	{"faults", SC_CUSTOM, 0, 0, .parse = parse_faults},	/* after what they name */
	{"invariants", SC_CUSTOM, 0, 0, .parse = parse_invariants},
	{NULL},
};

/* With no "invariants", a run checks that nothing crashed and every workload
 * that ended by itself exited 0. */
static int default_invariants(struct sc_ctx *ctx, struct scenario *sc)
{
	static const char *const names[] = {"no_crash", "exit_ok"};

	sc->inv = sc_track(ctx, calloc(ARRAY_SIZE(names), sizeof(*sc->inv)));
	if (!sc->inv)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct sc_invariant *inv = &sc->inv[i];
		json_t *obj = json_pack("{ss}", "name", names[i]);
		int err;

		inv->def = inv_lookup(names[i]);
		inv->name = inv->def->name;
		inv->workload_idx = -1;
		inv->params = sc_track(ctx, calloc(1, inv->def->params_size));
		if (!obj || !inv->params) {
			json_decref(obj);
			return -ENOMEM;
		}
		json_array_append_new(json_object_get(sc->root, "defaults"), obj);
		err = sc_parse_object(ctx, obj, inv->def->keys, inv->params);
		if (err)
			return err;
	}
	sc->n_inv = ARRAY_SIZE(names);
	return 0;
}

int scenario_parse(const char *path, const char *text, size_t len,
		   struct scenario **out, char **errors)
{
	struct sc_ctx ctx = {0};
	struct scenario *sc;
	json_error_t jerr;
	json_t *doc;
	int err = 0;

	*out = NULL;
	*errors = NULL;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	ctx.sc = sc;
	sc->path = strdup(path);
	sc->text = malloc(len + 1);
	if (!sc->path || !sc->text) {
		err = -ENOMEM;
		goto err_free;
	}
	memcpy(sc->text, text, len);
	sc->text[len] = '\0';
	sc->text_len = len;
	util_sha256_hex(text, len, sc->sha256);

	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (asprintf(&ctx.errors, "%s:%d:%d: (json): %s\n", path,
			     jerr.line > 0 ? jerr.line : 1,
			     jerr.column > 0 ? jerr.column : 1, jerr.text) < 0)
			ctx.errors = NULL;
		err = -EINVAL;
		goto err_free;
	}
	/* Keep parsed values and table defaults alive as long as the
	 * scenario: every string in it points into this tree. */
	sc->root = json_pack("{sos[]}", "doc", doc, "defaults");
	if (!sc->root) {
		err = -ENOMEM;
		goto err_free;
	}
	err = sc_parse_object(&ctx, doc, scenario_keys, sc);
	if (!err && !json_object_get(doc, "invariants"))
		err = default_invariants(&ctx, sc);
	sc->seed_set = json_object_get(doc, "seed") != NULL;
	if (ctx.oom)
		err = -ENOMEM;
	else if (ctx.n_errors)
		err = -EINVAL;
	if (err)
		goto err_free;
	*out = sc;
	return 0;
err_free:
	if (ctx.n_errors > SC_MAX_ERRORS) {
		char *more = NULL;

		if (asprintf(&more, "%s%s: ... and %d more errors\n",
			     ctx.errors ? ctx.errors : "", path,
			     ctx.n_errors - SC_MAX_ERRORS) >= 0) {
			free(ctx.errors);
			ctx.errors = more;
		}
	}
	*errors = ctx.errors;
	scenario_free(sc);
	return err;
}

int scenario_load(const char *path, struct scenario **out, char **errors)
{
	char *text = NULL;
	size_t len = 0;
	int err;

	*out = NULL;
	*errors = NULL;
	err = util_read_file(path, SC_MAX_FILE, &text, &len);
	if (err) {
		if (asprintf(errors, "%s:1:1: (file): cannot read: %s\n", path,
			     err == -EFBIG ? "larger than 1 MiB" : strerror(-err)) < 0)
			*errors = NULL;
		return err;
	}
	err = scenario_parse(path, text, len, out, errors);
	free(text);
	return err;
}

void scenario_free(struct scenario *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n_allocs; i++)
		free(sc->allocs[i]);
	free(sc->allocs);
	json_decref(sc->root);
	free(sc->text);
	free(sc->path);
	free(sc);
}

int scenario_workload_idx(const struct scenario *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_wl; i++)
		if (sc->wl[i].name && strcmp(sc->wl[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *scenario_kind_name(int kind)
{
	return kind >= 0 && kind < (int)ARRAY_SIZE(kind_names) - 1 ? kind_names[kind] : "?";
}

const char *scenario_expect_name(int expect)
{
	return expect >= 0 && expect < (int)ARRAY_SIZE(expect_names) - 1
	       ? expect_names[expect] : "?";
}
