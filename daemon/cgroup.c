#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"
#include "util.h"

#define CG_EMPTY_WAIT_MS 2000	/* a killed tree takes a few ms to leave */

static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

int cg_create(const char *dir)
{
	return util_mkdir_p(dir, 0755);
}

int cg_kill(const char *dir)
{
	return cg_write(dir, "cgroup.kill", "1");
}

int cg_populated(const char *dir)
{
	char path[PATH_MAX], *text = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	err = util_read_file(path, 4096, &text, NULL);
	if (err)
		return err;
	err = strstr(text, "populated 1") ? 1 : 0;
	free(text);
	return err;
}

static int cg_rmdir_tree(const char *dir)
{
	char child[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(child, sizeof(child), "%s/%s", dir, de->d_name);
		int e = cg_rmdir_tree(child);
		if (e && !err)
			err = e;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

int cg_destroy(const char *dir)
{
	struct timespec pause = {.tv_nsec = 5 * 1000000};
	int err, waited = 0;

	err = cg_populated(dir);
	if (err == -ENOENT)
		return 0;
	if (err > 0) {
		cg_kill(dir);
		while ((err = cg_populated(dir)) > 0 && waited < CG_EMPTY_WAIT_MS) {
			nanosleep(&pause, NULL);
			waited += 5;
		}
	}
	err = cg_rmdir_tree(dir);
	if (err)
		log_warn("%s: %s: %s", __func__, dir, strerror(-err));
	return err;
}

int cg_sweep(const char *root)
{
	char child[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (strspn(de->d_name, "0123456789") == strlen(de->d_name) &&
		    util_owner_alive(atoi(de->d_name)))
			continue;
		snprintf(child, sizeof(child), "%s/%s", root, de->d_name);
		if (cg_destroy(child) == 0) {
			log_info("%s: removed stale cgroup %s", __func__, child);
			n++;
		}
	}
	closedir(d);
	return n;
}

int cg_owner_dir(const char *root, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%d", root, (int)getpid()) >= len)
		return -ENAMETOOLONG;
	return 0;
}
