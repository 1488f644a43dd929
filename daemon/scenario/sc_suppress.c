/* "suppressions": a suppression file named by the scenario (top level, or
 * one invariant's), checked at parse so a bad line is a scenario error, and
 * kept as a path resolved against the scenario's folder. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_priv.h"
#include "suppress.h"

int sc_suppress_file(struct sc_ctx *ctx, json_t *val, const char **out)
{
	const char *given = json_string_value(val);
	struct suppress *s = NULL;
	char *dir = NULL, *path = NULL, msg[512];
	int err = 0;

	if (!given || !*given) {
		sc_error(ctx, false, "expected the path of a suppression file");
		return -EINVAL;
	}
	if (given[0] == '/') {
		path = strdup(given);
	} else {
		dir = strdup(ctx->sc->path ? ctx->sc->path : ".");
		if (dir && asprintf(&path, "%s/%s", dirname(dir), given) < 0)
			path = NULL;
	}
	free(dir);
	if (!sc_track(ctx, path))	/* frees it on failure */
		return -ENOMEM;
	err = suppress_load(&s, path, msg, sizeof(msg));
	suppress_free(s);
	if (err) {
		sc_error(ctx, false, "%s", msg);
		return -EINVAL;
	}
	*out = path;
	return 0;
}

int sc_parse_suppressions(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;

	return sc_suppress_file(ctx, val, &sc->suppressions);
}
