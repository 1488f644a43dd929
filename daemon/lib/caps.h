/* What this kernel and host let faultd do, feature by feature. Each probe or
 * fault mechanism records here whether it works (and by which mechanism) or
 * why not, the first time it is tried; a feature found missing stays missing
 * for the life of the process, so one refused program costs its feature, on
 * every run, and nothing else. The report's "capabilities", `faultctl check`
 * and the invariants' INCONCLUSIVE reasons all read this table. */
#ifndef FAULTD_CAPS_H
#define FAULTD_CAPS_H

#include <stdbool.h>

#include <jansson.h>

enum caps_id {
	CAPS_CGROUP,		/* core: cgroup v2, one cgroup per run and workload */
	CAPS_PROC,		/* core: fork, exec and exit of the workload tree */
	CAPS_CRASH_STACK,	/* the crashing thread's stack as the signal lands */
	CAPS_HEAP,		/* allocator uprobes: heap_stable, no_invalid_free */
	CAPS_FDS,		/* iter/task_file counts: fds_stable, sockets_stable */
	CAPS_FD_CALLS,		/* per-syscall counts beside the fd samples */
	CAPS_LIFECYCLE,		/* USDT object lifecycles and counters */
	CAPS_NETNS,		/* namespaces and veth pairs */
	CAPS_TAP,		/* tap links (/dev/net/tun) */
	CAPS_PACKET,		/* drop, corrupt, duplicate, blackhole (tc BPF) */
	CAPS_DELAY,		/* delay and jitter on a link */
	CAPS_RATE,		/* rate limits (tbf) */
	CAPS_SYSCALL_SOCKET,	/* socket() errors in a cgroup (cgroup/sock_create) */
	CAPS_SYSCALL_SECCOMP,	/* any syscall's errors (seccomp, fixed at exec) */
	CAPS__MAX,
};

enum caps_state { CAPS_UNKNOWN = 0, CAPS_OK, CAPS_MISSING };

/* The feature's name as scenarios, reports and `faultctl check` spell it. */
const char *caps_name(enum caps_id id);
/* -1 if @name is no feature. */
int caps_lookup(const char *name);
/* Core features are what every verdict stands on: `check` fails without them. */
bool caps_core(enum caps_id id);
/* What gives the feature, for a person reading why it is missing. */
const char *caps_needs(enum caps_id id);

enum caps_state caps_state(enum caps_id id);
/* It works, through @via ("tcx", "tc clsact", "netem"...); NULL keeps the
 * mechanism recorded before. A feature found missing stays missing. */
void caps_set_ok(enum caps_id id, const char *via);
/* It does not work here, for the reason formatted; logged once, with the
 * reason, the first time. */
void caps_set_missing(enum caps_id id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Why it is missing ("" if it is not), and the mechanism in use ("" if none). */
const char *caps_why(enum caps_id id);
const char *caps_via(enum caps_id id);
/* Has a via been recorded (read under the table's lock)? */
bool caps_has_via(enum caps_id id);

/* {"proc": {"state": "ok", "via": "..."}, "heap": {"state": "missing",
 * "why": "...", "needs": "..."}, ...}: every feature tried so far, or all
 * of them with @all. New reference, NULL on ENOMEM. */
json_t *caps_json(bool all);

/* Forget everything (tests; `faultd --check` starts from nothing). */
void caps_reset(void);

#endif
