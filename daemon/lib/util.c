#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "util.h"

uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t util_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

void util_iso8601(uint64_t realtime_ms, char buf[32])
{
	time_t sec = (time_t)(realtime_ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, 32, "%s.%03uZ", base, (unsigned)(realtime_ms % 1000));
}

void *util_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t cap2 = *cap ? *cap : 16;
	void *grown = NULL;

	if (need <= *cap)
		return arr;
	while (cap2 < need && cap2 <= SIZE_MAX / 2)
		cap2 *= 2;
	if (cap2 >= need && cap2 <= SIZE_MAX / elem)
		grown = realloc(arr, cap2 * elem);
	if (grown)
		*cap = cap2;
	return grown;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	int err = 0;

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p && !err; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			err = -errno;
		*p = '/';
	}
	if (!err && mkdir(tmp, mode) < 0 && errno != EEXIST)
		err = -errno;
	return err;
}

int util_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	size_t off = 0;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto err_unlink;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		err = -errno;
		goto err_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		err = -errno;
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		err = -errno;
		goto err_unlink;
	}
	return 0;
err_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err;
}

int util_read_file(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = NULL;
	size_t cap = 4096, used = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		if (used == cap) {
			char *nbuf;

			if (cap >= max) {
				err = -EFBIG;
				goto out_close;
			}
			cap = cap * 2 > max ? max : cap * 2;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				err = -ENOMEM;
				goto out_close;
			}
			buf = nbuf;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out_close;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	buf = NULL;
out_close:
	free(buf);
	close(fd);
	return err;
}

#define UTIL_PF_EXITING 0x4	/* the kernel's task flag: in do_exit */

int util_task_state(const char *path, char *state, bool *exiting)
{
	unsigned long flags = 0;
	char *text = NULL, *p = NULL;
	int err;

	err = util_read_file(path, 4096, &text, NULL);
	if (!err)
		p = strrchr(text, ')');
	/* ") S ppid pgrp session tty tpgid flags" */
	if (!err && (!p || p[1] != ' ' || !p[2] ||
		     sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) != 1))
		err = -EINVAL;
	if (!err) {
		*state = p[2];
		*exiting = flags & UTIL_PF_EXITING;
	}
	free(text);
	return err;
}

bool util_every_task(pid_t pid, bool (*ok)(char state, bool exiting))
{
	char path[320], state;
	struct dirent *de;
	bool all = true, exiting;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && all && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
		all = util_task_state(path, &state, &exiting) || ok(state, exiting);
	}
	if (d)
		closedir(d);
	return all;
}

static const struct {
	int sig;
	const char *name;
} signames[] = {
	{SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"},
	{SIGILL, "SIGILL"}, {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
	{SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"}, {SIGKILL, "SIGKILL"},
	{SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
	{SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
	{SIGSTKFLT, "SIGSTKFLT"}, {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},
	{SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"}, {SIGTTIN, "SIGTTIN"},
	{SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"}, {SIGXCPU, "SIGXCPU"},
	{SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},
	{SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"}, {SIGPWR, "SIGPWR"},
	{SIGSYS, "SIGSYS"},
};

void util_wait_status(int status, int *exit_code, int *signal, bool *core)
{
	*exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	*signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	*core = WIFSIGNALED(status) && WCOREDUMP(status);
}

const char *util_signame(int sig)
{
	static __thread char other[16];

	for (size_t i = 0; i < ARRAY_SIZE(signames); i++)
		if (signames[i].sig == sig)
			return signames[i].name;
	snprintf(other, sizeof(other), "SIG%d", sig);
	return other;
}

int util_parse_signame(const char *name)
{
	const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;

	for (size_t i = 0; i < ARRAY_SIZE(signames); i++)
		if (strcmp(signames[i].name + 3, bare) == 0)
			return signames[i].sig;
	return -EINVAL;
}

int util_run_id(char out[RUN_ID_LEN])
{
	unsigned char rnd[3];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(out, RUN_ID_LEN, "%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
	return 0;
}

void util_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

int util_self_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	return 0;
}

int util_valid_run_id(const char *id)
{
	size_t n = strlen(id);

	if (n != 6)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

static bool util_is_faultd(int pid)
{
	char path[64], exe[PATH_MAX], *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return false;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	return strncmp(base, "faultd", 6) == 0 || strncmp(base, "faultctl", 8) == 0;
}

bool util_owner_alive(int pid)
{
	/* Sweeps run before this process made anything: a journal or cgroup
	 * naming our own pid is a dead predecessor's that had it (faultd as
	 * PID 1 of a container, restarted). */
	if (pid == (int)getpid())
		return false;
	return util_is_faultd(pid);
}

static unsigned long util_pidns_of(const char *pid)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/pid", pid);
	return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

unsigned long util_pidns(void)
{
	return util_pidns_of("self");
}

/* Runs have threads and loops of their own (run_loop.c) and post to the
 * caller's loop: libevent's locks are on before the first base is made. */
static void util_evthread(void)
{
	if (evthread_use_pthreads() < 0)
		log_warn("%s: libevent without threads", __func__);
}

struct event_base *util_event_base(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct event_config *cfg;
	struct event_base *base = NULL;

	pthread_once(&once, util_evthread);
	cfg = event_config_new();

	if (cfg && event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base ? base : event_base_new();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int util_rm_tree(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT)
		return 0;
	return -errno;
}

void util_rss_read(pid_t pid, unsigned long long *rss, unsigned long long *anon)
{
	char path[64], *text = NULL;
	unsigned long long size, pages = 0, file = 0;
	unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/statm");
	if (util_read_file(path, 256, &text, NULL) != 0 ||
	    sscanf(text, "%llu %llu %llu", &size, &pages, &file) != 3)
		pages = file = 0;
	free(text);
	*rss = pages * page;
	if (anon)
		*anon = (pages > file ? pages - file : 0) * page;
}

unsigned long long util_rss_bytes(pid_t pid)
{
	unsigned long long rss;

	util_rss_read(pid, &rss, NULL);
	return rss;
}

void util_malloc_tune(void)
{
	const char *tunables = getenv("GLIBC_TUNABLES");

	if (tunables && strstr(tunables, "glibc.malloc."))
		return;		/* the user's own settings stand */
	mallopt(M_MMAP_THRESHOLD, UTIL_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, UTIL_TRIM_THRESHOLD);
}

unsigned long long util_heap_in_use_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (unsigned long long)mi.uordblks + mi.hblkhd;
}

struct in_netns {
	int ns_fd;
	int (*fn)(void *arg);
	void *arg;
	int err;
};

static void *in_netns_thread(void *arg)
{
	struct in_netns *job = arg;

	if (setns(job->ns_fd, CLONE_NEWNET) < 0)
		job->err = -errno;
	else
		job->err = job->fn(job->arg);
	return NULL;
}

/* @fn runs on a thread of its own that ends with it: setns() moves only the
 * calling thread, so faultd's own threads never leave its namespace, and
 * no failed way back can leave later netlink and undo work in the run's. */
int util_in_netns(int ns_fd, int (*fn)(void *arg), void *arg)
{
	struct in_netns job = {.ns_fd = ns_fd, .fn = fn, .arg = arg};
	pthread_t t;
	int err;

	err = pthread_create(&t, NULL, in_netns_thread, &job);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return job.err;
}
