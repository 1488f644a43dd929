/* Suppressions for the heap and fd invariants (lib/suppress.c): where the
 * rules come from, and how a suppressed finding shows in the evidence. */
#include <errno.h>
#include <stdio.h>

#include "inv.h"
#include "inv_params.h"
#include "suppress.h"

int inv_parse_suppressions(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct inv_common *p = target;

	return sc_suppress_file(ctx, val, &p->suppressions);
}

struct suppress *inv_suppressions(const struct run_obs *obs, const struct sc_invariant *inv,
				  char *err, size_t err_len)
{
	const struct inv_common *p = inv->params;
	const char *files[3] = {obs->suppressions[0], obs->suppressions[1],
				p ? p->suppressions : NULL};
	struct suppress *s = NULL;

	err[0] = '\0';
	for (size_t i = 0; i < 3; i++) {
		if (!files[i] || (i && files[i - 1] && !strcmp(files[i], files[i - 1])))
			continue;
		if (suppress_load(&s, files[i], err, err_len)) {
			suppress_free(s);
			return NULL;
		}
	}
	return s;
}

void inv_mark_suppressed(json_t *item, const char *rule)
{
	json_object_set_new(item, "suppressed", json_true());
	json_object_set_new(item, "suppressed_by", json_string(rule));
}
