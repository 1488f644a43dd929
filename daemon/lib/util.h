/* Small helpers every module uses: clocks, files, signal names, ids. */
#ifndef FAULTD_UTIL_H
#define FAULTD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RUN_ID_LEN 8		/* 6 hex digits and a NUL, with room to spare */

uint64_t util_now_ns(void);			/* CLOCK_MONOTONIC */
/* The event base faultd runs on: precise timers (a flap or a delayed packet
 * is due at its millisecond, not up to 2 ms late). NULL on failure. */
struct event_base;
struct event_base *util_event_base(void);
uint64_t util_realtime_ms(void);		/* CLOCK_REALTIME, ms since epoch */
void util_iso8601(uint64_t realtime_ms, char buf[32]); /* 2026-11-24T15:00:00.123Z */

/* Room in @arr (*@cap items of @elem bytes) for @need items, doubling from
 * 16: the array to use from now on, or NULL if out of memory (then @arr
 * and *@cap are as they were). */
void *util_grow(void *arr, size_t *cap, size_t need, size_t elem);

int util_mkdir_p(const char *path, mode_t mode);
/* Remove @path and everything below it, not following symlinks. Gone
 * already is 0. */
int util_rm_tree(const char *path);
/* Write @len bytes to @path through a temp file in the same directory, fsync
 * and rename, so a reader sees the old file or the new one, never a part. */
int util_write_atomic(const char *path, const char *data, size_t len);
/* Read a whole file of at most @max bytes; *out is NUL-terminated. */
int util_read_file(const char *path, size_t max, char **out, size_t *len);
/* A task's state letter and whether it is in do_exit (the kernel's
 * PF_EXITING), from @path (/proc/PID/stat or /proc/PID/task/TID/stat):
 * 0, or -errno (gone: -ENOENT or -ESRCH). */
int util_task_state(const char *path, char *state, bool *exiting);
/* Does every thread of @pid pass @ok (its state letter, in do_exit)? A
 * thread whose stat cannot be read, or a process gone, passes. */
bool util_every_task(pid_t pid, bool (*ok)(char state, bool exiting));
/* Run @fn(@arg) in the network namespace @ns_fd, on a short-lived thread
 * (faultd's threads never leave its namespace). A socket made inside stays
 * bound to that namespace; @fn must not touch thread-local state.
 * What @fn returned, or -errno if the namespace could not be entered. */
int util_in_netns(int ns_fd, int (*fn)(void *arg), void *arg);
/* Resident set of @pid (0: this process) in bytes; 0 if unknown. */
unsigned long long util_rss_bytes(pid_t pid);
/* Both from one read of /proc/PID/statm: the resident set, and (@anon if
 * not NULL) its anonymous part (heap, stacks, anonymous maps): what the
 * process itself holds, without the pages of the files it maps (its
 * libraries), which the kernel may drop and read again at will. */
void util_rss_read(pid_t pid, unsigned long long *rss, unsigned long long *anon);
/* glibc raises its mmap and trim thresholds each time a big mapped block
 * is freed (up to 32 and 64 MiB), and from then on a thread arena's free
 * top is never given back: a daemon whose runs come and go on threads
 * keeps the peak of each arena (malloc_trim gives back free chunks, not an
 * arena's top). Fixed thresholds turn that off: blocks of
 * UTIL_MMAP_THRESHOLD and more are mapped and unmapped on their own, and
 * a free top above UTIL_TRIM_THRESHOLD goes back at the free that leaves
 * it. Not when GLIBC_TUNABLES sets malloc tunables of its own. */
#define UTIL_MMAP_THRESHOLD	(256 * 1024)
#define UTIL_TRIM_THRESHOLD	(1024 * 1024)
void util_malloc_tune(void);
/* The bytes this process's malloc has handed out and not had back (every
 * arena, mmapped blocks too): its live heap, whatever the RSS holding it. */
unsigned long long util_heap_in_use_bytes(void);

/* A wait status (waitpid, or a task's exit_code) as exit code or signal. */
void util_wait_status(int status, int *exit_code, int *signal, bool *core);

const char *util_signame(int sig);		/* "SIGSEGV", or "SIG42" */
int util_parse_signame(const char *name);	/* number, or -EINVAL */

/* A fresh run id: 6 lowercase hex digits (short, because interface names
 * must hold "fd" + run id + link name in 15 bytes). */
int util_run_id(char out[RUN_ID_LEN]);

void util_sha256_hex(const void *data, size_t len, char out[65]);

/* The directory holding the running program (build/ for a build tree), for
 * finding build/harness next to build/faultd. */
int util_self_dir(char *buf, size_t len);
/* Is @pid a live faultd or faultctl? Owners of cgroups and journals are
 * named by pid; a reused pid running something else means the owner died.
 * Our own pid is not alive: sweeps run before this process owns anything,
 * so what names it is a predecessor's that had the same pid (PID 1). */
bool util_owner_alive(int pid);
/* The init pid namespace's inode, the same on every kernel (PROC_PID_INIT_INO). */
#define UTIL_PIDNS_INIT 0xEFFFFFFCUL
/* The inode of our pid namespace (/proc/self/ns/pid): an owner's pid means
 * something only with it. 0 if it cannot be read. */
unsigned long util_pidns(void);

/* A run id is 6 lowercase hex digits: checked before it becomes a path. */
int util_valid_run_id(const char *id);

#endif
