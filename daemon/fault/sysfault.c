#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe_util.h"
#include "sysfault.skel.h"
#include "sysfault_user.h"
#include "util.h"

struct sysfault {
	struct sysfault_bpf *skel;
	struct bpf_link *link;
};

PROBE_SKEL_OPS_DEFINE(sysfault);

/* bpf_set_retval (5.18) is what lets the program pick the errno. */
static const struct probe_prog_cap sysfault_progs[] = {{"sock_create", CAPS_SYSCALL_SOCKET}};

struct sysfault *sysfault__attach(const char *cgroup)
{
	struct sysfault *sf;
	int fd, err = 0;

	sf = calloc(1, sizeof(*sf));
	if (!sf) {
		errno = ENOMEM;
		return NULL;
	}
	sf->skel = probe_load(&sysfault_ops, sysfault_progs, ARRAY_SIZE(sysfault_progs),
			      CAPS_SYSCALL_SOCKET, NULL, NULL);
	if (!sf->skel) {
		err = -errno;
		goto err_free;
	}
	fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto err_destroy;
	}
	sf->link = bpf_program__attach_cgroup(sf->skel->progs.sock_create, fd);
	if (!sf->link) {
		err = -errno;
		caps_set_missing(CAPS_SYSCALL_SOCKET, "cgroup/sock_create did not attach to %s: %s",
				 cgroup, strerror(-err));
	}
	close(fd);
	if (err)
		goto err_destroy;
	return sf;
err_destroy:
	sysfault_bpf__destroy(sf->skel);
err_free:
	log_warn("%s: %s: %s", __func__, cgroup, strerror(-err));
	free(sf);
	errno = -err;
	return NULL;
}

int sysfault__set(struct sysfault *sf, const struct sysfault_conf *c)
{
	__u32 key = 0;

	return bpf_map__update_elem(sf->skel->maps.conf, &key, sizeof(key), c, sizeof(*c), 0)
	       ? -errno : 0;
}

void sysfault__stats(const struct sysfault *sf, struct sysfault_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sysfault_stats *vals;
	__u32 key = 0;

	memset(out, 0, sizeof(*out));
	vals = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*vals)) : NULL;
	if (vals && bpf_map__lookup_elem(sf->skel->maps.stats, &key, sizeof(key), vals,
					 sizeof(*vals) * (size_t)ncpu, 0) == 0) {
		for (int i = 0; i < ncpu; i++) {
			out->calls += vals[i].calls;
			out->failed += vals[i].failed;
		}
	}
	free(vals);
}

void sysfault__destroy(struct sysfault *sf)
{
	if (!sf)
		return;
	bpf_link__destroy(sf->link);
	sysfault_bpf__destroy(sf->skel);
	free(sf);
}
