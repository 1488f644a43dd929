/* User side of bpf/lifecycle.bpf.c: the faultd USDT probes of a workload. */
#ifndef FAULTD_PROBE_LIFECYCLE_H
#define FAULTD_PROBE_LIFECYCLE_H

#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "lifecycle.h"

struct probe_lifecycle;

typedef void (*probe_life_cb)(const struct life_event *ev, void *arg);

struct probe_lifecycle *probe_lifecycle__open(struct event_base *base, probe_life_cb cb, void *arg);
/* Attach to the probes in @exe for @pid. Returns how many of the six
 * probes the program has (0: it has none), or -errno. */
int probe_lifecycle__attach(struct probe_lifecycle *p, pid_t pid, const char *exe);
/* Objects of @kind made by a library's calls: @create_fn returns a new id
 * (negative: none), @destroy_fn takes one as its first argument, both in
 * @lib (a path, or a name the loader finds) as mapped by @pid. 0 or -errno. */
int probe_lifecycle__track_calls(struct probe_lifecycle *p, pid_t pid, const char *lib,
			    const char *create_fn, const char *destroy_fn, const char *kind);
/* Report every change of the FAULTD_COUNTER @counter as a LIFE_EV_COUNTER
 * event. 0 or -errno. */
int probe_lifecycle__watch(struct probe_lifecycle *p, const char *counter);
/* How many objects of each of @kinds are alive now, into @out. */
void probe_lifecycle__count_alive(struct probe_lifecycle *p, const char *const *kinds, size_t n,
			     long long *out);
int probe_lifecycle__drain(struct probe_lifecycle *p);
/* [{kind, id, created_tid, events, last_event}] of objects still alive. */
json_t *probe_lifecycle__alive(struct probe_lifecycle *p, int max);
/* [{queue, seq, ptr, sent_tid}] of messages sent and never received, and
 * their total in *total. */
json_t *probe_lifecycle__inflight(struct probe_lifecycle *p, int max, unsigned long long *total);
/* {"name": value} of the FAULTD_COUNTER probes. */
json_t *probe_lifecycle__counters(struct probe_lifecycle *p);
unsigned long long probe_lifecycle__lost(const struct probe_lifecycle *p);
void probe_lifecycle__destroy(struct probe_lifecycle *p);

#endif
