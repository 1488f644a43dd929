/* The table-driven key parser every section uses: a JSON object read
 * against a table of keys (name, type, bounds, default, validator), errors
 * collected with their file, line, column and key path. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

int sc_in_list(const char *const *list, const char *s)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

void sc_join_list(const char *const *list, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; list[i] && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", list[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

struct jpath *sc_path(struct sc_ctx *ctx)
{
	return &ctx->path;
}

void sc_error(struct sc_ctx *ctx, bool at_key, const char *fmt, ...)
{
	char msg[512], where[256], line[1024];
	int lno, col, n;
	va_list ap;

	ctx->n_errors++;
	if (ctx->n_errors > SC_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jpath_format(&ctx->path, where, sizeof(where));
	jpos_find(ctx->sc->text, ctx->sc->text_len, &ctx->path, at_key, &lno, &col);
	n = snprintf(line, sizeof(line), "%s:%d:%d: %s: %s\n", ctx->sc->path, lno,
		     col, where, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	char *grown = realloc(ctx->errors, ctx->errors_len + (size_t)n + 1);
	if (!grown) {
		ctx->oom = 1;
		return;
	}
	ctx->errors = grown;
	memcpy(ctx->errors + ctx->errors_len, line, (size_t)n + 1);
	ctx->errors_len += (size_t)n;
}

void *sc_track(struct sc_ctx *ctx, void *p)
{
	struct scenario *sc = ctx->sc;
	void **grown;

	if (!p) {
		ctx->oom = 1;
		return NULL;
	}
	grown = util_grow(sc->allocs, &sc->cap_allocs, sc->n_allocs + 1, sizeof(*grown));
	if (!grown) {
		free(p);
		ctx->oom = 1;
		return NULL;
	}
	sc->allocs = grown;
	sc->allocs[sc->n_allocs++] = p;
	return p;
}

const char *sc_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

int sc_parse_strv(struct sc_ctx *ctx, json_t *val, const char ***out)
{
	const char **v;
	size_t i, n;
	json_t *item;
	int bad = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of strings, got %s",
			 sc_json_type_name(val));
		return -EINVAL;
	}
	n = json_array_size(val);
	v = sc_track(ctx, calloc(n + 1, sizeof(*v)));
	if (!v)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		jpath_push_idx(&ctx->path, i);
		if (!json_is_string(item)) {
			sc_error(ctx, false, "expected a string, got %s",
				 sc_json_type_name(item));
			bad = 1;
		} else {
			v[i] = json_string_value(item);
		}
		jpath_pop(&ctx->path);
	}
	*out = v;
	return bad ? -EINVAL : 0;
}

/* "cpus": [0, 1]: 1 to SC_MAX_CPUS CPU numbers. */
static int parse_cpus(struct sc_ctx *ctx, json_t *val, struct sc_cpus *out)
{
	json_t *item;
	size_t i;

	if (!json_is_array(val) || json_array_size(val) == 0 ||
	    json_array_size(val) > SC_MAX_CPUS) {
		sc_error(ctx, false, "expected an array of 1 to %d CPU numbers", SC_MAX_CPUS);
		return -EINVAL;
	}
	json_array_foreach(val, i, item) {
		json_int_t c = json_integer_value(item);

		if (!json_is_integer(item) || c < 0 || c >= CPU_SETSIZE) {
			jpath_push_idx(&ctx->path, i);
			sc_error(ctx, false, "expected a CPU number in [0, %d]", CPU_SETSIZE - 1);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
		out->cpu[i] = (int)c;
	}
	out->n = json_array_size(val);
	return 0;
}

/* Check @val against @k and store it at target + k->off. */
static int parse_value(struct sc_ctx *ctx, const struct sc_key *k, json_t *val,
		       void *target)
{
	char *field = (char *)target + k->off;
	char choices[256];
	double num;
	int idx;

	switch (k->type) {
	case SC_STR:
		if (!json_is_string(val)) {
			sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(val));
			return -EINVAL;
		}
		if (json_string_length(val) == 0) {
			sc_error(ctx, false, "must not be empty");
			return -EINVAL;
		}
		*(const char **)field = json_string_value(val);
		return 0;
	case SC_BOOL:
		if (!json_is_boolean(val)) {
			sc_error(ctx, false, "expected true or false, got %s", sc_json_type_name(val));
			return -EINVAL;
		}
		*(bool *)field = json_is_true(val);
		return 0;
	case SC_INT:
		if (!json_is_integer(val)) {
			sc_error(ctx, false, "expected an integer, got %s", sc_json_type_name(val));
			return -EINVAL;
		}
		num = (double)json_integer_value(val);
		if (num < k->min || num > k->max) {
			sc_error(ctx, false, "%lld is out of range [%.0f, %.0f]",
				 json_integer_value(val), k->min, k->max);
			return -EINVAL;
		}
		*(long long *)field = json_integer_value(val);
		return 0;
	case SC_NUM:
		if (!json_is_number(val)) {
			sc_error(ctx, false, "expected a number, got %s", sc_json_type_name(val));
			return -EINVAL;
		}
		num = json_number_value(val);
		if (!isfinite(num) || num < k->min || num > k->max) {
			sc_error(ctx, false, "%g is out of range [%g, %g]", num, k->min, k->max);
			return -EINVAL;
		}
		*(double *)field = num;
		return 0;
	case SC_STRV:
		return sc_parse_strv(ctx, val, (const char ***)field);
	case SC_ENUM:
		sc_join_list(k->choices, choices, sizeof(choices));
		if (!json_is_string(val)) {
			sc_error(ctx, false, "expected one of %s, got %s", choices,
				 sc_json_type_name(val));
			return -EINVAL;
		}
		idx = sc_in_list(k->choices, json_string_value(val));
		if (idx < 0) {
			sc_error(ctx, false, "'%s' is not one of %s",
				 json_string_value(val), choices);
			return -EINVAL;
		}
		*(int *)field = idx;
		return 0;
	case SC_CPUS:
		return parse_cpus(ctx, val, (struct sc_cpus *)field);
	case SC_CUSTOM:
		return k->parse(ctx, val, target);
	}
	return -EINVAL;
}

void *sc_parse_array(struct sc_ctx *ctx, json_t *val, const char *what,
		     const struct sc_key *keys, size_t size, size_t *n,
		     int (*check)(struct sc_ctx *ctx, void *elem, size_t i, void *arg), void *arg,
		     int *err)
{
	char *elems = NULL;
	json_t *item;
	size_t i;

	*err = 0;
	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of %s, got %s", what, sc_json_type_name(val));
		*err = -EINVAL;
		return NULL;
	}
	elems = sc_track(ctx, calloc(json_array_size(val) + 1, size));
	if (!elems) {
		*err = -ENOMEM;
		return NULL;
	}
	*n = json_array_size(val);
	json_array_foreach(val, i, item) {
		int e;

		jpath_push_idx(&ctx->path, i);
		e = sc_parse_object(ctx, item, keys, elems + i * size);
		if (!e && check)
			e = check(ctx, elems + i * size, i, arg);
		jpath_pop(&ctx->path);
		if (e && !*err)
			*err = e;
	}
	return elems;
}

int sc_parse_object(struct sc_ctx *ctx, json_t *obj, const struct sc_key *keys,
		    void *target)
{
	const char *name;
	json_t *val;
	int err = 0;

	if (!json_is_object(obj)) {
		sc_error(ctx, false, "expected an object, got %s", sc_json_type_name(obj));
		return -EINVAL;
	}
	json_object_foreach(obj, name, val) {
		const struct sc_key *k = keys;

		while (k->name && strcmp(k->name, name) != 0)
			k++;
		if (!k->name) {
			char known[512];
			size_t off = 0;

			known[0] = '\0';
			for (k = keys; k->name && off < sizeof(known); k++)
				off += (size_t)snprintf(known + off, sizeof(known) - off,
							"%s%s", k == keys ? "" : ", ", k->name);
			jpath_push_key(&ctx->path, name);
			sc_error(ctx, true, "unknown key (known keys: %s)", known);
			jpath_pop(&ctx->path);
			err = -EINVAL;
		}
	}
	for (const struct sc_key *k = keys; k->name; k++) {
		json_t *dflt = NULL;
		int e;

		val = json_object_get(obj, k->name);
		if (!val && (k->flags & SC_REQ)) {
			jpath_push_key(&ctx->path, k->name);
			sc_error(ctx, false, "missing required key%s%s",
				 k->doc ? ": " : "", k->doc ? k->doc : "");
			jpath_pop(&ctx->path);
			err = -EINVAL;
			continue;
		}
		if (!val && !k->def)
			continue;
		if (!val) {
			/* Defaults are JSON text in the table; keep the value
			 * alive in the root so strings stay valid. */
			dflt = json_loads(k->def, JSON_DECODE_ANY, NULL);
			if (!dflt) {
				ctx->oom = 1;
				return -ENOMEM;
			}
			json_array_append(json_object_get(ctx->sc->root, "defaults"), dflt);
			val = dflt;
		}
		jpath_push_key(&ctx->path, k->name);
		e = parse_value(ctx, k, val, target);
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
		json_decref(dflt);
	}
	return err;
}

int sc_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}
