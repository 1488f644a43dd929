/* util_in_netns: whatever the function does, the caller comes back in its
 * own network namespace. The function here drops CAP_SYS_ADMIN, so a
 * setns() back to faultd's namespace on the same thread would fail (it
 * used to be only logged, and faultd went on in the run's namespace). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "unit_check.h"
#include "util.h"

static ino_t netns_ino(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

static int has_sys_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	return !!(d[0].effective & (1u << CAP_SYS_ADMIN));
}

static int drop_sys_admin(void *arg)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	ino_t *inside = arg;

	*inside = netns_ino();
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].effective &= ~(1u << CAP_SYS_ADMIN);
	return syscall(SYS_capset, &h, d) < 0 ? -1 : 0;
}

int main(void)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), other;
	ino_t home = netns_ino(), inside = 0;

	CHECK(self >= 0);
	CHECK(has_sys_admin() == 1);
	/* A namespace to visit, made and left on this thread. */
	CHECK(unshare(CLONE_NEWNET) == 0);
	other = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(other >= 0);
	CHECK(setns(self, CLONE_NEWNET) == 0);
	CHECK(netns_ino() == home);

	CHECK(util_in_netns(other, drop_sys_admin, &inside) == 0);
	CHECK(inside != 0 && inside != home);
	CHECK(netns_ino() == home);
	CHECK(has_sys_admin() == 1);

	/* A namespace that cannot be entered is an error, not a visit. */
	CHECK(util_in_netns(-1, drop_sys_admin, &inside) == -EBADF);
	CHECK(netns_ino() == home);
	close(other);
	close(self);
	return failures ? 1 : 0;
}
