/* Where faultd's own files are, found from the running program: the build
 * tree, `make install` under any PREFIX, a DESTDIR copy and the Debian
 * package all work without a path compiled in. */
#ifndef FAULTD_PATHS_H
#define FAULTD_PATHS_H

#include <stddef.h>

/* The bundled workloads: $FAULTD_HARNESS_DIR if set; else harness/ beside
 * the program (the build tree: build/faultd, build/harness/); else
 * ../lib/faultd/harness from it (installed: PREFIX/bin/faultd,
 * PREFIX/lib/faultd/harness/). 0 or -errno. */
int paths_harness_dir(char *buf, size_t len);

#endif
