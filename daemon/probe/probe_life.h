/* User side of bpf/lifecycle.bpf.c: the faultd USDT probes of a workload. */
#ifndef FAULTD_PROBE_LIFE_H
#define FAULTD_PROBE_LIFE_H

#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "lifecycle.h"

struct probe_life;

typedef void (*probe_life_cb)(const struct life_event *ev, void *arg);

struct probe_life *probe_life__open(struct event_base *base, probe_life_cb cb, void *arg);
/* Attach to the probes in @exe for @pid. Returns how many of the six
 * probes the program has (0: it has none), or -errno. */
int probe_life__attach(struct probe_life *p, pid_t pid, const char *exe);
/* Objects of @kind made by a library's calls: @create_fn returns a new id
 * (negative: none), @destroy_fn takes one as its first argument, both in
 * @lib (a path, or a name the loader finds) as mapped by @pid. 0 or -errno. */
int probe_life__track_calls(struct probe_life *p, pid_t pid, const char *lib,
			    const char *create_fn, const char *destroy_fn, const char *kind);
/* Report every change of the FAULTD_COUNTER @counter as a LIFE_EV_COUNTER
 * event. 0 or -errno. */
int probe_life__watch(struct probe_life *p, const char *counter);
/* How many objects of each of @kinds are alive now, into @out. */
void probe_life__count_alive(struct probe_life *p, const char *const *kinds, size_t n,
			     long long *out);
int probe_life__drain(struct probe_life *p);
/* [{kind, id, created_tid, events, last_event}] of objects still alive. */
json_t *probe_life__alive(struct probe_life *p, int max);
/* [{queue, seq, ptr, sent_tid}] of messages sent and never received, and
 * their total in *total. */
json_t *probe_life__inflight(struct probe_life *p, int max, unsigned long long *total);
/* {"name": value} of the FAULTD_COUNTER probes. */
json_t *probe_life__counters(struct probe_life *p);
unsigned long long probe_life__lost(const struct probe_life *p);
void probe_life__destroy(struct probe_life *p);

#endif
