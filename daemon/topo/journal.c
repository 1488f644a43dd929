#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "topo_del.h"
#include "util.h"

#define JOURNAL_MAX (1u << 20)

struct journal {
	char path[PATH_MAX];
	int fd;
};

struct journal *journal__open(const char *dir, const char *run_id)
{
	struct journal *j;
	char head[64];
	int err, n;

	j = calloc(1, sizeof(*j));
	if (!j) {
		errno = ENOMEM;
		return NULL;
	}
	err = util_mkdir_p(dir, 0700);
	if (err)
		goto err_free;
	snprintf(j->path, sizeof(j->path), "%s/%s.journal", dir, run_id);
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		err = -errno;
		goto err_free;
	}
	/* The lock, held while the file is open, says the owner lives to any
	 * faultd sharing this directory, whatever its pid namespace (a
	 * container's); the pid and namespace are for people. */
	n = snprintf(head, sizeof(head), "owner %d pidns %lu\n", (int)getpid(), util_pidns());
	if (flock(j->fd, LOCK_EX) < 0 || write(j->fd, head, (size_t)n) != n ||
	    fsync(j->fd) < 0) {
		err = -errno;
		close(j->fd);
		unlink(j->path);
		goto err_free;
	}
	return j;
err_free:
	free(j);
	errno = -err;
	return NULL;
}

int journal__add(struct journal *j, const char *kind, const char *value)
{
	char line[PATH_MAX + 32];
	int n = snprintf(line, sizeof(line), "%s %s\n", kind, value);

	if (n <= 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	if (write(j->fd, line, (size_t)n) != n)
		return -errno;
	return fsync(j->fd) < 0 ? -errno : 0;
}

/* A DPDK runtime directory (/var/run/dpdk/fd<run id>-NAME): EAL's lock,
 * its config and the sockets a killed primary leaves. Only faultd's own. */
int journal_dpdk_dir_delete(const char *path)
{
	static const char *const roots[] = {JOURNAL_DPDK_DIR "/", "/run/dpdk/"};
	const char *name = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(roots) && !name; i++)
		if (!strncmp(path, roots[i], strlen(roots[i])))
			name = path + strlen(roots[i]);
	/* One level below the root, and named as faultd names them. */
	if (!name || strncmp(name, "fd", 2) || strchr(name, '/') || !strcmp(name, ".."))
		return -EPERM;
	return util_rm_tree(path);
}

/* Undo one entry. Things already gone count as undone. */
static int undo(const char *kind, const char *value)
{
	if (!strcmp(kind, "netns"))
		return topo_del_netns(value);
	if (!strcmp(kind, "link"))
		return topo_del_link(value);
	if (!strcmp(kind, "dpdkdir"))
		return journal_dpdk_dir_delete(value);
	log_warn("%s: unknown journal entry '%s %s'", __func__, kind, value);
	return -EINVAL;
}

int journal_parse(char *text, char **owner, char ***lines, size_t *n)
{
	size_t cap = 0;
	int err = 0;

	*owner = NULL;
	*lines = NULL;
	*n = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "owner ", 6)) {
			if (!*owner)
				*owner = l;
			continue;
		}
		if (!strchr(l, ' '))
			continue;	/* a torn last line: nothing to undo */
		if (*n == cap) {
			char **grown = realloc(*lines, (cap ? cap * 2 : 256) * sizeof(**lines));

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			*lines = grown;
			cap = cap ? cap * 2 : 256;
		}
		(*lines)[(*n)++] = l;
	}
	if (err) {
		free(*lines);
		*lines = NULL;
		*n = 0;
	}
	return err;
}

/* Write the entries of @lines still to undo (@keep[i]) back to @path under
 * its owner line, atomically: a later sweep retries them. */
static int keep_failed(const char *path, const char *owner, char **lines, const bool *keep,
		       size_t n)
{
	char tmp[PATH_MAX + 8];
	int fd, err = 0;
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto err_unlink;
	}
	fprintf(f, "%s\n", owner);
	for (size_t i = 0; i < n; i++)
		if (keep[i])
			fprintf(f, "%s\n", lines[i]);
	if (fflush(f) || fsync(fileno(f)) < 0)
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (!err)
		return 0;
err_unlink:
	unlink(tmp);
	return err;
}

/* Replay the journal file @path (entries newest first) and remove it; the
 * entries whose undo failed stay in it for the next sweep, and so do kinds
 * this build does not know (a newer faultd's). An entry naming what is not
 * faultd's (-EPERM) can never be undone and is dropped. */
static int replay_file(const char *path, void (*say)(const char *, void *), void *arg)
{
	char *text = NULL, **lines = NULL, *owner = NULL;
	size_t n = 0, failed = 0;
	bool *keep = NULL;
	int done = 0, err;

	err = util_read_file(path, JOURNAL_MAX, &text, NULL);
	if (err)
		return err;
	err = journal_parse(text, &owner, &lines, &n);
	if (err)
		goto out;
	keep = calloc(n + 1, sizeof(*keep));
	if (!keep) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = n; i-- > 0;) {
		char *sp = strchr(lines[i], ' '), what[PATH_MAX + 32];
		int e;

		if (!sp)
			continue;
		*sp = '\0';
		e = undo(lines[i], sp + 1);
		snprintf(what, sizeof(what), "%s %s", lines[i], sp + 1);
		*sp = ' ';
		if (e == 0) {
			log_info("%s: undid %s", __func__, what);
			if (say)
				say(what, arg);
			done++;
		} else if (e != -EPERM) {
			log_warn("%s: %s: cannot undo %s (kept for the next sweep): %s", __func__,
				 path, what, strerror(-e));
			keep[i] = true;
			failed++;
		}
	}
	if (!failed) {
		unlink(path);
	} else {
		err = keep_failed(path, owner ? owner : "owner 0", lines, keep, n);
		if (err)
			log_err("%s: %s: cannot keep %zu entries to retry: %s", __func__, path,
				failed, strerror(-err));
	}
out:
	free(keep);
	free(lines);
	free(text);
	return err ? err : done;
}

/* Replayed under the lock, so that no sweep replays it too; the lock goes
 * with the file. */
int journal__replay(struct journal *j)
{
	int n;

	if (!j)
		return 0;
	n = replay_file(j->path, NULL, NULL);
	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
	return n;
}

void journal__free(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

/* Is the journal at @path a live owner's? Its owner holds the file's lock
 * (journal__open) until it replays it or dies; a journal with no pid
 * namespace is a faultd's from before the lock, judged by its pid. On false
 * the lock is ours in *@fd until the caller closes it. */
static bool journal_owned(const char *path, int *fd)
{
	char *text = NULL;
	unsigned long ns = 0;
	int owner = 0;
	bool alive;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return true;	/* gone, or not ours to read: left alone */
	alive = flock(*fd, LOCK_EX | LOCK_NB) < 0;
	if (!alive && util_read_file(path, JOURNAL_MAX, &text, NULL) == 0 &&
	    sscanf(text, "owner %d pidns %lu", &owner, &ns) == 1)
		alive = owner > 0 && util_owner_alive(owner);
	free(text);
	return alive;
}

int journal_sweep(const char *dir, void (*say)(const char *what, void *arg), void *arg)
{
	struct dirent *de;
	int total = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		int n, fd;

		n = (int)strlen(de->d_name);
		if (n < 9 || strcmp(de->d_name + n - 8, ".journal"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!journal_owned(path, &fd)) {
			n = replay_file(path, say, arg);
			if (n > 0)
				total += n;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return total;
}
