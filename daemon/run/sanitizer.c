#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sanitizer.h"
#include "util.h"

#define SAN_MAX_FILE (4u << 20)	/* the capture keeps at most this much */
#define SAN_MAX_FRAMES 24
#define SAN_MAX_REPORTS 16

/* "    #3 0x55d0c0 in qp_event /src/qpair.c:120:5" -> "qp_event qpair.c:120". */
static json_t *frame(const char *line)
{
	const char *in = strstr(line, " in ");
	char buf[256];
	size_t n;

	if (!in)
		return json_string(line);
	in += 4;
	n = strcspn(in, "\n");
	snprintf(buf, sizeof(buf), "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), in);
	return json_string(buf);
}

static bool is_frame(const char *line)
{
	while (*line == ' ')
		line++;
	return line[0] == '#' && line[1] >= '0' && line[1] <= '9';
}

/* The frames that follow @lines[*i], into a new array. */
static json_t *stack(char **lines, size_t n, size_t *i)
{
	json_t *arr = json_array();

	while (*i + 1 < n && is_frame(lines[*i + 1])) {
		(*i)++;
		if (arr && json_array_size(arr) < SAN_MAX_FRAMES)
			json_array_append_new(arr, frame(lines[*i]));
	}
	return arr;
}

static json_t *by_thread(const char *line, json_t *frames)
{
	const char *t = strstr(line, "thread ");
	char thread[32] = "?";

	if (t)
		sscanf(t + 7, "%31s", thread);
	return json_pack("{ssso}", "thread", thread, "stack", frames ? frames : json_array());
}

/* One "ERROR: AddressSanitizer: KIND on address ADDR ..." report, from
 * line @i up to its SUMMARY. */
static json_t *asan_report(char **lines, size_t n, size_t *i)
{
	char tool[64] = "", kind[64] = "", addr[32] = "";
	const char *err = strstr(lines[*i], "ERROR: ");
	json_t *rep;

	if (sscanf(err + 7, "%63[^:]: %63s", tool, kind) < 2)
		return NULL;
	if (strstr(lines[*i], " on address "))
		sscanf(strstr(lines[*i], " on address ") + 12, "%31s", addr);
	else if (strstr(lines[*i], " on "))
		sscanf(strstr(lines[*i], " on ") + 4, "%31s", addr);
	rep = json_pack("{ssss}", "tool", tool, "kind", kind);
	if (!rep)
		return NULL;
	if (addr[0])
		json_object_set_new(rep, "address", json_string(addr));
	while (++*i < n && !strstr(lines[*i], "SUMMARY: ")) {
		const char *l = lines[*i];
		unsigned size;
		char access[16];

		if (sscanf(l, "%15s of size %u", access, &size) == 2 &&
		    (!strcmp(access, "READ") || !strcmp(access, "WRITE"))) {
			const char *t = strstr(l, "thread ");
			char thread[32] = "?";

			if (t)
				sscanf(t + 7, "%31s", thread);
			json_object_set_new(rep, "access", json_string(access));
			json_object_set_new(rep, "size", json_integer(size));
			json_object_set_new(rep, "thread", json_string(thread));
			json_object_set_new(rep, "stack", stack(lines, n, i));
		} else if (strstr(l, "freed by thread")) {
			json_object_set_new(rep, "freed_by", by_thread(l, stack(lines, n, i)));
		} else if (strstr(l, "allocated by thread")) {
			json_object_set_new(rep, "allocated_by", by_thread(l, stack(lines, n, i)));
		} else if (is_frame(l) && !json_object_get(rep, "stack")) {
			(*i)--;
			json_object_set_new(rep, "stack", stack(lines, n, i));
		}
	}
	if (*i < n)
		json_object_set_new(rep, "summary", json_string(strstr(lines[*i], "SUMMARY: ") + 9));
	return rep;
}

json_t *sanitizer_parse(const char *text)
{
	char *copy = strdup(text), **lines = NULL;
	size_t n = 0, cap = 0;
	json_t *all = json_array();

	if (!copy || !all)
		goto out;
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char **grown = util_grow(lines, &cap, n + 1, sizeof(*grown));

		if (!grown)
			goto out;
		lines = grown;
		lines[n++] = l;
	}
	for (size_t i = 0; i < n && json_array_size(all) < SAN_MAX_REPORTS; i++) {
		const char *l = lines[i];
		json_t *rep = NULL;

		if (strstr(l, "ERROR: AddressSanitizer: ") || strstr(l, "ERROR: LeakSanitizer: ") ||
		    strstr(l, "ERROR: ThreadSanitizer: ")) {
			rep = asan_report(lines, n, &i);
		} else if (strstr(l, ": runtime error: ")) {
			const char *msg = strstr(l, ": runtime error: ");

			rep = json_pack("{ssssss%ss}", "tool", "UndefinedBehaviorSanitizer",
					"kind", "runtime-error", "where", l, (size_t)(msg - l),
					"message", msg + 17);
		}
		if (rep)
			json_array_append_new(all, rep);
	}
out:
	free(lines);
	free(copy);
	if (all && !json_array_size(all)) {
		json_decref(all);
		all = NULL;
	}
	return all;
}

json_t *sanitizer_parse_file(const char *path)
{
	char *text = NULL;
	json_t *reps = NULL;
	size_t len = 0;

	if (util_read_file(path, SAN_MAX_FILE, &text, &len) == 0 && strstr(text, "Sanitizer"))
		reps = sanitizer_parse(text);
	else if (text && strstr(text, ": runtime error: "))
		reps = sanitizer_parse(text);
	free(text);
	return reps;
}
