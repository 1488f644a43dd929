/* alloc_ops.h's programs built static and stripped: no object names its
 * malloc, so faultd cannot tell which allocator it has. */
#include <stdlib.h>

#define EXTRA_ALLOC(n) malloc(n)
#define EXTRA_FREE(p, n) free(p)
#include "alloc_ops.h"
