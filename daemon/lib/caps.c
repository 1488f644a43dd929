/* The feature table: one row per feature, with what gives it; the state is
 * filled in by the probes and fault mechanisms as they are first tried. */
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "caps.h"
#include "log.h"

struct caps_def {
	const char *name;
	bool core;
	const char *needs;	/* what kernel or package gives it */
};

static const struct caps_def caps_defs[CAPS__MAX] = {
	[CAPS_CGROUP] = {"cgroup", true,
		"cgroup v2 mounted (found in /proc/self/mountinfo) and writable; under "
		"systemd, Delegate=yes"},
	[CAPS_PROC] = {"proc", true,
		"BTF (CONFIG_DEBUG_INFO_BTF), tp_btf programs and BPF ring buffers: Linux 5.8"},
	[CAPS_CRASH_STACK] = {"crash_stack", false,
		"tp_btf/signal_deliver with bpf_get_current_task_btf and bpf_task_pt_regs: "
		"Linux 5.15"},
	[CAPS_HEAP] = {"heap", false,
		"uprobes (CONFIG_UPROBE_EVENTS), task storage for tracing programs (5.11) "
		"and bpf_find_vma (5.17): Linux 5.17"},
	[CAPS_FDS] = {"fds", false,
		"iter/task_file programs limited to one process: Linux 6.1"},
	[CAPS_FD_CALLS] = {"fd_calls", false, "tp_btf/sys_exit: Linux 5.5 with BTF"},
	[CAPS_LIFECYCLE] = {"lifecycle", false,
		"uprobes (USDT probes are uprobes on their nop), BPF ring buffers and "
		"BPF cookies: Linux 5.15"},
	[CAPS_NETNS] = {"netns", false, "network namespaces and the veth driver (module veth)"},
	[CAPS_TAP] = {"tap", false, "/dev/net/tun (module tun)"},
	[CAPS_PACKET] = {"packet", false,
		"tc BPF programs: tcx links (Linux 6.6) or a clsact qdisc with cls_bpf "
		"(modules sch_ingress, cls_bpf)"},
	[CAPS_DELAY] = {"delay", false,
		"sch_netem (module sch_netem), or NFQUEUE (modules nfnetlink_queue, "
		"xt_NFQUEUE; packages iptables, libnetfilter-queue1)"},
	[CAPS_RATE] = {"rate", false, "sch_tbf (module sch_tbf)"},
	[CAPS_SYSCALL_SOCKET] = {"syscall_socket", false,
		"cgroup/sock_create programs with bpf_set_retval: Linux 5.18"},
	[CAPS_SYSCALL_SECCOMP] = {"syscall_seccomp", false,
		"seccomp filters (CONFIG_SECCOMP_FILTER)"},
};

struct caps_row {
	enum caps_state state;
	char via[64];
	char why[512];
};

/* Runs write the table from threads of their own (run_loop.c) and the
 * daemon's loop reads it: under caps_lock. A row's why is written once,
 * when it goes missing, so the string caps_why hands out does not change
 * under its reader. */
static struct caps_row caps_rows[CAPS__MAX];
static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;

const char *caps_name(enum caps_id id)
{
	return id < CAPS__MAX ? caps_defs[id].name : "?";
}

int caps_lookup(const char *name)
{
	int found = -1;

	for (int i = 0; name && i < CAPS__MAX && found < 0; i++)
		if (!strcmp(caps_defs[i].name, name))
			found = i;
	return found;
}

bool caps_core(enum caps_id id)
{
	return id < CAPS__MAX && caps_defs[id].core;
}

const char *caps_needs(enum caps_id id)
{
	return id < CAPS__MAX ? caps_defs[id].needs : "";
}

enum caps_state caps_state(enum caps_id id)
{
	enum caps_state st = CAPS_MISSING;

	if (id < CAPS__MAX) {
		pthread_mutex_lock(&caps_lock);
		st = caps_rows[id].state;
		pthread_mutex_unlock(&caps_lock);
	}
	return st;
}

void caps_set_ok(enum caps_id id, const char *via)
{
	if (id >= CAPS__MAX)
		return;
	pthread_mutex_lock(&caps_lock);
	if (caps_rows[id].state != CAPS_MISSING) {
		caps_rows[id].state = CAPS_OK;
		if (via)
			snprintf(caps_rows[id].via, sizeof(caps_rows[id].via), "%s", via);
	}
	pthread_mutex_unlock(&caps_lock);
}

void caps_set_missing(enum caps_id id, const char *fmt, ...)
{
	struct caps_row *row;
	va_list ap;

	if (id >= CAPS__MAX)
		return;
	pthread_mutex_lock(&caps_lock);
	row = &caps_rows[id];
	if (row->state == CAPS_MISSING) {
		pthread_mutex_unlock(&caps_lock);
		return;
	}
	row->state = CAPS_MISSING;
	row->via[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(row->why, sizeof(row->why), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&caps_lock);
	log_warn("%s: %s%s is missing on this host: %s (needs %s)", __func__,
		 caps_defs[id].core ? "core feature " : "", caps_defs[id].name, row->why,
		 caps_defs[id].needs);
}

const char *caps_why(enum caps_id id)
{
	return id < CAPS__MAX ? caps_rows[id].why : "";
}

bool caps_has_via(enum caps_id id)
{
	bool has = false;

	if (id < CAPS__MAX) {
		pthread_mutex_lock(&caps_lock);
		has = caps_rows[id].via[0] != '\0';
		pthread_mutex_unlock(&caps_lock);
	}
	return has;
}

const char *caps_via(enum caps_id id)
{
	return id < CAPS__MAX ? caps_rows[id].via : "";
}

json_t *caps_json(bool all)
{
	static const char *const states[] = {"untried", "ok", "missing"};
	json_t *o = json_object(), *row;

	pthread_mutex_lock(&caps_lock);
	for (int i = 0; o && i < CAPS__MAX; i++) {
		const struct caps_row *c = &caps_rows[i];

		if (!all && c->state == CAPS_UNKNOWN)
			continue;
		row = json_pack("{sssb}", "state", states[c->state], "core", caps_defs[i].core);
		if (row && c->via[0])
			json_object_set_new(row, "via", json_string(c->via));
		if (row && c->state == CAPS_MISSING) {
			json_object_set_new(row, "why", json_string(c->why));
			json_object_set_new(row, "needs", json_string(caps_defs[i].needs));
		}
		if (!row || json_object_set_new(o, caps_defs[i].name, row)) {
			json_decref(o);
			o = NULL;
		}
	}
	pthread_mutex_unlock(&caps_lock);
	return o;
}

void caps_reset(void)
{
	pthread_mutex_lock(&caps_lock);
	memset(caps_rows, 0, sizeof(caps_rows));
	pthread_mutex_unlock(&caps_lock);
}
