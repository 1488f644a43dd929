/* A scenario file, parsed and validated: the top-level keys, reading the
 * file, freeing what parsing made, and the lookups the run uses. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

static const char *const expect_names[] = {"PASS", "FAIL", "INCONCLUSIVE", NULL};

/* The file's top level: each section's key has the parser of its own file
 * (sc_workloads.c, sc_topology.c, sc_faults.c, sc_invariants.c). */
#define SC(f) offsetof(struct scenario, f)

/* "$schema" is how editors attach a JSON Schema to a file: a string, and
 * nothing faultd acts on. */
static int parse_schema_ref(struct sc_ctx *ctx, json_t *val, void *target)
{
	(void)target;
	if (json_is_string(val))
		return 0;
	sc_error(ctx, false, "expected a string (a JSON Schema's URI), got %s",
		 sc_json_type_name(val));
	return -EINVAL;
}

static const struct sc_key scenario_keys[] = {
	{"$schema", SC_CUSTOM, 0, 0, .parse = parse_schema_ref,
	 .doc = "the file's JSON Schema, for editors; ignored"},
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
	{"suppressions", SC_CUSTOM, 0, 0, .parse = sc_parse_suppressions,
	 .doc = "suppression file for the heap and fd invariants"},
	{"topology", SC_CUSTOM, 0, 0, .parse = sc_parse_topology},
	{"workloads", SC_CUSTOM, SC_REQ, 0, .parse = sc_parse_workloads},
	{"faults", SC_CUSTOM, 0, 0, .parse = sc_parse_faults},	/* after what they name */
	{"schedule", SC_CUSTOM, 0, 0, .parse = sc_parse_schedule},	/* after the faults */
	{"invariants", SC_CUSTOM, 0, 0, .parse = sc_parse_invariants},
	{NULL},
};

/* With no "invariants", a run checks that nothing crashed and every workload
 * that ended by itself exited 0. */
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
		err = sc_default_invariants(&ctx, sc);
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

const char *scenario_expect_name(int expect)
{
	return expect >= 0 && expect < (int)ARRAY_SIZE(expect_names) - 1
	       ? expect_names[expect] : "?";
}
