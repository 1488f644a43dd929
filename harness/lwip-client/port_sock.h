/* port_sock: a vendor-style socket port layer over lwIP's sockets API, as
 * on the device of incident 2: a fixed table of slots handed out lowest
 * index first, each holding one lwIP socket. Callers name sockets by slot
 * index, never by lwIP descriptor. All functions return 0 (or a count or an
 * index) on success and -errno on failure, except where noted. */
#ifndef LWIP_CLIENT_PORT_SOCK_H
#define LWIP_CLIENT_PORT_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#include <netinet/in.h>

enum port_sock_bug {
	PORT_SOCK_CORRECT = 0,
	/* The vendor defect: shutdown() marks the slot closing, so the
	 * close() that follows returns -1 and never releases it. */
	PORT_SOCK_BUG_SHUTDOWN_CLOSE,
};

/* Sets up a table of nslots slots. Not thread-safe; call once first. */
int port_sock_init(unsigned int nslots, enum port_sock_bug bug);
/* Frees the table; slots still in use are reported, not closed. */
void port_sock_fini(void);
unsigned int port_sock_slots(void);
unsigned int port_sock_used(void);

/* A non-blocking TCP socket in the lowest free slot: returns its index, or
 * -ENFILE when every slot is in use, or the error lwip_socket() gave. */
int port_socket(void);
/* Starts a connect: 0 if already connected, -EINPROGRESS while it runs
 * (wait for PORT_POLLOUT, then call port_connect_result). */
int port_connect(int idx, const struct sockaddr_in *sin);
/* The outcome of a connect that port_poll reported writable. */
int port_connect_result(int idx);
/* Non-blocking: bytes moved, 0 for EOF (recv), -EAGAIN if none could be. */
ssize_t port_send(int idx, const void *buf, size_t len);
ssize_t port_recv(int idx, void *buf, size_t len);
/* Waits up to timeout_ms for POLLIN/POLLOUT on the slot's socket; returns
 * the poll revents (0 on timeout). */
int port_poll(int idx, short events, int timeout_ms);
int port_shutdown(int idx, int how);
/* Linger 0: the close that follows resets a connection with data still
 * unacknowledged instead of retransmitting it into a dead link. */
int port_abortive(int idx);
/* Releases the slot and its lwIP socket. With PORT_SOCK_BUG_SHUTDOWN_CLOSE
 * after port_shutdown, returns a bare -1, as the vendor's code did, and
 * releases nothing. */
int port_close(int idx);

#endif
