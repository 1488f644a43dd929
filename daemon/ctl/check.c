/* The check is a run like any other, of a scenario that asks for every
 * probe and every fault mechanism at once: what loads, attaches and sets up
 * there is what a user's run gets, by the same code. Its verdict does not
 * matter; the capability table it fills in does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "caps.h"
#include "check.h"
#include "log.h"
#include "scenario.h"
#include "util.h"

/* A sleep (the C library for the heap probe, fds to count, no
 * USDT probes: the lifecycle probe loads but finds none) in namespace a,
 * behind a veth with every link fault on it and a tap beside it. */
static const char check_scenario[] =
	"{\"name\": \"faultd-check\", \"duration_s\": 1.5, \"sample_ms\": 500,\n"
	" \"topology\": {\"namespaces\": [\"a\", \"b\"],\n"
	"   \"links\": [{\"name\": \"l0\", \"type\": \"veth\", \"a\": \"a\", \"b\": \"b\",\n"
	"              \"a_addr\": \"198.18.0.1/30\", \"b_addr\": \"198.18.0.2/30\"},\n"
	"             {\"name\": \"t0\", \"type\": \"tap\", \"a\": \"b\"}]},\n"
	" \"workloads\": [{\"name\": \"w\", \"kind\": \"exec\", \"netns\": \"a\",\n"
	"   \"probes\": [\"heap\", \"fds\", \"lifecycle\"],\n"
	"   \"cmd\": [\"/bin/sleep\", \"10\"]}],\n"
	" \"faults\": [\n"
	"   {\"type\": \"packet\", \"link\": \"l0\", \"drop_pct\": 1, \"direction\": \"egress\"},\n"
	"   {\"type\": \"delay\", \"link\": \"l0\", \"delay_ms\": 1, \"direction\": \"egress\"},\n"
	"   {\"type\": \"rate\", \"link\": \"l0\", \"rate_kbit\": 100000, \"direction\": \"ingress\"},\n"
	"   {\"type\": \"syscall_error\", \"workload\": \"w\", \"syscall\": \"socket\",\n"
	"    \"errno\": \"ENFILE\", \"pct\": 1},\n"
	"   {\"type\": \"syscall_error\", \"workload\": \"w\", \"syscall\": \"io_uring_setup\",\n"
	"    \"errno\": \"EPERM\"}],\n"
	" \"invariants\": [{\"name\": \"no_crash\"}]}\n";

struct check_ctx {
	struct event_base *base;
	json_t *report;
};

static void on_done(struct run *r, const json_t *report, void *arg)
{
	struct check_ctx *c = arg;

	(void)r;
	c->report = report ? json_incref((json_t *)report) : NULL;
	event_base_loopbreak(c->base);
}

int check__run(struct event_base *base, const struct run_opts *opts, json_t **caps_out)
{
	char dir[] = "/tmp/faultd-check-XXXXXX", *errors = NULL;
	struct check_ctx ctx = {.base = base};
	struct run_opts ro = *opts;
	struct run_paths paths;
	struct scenario *sc = NULL;
	struct run *r;
	int err;

	*caps_out = NULL;
	if (!mkdtemp(dir))
		return -errno;
	err = scenario_parse("<faultd check>", check_scenario, sizeof(check_scenario) - 1,
			     &sc, &errors);
	if (err) {
		log_err("%s: the built-in scenario: %s", __func__, errors ? errors : strerror(-err));
		goto out_dir;
	}
	paths = *opts->paths;
	snprintf(paths.runs_dir, sizeof(paths.runs_dir), "%s", dir);
	ro.paths = &paths;
	ro.on_cycle = NULL;
	ro.on_done = on_done;
	ro.arg = &ctx;
	r = run__new(base, sc, &ro);
	if (!r) {
		err = -errno;
		scenario_free(sc);
		goto out_dir;
	}
	run__start(r);
	event_base_dispatch(base);
	if (ctx.report && json_string_value(json_object_get(ctx.report, "error")))
		log_info("%s: the check run: %s", __func__,
			 json_string_value(json_object_get(ctx.report, "error")));
	run__free(r);
	json_decref(ctx.report);
	*caps_out = caps_json(true);
	err = 0;
	for (int i = 0; i < CAPS__MAX; i++)
		if (caps_core((enum caps_id)i) && caps_state((enum caps_id)i) != CAPS_OK)
			err = -ENOTSUP;
out_dir:
	free(errors);
	util_rm_tree(dir);
	return err;
}

void check_print(FILE *f, const json_t *caps)
{
	const char *name, *state, *via, *why;
	int core_missing = 0, missing = 0, untried = 0;
	struct utsname uts;
	json_t *row;

	uname(&uts);
	fprintf(f, "faultd check on Linux %s (%s)\n\n", uts.release, uts.machine);
	fprintf(f, "%-17s %-8s %s\n", "FEATURE", "STATE", "HOW, OR WHY NOT");
	json_object_foreach((json_t *)caps, name, row) {
		bool core = json_is_true(json_object_get(row, "core"));
		char label[32];

		state = json_string_value(json_object_get(row, "state")) ?: "?";
		via = json_string_value(json_object_get(row, "via")) ?: "";
		why = json_string_value(json_object_get(row, "why"));
		snprintf(label, sizeof(label), "%s%s", name, core ? " (core)" : "");
		fprintf(f, "%-17s %-8s %s\n", label, state, why ? why : via);
		if (strcmp(state, "ok"))
			fprintf(f, "%-17s %-8s needs %s\n", "", "", caps_needs(caps_lookup(name)));
		untried += !strcmp(state, "untried");
		if (!strcmp(state, "missing")) {
			missing++;
			core_missing += core;
		}
	}
	if (core_missing)
		fprintf(f, "\ncheck: %d core feature%s missing: runs here give no verdicts\n",
			core_missing, core_missing == 1 ? "" : "s");
	else if (missing)
		fprintf(f, "\ncheck: core features work; %d optional feature%s missing: invariants "
			"that need %s are INCONCLUSIVE here\n", missing, missing == 1 ? "" : "s",
			missing == 1 ? "it" : "them");
	else if (untried)
		fprintf(f, "\ncheck: core features work; %d feature%s could not be tried\n",
			untried, untried == 1 ? "" : "s");
	else
		fprintf(f, "\ncheck: every feature works\n");
}
