/* User side of bpf/fds.bpf.c. */
#ifndef FAULTD_PROBE_FDS_H
#define FAULTD_PROBE_FDS_H

#include <sys/types.h>

#include <jansson.h>

#include "fds.h"

struct probe_fds;

struct probe_fds *probe_fds__open(void);	/* NULL with errno */
/* Count @pid's fd-creating and closing calls from now on. */
int probe_fds__track(struct probe_fds *p, pid_t pid);
/* Count @pid's open fds by type into @counts (added to what is there).
 * 0, -ESRCH if it is gone, or -errno. */
int probe_fds__snapshot(struct probe_fds *p, pid_t pid, long long counts[FD_T__MAX]);
/* {"socket": 40, "close": 2, ...}: successful calls so far. */
json_t *probe_fds__calls(struct probe_fds *p);
unsigned long long probe_fds__lost(struct probe_fds *p);
const char *probe_fds__type_name(int type);
void probe_fds__destroy(struct probe_fds *p);

#endif
