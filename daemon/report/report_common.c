/* What every reporter shares: escaping text for XML and HTML, an
 * invariant's evidence as readable text, and writing a rendered report to
 * a file atomically. A leaf: it calls no reporter. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "util.h"

#define EV_MAX_ITEMS	20	/* evidence objects rendered per invariant */
#define EV_MAX_LIST	25	/* elements rendered per nested array */
#define EV_INLINE	100	/* longest array or object kept on one line */

/* Length of the valid UTF-8 sequence at @s (at most @left bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and U+FFFE/U+FFFF are not characters XML
	 * allows. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void report_escape_n(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (s && i < len) {
		unsigned char c = s[i];
		size_t n;

		switch (c) {
		case '&': fputs("&amp;", f); i++; continue;
		case '<': fputs("&lt;", f); i++; continue;
		case '>': fputs("&gt;", f); i++; continue;
		case '"': fputs("&quot;", f); i++; continue;
		case '\'': fputs("&#39;", f); i++; continue;
		case '\t': case '\n': case '\r': fputc(c, f); i++; continue;
		default: break;
		}
		/* XML 1.0 forbids the other C0 controls even as references;
		 * they become U+FFFD, as does anything that is not UTF-8. */
		n = c < 0x20 || c == 0x7f ? 0 : utf8_len(s + i, len - i);
		if (n == 0) {
			fputs("\xef\xbf\xbd", f);
			i++;
		} else {
			fwrite(s + i, 1, n, f);
			i += n;
		}
	}
}

void report_escape(FILE *f, const char *s)
{
	if (s)
		report_escape_n(f, s, strlen(s));
}

/* --- evidence as indented text ------------------------------------------ */

static bool is_scalar(const json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static void put_scalar(FILE *f, const json_t *v)
{
	if (json_is_string(v))
		fputs(json_string_value(v), f);
	else if (json_is_integer(v))
		fprintf(f, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%g", json_real_value(v));
	else if (json_is_true(v))
		fputs("true", f);
	else if (json_is_false(v))
		fputs("false", f);
	else
		fputs("null", f);
}

static size_t scalar_len(const json_t *v)
{
	return json_is_string(v) ? json_string_length(v) : 12;
}

/* An object of scalars short enough for one line: "cycle=2, value=13". */
static bool flat_object(const json_t *v)
{
	const char *k;
	const json_t *m;
	size_t len = 0;

	if (!json_is_object(v))
		return false;
	json_object_foreach((json_t *)v, k, m) {
		if (!is_scalar(m))
			return false;
		len += strlen(k) + scalar_len(m) + 3;
	}
	return len <= EV_INLINE;
}

static void put_flat_object(FILE *f, const json_t *v)
{
	const char *k;
	const json_t *m;
	bool first = true;

	json_object_foreach((json_t *)v, k, m) {
		fprintf(f, "%s%s=", first ? "" : ", ", k);
		put_scalar(f, m);
		first = false;
	}
}

static bool inline_array(const json_t *v)
{
	const json_t *e;
	size_t i, len = 0;

	json_array_foreach(v, i, e) {
		if (!is_scalar(e))
			return false;
		len += scalar_len(e) + 2;
	}
	return len <= EV_INLINE;
}

/* Is @v printed on its key's line? */
static bool one_line(const json_t *v)
{
	if (json_is_object(v))
		return !json_object_size(v) || flat_object(v);
	if (json_is_array(v))
		return !json_array_size(v) || inline_array(v);
	return true;
}

static void ev_node(FILE *f, const char *key, const json_t *v, int ind);

static void ev_members(FILE *f, const json_t *obj, int ind)
{
	const char *k;
	const json_t *m;

	json_object_foreach((json_t *)obj, k, m)
		ev_node(f, k, m, ind);
}

static void ev_node(FILE *f, const char *key, const json_t *v, int ind)
{
	const json_t *e;
	size_t i;

	fprintf(f, "%*s", ind, "");
	if (key)
		fprintf(f, "%s:%s", key, one_line(v) ? " " : "");
	if (is_scalar(v)) {
		put_scalar(f, v);
		fputc('\n', f);
	} else if (json_is_object(v)) {
		if (!json_object_size(v)) {
			fputs("{}\n", f);
		} else if (flat_object(v)) {
			put_flat_object(f, v);
			fputc('\n', f);
		} else {
			fputc('\n', f);
			ev_members(f, v, ind + 2);
		}
	} else if (!json_array_size(v)) {
		fputs("[]\n", f);
	} else if (inline_array(v)) {
		json_array_foreach(v, i, e) {
			if (i)
				fputs(", ", f);
			put_scalar(f, e);
		}
		fputc('\n', f);
	} else {
		fputc('\n', f);
		json_array_foreach(v, i, e) {
			if (i == EV_MAX_LIST) {
				fprintf(f, "%*s... %zu more\n", ind + 2, "",
					json_array_size(v) - EV_MAX_LIST);
				break;
			}
			fprintf(f, "%*s- ", ind + 2, "");
			if (is_scalar(e)) {
				put_scalar(f, e);
				fputc('\n', f);
			} else if (flat_object(e)) {
				put_flat_object(f, e);
				fputc('\n', f);
			} else if (json_is_object(e)) {
				fputc('\n', f);
				ev_members(f, e, ind + 4);
			} else {
				ev_node(f, NULL, e, 0);
			}
		}
	}
}

char *report_evidence_text(const json_t *evidence, size_t cap)
{
	const json_t *item;
	char *buf = NULL;
	size_t len = 0, i, n = json_array_size(evidence);
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	json_array_foreach(evidence, i, item) {
		if (i == EV_MAX_ITEMS) {
			fprintf(f, "... %zu more evidence items in report.json\n", n - i);
			break;
		}
		if (n > 1)
			fprintf(f, "%s[%zu of %zu]\n", i ? "\n" : "", i + 1, n);
		if (json_is_object(item))
			ev_members(f, item, 0);
		else
			ev_node(f, NULL, item, 0);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (cap && len > cap) {
		static const char more[] = "\n... (truncated; the full evidence is in report.json)\n";
		char *b;

		/* Cut on a character boundary. */
		while (cap > 0 && ((unsigned char)buf[cap] & 0xc0) == 0x80)
			cap--;
		b = realloc(buf, cap + sizeof(more));
		if (!b) {
			free(buf);
			return NULL;
		}
		memcpy(b + cap, more, sizeof(more));
		buf = b;
	}
	return buf;
}

/* --- output ---------------------------------------------------------------- */

int report_write_with(const char *path, void (*render)(FILE *, const void *),
		      const void *arg)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int err = 0;

	if (!path || !strcmp(path, "-")) {
		render(stdout, arg);
		return fflush(stdout) == 0 ? 0 : -errno;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	render(f, arg);
	if (fclose(f) != 0) {
		err = -errno;
		goto out_free;
	}
	/* A pipe or a device is written in place: renaming over it would
	 * replace it. A file is replaced atomically. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		f = fopen(path, "w");
		if (!f) {
			err = -errno;
			goto out_free;
		}
		if (fwrite(buf, 1, len, f) != len)
			err = -EIO;
		if (fclose(f) != 0 && !err)
			err = -errno;
	} else {
		err = util_write_atomic(path, buf, len);
	}
out_free:
	free(buf);
	return err;
}
