#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/seccomp.h>

#include "secfault.h"

/* Calls whose failure a workload should survive and which the dynamic
 * loader does not need (an openat or mmap filter would stop the program
 * before main); execve is left out so the filter cannot stop its own exec. */
const char *const secfault_calls[] = {
	"socket", "connect", "bind", "listen", "accept", "accept4", "sendto",
	"sendmsg", "recvfrom", "recvmsg", "shutdown", "setsockopt", "socketpair",
	"pipe2", "eventfd2", "epoll_create1", "timerfd_create", "fsync",
	"fdatasync", "io_uring_setup", "io_uring_enter", NULL,
};

static const int call_nr[] = {
	SYS_socket, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
	SYS_sendto, SYS_sendmsg, SYS_recvfrom, SYS_recvmsg, SYS_shutdown,
	SYS_setsockopt, SYS_socketpair, SYS_pipe2, SYS_eventfd2, SYS_epoll_create1,
	SYS_timerfd_create, SYS_fsync, SYS_fdatasync, SYS_io_uring_setup,
	SYS_io_uring_enter,
};

_Static_assert(sizeof(call_nr) / sizeof(call_nr[0]) ==
	       sizeof(secfault_calls) / sizeof(secfault_calls[0]) - 1,
	       "secfault_calls and call_nr must list the same calls");

#if defined(__x86_64__)
#define SECFAULT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECFAULT_ARCH AUDIT_ARCH_AARCH64
#else
#error "secfault: unknown architecture"
#endif

/* Another architecture's calls (an int 0x80 from a 32-bit helper) pass:
 * their numbers mean other calls. Then one compare per rule. */
int secfault_build(const struct secfault_rule *rules, size_t n, struct sock_fprog *prog)
{
	struct sock_filter *f;
	size_t k = 0;

	if (n > 200)
		return -E2BIG;	/* jump offsets are 8 bits */
	f = calloc(4 + 2 * n, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECFAULT_ARCH, 0,
					      (unsigned char)(2 * n + 1));
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (size_t i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned)call_nr[rules[i].call], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO |
						      ((unsigned)rules[i].err & SECCOMP_RET_DATA));
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog->len = (unsigned short)k;
	prog->filter = f;
	return 0;
}

void secfault_free(struct sock_fprog *prog)
{
	free(prog->filter);
	prog->filter = NULL;
	prog->len = 0;
}
