/* echo-server: TCP and UDP echo on kernel sockets, a real peer for test
 * scenarios. Everything runs on one libevent loop; SIGTERM or SIGINT end it
 * cleanly with a summary line, every allocation freed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "hc.h"

/* A peer that sends but does not read must not make us buffer without bound:
 * past OUT_HIGH unsent bytes a connection stops reading until its output
 * drains to OUT_LOW. */
#define ECHO_OUT_HIGH		(256 * 1024)
#define ECHO_OUT_LOW		(64 * 1024)
#define ECHO_UDP_MAX		65536	/* larger than any UDP payload */
#define ECHO_UDP_BATCH		64	/* datagrams per wakeup, so TCP is not starved */
#define ECHO_BACKLOG		511
#define ECHO_ACCEPT_BACKOFF_MS	100	/* pause accepting after EMFILE and friends */
#define ECHO_FD_SPARE		64	/* descriptors besides connections */

struct echo_opts {
	const char *bind;		/* numeric IPv4 or IPv6 address */
	const char *ready_file;		/* NULL: none */
	unsigned int port;		/* 0: ephemeral */
	unsigned int max_conns;
	int tcp, udp, help;
};

struct conn {
	struct echo *e;
	struct bufferevent *bev;
	int closing;			/* peer sent EOF; free once output drains */
	struct conn *prev, *next;	/* e->conns list, for shutdown */
};

struct echo {
	struct event_base *base;
	struct evconnlistener *lev;	/* NULL with --no-tcp */
	struct event *accept_retry;	/* re-enables lev after an accept backoff */
	int udp_fd;			/* -1 with --no-udp */
	struct event *udp_ev;
	struct event *sig_term, *sig_int;
	struct conn *conns;		/* open TCP connections */
	unsigned int nconns, max_conns;
	unsigned long long accepted;	/* connections served since start */
	unsigned long long tcp_bytes;	/* bytes received (and echoed) over TCP */
	unsigned long long udp_datagrams; /* datagrams received */
	struct sockaddr_storage tcp_addr, udp_addr; /* as bound, for the banner */
	char udp_buf[ECHO_UDP_MAX];
};

/* --- TCP ---------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	struct echo *e = c->e;

	if (c->prev)
		c->prev->next = c->next;
	else
		e->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bufferevent_free(c->bev);
	e->nconns--;
	free(c);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);

	c->e->tcp_bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	/* conn_on_write turns reading back on once the peer has caught up. */
	if (evbuffer_get_length(out) >= ECHO_OUT_HIGH)
		bufferevent_disable(bev, EV_READ);
}

/* Called when the output has drained to the write low watermark. */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_free(c);
		return;
	}
	bufferevent_enable(bev, EV_READ);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_ERROR) {
		conn_free(c);
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	/* A peer that half-closes after sending still gets all of its echo:
	 * keep the connection until the output is flushed. */
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		conn_free(c);
		return;
	}
	c->closing = 1;
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
}

static void tcp_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	struct echo *e = arg;
	struct conn *c;

	(void)lev;
	(void)sa;
	(void)salen;
	if (e->nconns >= e->max_conns)
		goto err_close_fd;
	c = calloc(1, sizeof(*c));
	if (!c) {
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(errno));
		goto err_close_fd;
	}
	c->e = e;
	c->bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		fprintf(stderr, "%s: bufferevent_socket_new failed\n", __func__);
		goto err_free_conn;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, ECHO_OUT_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_OUT_LOW, 0);
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0) {
		fprintf(stderr, "%s: bufferevent_enable failed\n", __func__);
		goto err_free_bev;
	}
	c->next = e->conns;
	if (e->conns)
		e->conns->prev = c;
	e->conns = c;
	e->nconns++;
	e->accepted++;
	return;

err_free_bev:
	bufferevent_free(c->bev);	/* closes fd too */
	fd = -1;
err_free_conn:
	free(c);
err_close_fd:
	if (fd >= 0)
		close(fd);
}

static void tcp_on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct echo *e = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(e->lev);
}

/* Out of descriptors or memory, accept() would fail again at once and spin
 * the loop; stop accepting for a moment instead. */
static void tcp_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct echo *e = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct timeval backoff = {0, ECHO_ACCEPT_BACKOFF_MS * 1000};

	fprintf(stderr, "%s: accept: %s\n", __func__, strerror(err));
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	evconnlistener_disable(lev);
	evtimer_add(e->accept_retry, &backoff);
}

static int tcp_listen(struct echo *e, const struct sockaddr *sa, socklen_t salen)
{
	socklen_t len = sizeof(e->tcp_addr);
	int err;

	e->accept_retry = evtimer_new(e->base, tcp_on_accept_retry, e);
	if (!e->accept_retry) {
		err = -ENOMEM;
		goto out;
	}
	e->lev = evconnlistener_new_bind(e->base, tcp_on_accept, e,
					 LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
					 LEV_OPT_CLOSE_ON_EXEC, ECHO_BACKLOG, sa, (int)salen);
	if (!e->lev) {
		err = errno ? -errno : -EIO;
		goto err_free_timer;
	}
	evconnlistener_set_error_cb(e->lev, tcp_on_accept_error);
	if (getsockname(evconnlistener_get_fd(e->lev), (struct sockaddr *)&e->tcp_addr,
			&len) < 0) {
		err = -errno;
		goto err_free_listener;
	}
	return 0;

err_free_listener:
	evconnlistener_free(e->lev);
	e->lev = NULL;
err_free_timer:
	event_free(e->accept_retry);
	e->accept_retry = NULL;
out:
	return err;
}

/* --- UDP ---------------------------------------------------------------- */

static void udp_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct echo *e = arg;
	struct sockaddr_storage from;
	socklen_t flen;
	ssize_t n;

	(void)what;
	for (int i = 0; i < ECHO_UDP_BATCH; i++) {
		flen = sizeof(from);
		n = recvfrom(fd, e->udp_buf, sizeof(e->udp_buf), 0, (struct sockaddr *)&from,
			     &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "%s: recvfrom: %s\n", __func__, strerror(errno));
			break;
		}
		e->udp_datagrams++;
		/* A full send buffer drops the echo, as the network could. */
		if (sendto(fd, e->udp_buf, (size_t)n, 0, (struct sockaddr *)&from, flen) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK)
			fprintf(stderr, "%s: sendto: %s\n", __func__, strerror(errno));
	}
}

static int udp_listen(struct echo *e, const struct sockaddr *sa, socklen_t salen)
{
	socklen_t len = sizeof(e->udp_addr);
	int one = 1, err;

	e->udp_fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e->udp_fd < 0) {
		err = -errno;
		goto out;
	}
	/* Matches the TCP listener: a restart may rebind at once. */
	if (setsockopt(e->udp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(e->udp_fd, sa, salen) < 0 ||
	    getsockname(e->udp_fd, (struct sockaddr *)&e->udp_addr, &len) < 0) {
		err = -errno;
		goto err_close_fd;
	}
	e->udp_ev = event_new(e->base, e->udp_fd, EV_READ | EV_PERSIST, udp_on_read, e);
	if (!e->udp_ev) {
		err = -ENOMEM;
		goto err_close_fd;
	}
	if (event_add(e->udp_ev, NULL) < 0) {
		err = -ENOMEM;
		goto err_free_event;
	}
	return 0;

err_free_event:
	event_free(e->udp_ev);
	e->udp_ev = NULL;
err_close_fd:
	close(e->udp_fd);
	e->udp_fd = -1;
out:
	return err;
}

/* --- addresses ------------------------------------------------------------ */

static void addr_set_port(struct sockaddr_storage *ss, unsigned int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* --- the server ------------------------------------------------------------ */

static void echo_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct echo *e = arg;

	(void)sig;
	(void)what;
	event_base_loopbreak(e->base);
}

/* Room for max_conns connections if the hard limit allows; the accept
 * backoff copes with what it does not. */
static void echo_raise_nofile(unsigned int max_conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_conns + ECHO_FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fprintf(stderr, "%s: setrlimit: %s\n", __func__, strerror(errno));
}

static void echo_free(struct echo *e)
{
	while (e->conns)
		conn_free(e->conns);
	if (e->lev)
		evconnlistener_free(e->lev);
	if (e->accept_retry)
		event_free(e->accept_retry);
	if (e->udp_ev)
		event_free(e->udp_ev);
	if (e->udp_fd >= 0)
		close(e->udp_fd);
	if (e->sig_term)
		event_free(e->sig_term);
	if (e->sig_int)
		event_free(e->sig_int);
	if (e->base)
		event_base_free(e->base);
	free(e);
}

/* Returns the server listening and ready to dispatch, or NULL with errno
 * set after saying why on stderr. */
static struct echo *echo_new(const struct echo_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct echo *e;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto out;
	}
	e->udp_fd = -1;
	e->max_conns = o->max_conns;
	e->base = event_base_new();
	if (!e->base) {
		err = -ENOMEM;
		fprintf(stderr, "%s: event_base_new failed\n", __func__);
		goto err_free;
	}
	e->sig_term = evsignal_new(e->base, SIGTERM, echo_on_signal, e);
	e->sig_int = evsignal_new(e->base, SIGINT, echo_on_signal, e);
	if (!e->sig_term || !e->sig_int || evsignal_add(e->sig_term, NULL) < 0 ||
	    evsignal_add(e->sig_int, NULL) < 0) {
		err = -ENOMEM;
		fprintf(stderr, "%s: signal events failed\n", __func__);
		goto err_free;
	}
	err = hc_addr_parse(o->bind, o->port, &ss, &sslen);
	if (err)
		goto err_free;	/* the options were checked: cannot happen */
	if (o->tcp) {
		err = tcp_listen(e, (struct sockaddr *)&ss, sslen);
		if (err) {
			fprintf(stderr, "%s: tcp bind %s port %u: %s\n", __func__, o->bind,
				o->port, strerror(-err));
			goto err_free;
		}
		/* With --port 0 UDP tries the port TCP was given, so one
		 * number serves both when it can. */
		addr_set_port(&ss, hc_addr_port(&e->tcp_addr));
	}
	if (o->udp) {
		err = udp_listen(e, (struct sockaddr *)&ss, sslen);
		if (err == -EADDRINUSE && o->port == 0 && o->tcp) {
			addr_set_port(&ss, 0);
			err = udp_listen(e, (struct sockaddr *)&ss, sslen);
		}
		if (err) {
			fprintf(stderr, "%s: udp bind %s port %u: %s\n", __func__, o->bind,
				hc_addr_port(&ss), strerror(-err));
			goto err_free;
		}
	}
	return e;

err_free:
	echo_free(e);
out:
	errno = -err;
	return NULL;
}

/* Written whole under a temporary name and renamed, so a supervisor polling
 * for the file never reads it half written. */
static int ready_file_write(const char *path)
{
	static const char msg[] = "ready\n";
	char *tmp;
	int fd, err;

	if (asprintf(&tmp, "%s.%d.tmp", path, (int)getpid()) < 0) {
		err = -ENOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto err_free_tmp;
	}
	if (write(fd, msg, sizeof(msg) - 1) != (ssize_t)(sizeof(msg) - 1)) {
		err = errno ? -errno : -EIO;
		close(fd);
		goto err_unlink;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		err = -errno;
		goto err_unlink;
	}
	err = 0;
err_unlink:
	if (err)
		unlink(tmp);
err_free_tmp:
	free(tmp);
out:
	if (err)
		fprintf(stderr, "%s: %s: %s\n", __func__, path, strerror(-err));
	return err;
}

/* --- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-server [--port N] [--bind ADDR] [--no-tcp] [--no-udp]\n"
		"                   [--max-conns N] [--ready-file PATH] [--help]\n"
		"TCP and UDP echo on kernel sockets.\n"
		"  --port N           TCP and UDP port (default 7000; 0 picks a free one)\n"
		"  --bind ADDR        numeric IPv4 or IPv6 address (default 0.0.0.0)\n"
		"  --no-tcp, --no-udp serve only the other protocol\n"
		"  --max-conns N      TCP connections at once (default 1024); more are closed\n"
		"  --ready-file PATH  write \"ready\\n\" to PATH once listening\n"
		"Prints 'echo-server: listening tcp=ADDR:PORT udp=ADDR:PORT' (- for off).\n"
		"SIGTERM or SIGINT: prints a summary line and exits 0.\n");
}

/* Returns 0 or -EINVAL after naming the bad option on stderr. */
static int opts_parse(int argc, char **argv, struct echo_opts *o)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"bind", required_argument, NULL, 'b'},
		{"no-tcp", no_argument, NULL, 'T'},
		{"no-udp", no_argument, NULL, 'U'},
		{"max-conns", required_argument, NULL, 'm'},
		{"ready-file", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	socklen_t sslen;
	int opt, err = 0;

	*o = (struct echo_opts){.bind = "0.0.0.0", .port = 7000, .max_conns = 1024,
				.tcp = 1, .udp = 1};
	while ((opt = getopt_long(argc, argv, "p:b:m:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (hc_parse_uint(optarg, 0, 65535, &o->port)) {
				fprintf(stderr, "%s: --port: '%s' is not a port (0-65535)\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'b':
			o->bind = optarg;
			break;
		case 'T':
			o->tcp = 0;
			break;
		case 'U':
			o->udp = 0;
			break;
		case 'm':
			if (hc_parse_uint(optarg, 1, INT_MAX, &o->max_conns)) {
				fprintf(stderr, "%s: --max-conns: '%s' is not a count (1 or more)\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'r':
			if (!*optarg) {
				fprintf(stderr, "%s: --ready-file: empty path\n", __func__);
				err = -EINVAL;
				goto out;
			}
			o->ready_file = optarg;
			break;
		case 'h':
			o->help = 1;
			goto out;
		default:
			/* getopt has named the option already. */
			fprintf(stderr, "%s: try --help\n", __func__);
			err = -EINVAL;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", __func__, argv[optind]);
		err = -EINVAL;
		goto out;
	}
	if (!o->tcp && !o->udp) {
		fprintf(stderr, "%s: --no-tcp and --no-udp leave nothing to serve\n", __func__);
		err = -EINVAL;
		goto out;
	}
	if (hc_addr_parse(o->bind, o->port, &ss, &sslen)) {
		fprintf(stderr, "%s: --bind: '%s' is not a numeric IPv4 or IPv6 address\n",
			__func__, o->bind);
		err = -EINVAL;
		goto out;
	}
out:
	return err;
}

int main(int argc, char **argv)
{
	struct echo_opts o;
	struct sigaction sa = {.sa_handler = SIG_IGN};
	char tcp[128] = "-", udp[128] = "-";	/* "[ADDR%SCOPE]:PORT" */
	struct echo *e;
	int code = 2;

	if (opts_parse(argc, argv, &o))
		goto out;
	code = 0;
	if (o.help) {
		usage(stdout);
		goto out;
	}
	code = 1;
	/* A peer that resets mid-write must cost an EPIPE, not the process. */
	sigaction(SIGPIPE, &sa, NULL);
	echo_raise_nofile(o.max_conns);
	e = echo_new(&o);
	if (!e)
		goto out;
	if (e->lev)
		hc_addr_format(&e->tcp_addr, tcp, sizeof(tcp));
	if (e->udp_fd >= 0)
		hc_addr_format(&e->udp_addr, udp, sizeof(udp));
	printf("echo-server: listening tcp=%s udp=%s\n", tcp, udp);
	fflush(stdout);
	if (o.ready_file && ready_file_write(o.ready_file))
		goto err_free_echo;
	if (event_base_dispatch(e->base) < 0) {
		fprintf(stderr, "%s: event_base_dispatch failed\n", __func__);
		goto err_free_echo;
	}
	printf("echo-server: stopping: conns=%llu tcp_bytes=%llu udp_datagrams=%llu\n",
	       e->accepted, e->tcp_bytes, e->udp_datagrams);
	fflush(stdout);
	code = 0;
err_free_echo:
	echo_free(e);
	libevent_global_shutdown();
out:
	return code;
}
