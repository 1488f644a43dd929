#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	n = snprintf(head, sizeof(head), "owner %d\n", (int)getpid());
	if (write(j->fd, head, (size_t)n) != n || fsync(j->fd) < 0) {
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

/* Replay the journal file @path (entries newest first) and remove it. */
static int replay_file(const char *path, void (*say)(const char *, void *), void *arg)
{
	char *text = NULL, *lines[4096];
	int n = 0, done = 0, err;

	err = util_read_file(path, JOURNAL_MAX, &text, NULL);
	if (err)
		return err;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 4096;
	     l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	while (n-- > 0) {
		char *sp = strchr(lines[n], ' ');

		if (!sp || !strncmp(lines[n], "owner ", 6))
			continue;
		*sp = '\0';
		if (undo(lines[n], sp + 1) == 0) {
			char what[PATH_MAX + 32];

			snprintf(what, sizeof(what), "%s %s", lines[n], sp + 1);
			log_info("%s: undid %s", __func__, what);
			if (say)
				say(what, arg);
			done++;
		}
	}
	free(text);
	unlink(path);
	return done;
}

int journal__replay(struct journal *j)
{
	if (!j)
		return 0;
	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
	return replay_file(j->path, NULL, NULL);
}

void journal__free(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
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
		char path[PATH_MAX], *text = NULL;
		int owner = 0, n;

		n = (int)strlen(de->d_name);
		if (n < 9 || strcmp(de->d_name + n - 8, ".journal"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (util_read_file(path, JOURNAL_MAX, &text, NULL) == 0)
			sscanf(text, "owner %d", &owner);
		free(text);
		if (owner > 0 && util_owner_alive(owner))
			continue;
		n = replay_file(path, say, arg);
		if (n > 0)
			total += n;
	}
	closedir(d);
	return total;
}
