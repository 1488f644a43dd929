/* cgroup.c: the cgroup v2 mount found in mountinfo text (pure v2, hybrid,
 * escaped, none) and the v2 path in /proc/PID/cgroup text; a dead owner's
 * cgroups swept while another sweep looks at them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "unit_check.h"
#include "util.h"

/* Debian 12, Fedora, Ubuntu: the unified hierarchy alone, at /sys/fs/cgroup. */
static const char pure_v2[] =
	"22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
	"29 22 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - "
	"securityfs securityfs rw\n"
	"31 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
	"cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	"32 22 0:28 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore "
	"pstore rw\n";

/* The build machine's: cgroup v1 controllers at /sys/fs/cgroup/NAME and v2
 * at /sys/fs/cgroup/unified; optional fields on a few lines only. */
static const char hybrid[] =
	"21 26 0:20 / /proc rw,relatime - proc proc rw\n"
	"22 26 0:21 / /sys rw,relatime - sysfs sysfs rw\n"
	"23 26 0:6 / /dev rw,relatime - devtmpfs devtmpfs "
	"rw,size=12334808k,nr_inodes=3083702,mode=755\n"
	"24 23 0:22 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683748k\n"
	"25 23 0:23 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000\n"
	"26 1 254:0 / / rw,relatime - ext4 /dev/vda "
	"rw,discard,resv_strict,resuid=65534,resgid=65534\n"
	"28 25 0:25 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000\n"
	"29 24 0:26 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683748k\n"
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
	"36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
	"37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
	"38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	"44 26 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda "
	"rw,discard,resv_strict,resuid=65534,resgid=65534\n"
	"45 44 0:4 net:[4026532370] /run/netns/fd742172-client rw shared:2 - nsfs nsfs rw\n"
	"46 44 0:4 net:[4026532435] /run/netns/fd742172-server rw shared:3 - nsfs nsfs rw\n";

/* A path with a space, a tab and a backslash, a subtree as the mount's
 * root, several optional fields, a second cgroup2 mount (not taken) and a
 * mount point that looks like a separator or the type. */
static const char escaped[] =
	"50 1 0:40 / /mnt/- rw - tmpfs - rw\n"
	"51 1 0:41 / /mnt/cgroup2 rw shared:3 - tmpfs cgroup2 rw\n"
	"52 1 0:37 /my\\040jobs /run/cg\\040v2\\011x\\134y rw,relatime shared:5 master:2 "
	"propagate_from:1 - cgroup2 none rw\n"
	"53 1 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";

/* A host with cgroup v1 only (CentOS 7), plus lines to skip: empty, cut
 * short, no separator, and a v1 named "cgroup2". */
static const char none[] =
	"21 26 0:20 / /proc rw,relatime - proc proc rw\n"
	"\n"
	"30 22 0:27 / /sys/fs/cgroup\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime cgroup2 cgroup2 rw\n"
	"32 30 0:29 / /sys/fs/cgroup/cgroup2 rw,relatime - cgroup cgroup2 rw,name=cgroup2\n"
	"33 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory";

static void test_mountinfo(void)
{
	char mnt[PATH_MAX], root[PATH_MAX], small[8];

	CHECK(cgroup_mountinfo_parse(pure_v2, mnt, sizeof(mnt), root, sizeof(root)) == 0);
	CHECK(!strcmp(mnt, "/sys/fs/cgroup"));
	CHECK(!strcmp(root, "/"));
	CHECK(cgroup_mountinfo_parse(hybrid, mnt, sizeof(mnt), NULL, 0) == 0);
	CHECK(!strcmp(mnt, "/sys/fs/cgroup/unified"));
	CHECK(cgroup_mountinfo_parse(escaped, mnt, sizeof(mnt), root, sizeof(root)) == 0);
	CHECK(!strcmp(mnt, "/run/cg v2\tx\\y"));
	CHECK(!strcmp(root, "/my jobs"));
	CHECK(cgroup_mountinfo_parse(none, mnt, sizeof(mnt), root, sizeof(root)) == -ENOENT);
	CHECK(cgroup_mountinfo_parse("", mnt, sizeof(mnt), NULL, 0) == -ENOENT);
	CHECK(cgroup_mountinfo_parse(pure_v2, small, sizeof(small), NULL, 0) == -ENAMETOOLONG);
	/* An escape cut off at the end of the field is kept as written. */
	CHECK(cgroup_mountinfo_parse("1 1 0:1 / /a\\04 rw - cgroup2 x rw\n", mnt, sizeof(mnt),
				 NULL, 0) == 0);
	CHECK(!strcmp(mnt, "/a\\04"));
	/* No NUL may come out of an escape: the path would be cut short. */
	CHECK(cgroup_mountinfo_parse("1 1 0:1 / /a\\000b rw - cgroup2 x rw\n", mnt, sizeof(mnt),
				 NULL, 0) == -EINVAL);
}

static void test_proc_cgroup(void)
{
	char path[PATH_MAX], small[4];

	CHECK(cgroup_proc_cgroup_parse("0::/system.slice/faultd.service\n", path,
				   sizeof(path)) == 0);
	CHECK(!strcmp(path, "/system.slice/faultd.service"));
	CHECK(cgroup_proc_cgroup_parse("9:name=systemd:/\n4:memory:/x\n0::/\n", path,
				   sizeof(path)) == 0);
	CHECK(!strcmp(path, "/"));
	CHECK(cgroup_proc_cgroup_parse("0::/a:b/c", path, sizeof(path)) == 0);
	CHECK(!strcmp(path, "/a:b/c"));
	CHECK(cgroup_proc_cgroup_parse("1:name=systemd:/\n", path, sizeof(path)) == -ENOENT);
	CHECK(cgroup_proc_cgroup_parse("0::/long/path\n", small, sizeof(small)) == -ENAMETOOLONG);
}

/* Two faultds start at once after a third was killed: each sweep looks at
 * the dead owner's directory by taking its lock for a moment. The sweep
 * that found it taken by the other sweep took the owner for alive, went
 * on to replay the dead run's journal while its processes lived, and a
 * DPDK client still starting made its runtime directory again (left
 * behind, found by test_kill_9_at_twenty_random_points). */
static void test_sweep_beside_another_sweep(void)
{
	char root[PATH_MAX], owner[PATH_MAX + 16], run[PATH_MAX + 32];
	size_t n;
	int fd;

	/* A root of its own: no other owner's directory is in reach. */
	CHECK(cgroup_default_root(root, sizeof(root) - 16) == 0);
	n = strlen(root);
	snprintf(root + n, sizeof(root) - n, "-unit%d", (int)getpid());
	CHECK(util_mkdir_p(root, 0755) == 0);
	/* A pid that cannot be alive: above pid_max's largest. */
	snprintf(owner, sizeof(owner), "%s/%d", root, 4194305);
	snprintf(run, sizeof(run), "%s/fdunit", owner);
	CHECK(mkdir(owner, 0755) == 0);
	CHECK(mkdir(run, 0755) == 0);
	fd = open(owner, O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0 && flock(fd, LOCK_SH) == 0);	/* the other sweep's look */
	CHECK(cgroup_sweep(root) == 1);
	CHECK(access(owner, F_OK) < 0);
	close(fd);
	rmdir(run);
	rmdir(owner);
	CHECK(rmdir(root) == 0);
}

int main(void)
{
	test_mountinfo();
	test_proc_cgroup();
	test_sweep_beside_another_sweep();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("ok\n");
	return failures ? 1 : 0;
}
