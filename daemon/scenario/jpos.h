/* Key paths into a JSON document ("workloads[1].cmd") and their line and
 * column in the source text. jansson reports positions only for syntax
 * errors; validation errors need them too, so this scanner re-walks the
 * (already valid) text to find where a path's key or value starts. */
#ifndef FAULTD_JPOS_H
#define FAULTD_JPOS_H

#include <stdbool.h>
#include <stddef.h>

#define JPATH_MAX 16

struct jpath {
	int depth;
	struct {
		const char *key;	/* NULL for an array index */
		size_t idx;
	} c[JPATH_MAX];
};

void jpath_push_key(struct jpath *p, const char *key);
void jpath_push_idx(struct jpath *p, size_t idx);
void jpath_pop(struct jpath *p);
/* "workloads[1].cmd"; the root is "(root)". */
void jpath_format(const struct jpath *p, char *buf, size_t len);

/* Find @path in @text. With @want_key, the position of the member's key
 * (for "unknown key" errors); otherwise of its value. Falls back to the
 * deepest enclosing value found. Lines and columns start at 1. */
void jpos_find(const char *text, size_t len, const struct jpath *path,
	       bool want_key, int *line, int *col);

#endif
