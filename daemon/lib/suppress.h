/* Suppressions: known, accepted findings silenced by pattern, as
 * LeakSanitizer's and Valgrind's are. One file format for every heap and
 * fd invariant (docs/invariants.md, "Suppressions"):
 *
 *   # comment
 *   leak:FUNC_OR_FILE_OR_MODULE      no_leak: a direct leak's allocation stack
 *   invalid_free:PATTERN             no_invalid_free: either kind, its free's stack
 *   double_free:PATTERN              no_invalid_free: double frees only
 *   heap:PATTERN                     heap_stable: a growing allocation site's stack
 *   fd:PATTERN                       fds_stable, sockets_stable: the workload's
 *                                    name or program (the fd probe keeps no stacks)
 *
 * A pattern matches a frame's function, source file or module anywhere in
 * it (a substring), with '*' for any run of characters, '^' and '$' to
 * anchor it at the start or end: LSan's rules. */
#ifndef FAULTD_SUPPRESS_H
#define FAULTD_SUPPRESS_H

#include <stddef.h>

#include <jansson.h>

struct suppress;

/* Add the rules of @path to *@s (made if NULL). A bad line gives -EINVAL
 * and "FILE:LINE:COL: message" in @err; a read error -errno. */
int suppress_load(struct suppress **s, const char *path, char *err, size_t err_len);
void suppress_free(struct suppress *s);
size_t suppress_count(const struct suppress *s);

/* The first rule of @type matching a frame of @stack (an array of
 * "func+0x1a (file.c:42) [module]" strings), as "leak:PATTERN
 * (FILE:LINE)", or NULL. */
const char *suppress_match_stack(const struct suppress *s, const char *type,
				 const json_t *stack);
/* The same against plain names (NULL-terminated). */
const char *suppress_match_names(const struct suppress *s, const char *type,
				 const char *const *names);
/* Exposed for unit tests: LSan's pattern match of @pat in @str. */
int suppress_pattern_match(const char *pat, const char *str);

#endif
