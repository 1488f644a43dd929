/* The inside of a run, shared by run.c (lifecycle) and run_probes.c (the
 * per-workload probes beyond the process probe). Nothing else includes it. */
#ifndef FAULTD_RUN_PRIV_H
#define FAULTD_RUN_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <net/if.h>

#include <event2/event.h>

#include "caps.h"
#include "fault_family.h"
#include "fifo.h"
#include "inv.h"
#include "run.h"
#include "util.h"

struct probe_heap;
struct probe_fds;
struct probe_lifecycle;
struct probe_exit;
struct probe_proc;
struct sup_child;
struct sym;
struct worker;
struct journal;
struct topo;
struct fault_action;

#define RUN_REAP_POLL_MS 20		/* how often to look for an empty cgroup */
#define RUN_REAP_EXTRA_MS 3000		/* after the grace, give up waiting */
#define RUN_MAX_KEPT_PROCS 4096		/* processes kept for evidence */
#define RUN_MAX_LISTED_CRASHES 64	/* crash backtraces kept */
#define RUN_PATH_MAX 2048		/* run dir and cgroup; files go below */
#define RUN_LWIP_LIB "liblwip.so.0"	/* the lwIP an lwip-client links */

struct run_wl {
	struct run *run;		/* back-pointer for this workload's timers */
	size_t idx;
	struct sup_child *child;
	char cgroup[PATH_MAX];
	char out_path[PATH_MAX];
	char err_path[PATH_MAX];
	const char **argv;		/* owned array; strings borrowed */
	const char **env;		/* owned array and strings */
	size_t n_env;
	struct event *timeout_ev;
	struct event *kill_ev;
	struct fault_wl *fw;		/* what its faults see; kill_sent_ms there */
	unsigned long long out_seen, out_dropped;
	struct probe_heap *heap;	/* NULL unless "heap" was asked for */
	/* Anonymous memory of the tree and the probed live bytes, at the first
	 * and the last cycle: growth the probed calls do not explain is an
	 * allocator the probe does not see. */
	long long anon_first, anon_last, live_first, live_last;
	bool anon_seen;
	struct probe_fds *fds;
	struct probe_lifecycle *life;
	struct probe_exit *exit_hold;	/* no_leak: held at _exit, NULL otherwise */
	char exe[PATH_MAX];		/* the program exec'ed, for USDT */
	char dpdk_prefix[64];		/* dpdk-client: fd<run id>-<name> */
	/* Copies of the topology's names its argv holds: the report prints
	 * argv after the topology is gone. */
	char link_ifname[IFNAMSIZ];
	char link_addr[32];
};

struct run_post;

struct run {
	struct event_base *base;	/* the run's own loop, on its own thread (run_loop.c) */
	struct event_base *loop;	/* the caller's: on_cycle and on_done are called there */
	struct scenario *sc;
	struct run_opts opts;
	struct run_paths paths;		/* opts.paths points here */
	char id[RUN_ID_LEN];
	char dir[RUN_PATH_MAX];
	char cgroup[RUN_PATH_MAX];
	enum run_state state;
	uint64_t t0_ns;
	uint64_t started_at_ms, ended_at_ms;	/* realtime */
	long long seed;

	struct probe_proc *proc;
	struct run_wl *rw;
	struct run_obs obs;
	size_t cap_procs, cap_cycles, cap_samples;
	unsigned long long procs_seen;

	struct event *duration_ev, *cycle_ev, *grace_ev, *reap_ev;
	uint64_t cycle_start_ms;
	uint64_t stop_at_ms;		/* UINT64_MAX until stopping */
	uint64_t give_up_ms;
	bool reap_killed;		/* the reap poll has SIGKILLed what was left */
	bool stop_requested;		/* a user or a signal cut it short */
	char stop_reason[128];
	char error[512];
	json_t *report;
	struct sym *sym;		/* maps snapshots for naming frames, the loop's */
	/* no_leak's scans at exit (run_leak.c), on a thread of their own with
	 * a symbolizer of their own. */
	struct worker *leak_worker;
	struct sym *leak_sym;
	/* Crash backtraces and bad frees' stacks (run_sym.c), named on a
	 * thread of their own with a symbolizer of their own. */
	struct worker *name_worker;
	struct sym *name_sym;
	unsigned crashes_listed;	/* crash backtraces taken (named or being named) */
	struct journal *journal;	/* undo records, when the run changes the machine */
	struct topo *topo;
	struct fault_action *plan;	/* the fault timeline, sorted */
	size_t n_plan, next_action;
	struct event *fault_ev;
	bool cyclic;			/* faults define the cycles */
	struct fault_env fenv;		/* what the fault families see of the run */
	struct event *snapshot_ev;	/* maps of new processes, once mapped */

	/* The run thread's niceness while its clock runs (what it started
	 * with) and while it sets up or ends (run_loop_timing). */
	int nice_timing, nice_background;

	/* Between the run's thread and the caller's (run_loop.c). */
	pthread_t thread;
	bool thread_started;		/* the caller's: set when it made the thread */
	struct event *post_ev;		/* on the caller's loop: takes the posts */
	struct event *stop_ev;		/* on the run's loop: a stop was asked */
	bool lock_ready;
	pthread_mutex_t lock;		/* guards the fields below */
	struct fifo posts;		/* struct run_post: cycles, then the end */
	json_t *pub_status;		/* the last status the run published */
	json_t *pub_report;		/* the report, once done */
	char stop_asked[128];		/* the reason of a stop the caller asked for */
	bool cancel;			/* atomic: a stop was asked; set-up checks it */
	int pub_state;			/* atomic: enum run_state, as the caller sees it */
	uint64_t pub_t0_ns;		/* atomic */
};

uint64_t run_ms(const struct run *r);

/* run_loop.c: the run's thread and what crosses to the caller's. init
 * (in run__new, on the caller's thread) makes the run's loop; start makes
 * the thread, which runs run_loop_body: run_begin, then the run's loop
 * until the run is done; stop asks for a stop (the caller's thread);
 * join waits for the thread (stopping the run first if it is not done);
 * free releases what init made, except r->base. */
int run_loop_init(struct run *r, struct event_base *loop);
void run_loop_start(struct run *r);
void run_loop_stop(struct run *r, const char *reason);
void run_loop_join(struct run *r);
void run_loop_free(struct run *r);
void run_loop_body(struct run *r);
/* On the run's thread: its niceness for the part of the run now starting,
 * @timing (its clock runs: fault timers are due) or not (set-up, end). */
void run_loop_timing(struct run *r, bool timing);
/* On the run's thread: was a stop asked, and why. */
bool run_loop_cancelled(const struct run *r);
void run_loop_stop_reason(struct run *r, char *buf, size_t len);
/* On the run's thread: r->state = @s, published with the status. */
void run_set_state(struct run *r, enum run_state s);
void run_publish(struct run *r);
/* A cycle (owned) for on_cycle; the end for on_done, after which the
 * run's thread leaves the run alone. */
void run_post_cycle(struct run *r, json_t *cycle);
void run_post_done(struct run *r);
/* run.c, on the run's thread: the status now (new reference); the start
 * (or, when a stop came first, the end without starting); a stop. */
json_t *run_status_build(const struct run *r);
void run_begin(struct run *r);
void run_stop_now(struct run *r, const char *reason);

/* The run's error: the first one is the cause, later ones are only logged
 * by their callers. The run then ends with verdict ERROR. */
void run_error(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A fault (@what: "delay on l0 egress") whose mechanism @cap this host
 * lacks is not a failed run: it is listed as not applied, with why, and a
 * PASS is then INCONCLUSIVE (inv_eval). */
void run_not_applied(struct run *r, const char *what, enum caps_id cap);

/* run_procs.c: the processes of the workload trees. find: NULL if not
 * kept; add: NULL on ENOMEM; set_exit records a wait status. */
struct proc_ev;
struct obs_proc *run_proc_find(struct run *r, pid_t pid);
struct obs_proc *run_proc_add(struct run *r, pid_t pid, pid_t ppid, int wl,
			      const char *comm, uint64_t t_ms);
void run_proc_set_exit(struct run *r, struct obs_proc *p, int status, uint64_t t_ms);
/* The process probe's callback (probe_proc__open): fork, exec, exit, crash. */
void run_on_proc_event(const struct proc_ev *ev, void *arg);

/* run_argv.c: workload @i's argv (and the program exec will run, for
 * USDT) and its extra environment, into r->rw[i]. 0 or -errno. */
int run_argv_build(struct run *r, size_t i);
int run_env_build(struct run *r, size_t i);

/* run.c: end the cycle now (its samples, its line of progress); stop the
 * run (its workloads, then teardown and the report) for @reason. */
void run_close_cycle(struct run *r, uint64_t now_ms);
void run_begin_stop(struct run *r, const char *reason);

/* run_wl.c: start workload @i held in its cgroup with its probes
 * attached, then let it exec (release); 0 or -errno, after run_error. The
 * timer callback that SIGKILLs a workload's cgroup once its grace is over. */
int run_wl_start(struct run *r, size_t i);
int run_wl_release(struct run *r, size_t i);
/* Has every started workload exited (services too, if @services_too)? */
bool run_wl_all_done(const struct run *r, bool services_too);
void run_wl_on_kill(evutil_socket_t fd, short what, void *arg);

/* run_faults.c: the run's faults. init lends them the run (fault_env);
 * attach sets up what they need once the topology is up (0 or -errno);
 * start plans the timeline and arms its timer (0 or -errno); the families'
 * other calls go through r->fenv (fault_family.h). */
int run_faults_init(struct run *r);
int run_faults_attach(struct run *r);
int run_faults_start(struct run *r);
void run_faults_free(struct run *r);

/* run_judge.c, at the end of a run: collect gathers what the probes and
 * the supervisor hold into r->obs (before teardown); report scans for
 * residue, judges every invariant, builds and writes the report (after
 * teardown) and returns the run's verdict. */
void run_judge_collect(struct run *r);
enum verdict run_judge_report(struct run *r);

/* run_probes.c: attach the workload's probes to its held child; 0 or
 * -errno (the run then fails to start). */
int run_probes_attach(struct run *r, size_t i);
/* At the end of a cycle: fill row @c of the samples. */
void run_probes_sample(struct run *r, size_t c);
void run_probes_drain(struct run *r);
/* For a live status: workload @i's FAULTD_COUNTER values into @row
 * ("counters"), and the events every probe of the run lost so far. */
void run_probes_status(const struct run *r, size_t i, json_t *row);
unsigned long long run_probes_lost(const struct run *r);
/* Before the run starts: the object kinds the invariants count per cycle. */
void run_probes_kinds(struct run *r);
/* A process of workload @wl forked @child, or @pid of it exited. */
void run_probes_fork(struct run *r, size_t wl, pid_t child, pid_t parent);
void run_probes_exec(struct run *r, size_t wl, pid_t pid);
void run_probes_exit(struct run *r, size_t wl, pid_t pid);
/* After the last cycle: sites, losses, what is left alive. */
void run_probes_finish(struct run *r);
void run_probes_destroy(struct run *r);
/* An allocation stack of @pid, from heap probe @h's stacks, as frame names
 * by @s (any thread's: it touches nothing of the run's). */
json_t *run_heap_stack(struct sym *s, struct probe_heap *h, pid_t pid, int32_t stack_id,
		       uint64_t caller);

/* run_sym.c: a finding's stacks, named off the run's loop. The loop makes
 * a job (new: the process's maps, read now, copied into it; NULL on
 * ENOMEM), builds the finding's JSON (found, owned by the job) and adds
 * each stack's addresses with the object and key its names go in (stack:
 * the key holds null until then). post hands it to the run's naming
 * worker, which names the stacks from the maps copy (the process may be
 * gone by then); back on the loop, in the order posted, the names go in
 * and done records the finding and logs it (done may take found, leaving
 * NULL); then the process held, if any, goes on. settle waits until every
 * job posted is done (at the stop, before the SIGTERMs; before the
 * report); destroy ends the worker, dropping what was not delivered (and
 * letting its processes go on). */
#define RUN_SYM_STACKS 6		/* stacks one finding has named */
#define RUN_SYM_FRAMES 40		/* frames per stack */
struct run_sym_job;
typedef void run_sym_done_fn(struct run *r, struct run_sym_job *j);
struct run_sym_stack {
	uint64_t ips[RUN_SYM_FRAMES];
	int n;
	bool first_is_ip;		/* frame 0 is an instruction pointer */
	json_t *in;			/* the object of found its names go in */
	const char *key;		/* ... under this key (a literal) */
};
struct run_sym_job {
	struct fifo_node node;
	run_sym_done_fn *done;		/* on the loop, once named */
	json_t *found;			/* the finding, without its names yet */
	pid_t pid;
	pid_t hold;			/* held (SIGSTOP) until named or dropped: SIGCONT then */
	bool forget;			/* the process is dying: the worker drops its maps after */
	char *maps;			/* the loop's snapshot of its maps, a copy */
	size_t maps_len;
	size_t n;
	struct run_sym_stack st[RUN_SYM_STACKS];
	json_t *named[RUN_SYM_STACKS];	/* the worker's */
	uint64_t naming_ns;		/* the worker's time for them */
};
/* @size: the caller's struct, which begins with a struct run_sym_job. */
struct run_sym_job *run_sym_job_new(struct run *r, pid_t pid, size_t size,
				    run_sym_done_fn *done);
void run_sym_stack(struct run_sym_job *j, json_t *in, const char *key, const uint64_t *ips,
		   int n, bool first_is_ip);
void run_sym_post(struct run *r, struct run_sym_job *j);
void run_sym_settle(struct run *r);
void run_sym_destroy(struct run *r);

/* run_leak.c: no_leak's hold at exit, called by run_probes.c for a
 * workload with the heap probe; attach: 0 or -errno. drain reads the
 * exits (their scans go to the worker); settle also waits until every
 * scan's result is in r->obs.leaks; destroy waits for the scans, then lets
 * the probes go. defer_kill: while a held process is being scanned, or
 * held and not yet posted (a kill or a SIGTERM would cut its scan short,
 * as none could when the scan held the loop), re-arm the kill's or the
 * timeout's timer @ev for RUN_REAP_POLL_MS and say so; not past @limit_ms
 * (run time). */
int run_leak_attach(struct run *r, size_t i, pid_t pid);
void run_leak_fork(struct run *r, size_t wl, pid_t child);
void run_leak_exit(struct run *r, size_t wl, pid_t pid);
void run_leak_drain(struct run *r);
void run_leak_settle(struct run *r);
bool run_leak_defer_kill(struct run *r, struct event *ev, uint64_t limit_ms);
void run_leak_destroy(struct run *r);

#endif
