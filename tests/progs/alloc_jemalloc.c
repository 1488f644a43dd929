/* alloc_ops.h's programs on Debian's libjemalloc (a shared library), with
 * jemalloc's own mallocx/sdallocx beside malloc. */
#include <stddef.h>

void *mallocx(size_t size, int flags);
void sdallocx(void *ptr, size_t size, int flags);

#define EXTRA_ALLOC(n) mallocx((n), 0)
#define EXTRA_FREE(p, n) sdallocx((p), (n), 0)
#include "alloc_ops.h"
