/* One cgroup v2 directory per run and one per workload inside it, so a
 * workload's whole process tree can be listed and killed (cgroup.kill) even
 * when it double-forks out of its process group. */
#ifndef FAULTD_CGROUP_H
#define FAULTD_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

/* mkdir -p; -ENODEV without a usable cgroup v2 root (caps says why). */
int cgroup_create(const char *dir);
int cgroup_kill(const char *dir);			/* SIGKILL every process in it */
/* 1 if a process is in @dir or below it, 0 if not, -errno. */
int cgroup_populated(const char *dir);
/* Kill what is left and remove @dir and its children; 0 or -errno. */
int cgroup_destroy(const char *dir);
/* The same without waiting (for the event loop): what is left is killed,
 * and -EBUSY says it has not left yet. */
int cgroup_destroy_nowait(const char *dir);
#define CG_EMPTY_WAIT_MS 2000	/* a killed tree takes a few ms to leave */
/* Run cgroups live in @root/OWNER/RUN_ID, so a faultd and a
 * `faultctl --local` can run side by side; OWNER is the pid, with
 * "@PIDNS" (the pid namespace's inode) outside the init namespace. Remove
 * every owner directory whose owner is no longer a live faultd or faultctl
 * (killed predecessors), with whatever still runs in it. A live owner holds
 * its directory locked (cgroup_owner_hold); an unlocked one is judged by
 * its pid in our own pid namespace, and is gone if it names another.
 * Returns how many were removed, or -errno. */
int cgroup_sweep(const char *root);
/* Make @run_cgroup's owner directory and hold it locked (flock) while this
 * process lives. Before the run's own directory is made. 0 or -errno. */
int cgroup_owner_hold(const char *run_cgroup);
/* @root/OWNER for this process. */
int cgroup_owner_dir(const char *root, char *buf, size_t len);

/* The first cgroup2 mount in @mountinfo (the text of /proc/PID/mountinfo):
 * its mount point into @mnt and, if @root is not NULL, the cgroup it shows
 * (its root field, "/" unless a subtree is bind-mounted) into @root, both
 * with the kernel's octal escapes (\040 for a space) undone. 0, -ENOENT if
 * no line is a cgroup2 mount, -ENAMETOOLONG. Pure, for tests. */
int cgroup_mountinfo_parse(const char *mountinfo, char *mnt, size_t mnt_len,
		       char *root, size_t root_len);
/* The cgroup v2 path in @text (the text of /proc/PID/cgroup, its "0::"
 * line) into @buf. 0, -ENOENT without that line, -ENAMETOOLONG. Pure. */
int cgroup_proc_cgroup_parse(const char *text, char *buf, size_t len);
/* MOUNT/faultd, MOUNT the first cgroup2 mount in /proc/self/mountinfo,
 * created; the result goes into the caps table (CAPS_CGROUP). 0 or -errno,
 * -ENOENT when there is no cgroup v2 mount. */
int cgroup_default_root(char *buf, size_t len);
/* For a faultd that systemd started in a delegated cgroup (Delegate=yes):
 * it moves itself into OWN/daemon, OWN its cgroup from /proc/self/cgroup,
 * and @buf becomes OWN/runs, so runs are below the service and the
 * service's cgroup holds no process ("no internal processes"). Already in a
 * leaf named daemon (systemd's DelegateSubgroup=daemon), it stays. 0 or
 * -errno, recorded in the caps table. */
int cgroup_delegate(char *buf, size_t len);
/* The run cgroups' parent for faultd and faultctl: @root as given
 * (--cgroup-root), else cgroup_delegate() with @delegated, else
 * cgroup_default_root(). Either way the caps table says whether it is usable;
 * unusable, cgroup_create() refuses, so runs fail at setup and say why. */
int cgroup_root_init(char *root, size_t len, bool delegated);

#endif
