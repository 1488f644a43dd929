#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/seccomp.h>

#include "log.h"
#include "sup.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* A captured stream: the first half of the budget goes straight to the file,
 * the last half stays in a ring and is appended at the end, so both the start
 * of a log and a crash report at its end survive. */
#define CAPTURE_READS_PER_CB	4	/* 64 KiB per wake-up, per stream */
#define CAPTURE_CLOSE_READS	64	/* at close: a full pipe and then some */

struct capture {
	int pipe_fd;
	int file_fd;
	struct event *ev;
	size_t head_max, head_written;
	char *ring;
	size_t ring_max, ring_len, ring_pos;
	unsigned long long seen, dropped;
	void (*on_output)(void *arg, size_t bytes);
	void *output_arg;
};

struct sup_child {
	char name[64];
	pid_t pid;
	int pidfd;
	int hold_fd;		/* write end: one byte lets the child exec */
	int exec_err_fd;	/* read end: errno of a failed exec, or EOF */
	bool exited;
	struct event *exit_ev;
	struct capture out, err;
	sup_exit_cb cb;
	void *arg;
};

static void capture_take(struct capture *cap, const char *buf, size_t n)
{
	cap->seen += n;
	if (cap->on_output)
		cap->on_output(cap->output_arg, n);
	if (cap->head_written < cap->head_max) {
		size_t room = cap->head_max - cap->head_written;
		size_t now = n < room ? n : room;

		if (write(cap->file_fd, buf, now) > 0)
			cap->head_written += now;
		buf += now;
		n -= now;
	}
	if (!cap->ring_max)
		return;
	/* Only the last ring_max bytes can stay; older ones are dropped. */
	if (n > cap->ring_max) {
		cap->dropped += n - cap->ring_max;
		buf += n - cap->ring_max;
		n = cap->ring_max;
	}
	if (cap->ring_len + n > cap->ring_max) {
		cap->dropped += cap->ring_len + n - cap->ring_max;
		cap->ring_len = cap->ring_max - n;
	}
	cap->ring_len += n;
	while (n) {
		size_t chunk = cap->ring_max - cap->ring_pos;

		if (chunk > n)
			chunk = n;
		memcpy(cap->ring + cap->ring_pos, buf, chunk);
		cap->ring_pos = (cap->ring_pos + chunk) % cap->ring_max;
		buf += chunk;
		n -= chunk;
	}
}

/* At most @max_reads reads: a workload writing flat out must not keep the
 * loop here (the event is level-triggered, the rest comes next turn).
 * Returns 1 at EOF or error, 0 if more may come. */
static int capture_read(struct capture *cap, int max_reads)
{
	char buf[16384];
	ssize_t n;

	for (int i = 0; i < max_reads;) {
		n = read(cap->pipe_fd, buf, sizeof(buf));
		if (n > 0) {
			capture_take(cap, buf, (size_t)n);
			i++;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return (n < 0 && errno == EAGAIN) ? 0 : 1;
	}
	return 0;
}

static void capture_flush(struct capture *cap)
{
	char marker[96];
	size_t start;

	if (cap->file_fd < 0)
		return;
	if (cap->dropped) {
		int n = snprintf(marker, sizeof(marker),
				 "\n[faultd: %llu bytes omitted]\n", cap->dropped);
		if (write(cap->file_fd, marker, (size_t)n) < 0)
			log_debug("%s: marker: %s", __func__, strerror(errno));
	}
	start = (cap->ring_pos + cap->ring_max - cap->ring_len) % (cap->ring_max ? cap->ring_max : 1);
	for (size_t done = 0; done < cap->ring_len;) {
		size_t chunk = cap->ring_max - start;
		ssize_t n;

		if (chunk > cap->ring_len - done)
			chunk = cap->ring_len - done;
		n = write(cap->file_fd, cap->ring + start, chunk);
		if (n <= 0)
			break;
		done += (size_t)n;
		start = (start + (size_t)n) % cap->ring_max;
	}
	cap->ring_len = 0;
}

static void capture_close(struct capture *cap)
{
	if (cap->ev) {
		event_free(cap->ev);
		cap->ev = NULL;
	}
	if (cap->pipe_fd >= 0) {
		/* What is in the pipe now (a descendant may still write). */
		capture_read(cap, CAPTURE_CLOSE_READS);
		close(cap->pipe_fd);
		cap->pipe_fd = -1;
	}
	capture_flush(cap);
	if (cap->file_fd >= 0)
		close(cap->file_fd);
	cap->file_fd = -1;
	free(cap->ring);
	cap->ring = NULL;
}

static void on_capture(evutil_socket_t fd, short what, void *arg)
{
	struct capture *cap = arg;

	(void)fd;
	(void)what;
	if (capture_read(cap, CAPTURE_READS_PER_CB)) {
		event_free(cap->ev);
		cap->ev = NULL;
		close(cap->pipe_fd);
		cap->pipe_fd = -1;
	}
}

static int capture_open(struct event_base *base, struct capture *cap, int pipe_fd,
			const char *path, size_t max)
{
	cap->pipe_fd = pipe_fd;
	cap->head_max = max / 2;
	cap->ring_max = max - cap->head_max;
	cap->file_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (cap->file_fd < 0)
		return -errno;
	cap->ring = malloc(cap->ring_max ? cap->ring_max : 1);
	if (!cap->ring)
		return -ENOMEM;
	cap->ev = event_new(base, pipe_fd, EV_READ | EV_PERSIST, on_capture, cap);
	if (!cap->ev || event_add(cap->ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static void on_exit_ready(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	siginfo_t si = {0};
	int status;

	(void)what;
	if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
		 : (si.si_status | (si.si_code == CLD_DUMPED ? WCOREFLAG : 0));
	c->exited = true;
	event_del(c->exit_ev);
	log_debug("%s: %s: pid %d ended, status 0x%x", __func__, c->name, c->pid, status);
	if (c->cb)
		c->cb(c, status, c->arg);
}

static char **build_env(const char *const *extra)
{
	size_t n = 0, m = 0;
	char **env;

	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	env = calloc(n + m + 1, sizeof(*env));
	if (!env)
		return NULL;
	memcpy(env, environ, n * sizeof(*env));
	for (size_t i = 0; i < m; i++)
		env[n + i] = (char *)extra[i];
	return env;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void child_run(const struct sup_spec *spec, char **env, pid_t parent,
		      int hold_rd, int err_wr, int out_wr, int err_out_wr)
{
	sigset_t none;
	char go;
	int e, devnull;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/* Its own session, not only its own process group: out of reach of
	 * faultctl's terminal, and when it exits while faultd holds one of its
	 * children stopped (at _exit, for no_leak's scan), that child's group
	 * has no parent in another group of its session, so the kernel sends
	 * it no SIGHUP (an orphaned group with a stopped member) to end the
	 * held child in the middle of its scan. */
	setsid();
	/* Forked by a run's thread, which may be niced for its set-up. */
	setpriority(PRIO_PROCESS, 0, spec->nice);
	/* faultd ignores SIGPIPE; an ignored signal stays ignored across
	 * exec, so give the workload the default dispositions back. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, 0);
		close(devnull);
	}
	dup2(out_wr, 1);
	dup2(err_out_wr, 2);
	if (spec->netns) {
		int nsfd = open(spec->netns, O_RDONLY);

		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
			e = errno;
			goto fail;
		}
		close(nsfd);
	}
	if (spec->cgroup) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.procs", spec->cgroup);
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			e = errno;
			goto fail;
		}
		close(fd);
	}
	/* Held here until the daemon has attached the probes by pid. */
	if (read(hold_rd, &go, 1) != 1)
		_exit(127);
	close(hold_rd);
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (spec->cwd && chdir(spec->cwd) < 0) {
		e = errno;
		goto fail;
	}
	if (spec->n_cpus) {
		cpu_set_t set;

		CPU_ZERO(&set);
		for (size_t i = 0; i < spec->n_cpus; i++)
			CPU_SET(spec->cpus[i], &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			e = errno;
			goto fail;
		}
	}
	/* Last, so the filter holds from the program's first instruction and
	 * not for our own set-up. faultd is root, so no_new_privs is not
	 * needed, and setuid programs keep working. */
	if (spec->seccomp &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, spec->seccomp) < 0) {
		e = errno;
		goto fail;
	}
	execvpe(spec->argv[0], (char *const *)spec->argv, env);
	e = errno;
fail:
	if (write(err_wr, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

int sup__spawn(struct event_base *base, const struct sup_spec *spec,
	       sup_exit_cb cb, void *arg, struct sup_child **out)
{
	int hold[2] = {-1, -1}, xerr[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
	struct sup_child *c;
	char **env = NULL;
	pid_t pid, parent = getpid();
	int err = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->name, sizeof(c->name), "%s", spec->name);
	c->pidfd = c->hold_fd = c->exec_err_fd = -1;
	c->out.pipe_fd = c->out.file_fd = c->err.pipe_fd = c->err.file_fd = -1;
	c->cb = cb;
	c->arg = arg;
	env = build_env(spec->env_extra);
	if (!env) {
		err = -ENOMEM;
		goto err_free;
	}
	if (pipe2(hold, O_CLOEXEC) < 0 || pipe2(xerr, O_CLOEXEC) < 0 ||
	    pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		err = -errno;
		goto err_close_pipes;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto err_close_pipes;
	}
	if (pid == 0)
		child_run(spec, env, parent, hold[0], xerr[1], po[1], pe[1]);

	c->pid = pid;
	c->hold_fd = hold[1];
	c->exec_err_fd = xerr[0];
	close(hold[0]);
	close(xerr[1]);
	close(po[1]);
	close(pe[1]);
	hold[0] = hold[1] = xerr[0] = xerr[1] = po[1] = pe[1] = -1;
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	/* Progress is what a workload prints on stdout; errors go to stderr. */
	c->out.on_output = spec->on_output;
	c->out.output_arg = spec->output_arg;
	err = capture_open(base, &c->out, po[0], spec->out_path, spec->out_max);
	po[0] = -1;
	if (!err)
		err = capture_open(base, &c->err, pe[0], spec->err_path, spec->out_max);
	pe[0] = -1;
	if (err)
		goto err_kill;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (c->pidfd < 0) {
		err = -errno;
		goto err_kill;
	}
	c->exit_ev = event_new(base, c->pidfd, EV_READ | EV_PERSIST, on_exit_ready, c);
	if (!c->exit_ev || event_add(c->exit_ev, NULL) < 0) {
		err = -ENOMEM;
		goto err_kill;
	}
	free(env);
	log_debug("%s: %s: pid %d held", __func__, c->name, pid);
	*out = c;
	return 0;

err_kill:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	c->exited = true;
err_close_pipes:
	for (int i = 0; i < 2; i++) {
		if (hold[i] >= 0) close(hold[i]);
		if (xerr[i] >= 0) close(xerr[i]);
		if (po[i] >= 0) close(po[i]);
		if (pe[i] >= 0) close(pe[i]);
	}
err_free:
	free(env);
	c->cb = NULL;
	sup__free(c);
	return err;
}

int sup__release(struct sup_child *c)
{
	int child_errno = 0;
	ssize_t n;
	int err = 0;

	if (c->hold_fd < 0)
		return -EALREADY;
	if (write(c->hold_fd, "g", 1) != 1)
		err = -errno;
	close(c->hold_fd);
	c->hold_fd = -1;
	/* EOF on the CLOEXEC pipe means exec succeeded. */
	do {
		n = read(c->exec_err_fd, &child_errno, sizeof(child_errno));
	} while (n < 0 && errno == EINTR);
	close(c->exec_err_fd);
	c->exec_err_fd = -1;
	if (!err && n == (ssize_t)sizeof(child_errno))
		err = -child_errno;
	if (err)
		log_warn("%s: %s: exec failed: %s", __func__, c->name, strerror(-err));
	return err;
}

pid_t sup__pid(const struct sup_child *c)
{
	return c->pid;
}

bool sup__exited(const struct sup_child *c)
{
	return c->exited;
}

int sup__kill(struct sup_child *c, int sig)
{
	if (c->exited || c->pidfd < 0)
		return 0;
	if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno;
	return 0;
}

void sup__output_stats(const struct sup_child *c, unsigned long long *seen,
		       unsigned long long *dropped)
{
	*seen = c->out.seen + c->err.seen;
	*dropped = c->out.dropped + c->err.dropped;
}

void sup__free(struct sup_child *c)
{
	if (!c)
		return;
	if (c->exit_ev)
		event_free(c->exit_ev);
	capture_close(&c->out);
	capture_close(&c->err);
	if (c->hold_fd >= 0)
		close(c->hold_fd);
	if (c->exec_err_fd >= 0)
		close(c->exec_err_fd);
	if (c->pidfd >= 0) {
		/* Reap it if it is gone and nobody has; never block. */
		if (!c->exited)
			waitid(P_PIDFD, (id_t)c->pidfd, &(siginfo_t){0}, WEXITED | WNOHANG);
		close(c->pidfd);
	}
	free(c);
}
