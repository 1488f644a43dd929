/* port_sock: the vendor port layer of incident 2, between the application
 * and lwIP's sockets API.
 *
 * The device had a fixed table of NUM_SOCKETS (38) entries. Its alloc_socket
 * took the lowest free index, and the vendor added a `closing` flag so that
 * one task tearing a socket down would keep the others off it. The defect:
 * shutdown() set `closing` too, and close() reads a set `closing` as
 * "another task is already closing this" and returns -1 early. The
 * MQTT/mbedTLS layer always calls shutdown(SHUT_RDWR) then close(), so every
 * dropped connection leaked one slot and its lwIP socket, and after 38 Wi-Fi
 * drops socket() could only fail.
 *
 * lwIP on Linux allocates sockets from the heap and never runs out, so the
 * table here is what makes the leak visible. Every allocation and release
 * fires a faultd lifecycle probe, with the slot index as the object id, and
 * the number of slots in use is exported as a counter. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/sockets.h"

#include "faultd/usdt.h"

#include "port_sock.h"

struct port_slot {
	int in_use;		/* allocated by port_socket */
	int closing;		/* teardown under way: other tasks keep off */
	int fd;			/* lwIP socket, never a kernel descriptor */
};

static struct {
	pthread_mutex_t lock;	/* guards every slot and used */
	struct port_slot *slots;
	unsigned int nslots, used;
	enum port_sock_bug bug;
} ps = {.lock = PTHREAD_MUTEX_INITIALIZER};

int port_sock_init(unsigned int nslots, enum port_sock_bug bug)
{
	int err = 0;

	ps.slots = calloc(nslots, sizeof(*ps.slots));
	if (!ps.slots) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto out;
	}
	for (unsigned int i = 0; i < nslots; i++)
		ps.slots[i].fd = -1;
	ps.nslots = nslots;
	ps.used = 0;
	ps.bug = bug;
	FAULTD_COUNTER("slots_used", 0);
out:
	return err;
}

void port_sock_fini(void)
{
	if (ps.used)
		fprintf(stderr, "%s: %u of %u slots still in use\n", __func__, ps.used,
			ps.nslots);
	free(ps.slots);
	ps.slots = NULL;
	ps.nslots = ps.used = 0;
}

unsigned int port_sock_slots(void)
{
	return ps.nslots;
}

unsigned int port_sock_used(void)
{
	unsigned int n;

	pthread_mutex_lock(&ps.lock);
	n = ps.used;
	pthread_mutex_unlock(&ps.lock);
	return n;
}

/* The lwIP socket of a slot that is open and not being torn down, or
 * -EBADF. The descriptor is used after the lock is dropped, as on the
 * device: only teardown changes it, and teardown marks `closing` first. */
static int slot_fd(int idx)
{
	int fd = -EBADF;

	pthread_mutex_lock(&ps.lock);
	if (idx >= 0 && (unsigned int)idx < ps.nslots && ps.slots[idx].in_use &&
	    !ps.slots[idx].closing)
		fd = ps.slots[idx].fd;
	pthread_mutex_unlock(&ps.lock);
	return fd;
}

/* Called with the lock held. */
static void slot_release(int idx)
{
	ps.slots[idx] = (struct port_slot){.fd = -1};
	ps.used--;
	FAULTD_OBJ_DESTROY("lwip_sock", idx);
	FAULTD_COUNTER("slots_used", ps.used);
}

int port_socket(void)
{
	int idx = -ENFILE, fd, err;

	/* The slot is claimed first and the socket made after, as
	 * alloc_socket did: a full table fails before lwIP is asked. */
	pthread_mutex_lock(&ps.lock);
	for (unsigned int i = 0; i < ps.nslots; i++) {
		if (!ps.slots[i].in_use) {
			idx = (int)i;
			ps.slots[i] = (struct port_slot){.in_use = 1, .closing = 1, .fd = -1};
			ps.used++;
			break;
		}
	}
	pthread_mutex_unlock(&ps.lock);
	if (idx < 0)
		goto out;
	fd = lwip_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: lwip_socket: %s\n", __func__, strerror(-err));
		goto err_release;
	}
	/* lwIP's F_SETFL takes O_NONBLOCK alone, not F_GETFL's flags. */
	if (lwip_fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		err = -errno;
		fprintf(stderr, "%s: lwip_fcntl O_NONBLOCK: %s\n", __func__, strerror(-err));
		goto err_close_fd;
	}
	pthread_mutex_lock(&ps.lock);
	ps.slots[idx].fd = fd;
	ps.slots[idx].closing = 0;
	FAULTD_OBJ_CREATE("lwip_sock", idx);
	FAULTD_COUNTER("slots_used", ps.used);
	pthread_mutex_unlock(&ps.lock);
	goto out;

err_close_fd:
	lwip_close(fd);
err_release:
	/* Never announced, so released without a destroy probe. */
	pthread_mutex_lock(&ps.lock);
	ps.slots[idx] = (struct port_slot){.fd = -1};
	ps.used--;
	pthread_mutex_unlock(&ps.lock);
	idx = err;
out:
	return idx;
}

int port_connect(int idx, const struct sockaddr_in *sin)
{
	int fd = slot_fd(idx), err = 0;

	if (fd < 0) {
		err = fd;
		goto out;
	}
	if (lwip_connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0)
		err = -errno;
out:
	return err;
}

int port_connect_result(int idx)
{
	int fd = slot_fd(idx), soerr = 0, err = 0;
	socklen_t len = sizeof(soerr);

	if (fd < 0) {
		err = fd;
		goto out;
	}
	if (lwip_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
		err = -errno;
		goto out;
	}
	err = -soerr;
out:
	return err;
}

ssize_t port_send(int idx, const void *buf, size_t len)
{
	int fd = slot_fd(idx);
	ssize_t n = fd;

	if (fd < 0)
		goto out;
	n = lwip_send(fd, buf, len, 0);
	if (n < 0)
		n = -errno;
out:
	return n;
}

ssize_t port_recv(int idx, void *buf, size_t len)
{
	int fd = slot_fd(idx);
	ssize_t n = fd;

	if (fd < 0)
		goto out;
	n = lwip_recv(fd, buf, len, 0);
	if (n < 0)
		n = -errno;
out:
	return n;
}

int port_poll(int idx, short events, int timeout_ms)
{
	struct pollfd pfd = {.fd = slot_fd(idx), .events = events};
	int r = pfd.fd;

	if (pfd.fd < 0)
		goto out;
	/* lwip_poll, not lwip_select: Debian builds lwIP with
	 * LWIP_SOCKET_SELECT 0, and lwip_select is declared but absent. */
	r = lwip_poll(&pfd, 1, timeout_ms);
	if (r < 0)
		r = -errno;
	else if (r > 0)
		r = pfd.revents;
out:
	return r;
}

int port_abortive(int idx)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd = -EBADF;

	pthread_mutex_lock(&ps.lock);
	if (idx >= 0 && (unsigned int)idx < ps.nslots && ps.slots[idx].in_use)
		fd = ps.slots[idx].fd;
	pthread_mutex_unlock(&ps.lock);
	if (fd < 0)
		return fd;
	return lwip_setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ? -errno : 0;
}

int port_shutdown(int idx, int how)
{
	int fd = -EBADF, err = 0;

	pthread_mutex_lock(&ps.lock);
	if (idx >= 0 && (unsigned int)idx < ps.nslots && ps.slots[idx].in_use &&
	    !ps.slots[idx].closing) {
		fd = ps.slots[idx].fd;
		/* The vendor defect: "teardown has begun" was flagged here,
		 * where close() reads it as somebody else's teardown. */
		if (ps.bug == PORT_SOCK_BUG_SHUTDOWN_CLOSE)
			ps.slots[idx].closing = 1;
	}
	pthread_mutex_unlock(&ps.lock);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	/* A connection that never came up has nothing to shut down; that is
	 * not worth a complaint. */
	if (lwip_shutdown(fd, how) < 0 && errno != ENOTCONN)
		err = -errno;
out:
	return err;
}

int port_close(int idx)
{
	int fd, err = 0;

	pthread_mutex_lock(&ps.lock);
	if (idx < 0 || (unsigned int)idx >= ps.nslots || !ps.slots[idx].in_use) {
		pthread_mutex_unlock(&ps.lock);
		err = -EBADF;
		goto out;
	}
	if (ps.slots[idx].closing) {
		pthread_mutex_unlock(&ps.lock);
		/* Meant for a second task racing the first one's close. After
		 * the buggy shutdown it is every close: the slot and its lwIP
		 * socket stay allocated for good. The vendor returned a bare
		 * -1, and so does this. */
		err = ps.bug == PORT_SOCK_BUG_SHUTDOWN_CLOSE ? -1 : -EBUSY;
		goto out;
	}
	ps.slots[idx].closing = 1;
	fd = ps.slots[idx].fd;
	pthread_mutex_unlock(&ps.lock);

	/* The slot is released even if lwIP reports an error: the socket
	 * is gone either way, and keeping the slot would leak it. */
	if (lwip_close(fd) < 0) {
		err = -errno;
		fprintf(stderr, "%s: slot %d: lwip_close: %s\n", __func__, idx, strerror(-err));
	}
	pthread_mutex_lock(&ps.lock);
	slot_release(idx);
	pthread_mutex_unlock(&ps.lock);
out:
	return err;
}
