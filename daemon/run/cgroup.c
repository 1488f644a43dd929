#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "caps.h"
#include "cgroup.h"
#include "log.h"
#include "util.h"

#define CG_PROC_MAX (8 << 20)	/* mountinfo of a host with many thousand mounts */
#define CG_DEFAULT_NAME "faultd"	/* the default root, below the mount */
#define CG_DAEMON_LEAF "daemon"	/* delegated: where faultd itself lives */
#define CG_RUNS_NAME "runs"	/* delegated: the parent of run cgroups */
#define CG_NO_MOUNT "no cgroup v2 mount in /proc/self/mountinfo; mount one: " \
	"mount -t cgroup2 none /sys/fs/cgroup"

static int cgroup_write(const char *dir, const char *file, const char *val)
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

int cgroup_create(const char *dir)
{
	int err;

	/* Without a usable root the run fails here, at setup, saying why;
	 * making its directories wherever the root points (a tmpfs, a cgroup
	 * v1 hierarchy) would only fail later and more obscurely. */
	if (caps_state(CAPS_CGROUP) == CAPS_MISSING) {
		log_err("%s: %s: %s", __func__, dir, caps_why(CAPS_CGROUP));
		err = -ENODEV;
		goto out;
	}
	err = util_mkdir_p(dir, 0755);
out:
	return err;
}

int cgroup_kill(const char *dir)
{
	return cgroup_write(dir, "cgroup.kill", "1");
}

int cgroup_populated(const char *dir)
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

static int cgroup_rmdir_tree(const char *dir)
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
		int e = cgroup_rmdir_tree(child);
		if (e && !err)
			err = e;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

static int cgroup_destroy_within(const char *dir, int wait_ms)
{
	struct timespec pause = {.tv_nsec = 5 * 1000000};
	int err, waited = 0;

	err = cgroup_populated(dir);
	if (err == -ENOENT)
		return 0;
	if (err > 0) {
		cgroup_kill(dir);
		while ((err = cgroup_populated(dir)) > 0 && waited < wait_ms) {
			nanosleep(&pause, NULL);
			waited += 5;
		}
		if (err > 0 && !wait_ms)
			return -EBUSY;
	}
	err = cgroup_rmdir_tree(dir);
	if (err)
		log_warn("%s: %s: %s", __func__, dir, strerror(-err));
	return err;
}

int cgroup_destroy(const char *dir)
{
	return cgroup_destroy_within(dir, CG_EMPTY_WAIT_MS);
}

int cgroup_destroy_nowait(const char *dir)
{
	return cgroup_destroy_within(dir, 0);
}

/* The owner directory this process holds locked (flock) for as long as it
 * lives: the lock goes with its last fd, at its death, so a sweep that can
 * take it knows the owner is gone, whatever pid namespace it ran in. */
static struct {
	pthread_mutex_t lock;
	int fd;
	dev_t dev;
	ino_t ino;
} cg_owner = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

int cgroup_owner_hold(const char *run_cgroup)
{
	char owner[PATH_MAX], *slash;
	struct stat st;
	int fd = -1, err;

	snprintf(owner, sizeof(owner), "%s", run_cgroup);
	slash = strrchr(owner, '/');
	if (slash)
		*slash = '\0';
	err = slash ? util_mkdir_p(owner, 0755) : -EINVAL;
	if (!err) {
		fd = open(owner, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = fd < 0 || fstat(fd, &st) < 0 ? -errno : 0;
	}
	pthread_mutex_lock(&cg_owner.lock);
	if (!err && (cg_owner.fd < 0 || cg_owner.dev != st.st_dev || cg_owner.ino != st.st_ino)) {
		/* A sweep holds it for a moment only. */
		err = flock(fd, LOCK_EX) < 0 ? -errno : 0;
		if (!err) {
			if (cg_owner.fd >= 0)
				close(cg_owner.fd);	/* the directory of an earlier run */
			cg_owner.fd = fd;
			cg_owner.dev = st.st_dev;
			cg_owner.ino = st.st_ino;
			fd = -1;
		}
	}
	pthread_mutex_unlock(&cg_owner.lock);
	if (fd >= 0)
		close(fd);
	if (err)
		log_warn("%s: %s: %s", __func__, owner, strerror(-err));
	return err;
}

/* Held by a live faultd or faultctl (cgroup_owner_hold, LOCK_EX). A sweep
 * looks with a shared lock: two sweeps looking at once (faultds started
 * together) do not take each other for the owner. */
static bool cgroup_owner_locked(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool locked = false;

	if (fd >= 0) {
		locked = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(fd);	/* and the lock with it */
	}
	return locked;
}

/* Whether the owner of @root/@name (PID, or PID@PIDNS) may be alive. */
static bool cgroup_owner_alive(const char *root, const char *name)
{
	size_t digits = strspn(name, "0123456789");
	const char *at = name + digits;
	unsigned long ns = 0, ours = util_pidns();
	char dir[PATH_MAX];

	if (!digits)
		return true;	/* not an owner's: not ours to remove */
	if (*at == '@' && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1))
		ns = strtoul(at + 1, NULL, 10);
	if (*at && !ns)
		return true;
	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	if (cgroup_owner_locked(dir))
		return true;
	/* Unlocked. In our own namespace the pid tells (a faultd older than
	 * the lock); an owner named with another namespace held the lock
	 * while it lived; a bare pid seen from inside a container is the
	 * host's to judge. */
	if (ns == ours || (!ns && ours == UTIL_PIDNS_INIT))
		return util_owner_alive(atoi(name));
	return !ns;
}

/* A sweep runs at start, before the loop: it may wait longer than a run's
 * teardown for a dead owner's killed processes, which can spend seconds
 * uninterruptible while their mappings and uprobes go. */
#define CG_SWEEP_WAIT_MS 10000

int cgroup_sweep(const char *root)
{
	char child[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	/* An unusable root (caps says why) holds nothing of faultd's. */
	if (caps_state(CAPS_CGROUP) == CAPS_MISSING)
		return 0;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    cgroup_owner_alive(root, de->d_name))
			continue;
		snprintf(child, sizeof(child), "%s/%s", root, de->d_name);
		if (cgroup_destroy_within(child, CG_SWEEP_WAIT_MS) == 0) {
			log_info("%s: removed stale cgroup %s", __func__, child);
			n++;
		}
	}
	closedir(d);
	return n;
}

int cgroup_owner_dir(const char *root, char *buf, size_t len)
{
	unsigned long ns = util_pidns();
	int n;

	/* Outside the init pid namespace the pid is named with its namespace:
	 * a faultd in another one that shares this root can tell it apart. */
	if (!ns || ns == UTIL_PIDNS_INIT)
		n = snprintf(buf, len, "%s/%d", root, (int)getpid());
	else
		n = snprintf(buf, len, "%s/%d@%lu", root, (int)getpid(), ns);
	return (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool cgroup_is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/* Copy the @n bytes of a mountinfo field at @s into @buf, undoing the octal
 * escapes the kernel writes for a space, tab, newline or backslash in a
 * path (\040, \011, \012, \134). 0, -ENAMETOOLONG, or -EINVAL for an
 * escaped NUL (the path would end there). */
static int cgroup_unescape(const char *s, size_t n, char *buf, size_t len)
{
	size_t i = 0, o = 0;
	int err = len ? 0 : -ENAMETOOLONG;

	while (!err && i < n) {
		char c = s[i++];

		if (c == '\\' && i + 3 <= n && s[i] <= '3' && cgroup_is_octal(s[i]) &&
		    cgroup_is_octal(s[i + 1]) && cgroup_is_octal(s[i + 2])) {
			c = (char)((s[i] - '0') << 6 | (s[i + 1] - '0') << 3 | (s[i + 2] - '0'));
			i += 3;
		}
		if (o + 1 >= len)
			err = -ENAMETOOLONG;
		else if (c == '\0')
			err = -EINVAL;
		else
			buf[o++] = c;
	}
	if (len)
		buf[o] = '\0';
	return err;
}

#define CG_MI_FIELDS 32		/* 10 fields and the optional ones between */

int cgroup_mountinfo_parse(const char *mountinfo, char *mnt, size_t mnt_len,
		       char *root, size_t root_len)
{
	const char *line = mountinfo, *f[CG_MI_FIELDS];
	size_t flen[CG_MI_FIELDS];
	int err = -ENOENT;

	while (line && *line && err == -ENOENT) {
		const char *end = strchrnul(line, '\n'), *p = line;
		size_t n = 0, sep = 0;

		/* Fields are separated by single spaces; a space inside a path
		 * is written \040, so splitting at spaces is exact. */
		while (p < end && n < CG_MI_FIELDS) {
			const char *q = memchr(p, ' ', (size_t)(end - p));

			if (!q)
				q = end;
			f[n] = p;
			flen[n++] = (size_t)(q - p);
			p = q < end ? q + 1 : end;
		}
		/* The optional fields (field 7 on) end at a lone "-"; the file
		 * system type follows it. */
		for (size_t i = 6; i < n && !sep; i++)
			if (flen[i] == 1 && f[i][0] == '-')
				sep = i;
		if (sep && sep + 1 < n && flen[sep + 1] == strlen("cgroup2") &&
		    !memcmp(f[sep + 1], "cgroup2", flen[sep + 1])) {
			err = cgroup_unescape(f[4], flen[4], mnt, mnt_len);
			if (!err && root)
				err = cgroup_unescape(f[3], flen[3], root, root_len);
		}
		line = *end ? end + 1 : NULL;
	}
	return err;
}

int cgroup_proc_cgroup_parse(const char *text, char *buf, size_t len)
{
	const char *line = text;
	int err = -ENOENT;

	while (line && *line && err == -ENOENT) {
		const char *end = strchrnul(line, '\n');

		/* cgroup v2's line is hierarchy 0 with no controllers; the path
		 * is the rest of the line, colons and all. */
		if (!strncmp(line, "0::", 3)) {
			size_t n = (size_t)(end - line - 3);

			err = n < len ? 0 : -ENAMETOOLONG;
			if (!err) {
				memcpy(buf, line + 3, n);
				buf[n] = '\0';
			}
		}
		line = *end ? end + 1 : NULL;
	}
	return err;
}

/* The first cgroup2 mount of this process's mount namespace; without
 * one, the caps table says so (and logs it, once). */
static int cgroup_mount(char *mnt, size_t mnt_len, char *root, size_t root_len)
{
	char *text = NULL;
	int err;

	err = util_read_file("/proc/self/mountinfo", CG_PROC_MAX, &text, NULL);
	if (err) {
		caps_set_missing(CAPS_CGROUP, "cannot read /proc/self/mountinfo: %s",
				 strerror(-err));
		goto out;
	}
	err = cgroup_mountinfo_parse(text, mnt, mnt_len, root, root_len);
	if (err == -ENOENT)
		caps_set_missing(CAPS_CGROUP, CG_NO_MOUNT);
	else if (err)
		caps_set_missing(CAPS_CGROUP, "the cgroup2 mount in /proc/self/mountinfo: %s",
				 strerror(-err));
out:
	free(text);
	return err;
}

int cgroup_default_root(char *buf, size_t len)
{
	char mnt[PATH_MAX];
	int err;

	err = cgroup_mount(mnt, sizeof(mnt), NULL, 0);
	if (err)
		goto out;
	if ((size_t)snprintf(buf, len, "%s/" CG_DEFAULT_NAME, mnt) >= len) {
		err = -ENAMETOOLONG;
		caps_set_missing(CAPS_CGROUP, "%s/" CG_DEFAULT_NAME ": %s", mnt, strerror(-err));
		goto out;
	}
	err = util_mkdir_p(buf, 0755);
	if (err) {
		caps_set_missing(CAPS_CGROUP, "cannot create %s: %s", buf, strerror(-err));
		goto out;
	}
	caps_set_ok(CAPS_CGROUP, mnt);
out:
	return err;
}

/* systemd marks a cgroup it delegates with trusted.delegate (user.delegate
 * under a user manager); older versions set neither, so its absence is
 * worth a warning, not a refusal. */
static bool cgroup_marked_delegated(const char *dir)
{
	char v[8];
	ssize_t n;

	n = getxattr(dir, "trusted.delegate", v, sizeof(v));
	if (n <= 0)
		n = getxattr(dir, "user.delegate", v, sizeof(v));
	return n > 0 && v[0] == '1';
}

int cgroup_delegate(char *buf, size_t len)
{
	char mnt[PATH_MAX], mroot[PATH_MAX], own[PATH_MAX], base[PATH_MAX], leaf[PATH_MAX];
	char pid[16], *text = NULL, *rel, *last;
	bool in_leaf;
	size_t n;
	int err;

	err = cgroup_mount(mnt, sizeof(mnt), mroot, sizeof(mroot));
	if (err)
		goto out;
	err = util_read_file("/proc/self/cgroup", CG_PROC_MAX, &text, NULL);
	if (!err)
		err = cgroup_proc_cgroup_parse(text, own, sizeof(own));
	if (err) {
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: no cgroup v2 line (0::) in "
				 "/proc/self/cgroup: %s", strerror(-err));
		goto out;
	}
	/* The mount shows the hierarchy from its root field down (a subtree
	 * when a container bind-mounts its own); faultd's cgroup is named
	 * from the top, so that root comes off its front. */
	n = strcmp(mroot, "/") ? strlen(mroot) : 0;
	if (strncmp(own, mroot, n) || (own[n] != '/' && own[n] != '\0')) {
		err = -ENOENT;
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: faultd's cgroup %s is not "
				 "below the cgroup2 mount %s (which shows %s)", own, mnt, mroot);
		goto out;
	}
	rel = own + n;
	/* Started in a leaf named daemon already (systemd's
	 * DelegateSubgroup=daemon): the delegated cgroup is its parent. */
	last = strrchr(rel, '/');
	in_leaf = last && !strcmp(last + 1, CG_DAEMON_LEAF);
	if (in_leaf)
		*last = '\0';
	if (!rel[0] || !strcmp(rel, "/")) {
		err = -EINVAL;
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: faultd is in %s, the top of "
				 "the cgroup2 mount %s, not in a unit's cgroup: start it from a "
				 "unit with Delegate=yes, or drop the option", own, mnt);
		goto out;
	}
	if ((size_t)snprintf(base, sizeof(base), "%s%s", mnt, rel) >= sizeof(base) ||
	    (size_t)snprintf(leaf, sizeof(leaf), "%s/" CG_DAEMON_LEAF, base) >= sizeof(leaf) ||
	    (size_t)snprintf(buf, len, "%s/" CG_RUNS_NAME, base) >= len) {
		err = -ENAMETOOLONG;
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: %s: %s", base, strerror(-err));
		goto out;
	}
	if (!cgroup_marked_delegated(base))
		log_warn("%s: %s is not marked delegated (no trusted.delegate xattr): the unit "
			 "needs Delegate=yes, or systemd may move or remove what faultd makes in it",
			 __func__, base);
	/* A cgroup with processes in it cannot have controllers enabled for
	 * its children, so faultd leaves its own for a leaf beside runs. */
	err = in_leaf ? 0 : util_mkdir_p(leaf, 0755);
	if (err) {
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: cannot create %s: %s", leaf,
				 strerror(-err));
		goto out;
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	err = in_leaf ? 0 : cgroup_write(leaf, "cgroup.procs", pid);
	if (err) {
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: cannot move faultd into %s: %s",
				 leaf, strerror(-err));
		goto out;
	}
	err = util_mkdir_p(buf, 0755);
	if (err) {
		caps_set_missing(CAPS_CGROUP, "--cgroup-delegated: cannot create %s: %s", buf,
				 strerror(-err));
		goto out;
	}
	caps_set_ok(CAPS_CGROUP, mnt);
	log_info("%s: faultd is in %s; runs go below %s", __func__, leaf, buf);
out:
	free(text);
	return err;
}

/* A root given by hand must lie in a cgroup2 file system (its nearest
 * existing ancestor does), or mkdir -p would make plain directories
 * wherever it points. */
static int cgroup_check_given(const char *root)
{
	char path[PATH_MAX], *slash;
	struct statfs st;
	int err;

	if ((size_t)snprintf(path, sizeof(path), "%s", root) >= sizeof(path)) {
		err = -ENAMETOOLONG;
		goto out;
	}
	while ((err = statfs(path, &st) < 0 ? -errno : 0) == -ENOENT &&
	       (slash = strrchr(path, '/')) && slash != path)
		*slash = '\0';
	if (!err && st.f_type != CGROUP2_SUPER_MAGIC)
		err = -EMEDIUMTYPE;
out:
	return err;
}

int cgroup_root_init(char *root, size_t len, bool delegated)
{
	int err;

	if (root[0] && delegated) {
		err = -EINVAL;
		caps_set_missing(CAPS_CGROUP, "--cgroup-root and --cgroup-delegated exclude "
				 "each other");
	} else if (delegated) {
		err = cgroup_delegate(root, len);
	} else if (!root[0]) {
		err = cgroup_default_root(root, len);
	} else {
		err = cgroup_check_given(root);
		if (!err)
			err = util_mkdir_p(root, 0755);
		if (err == -EMEDIUMTYPE)
			caps_set_missing(CAPS_CGROUP, "--cgroup-root %s is not in a cgroup v2 "
					 "file system", root);
		else if (err)
			caps_set_missing(CAPS_CGROUP, "--cgroup-root %s: %s", root, strerror(-err));
		else
			caps_set_ok(CAPS_CGROUP, "--cgroup-root");
	}
	/* Unusable, the root still names where runs would have gone, for
	 * their errors; cgroup_create and cgroup_sweep leave it alone. */
	if (err && !root[0])
		snprintf(root, len, "/sys/fs/cgroup/" CG_DEFAULT_NAME);
	return err;
}
