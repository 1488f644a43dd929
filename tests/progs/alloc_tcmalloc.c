/* alloc_ops.h's programs on Debian's libtcmalloc_minimal, with C++'s
 * operator new/delete (tcmalloc's own, not routed through malloc). */
#include <stddef.h>

void *_Znwm(size_t size);
void _ZdlPvm(void *ptr, size_t size);

#define EXTRA_ALLOC(n) _Znwm(n)
#define EXTRA_FREE(p, n) _ZdlPvm((p), (n))
#include "alloc_ops.h"
