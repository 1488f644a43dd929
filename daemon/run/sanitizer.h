/* Sanitizer reports in a workload's captured stderr: what an ASan/UBSan
 * build of a workload (a nightly job's usual tool) found, parsed into the
 * same report as faultd's own evidence. */
#ifndef FAULTD_SANITIZER_H
#define FAULTD_SANITIZER_H

#include <jansson.h>

/* The reports in the file at @path: [{"tool": "AddressSanitizer", "kind":
 * "heap-use-after-free", "address", "access", "size", "thread", "stack":
 * [...], "freed_by": {"thread", "stack"}, "allocated_by": {...},
 * "summary"}], UBSan's "runtime error" lines as {"tool":
 * "UndefinedBehaviorSanitizer", "kind": "runtime-error", "where", "message"}.
 * NULL when the file holds none (or cannot be read). */
json_t *sanitizer_parse_file(const char *path);
/* Parse @text (NUL-terminated); as above. */
json_t *sanitizer_parse(const char *text);

#endif
