/* One cgroup v2 directory per run and one per workload inside it, so a
 * workload's whole process tree can be listed and killed (cgroup.kill) even
 * when it double-forks out of its process group. */
#ifndef FAULTD_CGROUP_H
#define FAULTD_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#define CG_DEFAULT_ROOT "/sys/fs/cgroup/unified/faultd"

int cg_create(const char *dir);			/* mkdir -p */
int cg_kill(const char *dir);			/* SIGKILL every process in it */
/* 1 if a process is in @dir or below it, 0 if not, -errno. */
int cg_populated(const char *dir);
/* Kill what is left and remove @dir and its children; 0 or -errno. */
int cg_destroy(const char *dir);
/* Run cgroups live in @root/OWNER_PID/RUN_ID, so a faultd and a
 * `faultctl --local` can run side by side. Remove every owner directory
 * whose owner is no longer a live faultd or faultctl (killed
 * predecessors), with whatever still runs in it; returns how many were
 * removed, or -errno. */
int cg_sweep(const char *root);
/* @root/PID for this process. */
int cg_owner_dir(const char *root, char *buf, size_t len);

#endif
