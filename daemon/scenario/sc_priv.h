/* What the scenario parser's files share, and nothing outside
 * daemon/scenario/ includes: the parse context, the key engine's helpers
 * and each section's parser (scenario.c's top-level table names them). */
#ifndef FAULTD_SC_PRIV_H
#define FAULTD_SC_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "jpos.h"
#include "scenario.h"

#define SC_MAX_FILE (1u << 20)	/* a scenario larger than 1 MiB is a mistake */
#define SC_MAX_ERRORS 20
#define SC_MAX_LINKS 64	/* kernel names hold a two-digit index */

struct sc_ctx {
	struct scenario *sc;
	struct jpath path;
	char *errors;		/* newline-separated messages */
	size_t errors_len;
	int n_errors;
	int oom;
};

/* sc_keys.c */
int sc_in_list(const char *const *list, const char *s);
void sc_join_list(const char *const *list, char *buf, size_t len);
void *sc_track(struct sc_ctx *ctx, void *p);
const char *sc_json_type_name(const json_t *v);	/* "an object", "a string", ... */
int sc_parse_strv(struct sc_ctx *ctx, json_t *val, const char ***out);
int sc_valid_name(const char *s);
/* A JSON array of objects, each read by @keys into a new array of
 * @size-byte elements (returned, *@n of them, one zeroed spare at the
 * end). @check (optional) judges each element its keys read cleanly, at
 * its index. Every element's errors are reported; *@err is 0 or the first
 * one (NULL is returned only for a non-array or ENOMEM). @what names the
 * elements in the error for a non-array: "routes". */
void *sc_parse_array(struct sc_ctx *ctx, json_t *val, const char *what,
		     const struct sc_key *keys, size_t size, size_t *n,
		     int (*check)(struct sc_ctx *ctx, void *elem, size_t i, void *arg), void *arg,
		     int *err);

/* One parser per section, for scenario.c's key table. */
int sc_parse_workloads(struct sc_ctx *ctx, json_t *val, void *target);
int sc_parse_invariants(struct sc_ctx *ctx, json_t *val, void *target);
int sc_default_invariants(struct sc_ctx *ctx, struct scenario *sc);
int sc_parse_topology(struct sc_ctx *ctx, json_t *val, void *target);
int sc_parse_suppressions(struct sc_ctx *ctx, json_t *val, void *target);	/* sc_suppress.c */
int sc_parse_faults(struct sc_ctx *ctx, json_t *val, void *target);
int sc_parse_schedule(struct sc_ctx *ctx, json_t *val, void *target);
bool scenario_sched_cyclic(const struct scenario *sc);

#endif
