#include <stdio.h>
#include <string.h>

#include "jpos.h"

void jpath_push_key(struct jpath *p, const char *key)
{
	if (p->depth < JPATH_MAX) {
		p->c[p->depth].key = key;
		p->c[p->depth].idx = 0;
	}
	p->depth++;
}

void jpath_push_idx(struct jpath *p, size_t idx)
{
	if (p->depth < JPATH_MAX) {
		p->c[p->depth].key = NULL;
		p->c[p->depth].idx = idx;
	}
	p->depth++;
}

void jpath_pop(struct jpath *p)
{
	if (p->depth > 0)
		p->depth--;
}

void jpath_format(const struct jpath *p, char *buf, size_t len)
{
	size_t off = 0;
	int depth = p->depth < JPATH_MAX ? p->depth : JPATH_MAX;

	buf[0] = '\0';
	if (depth == 0) {
		snprintf(buf, len, "(root)");
		return;
	}
	for (int i = 0; i < depth && off < len; i++) {
		int n;

		if (p->c[i].key)
			n = snprintf(buf + off, len - off, "%s%s", i ? "." : "", p->c[i].key);
		else
			n = snprintf(buf + off, len - off, "[%zu]", p->c[i].idx);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

struct scan {
	const char *s, *end;
	const char *best;	/* deepest position matched so far */
};

static void skip_ws(struct scan *sc)
{
	while (sc->s < sc->end && (*sc->s == ' ' || *sc->s == '\t' ||
				   *sc->s == '\n' || *sc->s == '\r'))
		sc->s++;
}

/* Skip a string starting at the opening quote; on return s is past it.
 * Compares its raw content with @want (escapes compared raw: our keys have
 * none). */
static bool skip_string(struct scan *sc, const char *want)
{
	const char *start = ++sc->s;

	while (sc->s < sc->end && *sc->s != '"') {
		if (*sc->s == '\\' && sc->s + 1 < sc->end)
			sc->s++;
		sc->s++;
	}
	size_t n = (size_t)(sc->s - start);
	if (sc->s < sc->end)
		sc->s++;
	return want && strlen(want) == n && memcmp(start, want, n) == 0;
}

static void skip_value(struct scan *sc)
{
	int depth = 0;

	skip_ws(sc);
	do {
		if (sc->s >= sc->end)
			return;
		char ch = *sc->s;
		if (ch == '"') {
			skip_string(sc, NULL);
			continue;
		}
		if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']')
			depth--;
		else if (depth == 0 && (ch == ',' || ch == ':'))
			return;
		sc->s++;
		if (depth == 0 && (ch == '}' || ch == ']'))
			return;
		if (depth == 0 && ch != '{' && ch != '[') {
			/* A scalar: run to the next delimiter. */
			while (sc->s < sc->end && !strchr(",}] \t\r\n", *sc->s))
				sc->s++;
			return;
		}
	} while (depth > 0);
}

/* Past the value at sc->s and its comma: true if another element follows. */
static bool next_element(struct scan *sc)
{
	skip_value(sc);
	skip_ws(sc);
	if (sc->s < sc->end && *sc->s == ',') {
		sc->s++;
		return true;
	}
	return false;
}

/* sc->s is at a value; find component @i of @path inside it. */
static void find(struct scan *sc, const struct jpath *path, int i, bool want_key)
{
	int depth = path->depth < JPATH_MAX ? path->depth : JPATH_MAX;

	skip_ws(sc);
	sc->best = sc->s;
	if (i >= depth || sc->s >= sc->end)
		return;
	if (*sc->s == '{' && path->c[i].key) {
		sc->s++;
		for (;;) {
			skip_ws(sc);
			if (sc->s >= sc->end || *sc->s != '"')
				return;
			const char *key_at = sc->s;
			bool hit = skip_string(sc, path->c[i].key);
			skip_ws(sc);
			if (sc->s < sc->end && *sc->s == ':')
				sc->s++;
			if (hit) {
				if (i + 1 == depth && want_key) {
					sc->best = key_at;
					return;
				}
				find(sc, path, i + 1, want_key);
				return;
			}
			if (!next_element(sc))
				return;
		}
	}
	if (*sc->s == '[' && !path->c[i].key) {
		sc->s++;
		for (size_t n = 0;; n++) {
			skip_ws(sc);
			if (sc->s >= sc->end || *sc->s == ']')
				return;
			if (n == path->c[i].idx) {
				find(sc, path, i + 1, want_key);
				return;
			}
			if (!next_element(sc))
				return;
		}
	}
}

void jpos_find(const char *text, size_t len, const struct jpath *path,
	       bool want_key, int *line, int *col)
{
	struct scan sc = {.s = text, .end = text + len, .best = text};

	find(&sc, path, 0, want_key);
	*line = 1;
	*col = 1;
	for (const char *p = text; p < sc.best && p < text + len; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}
