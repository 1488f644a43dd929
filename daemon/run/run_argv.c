/* A workload's command line and environment: its own `cmd`, or the bundled
 * workload's binary with the options its scenario block implies (its link's
 * interface and addresses, the DPDK prefix), plus FAULTD_* variables. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_priv.h"
#include "topo.h"
#include "util.h"

/* The file exec will run, as execvp finds it: USDT probes attach to it. */
static void resolve_exe(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	snprintf(out, len, "%s", name);
	if (strchr(name, '/') || !path)
		goto out_real;
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
		if (access(buf, X_OK) == 0) {
			snprintf(out, len, "%s", buf);
			break;
		}
		path += n + (path[n] == ':');
	}
out_real:
	if (realpath(out, buf))
		snprintf(out, len, "%s", buf);
}

int run_argv_build(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	char harness_path[PATH_MAX + 64];
	size_t n = 0, k = 0;

	if (w->kind == WL_EXEC) {
		while (w->cmd[n])
			n++;
		rw->argv = calloc(n + 1, sizeof(*rw->argv));
		if (!rw->argv)
			return -ENOMEM;
		memcpy(rw->argv, w->cmd, n * sizeof(*rw->argv));
		resolve_exe(rw->argv[0], rw->exe, sizeof(rw->exe));
		return 0;
	}
	while (w->args && w->args[n])
		n++;
	rw->argv = calloc(n + 8, sizeof(*rw->argv));
	if (!rw->argv)
		return -ENOMEM;
	snprintf(harness_path, sizeof(harness_path), "%s/%s", r->paths.harness_dir,
		 scenario_kind_name(w->kind));
	/* The ASan build sits in the sanitized build tree beside ours
	 * (build/harness -> build/san-address/harness), or is ours already. */
	if (w->asan && !strstr(r->paths.harness_dir, "/san-address/"))
		snprintf(harness_path, sizeof(harness_path), "%s/../san-address/harness/%s",
			 r->paths.harness_dir, scenario_kind_name(w->kind));
	if (access(harness_path, X_OK) < 0) {
		run_error(r, "workload '%s': %s: %s%s", w->name, harness_path, strerror(errno),
			  w->asan ? " (build it: make SANITIZER=address harness)" : "");
		return -ENOENT;
	}
	rw->argv[k++] = strdup(harness_path);
	if (!rw->argv[0])
		return -ENOMEM;
	resolve_exe(harness_path, rw->exe, sizeof(rw->exe));
	/* A user-space stack is told its tap and its address; the strings
	 * live as long as the topology. */
	if (w->link_idx >= 0) {
		snprintf(rw->link_ifname, sizeof(rw->link_ifname), "%s",
			 topo__link_kernel_name(r->topo, w->link_idx));
		snprintf(rw->link_addr, sizeof(rw->link_addr), "%s",
			 topo__link_addr(r->topo, w->link_idx, true));
	}
	if (w->kind == WL_LWIP_CLIENT) {
		rw->argv[k++] = "--tap";
		rw->argv[k++] = rw->link_ifname;
		rw->argv[k++] = "--addr";
		rw->argv[k++] = rw->link_addr;
	}
	/* DPDK: its port on the link's a end, and an EAL prefix of the run's,
	 * which the undo journal names so a killed run's runtime dir goes. */
	if (w->kind == WL_DPDK_CLIENT) {
		rw->argv[k++] = "--iface";
		rw->argv[k++] = rw->link_ifname;
		rw->argv[k++] = "--file-prefix";
		rw->argv[k++] = rw->dpdk_prefix;
	}
	for (size_t j = 0; j < n; j++)
		rw->argv[k++] = w->args[j];
	return 0;
}

int run_env_build(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	const char *fixed[3][2] = {{"FAULTD_RUN_ID", r->id}, {"FAULTD_RUN_DIR", r->dir},
				   {"FAULTD_WORKLOAD", w->name}};
	size_t n = 0;

	while (w->env && w->env[n])
		n++;
	rw->env = calloc(n + 4 + 3 * r->sc->n_links, sizeof(*rw->env));
	if (!rw->env)
		return -ENOMEM;
	/* Each string belongs to rw->env (freed with the run) once made, so
	 * a later failure leaks nothing. */
	for (size_t j = 0; j < 3; j++) {
		char *kv = NULL;

		if (asprintf(&kv, "%s=%s", fixed[j][0], fixed[j][1]) < 0)
			return -ENOMEM;
		rw->env[rw->n_env++] = kv;
	}
	/* Kernel names are made up per run: tell the workload them. */
	for (size_t l = 0; r->topo && l < r->sc->n_links; l++) {
		const char *vals[3] = {topo__link_kernel_name(r->topo, (int)l),
				       topo__link_addr(r->topo, (int)l, false),
				       topo__link_addr(r->topo, (int)l, true)};
		static const char *const suffix[3] = {"A", "A_ADDR", "B_ADDR"};

		for (size_t k = 0; k < 3; k++) {
			char *kv = NULL;

			if (asprintf(&kv, "FAULTD_LINK_%s_%s=%s", r->sc->links[l].name, suffix[k],
				     vals[k]) < 0)
				return -ENOMEM;
			/* Names are [A-Za-z0-9_-]: make them a shell variable's. */
			for (char *c = kv; *c != '='; c++)
				*c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
			rw->env[rw->n_env++] = kv;
		}
	}
	for (size_t j = 0; j < n; j++) {
		rw->env[rw->n_env] = strdup(w->env[j]);
		if (!rw->env[rw->n_env])
			return -ENOMEM;
		rw->n_env++;
	}
	return 0;
}
