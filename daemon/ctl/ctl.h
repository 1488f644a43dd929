/* The control socket: a Unix stream socket speaking JSON lines. One request
 * object per line; replies and streamed events are objects, one per line.
 * This module is the transport (listen, peer check, framing); faultd.c
 * dispatches the requests. */
#ifndef FAULTD_CTL_H
#define FAULTD_CTL_H

#include <jansson.h>
#include <event2/event.h>

#define CTL_DEFAULT_SOCK "/run/faultd/faultd.sock"
#define CTL_MAX_LINE (4u << 20)		/* a request larger than this is refused */

struct ctl_server;
struct ctl_conn;

/* A request arrived on @c; @req is borrowed. Reply with ctl_conn_send(). */
typedef void (*ctl_request_cb)(struct ctl_conn *c, const json_t *req, void *arg);
/* @c is going away (peer hung up or closed): drop references to it. */
typedef void (*ctl_close_cb)(struct ctl_conn *c, void *arg);

struct ctl_server *ctl_server_open(struct event_base *base, const char *path,
				   ctl_request_cb on_request, ctl_close_cb on_close,
				   void *arg);
void ctl_server_close(struct ctl_server *s);

/* One request line (without its newline) as a JSON object (new reference),
 * or NULL with why it is not one in @why. */
json_t *ctl_request_parse(const char *line, size_t len, char *why, size_t whylen);
/* Queue @msg (borrowed) as one line. 0 or -errno. */
int ctl_conn_send(struct ctl_conn *c, const json_t *msg);
/* {"ok": false, "error": "..."} */
int ctl_conn_error(struct ctl_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Close once everything queued has been written. */
void ctl_conn_close_after_flush(struct ctl_conn *c);
void ctl_conn_set_data(struct ctl_conn *c, void *data);
void *ctl_conn_data(const struct ctl_conn *c);

/* Client side (faultctl). */
int ctl_client_connect(const char *path);		/* fd or -errno */
int ctl_client_send(int fd, const json_t *msg);		/* 0 or -errno */
/* Read one line as JSON; NULL with errno set at EOF (0) or error. */
json_t *ctl_client_recv(int fd);
/* The same, but a signal that sets *@stop makes it return NULL with errno
 * EINTR (install the handler without SA_RESTART). */
json_t *ctl_client_recv_until(int fd, volatile int *stop);

#endif
