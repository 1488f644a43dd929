/* `faultctl check` and `faultd --check`: every probe and fault mechanism
 * tried once, through a real run of a built-in scenario (a throwaway
 * process in a throwaway pair of namespaces), and the capability table it
 * leaves printed: what works here, how, and what is missing and why. */
#ifndef FAULTD_CHECK_H
#define FAULTD_CHECK_H

#include <stdio.h>

#include <event2/event.h>
#include <jansson.h>

#include "run.h"

/* Run the check on @base with @opts' cgroup root, journal and harness
 * directories (its report goes to a temporary directory, removed after).
 * *caps_out is every feature's row (caps_json), new reference. Returns 0
 * when every core feature works, -ENOTSUP when one does not, another
 * -errno when the check itself could not run. */
int check__run(struct event_base *base, const struct run_opts *opts, json_t **caps_out);

/* The table a person reads: feature, state, how or why, what gives it. */
void check_print(FILE *f, const json_t *caps);

#endif
