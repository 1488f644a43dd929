#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "ctl.h"
#include "log.h"
#include "util.h"

#define CTL_EMFILE_BACKOFF_S 1	/* out of fds: stop accepting this long */
#define CTL_CLIENT_BUF 65536
#define CTL_CLOSE_FLUSH_MS 2000	/* at exit, for replies still queued */

struct ctl_server {
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *backoff_ev;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ctl_request_cb on_request;
	ctl_close_cb on_close;
	void *arg;
	struct ctl_conn *conns;		/* all open connections */
};

struct ctl_conn {
	struct ctl_server *srv;
	struct bufferevent *bev;
	struct ctl_conn *next;
	bool closing;
	void *data;
};

static void conn_free(struct ctl_conn *c)
{
	struct ctl_conn **pp = &c->srv->conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	if (c->srv->on_close)
		c->srv->on_close(c, c->srv->arg);
	bufferevent_free(c->bev);
	free(c);
}

int ctl_conn_send(struct ctl_conn *c, const json_t *msg)
{
	char *line;
	int err = 0;

	if (c->closing)
		return -EPIPE;
	line = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!line)
		return -ENOMEM;
	if (bufferevent_write(c->bev, line, strlen(line)) < 0 ||
	    bufferevent_write(c->bev, "\n", 1) < 0)
		err = -ENOMEM;
	free(line);
	return err;
}

int ctl_conn_error(struct ctl_conn *c, const char *fmt, ...)
{
	char msg[1024];
	json_t *j;
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{sbss}", "ok", 0, "error", msg);
	if (!j)
		return -ENOMEM;
	err = ctl_conn_send(c, j);
	json_decref(j);
	return err;
}

static void on_flushed(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	(void)bev;
	if (c->closing)
		conn_free(c);
}

void ctl_conn_close_after_flush(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
	/* else on_flushed frees it */
}

void ctl_conn_set_data(struct ctl_conn *c, void *data)
{
	c->data = data;
}

void *ctl_conn_data(const struct ctl_conn *c)
{
	return c->data;
}

json_t *ctl_request_parse(const char *line, size_t len, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);

	if (req && json_is_object(req))
		return req;
	snprintf(why, whylen, "%s", req ? "expected a JSON object" : jerr.text);
	json_decref(req);
	return NULL;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while (!c->closing && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
		char why[JSON_ERROR_TEXT_LENGTH];
		json_t *req = ctl_request_parse(line, len, why, sizeof(why));

		free(line);
		if (!req) {
			ctl_conn_error(c, "bad request: %s", why);
			ctl_conn_close_after_flush(c);
			return;
		}
		c->srv->on_request(c, req, c->srv->arg);
		json_decref(req);
	}
	if (!c->closing && evbuffer_get_length(in) > CTL_MAX_LINE) {
		ctl_conn_error(c, "bad request: line longer than %u bytes", CTL_MAX_LINE);
		ctl_conn_close_after_flush(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("%s: client went away", __func__);
		conn_free(c);
	}
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_server *s = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct ctl_conn *c;

	(void)lev;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		log_warn("%s: SO_PEERCRED: %s; connection refused", __func__, strerror(errno));
		close(fd);
		return;
	}
	if (cred.uid != 0) {
		static const char refuse[] =
			"{\"ok\":false,\"error\":\"permission denied: faultd serves root only\"}\n";

		log_warn("%s: refused peer pid %d uid %d", __func__, (int)cred.pid,
			 (int)cred.uid);
		if (write(fd, refuse, sizeof(refuse) - 1) < 0)
			log_debug("%s: write: %s", __func__, strerror(errno));
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	bufferevent_setcb(c->bev, on_read, on_flushed, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_backoff_over(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_server *s = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(s->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct ctl_server *s = arg;
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("%s: accept: %s", __func__, strerror(err));
	if (err == EMFILE || err == ENFILE) {
		struct timeval tv = {.tv_sec = CTL_EMFILE_BACKOFF_S};

		evconnlistener_disable(lev);
		evtimer_add(s->backoff_ev, &tv);
	}
}

struct ctl_server *ctl_server_open(struct event_base *base, const char *path,
				   ctl_request_cb on_request, ctl_close_cb on_close,
				   void *arg)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ctl_server *s;
	char dir[sizeof(sun.sun_path)], *slash;
	int fd = -1, err = 0;
	mode_t old;

	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("%s: socket path too long: %s", __func__, path);
		err = -ENAMETOOLONG;
		goto err_free;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memcpy(s->path, path, strlen(path) + 1);
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		util_mkdir_p(dir, 0755);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto err_free;
	}
	/* A socket file left by a dead faultd: take it over only if nobody
	 * listens on it (refused) or it is gone. A live faultd too busy to
	 * accept (EAGAIN: its backlog is full) is still serving it. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_err("%s: %s: another faultd is serving it", __func__, path);
		err = -EADDRINUSE;
		goto err_close;
	}
	if (errno != ECONNREFUSED && errno != ENOENT) {
		err = -errno;
		log_err("%s: %s: left alone, its owner may be alive: %s", __func__, path,
			strerror(-err));
		err = err == -EAGAIN ? -EADDRINUSE : err;
		goto err_close;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto err_free;
	}
	unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		err = -errno;
	umask(old);
	if (err) {
		log_err("%s: bind %s: %s", __func__, path, strerror(-err));
		goto err_close;
	}
	if (chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		err = -errno;
		goto err_unlink;
	}
	s->base = base;
	s->on_request = on_request;
	s->on_close = on_close;
	s->arg = arg;
	s->backoff_ev = evtimer_new(base, on_backoff_over, s);
	s->lev = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!s->lev || !s->backoff_ev) {
		err = -ENOMEM;
		goto err_unlink;
	}
	evconnlistener_set_error_cb(s->lev, on_accept_error);
	log_info("%s: listening on %s", __func__, path);
	return s;
err_unlink:
	unlink(path);
	if (s->backoff_ev)
		event_free(s->backoff_ev);
err_close:
	if (!s->lev)
		close(fd);
err_free:
	free(s);
	errno = -err;
	return NULL;
}

/* The loop has ended; give each client what was queued for it (the last
 * "done" of a run stopped by SIGTERM), for at most @ms in all. */
static void flush_all(struct ctl_server *s, int ms)
{
	uint64_t deadline = util_now_ns() + (uint64_t)ms * 1000000ull;

	for (struct ctl_conn *c = s->conns; c; c = c->next) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		struct pollfd pfd = {.fd = bufferevent_getfd(c->bev), .events = POLLOUT};

		/* A bufferevent keeps the start of its output frozen for its
		 * own writer; with the loop gone, drain it here. */
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) && util_now_ns() < deadline) {
			int left = (int)((deadline - util_now_ns()) / 1000000ull);

			if (poll(&pfd, 1, left > 0 ? left : 1) <= 0 ||
			    evbuffer_write(out, pfd.fd) < 0)
				break;
		}
	}
}

void ctl_server_close(struct ctl_server *s)
{
	if (!s)
		return;
	flush_all(s, CTL_CLOSE_FLUSH_MS);
	while (s->conns)
		conn_free(s->conns);
	evconnlistener_free(s->lev);
	event_free(s->backoff_ev);
	unlink(s->path);
	free(s);
}

/* --- client ------------------------------------------------------------------ */

int ctl_client_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int ctl_client_send(int fd, const json_t *msg)
{
	char *line = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int err = 0;

	if (!line)
		return -ENOMEM;
	len = strlen(line);
	line[len] = '\n';	/* replaces the NUL; length tracked separately */
	while (off < len + 1) {
		ssize_t n = send(fd, line + off, len + 1 - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	free(line);
	return err;
}

/* Lines from the daemon are read through a per-fd buffer kept here; faultctl
 * talks to one socket at a time. */
static struct {
	int fd;
	char *buf;
	size_t len, cap;
} rx = {.fd = -1};

json_t *ctl_client_recv(int fd)
{
	return ctl_client_recv_until(fd, NULL);
}

json_t *ctl_client_recv_until(int fd, volatile int *stop)
{
	json_error_t jerr;

	if (rx.fd != fd) {
		rx.fd = fd;
		rx.len = 0;
	}
	for (;;) {
		char *nl = rx.buf ? memchr(rx.buf, '\n', rx.len) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - rx.buf);
			json_t *j = json_loadb(rx.buf, n, 0, &jerr);

			memmove(rx.buf, nl + 1, rx.len - n - 1);
			rx.len -= n + 1;
			if (!j)
				errno = EPROTO;
			return j;
		}
		if (rx.len == rx.cap) {
			size_t cap = rx.cap ? rx.cap * 2 : CTL_CLIENT_BUF;
			char *grown = cap <= 4 * CTL_MAX_LINE ? realloc(rx.buf, cap) : NULL;

			if (!grown) {
				errno = ENOMEM;
				return NULL;
			}
			rx.buf = grown;
			rx.cap = cap;
		}
		ssize_t n = recv(fd, rx.buf + rx.len, rx.cap - rx.len, 0);
		if (n < 0 && errno == EINTR && stop && *stop)
			return NULL;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return NULL;
		}
		rx.len += (size_t)n;
	}
}
