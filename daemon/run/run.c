#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cgroup.h"
#include "cpuhog.h"
#include "fault.h"
#include "journal.h"
#include "residue.h"
#include "sanitizer.h"
#include "secfault.h"
#include "sysfault_user.h"
#include "inv.h"
#include "log.h"
#include "probe_proc.h"
#include "report.h"
#include "run.h"
#include "run_priv.h"
#include "supervise.h"
#include "sym.h"
#include "topo.h"
#include "util.h"

uint64_t run_ms(const struct run *r)
{
	return (util_now_ns() - r->t0_ns) / 1000000ull;
}

static void run_error(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void begin_stop(struct run *r, const char *reason);

static void run_error(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->error[0])
		return;	/* the first error is the cause */
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	log_err("%s: run %s: %s", __func__, r->id, r->error);
}

const char *run__state_name(enum run_state s)
{
	static const char *const names[] = {"queued", "starting", "running",
					    "stopping", "done"};

	return s <= RUN_DONE ? names[s] : "?";
}

/* --- process bookkeeping --------------------------------------------------- */

static struct obs_proc *proc_find(struct run *r, pid_t pid)
{
	/* Newest first: a pid reused within a run refers to the live one. */
	for (size_t i = r->obs.n_procs; i-- > 0;)
		if (r->obs.procs[i].pid == pid && !r->obs.procs[i].exited)
			return &r->obs.procs[i];
	return NULL;
}

static struct obs_proc *proc_add(struct run *r, pid_t pid, pid_t ppid, int wl,
				 const char *comm, uint64_t t_ms)
{
	struct obs_proc *p;

	if (r->obs.n_procs == r->cap_procs) {
		size_t cap = r->cap_procs ? r->cap_procs * 2 : 64;
		struct obs_proc *grown = realloc(r->obs.procs, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		r->obs.procs = grown;
		r->cap_procs = cap;
	}
	p = &r->obs.procs[r->obs.n_procs++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	p->workload = wl;
	p->t_start_ms = t_ms;
	snprintf(p->comm, sizeof(p->comm), "%s", comm);
	r->procs_seen++;
	return p;
}

/* Keep evidence bounded in long runs: once more than RUN_MAX_KEPT_PROCS are
 * kept, processes that exited normally and are not a workload's root are
 * dropped (they are still counted in procs_seen). Short runs keep every
 * process, so a crash's ancestry can be shown. */
static void procs_compact(struct run *r)
{
	size_t kept = 0;

	if (r->obs.n_procs <= RUN_MAX_KEPT_PROCS)
		return;
	for (size_t i = 0; i < r->obs.n_procs; i++) {
		struct obs_proc *p = &r->obs.procs[i];

		if (p->exited && !p->signal && p->pid != r->obs.wl[p->workload].pid)
			continue;
		r->obs.procs[kept++] = *p;
	}
	if (kept > RUN_MAX_KEPT_PROCS)
		r->obs.proc_lost += kept - RUN_MAX_KEPT_PROCS;	/* evidence dropped */
	r->obs.n_procs = kept > RUN_MAX_KEPT_PROCS ? RUN_MAX_KEPT_PROCS : kept;
}

static void proc_set_exit(struct run *r, struct obs_proc *p, int status, uint64_t t_ms)
{
	const struct run_wl *rw = &r->rw[p->workload];

	p->exited = true;
	p->t_exit_ms = t_ms;
	util_wait_status(status, &p->exit_status, &p->signal, &p->core);
	/* A death by the signals faultd sends, after it sent them, is faultd's
	 * doing, not a crash. */
	if ((p->signal == SIGTERM || p->signal == SIGKILL) &&
	    (t_ms >= r->stop_at_ms || t_ms >= rw->kill_sent_ms))
		p->by_faultd = true;
}

/* A tracked thread is dying of a signal: its stack, named from the maps
 * snapshot (the process may be gone by the time this runs). */
static void crash_stack(struct run *r, const struct proc_ev *ev, uint64_t t_ms)
{
	char addr[32];
	json_t *c;

	uint64_t frames[PROC_MAX_FRAMES];
	int n = 0;

	if (!r->obs.crashes || json_array_size(r->obs.crashes) >= RUN_MAX_LISTED_CRASHES)
		return;
	/* Frame-pointer unwinding through code built without them (glibc's
	 * abort path) repeats one bogus address: keep it once. */
	for (int i = 0; i < ev->n_frames && i < PROC_MAX_FRAMES; i++) {
		if (n && frames[n - 1] == ev->frames[i])
			continue;
		frames[n++] = ev->frames[i];
		/* The leaf's caller goes right after the faulting IP. */
		if (n == 1 && ev->leaf_caller && n < PROC_MAX_FRAMES &&
		    (ev->n_frames < 2 || ev->frames[1] != ev->leaf_caller))
			frames[n++] = ev->leaf_caller;
	}
	sym__snapshot(r->sym, (pid_t)ev->pid);
	snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)ev->addr);
	c = json_pack("{sisisssssIso}", "pid", (int)ev->pid, "tid", (int)ev->tid,
		      "comm", ev->comm, "signal", util_signame((int)ev->signo),
		      "at_ms", (json_int_t)t_ms, "backtrace",
		      n > 0 ? sym__frames(r->sym, (pid_t)ev->pid, frames, n, true) : json_array());
	if (c && (ev->signo == SIGSEGV || ev->signo == SIGBUS || ev->signo == SIGFPE ||
		  ev->signo == SIGILL))
		json_object_set_new(c, "fault_address", json_string(addr));
	if (c)
		json_array_append_new(r->obs.crashes, c);
}

static void on_proc_event(const struct proc_ev *ev, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = ev->ts_ns > r->t0_ns ? (ev->ts_ns - r->t0_ns) / 1000000ull : 0;
	struct obs_proc *p, *parent;

	switch (ev->type) {
	case PROC_EV_FORK:
		parent = proc_find(r, (pid_t)ev->ppid);
		if (!parent) {
			log_debug("%s: fork of untracked parent %u", __func__, ev->ppid);
			break;
		}
		if (!proc_add(r, (pid_t)ev->pid, (pid_t)ev->ppid, parent->workload,
			      ev->comm, t_ms)) {
			r->obs.proc_lost++;
			break;
		}
		run_probes_fork(r, (size_t)r->obs.procs[r->obs.n_procs - 1].workload,
				(pid_t)ev->pid);
		break;
	case PROC_EV_EXEC:
		p = proc_find(r, (pid_t)ev->pid);
		if (p)
			snprintf(p->comm, sizeof(p->comm), "%s", ev->comm);
		sym__snapshot(r->sym, (pid_t)ev->pid);
		if (r->snapshot_ev) {
			struct timeval tv = {.tv_usec = 200 * 1000};

			evtimer_add(r->snapshot_ev, &tv);
		}
		break;
	case PROC_EV_CRASH:
		crash_stack(r, ev, t_ms);
		break;
	case PROC_EV_EXIT:
		p = proc_find(r, (pid_t)ev->pid);
		if (!p)
			break;
		snprintf(p->comm, sizeof(p->comm), "%s", ev->comm);
		run_probes_exit(r, (size_t)p->workload, p->pid);
		proc_set_exit(r, p, ev->exit_code, t_ms);
		if (p->signal && !p->by_faultd)
			log_info("%s: run %s: pid %d (%s) of '%s' killed by %s", __func__,
				 r->id, (int)p->pid, p->comm, r->sc->wl[p->workload].name,
				 util_signame(p->signal));
		procs_compact(r);
		break;
	}
}

/* --- cycles ----------------------------------------------------------------- */

#define RUN_SNAPSHOT_PROCS 32	/* live processes whose maps are kept fresh */

/* Maps of the live processes, so a crash reported after the process is gone
 * can still be named: at exec (the program itself), shortly after each
 * start (its libraries) and at every cycle's end. */
static void snapshot_maps(struct run *r)
{
	size_t n = 0;

	for (size_t i = r->obs.n_procs; i-- > 0 && n < RUN_SNAPSHOT_PROCS;) {
		if (r->obs.procs[i].exited)
			continue;
		sym__snapshot(r->sym, r->obs.procs[i].pid);
		n++;
	}
}

static void on_snapshot(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	snapshot_maps(arg);
}

static void close_cycle(struct run *r, uint64_t now_ms)
{
	struct obs_cycle *c;
	json_t *j;

	snapshot_maps(r);
	if (r->obs.n_cycles == r->cap_cycles) {
		size_t cap = r->cap_cycles ? r->cap_cycles * 2 : 64;
		struct obs_cycle *grown = realloc(r->obs.cycles, cap * sizeof(*grown));
		struct obs_sample *rows;

		if (!grown) {
			log_warn("%s: run %s: out of memory for cycles", __func__, r->id);
			return;
		}
		r->obs.cycles = grown;
		rows = realloc(r->obs.samples, cap * r->sc->n_wl * sizeof(*rows));
		if (!rows) {
			log_warn("%s: run %s: out of memory for samples", __func__, r->id);
			return;
		}
		r->obs.samples = rows;
		r->cap_cycles = cap;
	}
	memset(&r->obs.samples[r->obs.n_cycles * r->sc->n_wl], 0,
	       r->sc->n_wl * sizeof(*r->obs.samples));
	c = &r->obs.cycles[r->obs.n_cycles++];
	memset(c, 0, sizeof(*c));
	c->n = (unsigned)r->obs.n_cycles;
	c->t_start_ms = r->cycle_start_ms;
	c->t_end_ms = now_ms;
	for (size_t i = 0; i < r->obs.n_procs; i++)
		c->procs += !r->obs.procs[i].exited;
	for (size_t i = 0; i < r->sc->n_wl; i++)
		if (r->obs.wl[i].started && !r->obs.wl[i].exited)
			c->rss_kb += util_rss_bytes(r->obs.wl[i].pid) / 1024;
	r->cycle_start_ms = now_ms;
	run_probes_sample(r, r->obs.n_cycles - 1);
	if (!r->opts.on_cycle)
		return;
	j = json_pack("{sssIsIsIsIsIso}", "run_id", r->id, "cycle", (json_int_t)c->n,
		      "t_start_ms", (json_int_t)c->t_start_ms,
		      "t_end_ms", (json_int_t)c->t_end_ms,
		      "procs", (json_int_t)c->procs, "rss_kb", (json_int_t)c->rss_kb,
		      "workloads", report_cycle_workloads(&r->obs, r->obs.n_cycles - 1));
	if (j)
		r->opts.on_cycle(r, j, r->opts.arg);
	json_decref(j);
}

static void on_cycle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	run_probes_drain(r);
	close_cycle(r, run_ms(r));
}

/* --- workloads ------------------------------------------------------------- */

static bool all_done(const struct run *r, bool services_too)
{
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		const struct obs_workload *w = &r->obs.wl[i];

		if (!services_too && w->sc->service)
			continue;
		if (w->started && !w->exited)
			return false;
	}
	return true;
}

static void on_wl_exit(struct sup_child *c, int status, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = run_ms(r);
	struct obs_workload *w = NULL;
	struct obs_proc *p;
	size_t i;

	for (i = 0; i < r->sc->n_wl; i++)
		if (r->rw[i].child == c) {
			w = &r->obs.wl[i];
			break;
		}
	if (!w)
		return;
	w->exited = true;
	w->t_exit_ms = t_ms;
	util_wait_status(status, &w->exit_status, &w->signal, &w->core);
	/* The probe normally reports the root's exit first; if it has not,
	 * record it from the wait status so no exit goes unseen. */
	p = proc_find(r, w->pid);
	if (p)
		proc_set_exit(r, p, status, t_ms);
	if (w->signal)
		log_info("%s: run %s: workload '%s' (pid %d) killed by %s", __func__,
			 r->id, w->sc->name, (int)w->pid, util_signame(w->signal));
	else
		log_info("%s: run %s: workload '%s' (pid %d) exited %d", __func__,
			 r->id, w->sc->name, (int)w->pid, w->exit_status);
	if (r->state == RUN_RUNNING && all_done(r, false))
		begin_stop(r, all_done(r, true) ? "every workload exited"
						 : "every non-service workload exited");
}

/* A syscall_error fault's rate on its workload's cgroup, or off. */
void run_not_applied(struct run *r, const char *what, enum caps_id cap)
{
	json_t *row;

	if (!r->obs.not_applied)
		r->obs.not_applied = json_array();
	row = json_pack("{ssss}", "fault", what, "why", caps_why(cap));
	if (row)
		json_array_append_new(r->obs.not_applied, row);
	log_warn("%s: run %s: %s is not applied: this host lacks %s", __func__, r->id, what,
		 caps_name(cap));
}

static int syserr_set(struct run *r, const struct sc_fault *f, bool on)
{
	struct sysfault_conf c = {
		.ppm = on ? (__u32)(f->pct * (SYSFAULT_PPM / 100)) : 0,
		.err = f->err,
	};
	struct sysfault *sf = r->rw[f->wl_idx].sysfault;

	if (f->syscall != SECFAULT_SOCKET)
		return 0;	/* seccomp's, fixed since exec */
	if (!sf && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING)
		return -ENOTSUP;	/* listed as not applied at start */
	return sf ? sysfault__set(sf, &c) : -ENODEV;
}

/* The seccomp filter for workload @i's syscall errors other than socket():
 * prog->len stays 0 when it has none. 0 or -errno. */
static int seccomp_filter(struct run *r, size_t i, struct sock_fprog *prog)
{
	struct secfault_rule rules[64];
	size_t n = 0;

	/* The scenario allows one fault per call and workload. */
	for (size_t f = 0; f < r->sc->n_faults && n < ARRAY_SIZE(rules); f++) {
		const struct sc_fault *sf = &r->sc->faults[f];

		if (sf->type == SC_F_SYSCALL_ERROR && sf->wl_idx == (int)i &&
		    sf->syscall != SECFAULT_SOCKET)
			rules[n++] = (struct secfault_rule){.call = sf->syscall, .err = sf->err};
	}
	return n ? secfault_build(rules, n, prog) : 0;
}

#define RUN_OUTPUT_GRAIN_MS 100	/* output times kept this far apart */

/* Output is the plainest sign of progress: recovers looks for it after a
 * link comes back. */
static void on_wl_output(void *arg, size_t bytes)
{
	struct run_wl *rw = arg;
	struct obs_workload *w = &rw->run->obs.wl[rw->idx];
	uint64_t t = run_ms(rw->run);

	(void)bytes;
	if (w->n_out_times && t < w->out_times[w->n_out_times - 1] + RUN_OUTPUT_GRAIN_MS)
		return;
	if (w->n_out_times == w->cap_out_times) {
		size_t cap = w->cap_out_times ? w->cap_out_times * 2 : 256;
		uint64_t *grown = realloc(w->out_times, cap * sizeof(*grown));

		if (!grown)
			return;
		w->out_times = grown;
		w->cap_out_times = cap;
	}
	w->out_times[w->n_out_times++] = t;
}

static void on_wl_kill(evutil_socket_t fd, short what, void *arg)
{
	struct run_wl *rw = arg;

	(void)fd;
	(void)what;
	cg_kill(rw->cgroup);
}

static void on_wl_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	struct obs_workload *w = &r->obs.wl[rw->idx];
	struct timeval grace = {
		.tv_sec = w->sc->stop_grace_ms / 1000,
		.tv_usec = (w->sc->stop_grace_ms % 1000) * 1000,
	};

	(void)fd;
	(void)what;
	if (r->state != RUN_RUNNING || w->exited)
		return;
	log_warn("%s: run %s: workload '%s' ran past timeout_s=%g; stopping it",
		 __func__, r->id, w->sc->name, w->sc->timeout_s);
	w->timed_out = true;
	rw->kill_sent_ms = run_ms(r);
	sup__kill(rw->child, SIGTERM);
	evtimer_add(rw->kill_ev, &grace);
}

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

static int build_argv(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	static char harness_path[PATH_MAX];
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
	snprintf(harness_path, sizeof(harness_path), "%s/%s", r->opts.harness_dir,
		 scenario_kind_name(w->kind));
	/* The ASan build sits in the sanitized build tree beside ours
	 * (build/harness -> build/san-address/harness), or is ours already. */
	if (w->asan && !strstr(r->opts.harness_dir, "/san-address/"))
		snprintf(harness_path, sizeof(harness_path), "%s/../san-address/harness/%s",
			 r->opts.harness_dir, scenario_kind_name(w->kind));
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

static int build_env(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	size_t n = 0;
	char *fixed[3];

	while (w->env && w->env[n])
		n++;
	rw->env = calloc(n + 4 + 3 * r->sc->n_links, sizeof(*rw->env));
	if (!rw->env)
		return -ENOMEM;
	if (asprintf(&fixed[0], "FAULTD_RUN_ID=%s", r->id) < 0 ||
	    asprintf(&fixed[1], "FAULTD_RUN_DIR=%s", r->dir) < 0 ||
	    asprintf(&fixed[2], "FAULTD_WORKLOAD=%s", w->name) < 0)
		return -ENOMEM;
	for (size_t j = 0; j < 3; j++)
		rw->env[rw->n_env++] = fixed[j];
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

static int start_workload(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct obs_workload *ow = &r->obs.wl[i];
	struct run_wl *rw = &r->rw[i];
	struct sup_spec spec = {0};
	struct sock_fprog filter = {0};
	int err;

	snprintf(rw->cgroup, sizeof(rw->cgroup), "%s/%s", r->cgroup, w->name);
	snprintf(rw->out_path, sizeof(rw->out_path), "%s/%s.stdout", r->dir, w->name);
	snprintf(rw->err_path, sizeof(rw->err_path), "%s/%s.stderr", r->dir, w->name);
	err = cg_create(rw->cgroup);
	if (err) {
		run_error(r, "workload '%s': cgroup %s: %s", w->name, rw->cgroup,
			  strerror(-err));
		return err;
	}
	for (size_t f = 0; f < r->sc->n_faults && !rw->sysfault; f++) {
		if (r->sc->faults[f].type != SC_F_SYSCALL_ERROR || r->sc->faults[f].wl_idx != (int)i ||
		    r->sc->faults[f].syscall != SECFAULT_SOCKET)
			continue;
		rw->sysfault = sysfault__attach(rw->cgroup);
		if (!rw->sysfault && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING) {
			char what[96];

			snprintf(what, sizeof(what), "syscall_error socket of %s", w->name);
			run_not_applied(r, what, CAPS_SYSCALL_SOCKET);
			break;
		}
		if (!rw->sysfault) {
			err = -errno;
			run_error(r, "workload '%s': cannot attach syscall errors: %s", w->name,
				  strerror(-err));
			return err;
		}
		/* A fault planned for time 0 holds from the first instruction,
		 * not from the moment its timer first fires. */
		if (!r->sc->faults[f].at_ms)
			syserr_set(r, &r->sc->faults[f], true);
	}
	if (w->kind == WL_DPDK_CLIENT) {
		char dir[PATH_MAX];

		snprintf(rw->dpdk_prefix, sizeof(rw->dpdk_prefix), "fd%s-%s", r->id, w->name);
		snprintf(dir, sizeof(dir), "%s/%s", JOURNAL_DPDK_DIR, rw->dpdk_prefix);
		err = r->journal ? journal__add(r->journal, "dpdkdir", dir) : -EINVAL;
		if (err) {
			run_error(r, "workload '%s': cannot journal %s: %s", w->name, dir,
				  strerror(-err));
			return err;
		}
	}
	err = build_argv(r, i);
	if (!err)
		err = build_env(r, i);
	if (!err)
		err = seccomp_filter(r, i, &filter);
	if (err) {
		run_error(r, "workload '%s': %s", w->name, strerror(-err));
		return err;
	}
	spec.name = w->name;
	spec.argv = rw->argv;
	spec.env_extra = (const char *const *)rw->env;
	spec.cwd = w->cwd;
	spec.cgroup = rw->cgroup;
	spec.out_path = rw->out_path;
	spec.err_path = rw->err_path;
	spec.out_max = (size_t)w->output_max_kb * 1024;
	spec.on_output = on_wl_output;
	spec.output_arg = rw;
	if (w->netns)
		spec.netns = topo__ns_path(r->topo, scenario_ns_idx(r->sc, w->netns));
	spec.seccomp = filter.len ? &filter : NULL;
	spec.cpus = w->cpus;
	spec.n_cpus = w->n_cpus;
	err = sup__spawn(r->base, &spec, on_wl_exit, r, &rw->child);
	secfault_free(&filter);	/* the child has its copy */
	if (err) {
		run_error(r, "workload '%s': cannot start: %s", w->name, strerror(-err));
		return err;
	}
	if (spec.seccomp)
		caps_set_ok(CAPS_SYSCALL_SECCOMP, "seccomp SECCOMP_RET_ERRNO");
	ow->pid = sup__pid(rw->child);
	ow->started = true;
	ow->t_start_ms = run_ms(r);
	if (!proc_add(r, ow->pid, getpid(), (int)i, w->name, ow->t_start_ms))
		return -ENOMEM;
	/* Probes attach to the held child before it runs anything. */
	if (r->proc) {
		err = probe_proc__track(r->proc, ow->pid);
		if (err) {
			log_warn("%s: run %s: process probe cannot track pid %d: %s",
				 __func__, r->id, (int)ow->pid, strerror(-err));
			r->obs.proc_lost++;
		}
	}
	err = run_probes_attach(r, i);
	if (err) {
		run_error(r, "workload '%s': cannot attach its probes: %s", w->name,
			  strerror(-err));
		return err;
	}
	err = sup__release(rw->child);
	if (err) {
		run_error(r, "workload '%s': cannot run '%s': %s", w->name, rw->argv[0],
			  strerror(-err));
		return err;
	}
	log_info("%s: run %s: workload '%s' started, pid %d", __func__, r->id, w->name,
		 (int)ow->pid);
	if (w->timeout_s > 0) {
		struct timeval tv = {
			.tv_sec = (time_t)w->timeout_s,
			.tv_usec = (suseconds_t)((w->timeout_s - (double)(time_t)w->timeout_s) * 1e6),
		};
		rw->timeout_ev = evtimer_new(r->base, on_wl_timeout, rw);
		if (!rw->timeout_ev || evtimer_add(rw->timeout_ev, &tv) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* --- faults ------------------------------------------------------------------ */

static int freeze(struct run *r, int wl, bool on)
{
	char path[PATH_MAX + 16];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.freeze", r->rw[wl].cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* Busy processes for cpu_hog fault @fault, in the run's cgroup so they go
 * with it whatever happens. */
static int hog_set(struct run *r, int fault, bool on)
{
	const struct sc_fault *f = &r->sc->faults[fault];
	char cg[RUN_PATH_MAX + 32];

	if (!r->hogs) {
		r->hogs = calloc(r->sc->n_faults, sizeof(*r->hogs));
		if (!r->hogs)
			return -ENOMEM;
	}
	cpuhog__stop(r->hogs[fault]);
	r->hogs[fault] = NULL;
	if (!on)
		return 0;
	snprintf(cg, sizeof(cg), "%s/hog%d", r->cgroup, fault);
	r->hogs[fault] = cpuhog__start(cg, f->cpus, f->n_cpus, (unsigned)f->threads);
	return r->hogs[fault] ? 0 : -errno;
}

static void hogs_stop(struct run *r)
{
	for (size_t i = 0; r->hogs && i < r->sc->n_faults; i++)
		cpuhog__stop(r->hogs[i]);
	free(r->hogs);
	r->hogs = NULL;
}

static void fire(struct run *r, const struct fault_action *a, uint64_t now)
{
	const char *target = "";
	json_t *entry;
	int err = 0;

	switch (a->act) {
	case FA_LINK_DOWN:
	case FA_LINK_UP:
		target = r->sc->links[a->target].name;
		err = topo__link_set(r->topo, a->target, a->act == FA_LINK_UP);
		break;
	case FA_CYCLE_END:
		close_cycle(r, now);
		return;
	case FA_SYSERR_ON:
	case FA_SYSERR_OFF:
		target = r->sc->wl[a->target].name;
		err = syserr_set(r, &r->sc->faults[a->fault], a->act == FA_SYSERR_ON);
		break;
	case FA_PACKET_ON:
	case FA_PACKET_OFF:
	case FA_RATE_ON:
	case FA_RATE_OFF:
	case FA_DELAY_ON:
	case FA_DELAY_OFF:
		target = r->sc->links[a->target].name;
		err = run_links_fire(r, a);
		break;
	case FA_PAUSE:
	case FA_RESUME:
		target = r->sc->wl[a->target].name;
		err = freeze(r, a->target, a->act == FA_PAUSE);
		break;
	case FA_HOG_ON:
	case FA_HOG_OFF:
		target = "cpus";
		err = hog_set(r, a->fault, a->act == FA_HOG_ON);
		break;
	case FA_KILL:
		target = r->sc->wl[a->target].name;
		if (a->signo == SIGKILL || a->signo == SIGTERM)
			r->rw[a->target].kill_sent_ms = now;	/* faultd's doing */
		err = r->rw[a->target].child ? sup__kill(r->rw[a->target].child, a->signo) : -ESRCH;
		break;
	}
	entry = json_pack("{sIsIssssss}", "t_planned_ms", (json_int_t)a->t_ms,
			  "t_actual_ms", (json_int_t)now, "action", fault_act_name(a->act),
			  "target", target, "fault", scenario_fault_name(r->sc->faults[a->fault].type));
	if (entry) {
		if (a->cycle)
			json_object_set_new(entry, "cycle", json_integer(a->cycle));
		if (a->act != FA_PAUSE && a->act != FA_RESUME && a->act != FA_KILL &&
		    a->act != FA_SYSERR_ON && a->act != FA_SYSERR_OFF && a->act != FA_HOG_ON &&
		    a->act != FA_HOG_OFF)
			json_object_set_new(entry, "kernel_name",
					    json_string(topo__link_kernel_name(r->topo, a->target)));
		if (a->act == FA_KILL)
			json_object_set_new(entry, "signal", json_string(util_signame(a->signo)));
		if (err)
			json_object_set_new(entry, "error", json_string(strerror(-err)));
		json_array_append_new(r->obs.faults, entry);
	}
	log_info("%s: run %s: %s %s%s", __func__, r->id, fault_act_name(a->act), target,
		 err ? " failed" : "");
}

static void arm_faults(struct run *r)
{
	uint64_t now = run_ms(r), at;
	struct timeval tv;

	if (r->next_action >= r->n_plan)
		return;
	at = r->plan[r->next_action].t_ms;
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000);
	tv.tv_usec = (suseconds_t)(at % 1000) * 1000;
	evtimer_add(r->fault_ev, &tv);
}

static void on_fault_timer(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	uint64_t now = run_ms(r);

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	run_probes_drain(r);
	/* libevent may wake a little early by our clock; what is due within
	 * a millisecond fires now. */
	while (r->state == RUN_RUNNING && r->next_action < r->n_plan &&
	       r->plan[r->next_action].t_ms <= now + 1)
		fire(r, &r->plan[r->next_action++], run_ms(r));
	if (r->state == RUN_RUNNING)
		arm_faults(r);
}

/* Plan the timeline from the seed and start playing it. */
static int start_faults(struct run *r)
{
	int err;

	r->cyclic = scenario_has_cyclic_fault(r->sc);
	err = fault_plan(r->sc, (uint64_t)r->seed, (uint64_t)(r->sc->duration_s * 1000.0),
			 &r->plan, &r->n_plan);
	if (err)
		return err;
	r->fault_ev = evtimer_new(r->base, on_fault_timer, r);
	if (!r->fault_ev)
		return -ENOMEM;
	arm_faults(r);
	return 0;
}

/* --- start ------------------------------------------------------------------ */

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	begin_stop(arg, "duration elapsed");
}

static void do_start(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	struct timeval tv;
	char path[PATH_MAX + 32];
	int err;

	(void)fd;
	(void)what;
	r->state = RUN_STARTING;
	snprintf(path, sizeof(path), "%s/scenario.json", r->dir);
	err = util_write_atomic(path, r->sc->text, r->sc->text_len);
	if (err) {
		run_error(r, "cannot write %s: %s", path, strerror(-err));
		goto err_stop;
	}
	err = cg_create(r->cgroup);
	if (err && caps_state(CAPS_CGROUP) == CAPS_MISSING) {
		run_error(r, "this host lacks cgroup v2, which every run needs: %s",
			  caps_why(CAPS_CGROUP));
		goto err_stop;
	}
	if (err) {
		run_error(r, "cannot create cgroup %s: %s", r->cgroup, strerror(-err));
		goto err_stop;
	}
	caps_set_ok(CAPS_CGROUP, NULL);
	if (r->sc->n_ns) {
		r->journal = journal__open(r->opts.journal_dir, r->id);
		if (!r->journal) {
			run_error(r, "cannot open the undo journal in %s: %s", r->opts.journal_dir,
				  strerror(errno));
			goto err_stop;
		}
		r->topo = topo__create(r->sc, r->id, r->journal);
		if (!r->topo) {
			run_error(r, "cannot build the topology: %s", strerror(errno));
			goto err_stop;
		}
		r->obs.topology = topo__names(r->topo);
		for (size_t l = 0; l < r->sc->n_links; l++)
			caps_set_ok(r->sc->links[l].type == SC_LINK_TAP ? CAPS_TAP : CAPS_NETNS,
				    r->sc->links[l].type == SC_LINK_TAP ? "/dev/net/tun" : "veth");
		err = run_links_attach(r);
		if (err) {
			run_error(r, "cannot set up the link faults: %s", strerror(-err));
			goto err_stop;
		}
	}
	r->proc = probe_proc__open(r->base, on_proc_event, r);
	if (!r->proc)
		log_warn("%s: run %s: process probe unavailable (%s); child process "
			 "exits will be missing", __func__, r->id, strerror(errno));
	r->obs.proc_probe = r->proc != NULL;
	r->t0_ns = util_now_ns();
	r->started_at_ms = util_realtime_ms();
	r->state = RUN_RUNNING;
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		err = start_workload(r, i);
		if (err)
			goto err_stop;
	}
	r->duration_ev = evtimer_new(r->base, on_duration, r);
	r->cycle_ev = event_new(r->base, -1, EV_PERSIST, on_cycle_tick, r);
	if (!r->duration_ev || !r->cycle_ev) {
		run_error(r, "out of memory");
		goto err_stop;
	}
	err = start_faults(r);
	if (err) {
		run_error(r, "cannot plan the faults: %s", strerror(-err));
		goto err_stop;
	}
	tv.tv_sec = (time_t)r->sc->duration_s;
	tv.tv_usec = (suseconds_t)((r->sc->duration_s - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->duration_ev, &tv);
	/* Flaps make the cycles when there are any; otherwise the clock does. */
	if (!r->cyclic) {
		tv.tv_sec = r->sc->sample_ms / 1000;
		tv.tv_usec = (r->sc->sample_ms % 1000) * 1000;
		event_add(r->cycle_ev, &tv);
	}
	log_info("%s: run %s: scenario '%s' running for up to %gs", __func__, r->id,
		 r->sc->name, r->sc->duration_s);
	/* A workload may have exited before the timers existed. */
	if (all_done(r, false))
		begin_stop(r, "every non-service workload exited");
	return;
err_stop:
	if (!r->t0_ns) {
		r->t0_ns = util_now_ns();
		r->started_at_ms = util_realtime_ms();
	}
	r->state = RUN_RUNNING;
	begin_stop(r, "setup failed");
}

/* --- stop and finish ---------------------------------------------------------- */

static void finish(struct run *r);

static void on_reap_poll(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = run_ms(r);
	int populated;

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	populated = cg_populated(r->cgroup);
	if (populated > 0 || !all_done(r, true)) {
		if (t_ms < r->give_up_ms)
			return;
		log_warn("%s: run %s: processes still present %llums after stop; "
			 "killing and moving on", __func__, r->id,
			 (unsigned long long)(t_ms - r->stop_at_ms));
		for (size_t i = 0; i < r->sc->n_wl; i++)
			if (r->rw[i].child)
				sup__kill(r->rw[i].child, SIGKILL);
	}
	event_del(r->reap_ev);
	finish(r);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	if (cg_populated(r->cgroup) > 0) {
		log_info("%s: run %s: grace over; killing what is left", __func__, r->id);
		cg_kill(r->cgroup);
	}
}

static void begin_stop(struct run *r, const char *reason)
{
	struct timeval tv = {.tv_usec = RUN_REAP_POLL_MS * 1000};
	long long grace_ms = 0;
	uint64_t t_ms;

	if (r->state != RUN_RUNNING)
		return;
	r->state = RUN_STOPPING;
	t_ms = run_ms(r);
	r->stop_at_ms = t_ms;
	snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", reason);
	log_info("%s: run %s: stopping: %s", __func__, r->id, reason);
	if (r->duration_ev)
		evtimer_del(r->duration_ev);
	if (r->cycle_ev)
		event_del(r->cycle_ev);
	if (r->fault_ev)
		evtimer_del(r->fault_ev);
	/* Faults end with the run: the contention goes, and a frozen workload
	 * is thawed so it can hear the SIGTERM that follows. */
	hogs_stop(r);
	for (size_t i = 0; i < r->sc->n_wl; i++)
		if (r->rw[i].cgroup[0] && r->obs.wl[i].started)
			freeze(r, (int)i, false);
	probe_proc__drain(r->proc);
	/* The last, partial cycle counts if it is at least half a cycle long
	 * (or the only one): a sliver would read as a sample of nothing. */
	if (r->obs.n_cycles == 0 ||
	    t_ms - r->cycle_start_ms >= (uint64_t)r->sc->sample_ms / 2)
		close_cycle(r, t_ms);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct obs_workload *w = &r->obs.wl[i];
		struct run_wl *rw = &r->rw[i];

		if (rw->timeout_ev)
			evtimer_del(rw->timeout_ev);
		if (!w->started || w->exited)
			continue;
		w->stopped = !w->timed_out;
		if (rw->kill_sent_ms > t_ms)
			rw->kill_sent_ms = t_ms;
		sup__kill(rw->child, SIGTERM);
		if (w->sc->stop_grace_ms > grace_ms)
			grace_ms = w->sc->stop_grace_ms;
	}
	r->give_up_ms = t_ms + (uint64_t)grace_ms + RUN_REAP_EXTRA_MS;
	r->grace_ev = evtimer_new(r->base, on_grace_over, r);
	r->reap_ev = event_new(r->base, -1, EV_PERSIST, on_reap_poll, r);
	if (r->grace_ev) {
		struct timeval g = {.tv_sec = grace_ms / 1000,
				    .tv_usec = (grace_ms % 1000) * 1000};
		evtimer_add(r->grace_ev, &g);
	}
	if (r->reap_ev)
		event_add(r->reap_ev, &tv);
	else
		finish(r);
}

static enum verdict decide(struct run *r, struct inv_result *res)
{
	enum verdict v = V_PASS;

	for (size_t i = 0; i < r->sc->n_inv; i++) {
		int err = inv_eval(&r->obs, &r->sc->inv[i], &res[i]);

		if (err) {
			res[i].verdict = V_ERROR;
			snprintf(res[i].summary, sizeof(res[i].summary),
				 "evaluation failed: %s", strerror(-err));
		}
		v = verdict_combine(v, res[i].verdict);
	}
	if (r->error[0])
		return V_ERROR;
	/* A run cut short proves nothing beyond what already failed. */
	if (r->stop_requested && v == V_PASS)
		return V_INCONCLUSIVE;
	return v;
}

/* Namespaces and links go by the journal: the same path a successor takes
 * after a kill -9. */
static void teardown_network(struct run *r)
{
	run_links_detach(r);
	topo__free(r->topo);
	r->topo = NULL;
	if (r->journal) {
		journal__replay(r->journal);
		journal__free(r->journal);
		r->journal = NULL;
	}
}

/* The owner directory goes with its last run (another run of ours keeps
 * it busy and the rmdir fails harmlessly). */
static void remove_owner_dir(const struct run *r)
{
	char owner[RUN_PATH_MAX], *slash;

	snprintf(owner, sizeof(owner), "%s", r->cgroup);
	slash = strrchr(owner, '/');
	if (slash) {
		*slash = '\0';
		rmdir(owner);
	}
}

#define RUN_TAIL_LINES 5
#define RUN_TAIL_BYTES 2048

/* The last @n lines of the file at @path, for evidence; NULL if none. */
static json_t *tail_lines(const char *path, int n)
{
	char buf[RUN_TAIL_BYTES + 1], *end, *start;
	json_t *lines = NULL;
	ssize_t got;
	off_t size;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	got = size < 0 ? -1 : pread(fd, buf, RUN_TAIL_BYTES, size > RUN_TAIL_BYTES ?
							     size - RUN_TAIL_BYTES : 0);
	close(fd);
	if (got <= 0)
		return NULL;
	buf[got] = '\0';
	lines = json_array();
	end = buf + got;
	while (lines && n > 0 && end > buf) {
		if (end[-1] == '\n')
			*--end = '\0';
		start = end;
		while (start > buf && start[-1] != '\n')
			start--;
		/* A line cut by the window is dropped, not shown half. */
		if (start == buf && size > RUN_TAIL_BYTES)
			break;
		json_array_insert_new(lines, 0, json_string(start));
		end = start;
		n--;
	}
	return lines;
}

static void finish(struct run *r)
{
	struct report_wl_out *outs;
	struct inv_result *res;
	struct report_in in = {0};
	char path[PATH_MAX + 32];
	enum verdict v;
	int err;

	probe_proc__drain(r->proc);
	run_probes_finish(r);
	if (r->proc) {
		unsigned long long lost[PROC_LOSS__MAX];

		probe_proc__losses(r->proc, lost);
		for (int i = 0; i < PROC_LOSS__MAX; i++)
			r->obs.proc_lost += lost[i];
	}
	r->obs.t_end_ms = run_ms(r);
	r->ended_at_ms = util_realtime_ms();
	/* What the host could do, as the invariants and the report see it. */
	r->obs.capabilities = caps_json(false);
	if (r->topo && !r->obs.packet_stats)
		r->obs.packet_stats = run_links_stats(r);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct sysfault_stats st;

		if (!r->rw[i].sysfault)
			continue;
		if (!r->obs.syscall_stats)
			r->obs.syscall_stats = json_object();
		sysfault__stats(r->rw[i].sysfault, &st);
		json_object_set_new(r->obs.syscall_stats, r->sc->wl[i].name, json_pack("{sIsI}",
			"socket_calls", (json_int_t)st.calls, "socket_failed", (json_int_t)st.failed));
		/* Its processes are gone: the link goes with the run. */
		sysfault__destroy(r->rw[i].sysfault);
		r->rw[i].sysfault = NULL;
	}
	/* Flush captured output before the report counts it. */
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct run_wl *rw = &r->rw[i];

		if (!rw->child)
			continue;
		sup__output_stats(rw->child, &rw->out_seen, &rw->out_dropped);
		sup__free(rw->child);
		rw->child = NULL;
		r->obs.wl[i].last_output = tail_lines(rw->out_path, RUN_TAIL_LINES);
		r->obs.wl[i].sanitizer = sanitizer_parse_file(rw->err_path);
	}
	/* Tear down before judging, so no_residue sees what is really left. */
	probe_proc__destroy(r->proc);
	r->proc = NULL;
	run_probes_destroy(r);
	cg_destroy(r->cgroup);
	remove_owner_dir(r);
	teardown_network(r);
	r->obs.residue = residue_scan(r->id, r->cgroup, r->opts.journal_dir);
	res = calloc(r->sc->n_inv ? r->sc->n_inv : 1, sizeof(*res));
	if (!res)
		run_error(r, "out of memory evaluating invariants");
	v = res ? decide(r, res) : V_ERROR;

	in.run_id = r->id;
	in.run_dir = r->dir;
	in.sc = r->sc;
	in.obs = &r->obs;
	in.res = res;
	in.n_res = res ? r->sc->n_inv : 0;
	in.verdict = v;
	in.error = r->error[0] ? r->error : NULL;
	in.stop_reason = r->stop_reason;
	in.started_at_ms = r->started_at_ms;
	in.ended_at_ms = r->ended_at_ms;
	in.seed = r->seed;
	in.procs_seen = r->procs_seen;
	outs = calloc(r->sc->n_wl, sizeof(*outs));
	for (size_t i = 0; outs && i < r->sc->n_wl; i++) {
		outs[i].stdout_path = r->rw[i].out_path;
		outs[i].stderr_path = r->rw[i].err_path;
		outs[i].seen = r->rw[i].out_seen;
		outs[i].dropped = r->rw[i].out_dropped;
		outs[i].argv = r->rw[i].argv;
	}
	in.wl_out = outs;
	r->report = outs ? report_json_build(&in) : NULL;
	free(outs);
	for (size_t i = 0; res && i < r->sc->n_inv; i++)
		json_decref(res[i].evidence);
	free(res);
	if (r->report) {
		snprintf(path, sizeof(path), "%s/report.json", r->dir);
		err = report_json_write(r->report, path);
		if (err)
			log_err("%s: run %s: cannot write %s: %s", __func__, r->id, path,
				strerror(-err));
		/* The page people open the next morning, beside the JSON. */
		snprintf(path, sizeof(path), "%s/report.html", r->dir);
		err = report_html_write(r->report, path);
		if (err)
			log_err("%s: run %s: cannot write %s: %s", __func__, r->id, path,
				strerror(-err));
	}
	/* A finished run is kept for status and its report only: the parsed
	 * debug info of its processes is the bulk of it, and a soak must not
	 * keep it. Its late maps snapshot goes with it. */
	if (r->snapshot_ev)
		evtimer_del(r->snapshot_ev);
	sym__free(r->sym);
	r->sym = NULL;
	r->state = RUN_DONE;
	log_info("%s: run %s: %s (%s)", __func__, r->id, verdict_name(v),
		 r->stop_reason);
	if (r->opts.on_done)
		r->opts.on_done(r, r->report, r->opts.arg);
}

/* --- public ------------------------------------------------------------------- */

struct run *run__new(struct event_base *base, struct scenario *sc,
		     const struct run_opts *opts)
{
	struct run *r;
	int err = 0;

	r = calloc(1, sizeof(*r));
	if (!r) {
		scenario_free(sc);
		errno = ENOMEM;
		return NULL;
	}
	r->base = base;
	r->sc = sc;
	r->opts = *opts;
	r->stop_at_ms = UINT64_MAX;
	r->rw = calloc(sc->n_wl, sizeof(*r->rw));
	r->obs.wl = calloc(sc->n_wl, sizeof(*r->obs.wl));
	r->obs.probes = calloc(sc->n_wl, sizeof(*r->obs.probes));
	r->obs.sc = sc;
	run_probes_kinds(r);
	r->sym = sym__new();
	r->obs.heap_events = json_array();
	r->obs.faults = json_array();
	r->obs.life_events = json_array();
	r->obs.crashes = json_array();
	r->snapshot_ev = evtimer_new(base, on_snapshot, r);
	r->obs.life_alive = json_array();
	r->obs.msg_events = json_array();
	r->obs.msg_lost = json_array();
	if (!r->rw || !r->obs.wl || !r->obs.probes || !r->sym || !r->obs.heap_events ||
	    !r->obs.faults ||
	    !r->obs.life_events || !r->obs.life_alive || !r->obs.msg_events ||
	    !r->obs.msg_lost) {
		err = -ENOMEM;
		goto err_free;
	}
	for (size_t i = 0; i < sc->n_wl; i++) {
		r->obs.wl[i].sc = &sc->wl[i];
		r->rw[i].run = r;
		r->rw[i].idx = i;
		r->rw[i].kill_sent_ms = UINT64_MAX;
		r->rw[i].kill_ev = evtimer_new(base, on_wl_kill, &r->rw[i]);
		if (!r->rw[i].kill_ev) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	err = strlen(opts->runs_dir) + 16 > RUN_PATH_MAX ||
	      strlen(opts->cgroup_root) + 16 > RUN_PATH_MAX ? -ENAMETOOLONG : 0;
	if (!err)
		err = util_mkdir_p(opts->runs_dir, 0755);
	for (int tries = 0; !err && tries < 8; tries++) {
		err = util_run_id(r->id);
		if (err)
			break;
		snprintf(r->dir, sizeof(r->dir), "%s/%s", opts->runs_dir, r->id);
		err = mkdir(r->dir, 0755) < 0 ? -errno : 0;
		if (err != -EEXIST)
			break;
	}
	if (err) {
		log_err("%s: cannot create a run directory in %s: %s", __func__,
			opts->runs_dir, strerror(-err));
		goto err_free;
	}
	err = cg_owner_dir(opts->cgroup_root, r->cgroup, sizeof(r->cgroup) - RUN_ID_LEN - 1);
	if (err)
		goto err_free;
	strcat(r->cgroup, "/");
	strcat(r->cgroup, r->id);
	if (sc->seed_set) {
		r->seed = sc->seed;
	} else {
		unsigned int s;

		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = (unsigned int)util_now_ns();
		r->seed = s;
	}
	return r;
err_free:
	run__free(r);
	errno = -err;
	return NULL;
}

void run__start(struct run *r)
{
	r->start_ev = evtimer_new(r->base, do_start, r);
	if (!r->start_ev || evtimer_add(r->start_ev, &(struct timeval){0}) < 0) {
		run_error(r, "out of memory");
		r->t0_ns = util_now_ns();
		r->state = RUN_RUNNING;
		begin_stop(r, "setup failed");
	}
}

void run__stop(struct run *r, const char *reason)
{
	if (r->state == RUN_DONE || r->state == RUN_STOPPING)
		return;
	r->stop_requested = true;
	if (r->state == RUN_QUEUED || r->state == RUN_STARTING) {
		/* Not started yet: end it without running anything. */
		if (r->start_ev)
			evtimer_del(r->start_ev);
		r->t0_ns = util_now_ns();
		r->started_at_ms = util_realtime_ms();
		r->state = RUN_RUNNING;
	}
	begin_stop(r, reason);
}

void run__free(struct run *r)
{
	if (!r)
		return;
	hogs_stop(r);
	for (size_t i = 0; r->rw && i < r->sc->n_wl; i++) {
		struct run_wl *rw = &r->rw[i];

		if (rw->child) {
			sup__kill(rw->child, SIGKILL);
			sup__free(rw->child);
		}
		if (rw->timeout_ev)
			event_free(rw->timeout_ev);
		if (rw->kill_ev)
			event_free(rw->kill_ev);
		sysfault__destroy(rw->sysfault);
		if (rw->argv && r->sc->wl[i].kind != WL_EXEC)
			free((char *)rw->argv[0]);
		free(rw->argv);
		for (size_t j = 0; j < rw->n_env; j++)
			free((char *)rw->env[j]);
		free(rw->env);
	}
	if (r->state != RUN_DONE && r->state != RUN_QUEUED && r->cgroup[0]) {
		cg_destroy(r->cgroup);
		remove_owner_dir(r);
	}
	teardown_network(r);
	free(r->plan);
	if (r->fault_ev)
		event_free(r->fault_ev);
	if (r->snapshot_ev)
		event_free(r->snapshot_ev);
	for (size_t i = 0; r->obs.wl && i < r->sc->n_wl; i++) {
		free(r->obs.wl[i].out_times);
		free(r->obs.wl[i].counters);
		json_decref(r->obs.wl[i].last_output);
		json_decref(r->obs.wl[i].sanitizer);
	}
	json_decref(r->obs.faults);
	json_decref(r->obs.topology);
	json_decref(r->obs.capabilities);
	json_decref(r->obs.not_applied);
	json_decref(r->obs.packet_stats);
	json_decref(r->obs.syscall_stats);
	probe_proc__destroy(r->proc);
	run_probes_destroy(r);
	sym__free(r->sym);
	for (size_t i = 0; r->obs.probes && i < r->sc->n_wl; i++) {
		json_decref(r->obs.probes[i].heap_sites);
		json_decref(r->obs.probes[i].heap_losses);
		json_decref(r->obs.probes[i].fd_calls);
	}
	free(r->obs.probes);
	free(r->obs.samples);
	json_decref(r->obs.heap_events);
	json_decref(r->obs.life_events);
	json_decref(r->obs.life_alive);
	json_decref(r->obs.msg_events);
	json_decref(r->obs.msg_lost);
	if (r->start_ev)
		event_free(r->start_ev);
	if (r->duration_ev)
		event_free(r->duration_ev);
	if (r->cycle_ev)
		event_free(r->cycle_ev);
	if (r->grace_ev)
		event_free(r->grace_ev);
	if (r->reap_ev)
		event_free(r->reap_ev);
	json_decref(r->report);
	free(r->obs.procs);
	json_decref(r->obs.crashes);
	json_decref(r->obs.residue);
	free(r->obs.cycles);
	free(r->obs.wl);
	free(r->rw);
	scenario_free(r->sc);
	free(r);
}

const char *run__id(const struct run *r)
{
	return r->id;
}

enum run_state run__state(const struct run *r)
{
	return r->state;
}

const struct scenario *run__scenario(const struct run *r)
{
	return r->sc;
}

const json_t *run__report(const struct run *r)
{
	return r->report;
}

const char *run__dir(const struct run *r)
{
	return r->dir;
}

json_t *run__status(const struct run *r)
{
	json_t *st, *wls;

	st = json_pack("{sssssssssI}", "run_id", r->id, "state", run__state_name(r->state),
		       "scenario", r->sc->name, "file", r->sc->path,
		       "cycle", (json_int_t)r->obs.n_cycles);
	if (!st)
		return NULL;
	if (r->t0_ns && r->state != RUN_DONE)
		json_object_set_new(st, "elapsed_s", json_real((double)run_ms(r) / 1000.0));
	if (r->report)
		json_object_set(st, "verdict", json_object_get(r->report, "verdict"));
	json_object_set_new(st, "faults_fired", json_integer((json_int_t)json_array_size(r->obs.faults)));
	json_object_set_new(st, "probe_lost", json_integer((json_int_t)run_probes_lost(r)));
	wls = json_array();
	for (size_t i = 0; wls && i < r->sc->n_wl; i++) {
		const struct obs_workload *w = &r->obs.wl[i];
		const char *state = !w->started ? "pending" : w->exited ? "exited" : "running";
		json_t *row = json_pack("{sssiss}", "name", w->sc->name, "pid", (int)w->pid,
					"state", state);

		if (row && r->state == RUN_RUNNING)
			run_probes_status(r, i, row);
		json_array_append_new(wls, row);
	}
	json_object_set_new(st, "workloads", wls ? wls : json_null());
	return st;
}
