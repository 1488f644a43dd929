/* The fault families, one row each, and the run's calls over all of them.
 * A new family is a file (fault_<name>.c) and a row here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fault_family.h"
#include "log.h"
#include "util.h"

extern const struct fault_family fault_link, fault_process, fault_packet, fault_syscall,
	fault_rate, fault_delay, fault_cpu;

const struct fault_family *const fault_families[] = {
	&fault_link, &fault_process, &fault_packet, &fault_syscall, &fault_rate, &fault_delay,
	&fault_cpu, NULL,
};

const char *const fault_directions[] = {"both", "ingress", "egress", NULL};

const struct fault_type *fault_type_lookup(const char *name)
{
	const struct fault_type *found = NULL;

	for (size_t i = 0; name && !found && fault_families[i]; i++)
		for (const struct fault_type *t = fault_families[i]->types; !found && t->name; t++)
			if (!strcmp(t->name, name))
				found = t;
	return found;
}

void fault_type_names(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; fault_families[i] && off < len; i++)
		for (const struct fault_type *t = fault_families[i]->types; t->name && off < len; t++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						t->name);
}

void **fault_state(struct fault_env *env, const struct fault_family *fam)
{
	size_t i;

	for (i = 0; fault_families[i] && fault_families[i] != fam; i++)
		;
	return &env->state[i];
}

int fault_families_attach(struct fault_env *env)
{
	int err = 0;

	for (size_t i = 0; !err && fault_families[i]; i++)
		if (fault_families[i]->attach) {
			err = fault_families[i]->attach(env);
			if (err)
				log_err("%s: run %s: %s faults: %s", __func__, env->run_id,
					fault_families[i]->name, strerror(-err));
		}
	return err;
}

int fault_families_workload(struct fault_env *env, size_t wl, struct sock_fprog *seccomp)
{
	int err = 0;

	for (size_t i = 0; !err && fault_families[i]; i++)
		if (fault_families[i]->workload)
			err = fault_families[i]->workload(env, wl, seccomp);
	return err;
}

int fault_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	const struct fault_family *fam = a->family;

	if (!fam || !fam->fire || a->act < 0 || a->act >= fam->n_acts) {
		log_err("%s: run %s: action %d of %s has no handler", __func__, env->run_id,
			a->act, fam ? fam->name : "no family");
		return -ENOSYS;
	}
	return fam->fire(env, a, now_ms);
}

void fault_families_end(struct fault_env *env)
{
	for (size_t i = 0; fault_families[i]; i++)
		if (fault_families[i]->end)
			fault_families[i]->end(env);
}

void fault_families_stats(struct fault_env *env, struct fault_stats *out)
{
	for (size_t i = 0; fault_families[i]; i++)
		if (fault_families[i]->stats)
			fault_families[i]->stats(env, out);
}

void fault_families_detach(struct fault_env *env)
{
	for (size_t i = 0; fault_families[i]; i++)
		if (fault_families[i]->detach)
			fault_families[i]->detach(env);
}

/* @parent[@key], made an object if it is not there. */
static json_t *child_object(json_t *parent, const char *key)
{
	json_t *o = parent ? json_object_get(parent, key) : NULL;

	if (!o && parent) {
		o = json_object();
		if (o && json_object_set_new(parent, key, o))
			o = NULL;
	}
	return o;
}

json_t *fault_stats_link(struct fault_stats *out, const char *link, const char *dir)
{
	if (!out->links)
		out->links = json_object();
	return child_object(child_object(out->links, link), dir);
}

json_t *fault_stats_workload(struct fault_stats *out, const char *wl)
{
	if (!out->workloads)
		out->workloads = json_object();
	return child_object(out->workloads, wl);
}
