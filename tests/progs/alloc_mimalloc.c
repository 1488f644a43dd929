/* alloc_ops.h's programs on Debian's libmimalloc, with mi_malloc/mi_free. */
#include <stddef.h>

void *mi_malloc(size_t size);
void mi_free(void *ptr);

#define EXTRA_ALLOC(n) mi_malloc(n)
#define EXTRA_FREE(p, n) mi_free(p)
#include "alloc_ops.h"
