/* Suppression files (see suppress.h): parse TYPE:PATTERN lines, match a
 * finding's frames against them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "suppress.h"
#include "util.h"

#define SUPPRESS_MAX_FILE (4u << 20)

static const char *const suppress_types[] = {
	"leak", "invalid_free", "double_free", "heap", "fd", NULL,
};

struct suppress_rule {
	char type[16];
	char *pattern;
	char where[320];		/* "leak:PATTERN (FILE:LINE)", what a report shows */
};

struct suppress {
	struct suppress_rule *rules;
	size_t n, cap;
};

/* '*' matches any run; '^' / '$' anchor; otherwise the pattern may start
 * anywhere in @str (LSan's TemplateMatch). */
static bool glob_here(const char *p, const char *s, bool anchored_end)
{
	if (!*p)
		return !anchored_end || !*s;
	if (*p == '*') {
		while (*p == '*')
			p++;
		for (;; s++) {
			if (glob_here(p, s, anchored_end))
				return true;
			if (!*s)
				return false;
		}
	}
	if (!*s || *p != *s)
		return false;
	return glob_here(p + 1, s + 1, anchored_end);
}

int suppress_pattern_match(const char *pat, const char *str)
{
	char buf[256];
	size_t len;
	bool start = pat[0] == '^', end;

	snprintf(buf, sizeof(buf), "%s", pat + start);
	len = strlen(buf);
	end = len && buf[len - 1] == '$';
	if (end)
		buf[len - 1] = '\0';
	if (start)
		return glob_here(buf, str, end);
	for (const char *s = str;; s++) {
		if (glob_here(buf, s, end))
			return 1;
		if (!*s)
			return 0;
	}
}

static int add_rule(struct suppress *s, const char *type, const char *pat, const char *path,
		    int line)
{
	struct suppress_rule *r;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct suppress_rule *nr = realloc(s->rules, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		s->rules = nr;
		s->cap = ncap;
	}
	r = &s->rules[s->n];
	snprintf(r->type, sizeof(r->type), "%s", type);
	r->pattern = strdup(pat);
	if (!r->pattern)
		return -ENOMEM;
	snprintf(r->where, sizeof(r->where), "%s:%s (%s:%d)", type, pat, path, line);
	s->n++;
	return 0;
}

/* One line: blank, "# comment" or TYPE:PATTERN. */
static int parse_line(struct suppress *s, char *text, const char *path, int line, char *err,
		      size_t err_len)
{
	char *start = text, *colon, *end;
	bool known = false;

	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (!*start || *start == '#')
		return 0;
	colon = strchr(start, ':');
	if (!colon) {
		snprintf(err, err_len, "%s:%d:%d: expected TYPE:PATTERN (e.g. leak:my_func)",
			 path, line, (int)(start - text) + 1);
		return -EINVAL;
	}
	*colon = '\0';
	for (size_t i = 0; suppress_types[i]; i++)
		known |= !strcmp(start, suppress_types[i]);
	if (!known) {
		snprintf(err, err_len, "%s:%d:%d: unknown type '%s' (leak, invalid_free, "
			 "double_free, heap or fd)", path, line, (int)(start - text) + 1, start);
		return -EINVAL;
	}
	if (!colon[1] || strlen(colon + 1) >= 256) {
		snprintf(err, err_len, "%s:%d:%d: %s: a pattern of 1 to 255 characters", path,
			 line, (int)(colon - text) + 2, start);
		return -EINVAL;
	}
	return add_rule(s, start, colon + 1, path, line);
}

int suppress_load(struct suppress **sp, const char *path, char *err, size_t err_len)
{
	char *text = NULL, *line, *next;
	int err_no, n = 0;

	err[0] = '\0';
	if (!*sp) {
		*sp = calloc(1, sizeof(**sp));
		if (!*sp)
			return -ENOMEM;
	}
	err_no = util_read_file(path, SUPPRESS_MAX_FILE, &text, NULL);
	if (err_no) {
		snprintf(err, err_len, "%s: %s", path, strerror(-err_no));
		return err_no;
	}
	for (line = text; line && !err_no; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		err_no = parse_line(*sp, line, path, ++n, err, err_len);
	}
	free(text);
	return err_no;
}

void suppress_free(struct suppress *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->rules[i].pattern);
	free(s->rules);
	free(s);
}

size_t suppress_count(const struct suppress *s)
{
	return s ? s->n : 0;
}

/* The parts of a frame "func+0x1a (file.c:42) [module]": function, file
 * and module, each matched on its own. */
static bool frame_matches(const char *pat, const char *frame)
{
	char part[512];
	const char *p, *q;
	size_t len;

	len = strcspn(frame, "+ ");
	if (len && len < sizeof(part) && frame[0] != '0') {
		memcpy(part, frame, len);
		part[len] = '\0';
		if (suppress_pattern_match(pat, part))
			return true;
	}
	p = strchr(frame, '(');
	q = p ? strrchr(p, ':') : NULL;
	if (p && q && (size_t)(q - p - 1) < sizeof(part)) {
		memcpy(part, p + 1, (size_t)(q - p - 1));
		part[q - p - 1] = '\0';
		if (suppress_pattern_match(pat, part))
			return true;
	}
	p = strrchr(frame, '[');
	q = p ? strchr(p, ']') : NULL;
	if (p && q && (size_t)(q - p - 1) < sizeof(part)) {
		memcpy(part, p + 1, (size_t)(q - p - 1));
		part[q - p - 1] = '\0';
		if (suppress_pattern_match(pat, part))
			return true;
	}
	return false;
}

const char *suppress_match_stack(const struct suppress *s, const char *type,
				 const json_t *stack)
{
	const json_t *f;
	size_t k;

	for (size_t i = 0; s && i < s->n; i++) {
		if (strcmp(s->rules[i].type, type))
			continue;
		json_array_foreach(stack, k, f)
			if (json_is_string(f) && frame_matches(s->rules[i].pattern,
							       json_string_value(f)))
				return s->rules[i].where;
	}
	return NULL;
}

const char *suppress_match_names(const struct suppress *s, const char *type,
				 const char *const *names)
{
	for (size_t i = 0; s && i < s->n; i++) {
		if (strcmp(s->rules[i].type, type))
			continue;
		for (size_t k = 0; names[k]; k++)
			if (suppress_pattern_match(s->rules[i].pattern, names[k]))
				return s->rules[i].where;
	}
	return NULL;
}
