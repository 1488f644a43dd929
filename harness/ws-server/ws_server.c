/* ws-server: a TLS WebSocket (RFC 6455) server on kernel sockets, the real
 * peer for harness/dpdk-client. It echoes every data message back unchanged,
 * optionally streams numbered, checksummed binary messages to every
 * connection, and pings each connection, dropping the ones that stop
 * answering. One thread, one epoll loop; signals arrive through a signalfd so
 * that SIGTERM or SIGINT end the loop cleanly with a summary line and every
 * allocation freed.
 *
 * Stream messages (--stream-ms N > 0), for a client to verify. One binary
 * frame (opcode 2, FIN set, never fragmented) of 16 + L payload bytes; all
 * integers are big-endian:
 *
 *   offset  size  field
 *   0       8     seq: per connection, 0 for the first stream message and
 *                 +1 for each one after, so any gap or repeat is a fault.
 *                 A tick that finds the connection's output backed up is
 *                 skipped without using a number.
 *   8       4     L: pattern length (--stream-size, default 256)
 *   12      L     pattern: x = (uint32_t)seq ^ 0x9e3779b9; then for each
 *                 byte, x = x * 1664525 + 1013904223 (mod 2^32) and the
 *                 byte is x >> 24.
 *   12 + L  4     sum: FNV-1a 32-bit over bytes 0 .. 12 + L - 1, that is
 *                 h = 0x811c9dc5 and for each byte h = (h ^ byte) * 0x01000193
 *                 (mod 2^32).
 *
 * Stream messages, echoes and control frames share one output queue per
 * connection, so they never interleave inside a frame. Server frames are
 * never masked; server pings carry an 8-byte big-endian counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hc.h"

/* A peer that sends but does not read must not make us buffer without bound:
 * past OUT_HIGH unsent bytes a connection stops reading and skips stream
 * ticks until its output drains. One echo may overshoot it by a message. */
#define WS_OUT_HIGH		(256 * 1024)
#define WS_BUF_KEEP		(64 * 1024)	/* idle buffers above this are freed */
#define WS_READ_BUF		16384		/* one TLS record's plaintext at most */
#define WS_READS_PER_WAKEUP	32		/* so one busy peer cannot starve the rest */
#define WS_WRITE_MAX		(1024 * 1024)	/* bytes offered to one SSL_write */
#define WS_REQ_MAX		8192		/* HTTP upgrade request, headers included */
#define WS_EVENTS		64
#define WS_BACKLOG		511
#define WS_ACCEPT_BATCH		64
#define WS_ACCEPT_BACKOFF_MS	100		/* pause accepting after EMFILE and friends */
#define WS_FD_SPARE		64		/* descriptors besides connections */
#define WS_HANDSHAKE_MS		10000		/* TLS + HTTP upgrade must finish in this */
#define WS_LINGER_MS		2000		/* to flush our close, then for the peer's */
#define WS_SWEEP_MS		250		/* how often the deadlines above are checked */
#define WS_PINGS_MISSED		3		/* unanswered pings before a drop */
#define WS_CTL_MAX		125		/* RFC 6455 5.5 */
#define WS_GUID			"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_CN			"faultd-ws-server"

#define WS_OP_CONT	0x0
#define WS_OP_TEXT	0x1
#define WS_OP_BINARY	0x2
#define WS_OP_CLOSE	0x8
#define WS_OP_PING	0x9
#define WS_OP_PONG	0xa

#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_GOING_AWAY	1001
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_BAD_DATA	1007
#define WS_CLOSE_TOO_BIG	1009
#define WS_CLOSE_INTERNAL	1011

struct ws_opts {
	const char *bind;		/* numeric IPv4 or IPv6 address */
	const char *cert, *key;		/* PEM files; NULL: generate in memory */
	const char *write_cert;		/* NULL: do not write the certificate */
	const char *ready_file;		/* NULL: none */
	unsigned int port;		/* 0: ephemeral */
	unsigned int max_msg;		/* bytes in one reassembled message */
	unsigned int stream_ms;		/* 0: no stream */
	unsigned int stream_size;	/* L, the pattern length */
	unsigned int ping_ms;		/* 0: no pings */
	unsigned int max_conns;
	int help;
};

/* A byte queue: data[off, len) is pending. */
struct buf {
	uint8_t *data;
	size_t off, len, cap;
};

enum conn_state {
	CONN_TLS,			/* TLS handshake */
	CONN_HTTP,			/* reading the upgrade request */
	CONN_OPEN,			/* WebSocket frames */
	CONN_CLOSING,			/* close sent: flush output, discard input */
	CONN_LINGER,			/* flushed and shut down: wait for the peer's EOF */
};

struct conn {
	struct ws *s;
	int fd;
	SSL *ssl;
	enum conn_state state;
	int ssl_dead;			/* fatal TLS error: no SSL_shutdown */
	uint32_t events;		/* epoll interest as last set */
	uint32_t read_want, write_want;	/* EPOLLIN/OUT an SSL call is waiting for */
	size_t wlen;			/* SSL_write length to repeat after WANT_*, 0 none */
	int64_t deadline;		/* drop after, in every state but CONN_OPEN */
	struct buf out;			/* plaintext waiting for SSL_write */
	struct buf req;			/* CONN_HTTP: the request so far */
	/* Frame parser: a header is collected byte by byte, then the payload
	 * is unmasked straight into msg (data) or ctl (control). */
	uint8_t hdr[14];
	unsigned int hdr_len;
	int in_payload;
	uint8_t op, fin, mask[4];
	uint64_t left, pos;		/* payload bytes still to come, and done */
	uint8_t ctl[WS_CTL_MAX];
	size_t ctl_len;
	uint8_t msg_op;			/* opcode of the message being reassembled, 0 none */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint64_t stream_seq;		/* next stream message's number */
	uint64_t ping_seq;
	unsigned int pings_missed;	/* pings sent since the last pong */
	struct conn *prev, *next;	/* s->conns */
};

struct ws {
	const struct ws_opts *o;
	int epfd, lfd, sfd;		/* epoll, listener, signalfd */
	int stop;
	SSL_CTX *ctx;
	struct sockaddr_storage addr;	/* as bound, for the banner */
	struct conn *conns;
	unsigned int nconns;
	int accept_paused;
	int64_t next_stream, next_ping, next_sweep, accept_resume;
	unsigned long long accepted;	/* connections since start */
	unsigned long long messages_in, messages_out; /* data messages */
	unsigned long long bytes_in, bytes_out;	/* their payload bytes */
	uint8_t rbuf[WS_READ_BUF];
};

/* --- byte queues ------------------------------------------------------------ */

static size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

/* Appends n bytes to fill in; returns where they start, or NULL. */
static uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len < n && b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len < n) {
		if (n > SIZE_MAX / 2 - b->len)
			return NULL;
		cap = b->cap ? b->cap * 2 : 4096;
		if (cap < b->len + n)
			cap = b->len + n;
		p = realloc(b->data, cap);
		if (!p)
			return NULL;
		b->data = p;
		b->cap = cap;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){0};
}

/* A connection that once echoed a large message should not keep its
 * buffer while idle. */
static void buf_trim(struct buf *b)
{
	if (b->off == b->len && b->cap > WS_BUF_KEEP)
		buf_free(b);
}

/* --- checks and encodings --------------------------------------------------- */

static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0, k, j;
	uint32_t cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			k = 1, cp = s[i] & 0x1f, min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			k = 2, cp = s[i] & 0x0f, min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			k = 3, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i - 1 < k)
			return 0;
		for (j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF are invalid. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Close codes a peer may send (RFC 6455 7.4 and the IANA registry). */
static int close_code_valid(unsigned int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* The stream message body described at the top of this file. */
static void stream_fill(uint8_t *p, uint64_t seq, uint32_t len)
{
	uint32_t x = (uint32_t)seq ^ 0x9e3779b9u, h = 0x811c9dc5u;
	size_t i, n = 12 + (size_t)len;

	put_be64(p, seq);
	put_be32(p + 8, len);
	for (i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[12 + i] = (uint8_t)(x >> 24);
	}
	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x01000193u;
	put_be32(p + n, h);
}

/* --- connections: TLS I/O ---------------------------------------------------- */

/* Turns a failed SSL call into -EAGAIN (with *want set to the epoll event
 * it waits for), -ESHUTDOWN for the peer's end of stream, or another -errno
 * for a dead connection. */
static int conn_ssl_error(struct conn *c, int ret, const char *op, uint32_t *want)
{
	int e = SSL_get_error(c->ssl, ret), err;
	unsigned long code;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		err = -EAGAIN;
		break;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		err = -EAGAIN;
		break;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare EOF. */
		err = -ESHUTDOWN;
		break;
	case SSL_ERROR_SYSCALL:
		err = errno ? -errno : -ECONNRESET;
		c->ssl_dead = 1;
		break;
	default:
		/* A peer that does not trust our certificate or speaks no TLS
		 * lands here; one line per connection says which. */
		code = ERR_peek_last_error();
		fprintf(stderr, "%s: fd %d: %s: %s\n", __func__, c->fd, op,
			code ? ERR_reason_error_string(code) : "TLS error");
		err = -EPROTO;
		c->ssl_dead = 1;
		break;
	}
	ERR_clear_error();
	return err;
}

static int conn_tls_accept(struct conn *c)
{
	int ret, err = 0;

	ERR_clear_error();
	ret = SSL_accept(c->ssl);
	if (ret == 1) {
		c->read_want = 0;
		c->state = CONN_HTTP;
		goto out;
	}
	err = conn_ssl_error(c, ret, "SSL_accept", &c->read_want);
out:
	return err;
}

/* Writes what it can; 0 also when the socket is full. */
static int conn_flush(struct conn *c)
{
	size_t len;
	int ret, err = 0;

	while (buf_pending(&c->out)) {
		/* After WANT_READ/WRITE OpenSSL wants the same length again; the
		 * buffer may have moved or grown (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
		len = c->wlen;
		if (!len) {
			len = buf_pending(&c->out);
			if (len > WS_WRITE_MAX)
				len = WS_WRITE_MAX;
		}
		ERR_clear_error();
		ret = SSL_write(c->ssl, c->out.data + c->out.off, (int)len);
		if (ret <= 0) {
			c->wlen = len;
			err = conn_ssl_error(c, ret, "SSL_write", &c->write_want);
			if (err == -EAGAIN)
				err = 0;
			goto out;
		}
		c->wlen = 0;
		c->write_want = 0;
		c->out.off += (size_t)ret;
	}
	buf_trim(&c->out);
out:
	return err;
}

/* --- connections: WebSocket frames ------------------------------------------ */

/* From here on input is discarded and the connection ends once its output
 * is flushed; a peer that stopped reading must not keep it forever. */
static void conn_closing(struct conn *c)
{
	c->state = CONN_CLOSING;
	c->deadline = hc_now_ms() + WS_LINGER_MS;
}

/* Queues a frame header for a payload of len bytes and returns where the
 * payload goes, or NULL. */
static uint8_t *ws_frame(struct conn *c, uint8_t op, size_t len)
{
	size_t hlen = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
	uint8_t *p = buf_reserve(&c->out, hlen + len);

	if (!p)
		return NULL;
	p[0] = 0x80 | op;
	if (len < 126) {
		p[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		p[1] = 126;
		p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
	} else {
		p[1] = 127;
		put_be64(p + 2, len);
	}
	return p + hlen;
}

static int ws_send(struct conn *c, uint8_t op, const uint8_t *data, size_t len)
{
	uint8_t *p = ws_frame(c, op, len);

	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, data, len);
	return 0;
}

/* Queues our close frame (code 0: none) and stops reading frames; the
 * connection ends once the output is flushed. */
static int ws_close(struct conn *c, unsigned int code)
{
	uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	int err;

	err = ws_send(c, WS_OP_CLOSE, payload, code ? 2 : 0);
	conn_closing(c);
	return err;
}

/* Fails the connection (RFC 6455 7.1.7) for a peer that broke the protocol. */
static int ws_fail(struct conn *c, unsigned int code, const char *why)
{
	fprintf(stderr, "%s: fd %d: %s, closing with %u\n", __func__, c->fd, why, code);
	return ws_close(c, code);
}

static void ws_msg_reset(struct conn *c)
{
	c->msg_op = 0;
	c->msg_len = 0;
	if (c->msg_cap > WS_BUF_KEEP) {
		free(c->msg);
		c->msg = NULL;
		c->msg_cap = 0;
	}
}

static int ws_on_close(struct conn *c)
{
	unsigned int code;

	if (c->ctl_len == 0)
		return ws_close(c, 0);
	if (c->ctl_len == 1)
		return ws_fail(c, WS_CLOSE_PROTOCOL, "close payload of 1 byte");
	code = (unsigned int)c->ctl[0] << 8 | c->ctl[1];
	if (!close_code_valid(code))
		return ws_fail(c, WS_CLOSE_PROTOCOL, "invalid close code");
	if (!utf8_valid(c->ctl + 2, c->ctl_len - 2))
		return ws_fail(c, WS_CLOSE_BAD_DATA, "close reason not UTF-8");
	return ws_close(c, code);
}

/* A frame's payload is complete. */
static int ws_frame_end(struct conn *c)
{
	struct ws *s = c->s;
	int err = 0;

	c->in_payload = 0;
	switch (c->op) {
	case WS_OP_PING:
		err = ws_send(c, WS_OP_PONG, c->ctl, c->ctl_len);
		break;
	case WS_OP_PONG:
		/* Any pong counts, solicited or not (RFC 6455 5.5.3). */
		c->pings_missed = 0;
		break;
	case WS_OP_CLOSE:
		err = ws_on_close(c);
		break;
	default:
		if (!c->fin)
			break;
		if (c->msg_op == WS_OP_TEXT && !utf8_valid(c->msg, c->msg_len)) {
			err = ws_fail(c, WS_CLOSE_BAD_DATA, "text message not UTF-8");
			break;
		}
		s->messages_in++;
		s->bytes_in += c->msg_len;
		err = ws_send(c, c->msg_op, c->msg, c->msg_len);
		if (!err) {
			s->messages_out++;
			s->bytes_out += c->msg_len;
		}
		ws_msg_reset(c);
		break;
	}
	return err;
}

/* One more header byte is in c->hdr: checks what can be checked so far and
 * starts the payload once the header is whole. */
static int ws_header(struct conn *c)
{
	const struct ws_opts *o = c->s->o;
	uint8_t b0 = c->hdr[0], b1 = c->hdr[1];
	unsigned int ext, i;
	size_t cap;
	uint64_t len;
	uint8_t *p;

	if (c->hdr_len < 2)
		return 0;
	if (c->hdr_len == 2) {
		c->op = b0 & 0x0f;
		c->fin = !!(b0 & 0x80);
		if (b0 & 0x70)
			return ws_fail(c, WS_CLOSE_PROTOCOL, "reserved bits set");
		if (!(b1 & 0x80))
			return ws_fail(c, WS_CLOSE_PROTOCOL, "unmasked client frame");
		switch (c->op) {
		case WS_OP_CONT:
			if (!c->msg_op)
				return ws_fail(c, WS_CLOSE_PROTOCOL, "continuation outside a message");
			break;
		case WS_OP_TEXT:
		case WS_OP_BINARY:
			if (c->msg_op)
				return ws_fail(c, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
			break;
		case WS_OP_CLOSE:
		case WS_OP_PING:
		case WS_OP_PONG:
			if (!c->fin)
				return ws_fail(c, WS_CLOSE_PROTOCOL, "fragmented control frame");
			if ((b1 & 0x7f) > WS_CTL_MAX)
				return ws_fail(c, WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
			break;
		default:
			return ws_fail(c, WS_CLOSE_PROTOCOL, "unknown opcode");
		}
	}
	ext = (b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0;
	if (c->hdr_len < 2 + ext + 4)
		return 0;
	len = b1 & 0x7f;
	if (ext) {
		len = 0;
		for (i = 0; i < ext; i++)
			len = len << 8 | c->hdr[2 + i];
	}
	if (len >> 63)
		return ws_fail(c, WS_CLOSE_PROTOCOL, "64-bit length with the top bit set");
	memcpy(c->mask, c->hdr + 2 + ext, 4);
	c->hdr_len = 0;
	c->left = len;
	c->pos = 0;
	c->in_payload = 1;
	if (c->op & 0x8) {
		c->ctl_len = 0;
	} else {
		/* Checked against the header, so an oversized message is
		 * refused before any of it is buffered. */
		if (len > o->max_msg - c->msg_len)
			return ws_fail(c, WS_CLOSE_TOO_BIG, "message over --max-msg");
		if (c->msg_len + len > c->msg_cap) {
			cap = c->msg_cap ? c->msg_cap * 2 : 4096;
			if (cap < c->msg_len + len)
				cap = c->msg_len + len;
			if (cap > o->max_msg)
				cap = o->max_msg;
			p = realloc(c->msg, cap);
			if (!p)
				return ws_fail(c, WS_CLOSE_INTERNAL, "out of memory");
			c->msg = p;
			c->msg_cap = cap;
		}
		if (c->op != WS_OP_CONT)
			c->msg_op = c->op;
	}
	if (!len)
		return ws_frame_end(c);
	return 0;
}

/* Feeds decrypted bytes to the frame parser. */
static int ws_input(struct conn *c, const uint8_t *p, size_t n)
{
	uint8_t *dst;
	size_t take, i;
	int err = 0;

	while (n && c->state == CONN_OPEN) {
		if (!c->in_payload) {
			c->hdr[c->hdr_len++] = *p++;
			n--;
			err = ws_header(c);
			if (err)
				goto out;
			continue;
		}
		take = n < c->left ? n : (size_t)c->left;
		if (c->op & 0x8) {
			dst = c->ctl + c->ctl_len;
			c->ctl_len += take;
		} else {
			dst = c->msg + c->msg_len;
			c->msg_len += take;
		}
		for (i = 0; i < take; i++)
			dst[i] = p[i] ^ c->mask[(c->pos + i) & 3];
		c->pos += take;
		c->left -= take;
		p += take;
		n -= take;
		if (!c->left) {
			err = ws_frame_end(c);
			if (err)
				goto out;
		}
	}
out:
	return err;
}

/* --- connections: the HTTP upgrade ------------------------------------------ */

static int http_reply(struct conn *c, const char *status, const char *extra, const char *body)
{
	char head[512];
	int n;
	uint8_t *p;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n%s\r\n", status, strlen(body) + 1, extra);
	conn_closing(c);
	p = buf_reserve(&c->out, (size_t)n + strlen(body) + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, head, (size_t)n);
	memcpy(p + n, body, strlen(body));
	p[n + strlen(body)] = '\n';
	return 0;
}

/* Whether a comma-separated header value holds token, any case. */
static int http_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token), n;
	const char *p = value;

	while (*p) {
		p += strspn(p, " \t,");
		n = strcspn(p, ",");
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tlen && !strncasecmp(p, token, n))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* req is the NUL-terminated request through its blank line. Queues the 101
 * or an error reply. */
static int http_upgrade(struct conn *c, char *req)
{
	unsigned char sha[EVP_MAX_MD_SIZE], accept[64];
	const char *key = NULL, *version = NULL;
	int upgrade = 0, connection = 0, host = 0;
	char text[128], head[256];
	char *line, *next, *colon, *value, *end;
	unsigned int shalen;
	uint8_t *p;
	int n;

	line = req;
	next = strstr(line, "\r\n");
	*next = '\0';
	if (strncmp(line, "GET ", 4) || !(end = strrchr(line, ' ')) || strcmp(end, " HTTP/1.1"))
		return http_reply(c, "400 Bad Request", "", "expected GET ... HTTP/1.1");
	for (line = next + 2; *line && strncmp(line, "\r\n", 2); line = next + 2) {
		next = strstr(line, "\r\n");
		*next = '\0';
		colon = strchr(line, ':');
		if (!colon)
			return http_reply(c, "400 Bad Request", "", "malformed header line");
		*colon = '\0';
		value = colon + 1 + strspn(colon + 1, " \t");
		for (end = next; end > value && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		if (!strcasecmp(line, "Upgrade"))
			upgrade = http_has_token(value, "websocket");
		else if (!strcasecmp(line, "Connection"))
			connection = http_has_token(value, "upgrade");
		else if (!strcasecmp(line, "Sec-WebSocket-Key"))
			key = value;
		else if (!strcasecmp(line, "Sec-WebSocket-Version"))
			version = value;
		else if (!strcasecmp(line, "Host"))
			host = 1;
	}
	if (!upgrade || !connection || !host || !key)
		return http_reply(c, "400 Bad Request", "",
				  "this is a WebSocket server: send a GET with Host, "
				  "Upgrade: websocket, Connection: Upgrade and Sec-WebSocket-Key");
	if (!version || strcmp(version, "13"))
		return http_reply(c, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
				  "Sec-WebSocket-Version must be 13");
	/* The key is 16 random bytes in base64 (RFC 6455 4.1). */
	if (strlen(key) != 24 || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789+/") != 22 || strcmp(key + 22, "=="))
		return http_reply(c, "400 Bad Request", "", "bad Sec-WebSocket-Key");
	n = snprintf(text, sizeof(text), "%s%s", key, WS_GUID);
	if (!EVP_Digest(text, (size_t)n, sha, &shalen, EVP_sha1(), NULL))
		return -EIO;
	EVP_EncodeBlock(accept, sha, (int)shalen);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	p = buf_reserve(&c->out, (size_t)n);
	if (!p)
		return -ENOMEM;
	memcpy(p, head, (size_t)n);
	c->state = CONN_OPEN;
	return 0;
}

static int http_input(struct conn *c, const uint8_t *data, size_t n)
{
	size_t from = c->req.len > 3 ? c->req.len - 3 : 0, hlen;
	uint8_t *p, *end;
	int err = 0;

	if (n > WS_REQ_MAX - c->req.len) {
		err = http_reply(c, "400 Bad Request", "", "request headers too large");
		goto out;
	}
	p = buf_reserve(&c->req, n + 1);	/* +1: room for a NUL */
	if (!p) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(p, data, n);
	c->req.len--;
	end = memmem(c->req.data + from, c->req.len - from, "\r\n\r\n", 4);
	if (!end)
		goto out;
	hlen = (size_t)(end - c->req.data) + 4;
	/* Bytes after the blank line are the client's first frames: move them
	 * up one (the +1 above) to make room for the NUL ending the headers. */
	memmove(end + 4 + 1, end + 4, c->req.len - hlen);
	end[4] = '\0';
	err = http_upgrade(c, (char *)c->req.data);
	if (!err && c->state == CONN_OPEN)
		err = ws_input(c, end + 5, c->req.len - hlen);
	buf_free(&c->req);
out:
	return err;
}

/* --- connections: life cycle -------------------------------------------------- */

static int conn_can_read(const struct conn *c)
{
	switch (c->state) {
	case CONN_HTTP:
	case CONN_OPEN:
		return buf_pending(&c->out) < WS_OUT_HIGH;
	case CONN_CLOSING:
	case CONN_LINGER:
		/* Read and discard: unread input would make close() send a
		 * reset that can overtake our close frame. */
		return 1;
	default:
		return 0;
	}
}

static int conn_read(struct conn *c)
{
	struct ws *s = c->s;
	int ret, i, err = 0;

	c->read_want = 0;
	for (i = 0; conn_can_read(c) && (i < WS_READS_PER_WAKEUP || SSL_pending(c->ssl)); i++) {
		ERR_clear_error();
		ret = SSL_read(c->ssl, s->rbuf, sizeof(s->rbuf));
		if (ret <= 0) {
			err = conn_ssl_error(c, ret, "SSL_read", &c->read_want);
			if (err == -EAGAIN)
				err = 0;
			goto out;
		}
		if (c->state == CONN_HTTP)
			err = http_input(c, s->rbuf, (size_t)ret);
		else if (c->state == CONN_OPEN)
			err = ws_input(c, s->rbuf, (size_t)ret);
		if (err)
			goto out;
	}
out:
	return err;
}

static int conn_set_events(struct conn *c)
{
	struct epoll_event ev = {.data.ptr = c};
	uint32_t want = 0;
	int err = 0;

	if (c->state == CONN_TLS) {
		want = c->read_want ? c->read_want : EPOLLIN;
	} else {
		if (conn_can_read(c))
			want |= c->read_want ? c->read_want : EPOLLIN;
		if (buf_pending(&c->out))
			want |= c->write_want ? c->write_want : EPOLLOUT;
	}
	if (want == c->events)
		goto out;
	ev.events = want;
	if (epoll_ctl(c->s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		err = -errno;
		goto out;
	}
	c->events = want;
out:
	return err;
}

/* Our close is flushed: say close_notify and FIN, then wait a little for
 * the peer to do the same, as RFC 6455 7.1.1 asks of a server. */
static void conn_linger(struct conn *c)
{
	if (!c->ssl_dead) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_LINGER;
	c->deadline = hc_now_ms() + WS_LINGER_MS;
}

/* Does everything the connection can do now. Returns 0 to keep it, or
 * -errno (-ESHUTDOWN: ended cleanly) when it is finished and must be freed. */
static int conn_run(struct conn *c)
{
	int err;

	if (c->state == CONN_TLS) {
		err = conn_tls_accept(c);
		if (err == -EAGAIN)
			goto out_events;
		if (err)
			goto out;
	}
	err = conn_flush(c);
	if (!err)
		err = conn_read(c);
	if (!err)
		err = conn_flush(c);
	if (err)
		goto out;
	if (c->state == CONN_CLOSING && !buf_pending(&c->out))
		conn_linger(c);
out_events:
	err = conn_set_events(c);
out:
	return err;
}

static void conn_free(struct conn *c)
{
	struct ws *s = c->s;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	SSL_free(c->ssl);
	close(c->fd);	/* also takes it out of the epoll set */
	buf_free(&c->out);
	buf_free(&c->req);
	free(c->msg);
	free(c);
}

static int conn_new(struct ws *s, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct conn *c;
	int one = 1, err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		err = -ENOMEM;
		goto err_close_fd;
	}
	c->s = s;
	c->fd = fd;
	c->ssl = SSL_new(s->ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
		ERR_clear_error();
		err = -ENOMEM;
		goto err_free_conn;
	}
	SSL_set_accept_state(c->ssl);
	/* Small frames (pings, short echoes) must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		goto err_free_conn;
	}
	c->events = EPOLLIN;
	c->deadline = hc_now_ms() + WS_HANDSHAKE_MS;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->accepted++;
	return 0;

err_free_conn:
	SSL_free(c->ssl);
	free(c);
err_close_fd:
	close(fd);
	return err;
}

/* After a timer queued output: push it out now rather than at the next
 * wakeup. Frees the connection if it failed. */
static void conn_kick(struct conn *c)
{
	int err = conn_flush(c);

	if (!err)
		err = conn_set_events(c);
	if (err)
		conn_free(c);
}

/* --- the server: timers ---------------------------------------------------- */

static void ws_stream_tick(struct ws *s)
{
	uint32_t len = s->o->stream_size;
	struct conn *c, *next;
	uint8_t *p;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_OPEN || buf_pending(&c->out) >= WS_OUT_HIGH)
			continue;
		p = ws_frame(c, WS_OP_BINARY, 16 + (size_t)len);
		if (!p) {
			fprintf(stderr, "%s: fd %d: out of memory, dropping\n", __func__, c->fd);
			conn_free(c);
			continue;
		}
		stream_fill(p, c->stream_seq++, len);
		s->messages_out++;
		s->bytes_out += 16 + (size_t)len;
		conn_kick(c);
	}
}

static void ws_ping_tick(struct ws *s)
{
	struct conn *c, *next;
	uint8_t seq[8];

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_OPEN)
			continue;
		/* A peer whose link went away answers nothing; the count goes
		 * up whether or not the ping could even be sent. */
		if (c->pings_missed >= WS_PINGS_MISSED) {
			fprintf(stderr, "%s: fd %d: %u pings unanswered, dropping\n", __func__,
				c->fd, c->pings_missed);
			conn_free(c);
			continue;
		}
		put_be64(seq, c->ping_seq++);
		c->pings_missed++;
		if (ws_send(c, WS_OP_PING, seq, sizeof(seq)) < 0) {
			conn_free(c);
			continue;
		}
		conn_kick(c);
	}
}

/* Handshakes that stall and peers that never finish closing. */
static void ws_sweep(struct ws *s, int64_t now)
{
	struct conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_OPEN || now < c->deadline)
			continue;
		if (c->state == CONN_TLS || c->state == CONN_HTTP)
			fprintf(stderr, "%s: fd %d: no upgrade within %d ms, dropping\n", __func__,
				c->fd, WS_HANDSHAKE_MS);
		else if (c->state == CONN_CLOSING)
			fprintf(stderr, "%s: fd %d: close not flushed within %d ms, dropping\n",
				__func__, c->fd, WS_LINGER_MS);
		conn_free(c);
	}
}

static int64_t deadline_next(int64_t next, int64_t period, int64_t now)
{
	next += period;
	/* After a stall, resume the rhythm instead of firing a burst. */
	return next <= now ? now + period : next;
}

/* Runs what is due; returns the epoll_wait timeout until the next timer. */
static int ws_timers(struct ws *s)
{
	const struct ws_opts *o = s->o;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
	int64_t now = hc_now_ms(), next;

	if (o->stream_ms && now >= s->next_stream) {
		ws_stream_tick(s);
		s->next_stream = deadline_next(s->next_stream, o->stream_ms, now);
	}
	if (o->ping_ms && now >= s->next_ping) {
		ws_ping_tick(s);
		s->next_ping = deadline_next(s->next_ping, o->ping_ms, now);
	}
	if (now >= s->next_sweep) {
		ws_sweep(s, now);
		s->next_sweep = deadline_next(s->next_sweep, WS_SWEEP_MS, now);
	}
	if (s->accept_paused && now >= s->accept_resume) {
		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd, &ev) == 0)
			s->accept_paused = 0;
		else
			s->accept_resume = now + WS_ACCEPT_BACKOFF_MS;
	}
	next = s->next_sweep;
	if (o->stream_ms && s->next_stream < next)
		next = s->next_stream;
	if (o->ping_ms && s->next_ping < next)
		next = s->next_ping;
	if (s->accept_paused && s->accept_resume < next)
		next = s->accept_resume;
	return next <= now ? 0 : (int)(next - now);
}

/* --- the server: events ------------------------------------------------------ */

static void ws_accept(struct ws *s)
{
	struct epoll_event ev = {.events = 0, .data.ptr = &s->lfd};
	int fd, i, err;

	for (i = 0; i < WS_ACCEPT_BATCH; i++) {
		fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EINTR || err == ECONNABORTED)
				continue;
			if (err == EAGAIN || err == EWOULDBLOCK)
				break;
			fprintf(stderr, "%s: accept: %s\n", __func__, strerror(err));
			/* Out of descriptors or memory, accept() would fail again
			 * at once and spin the loop; stop accepting for a moment. */
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
				epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd, &ev);
				s->accept_paused = 1;
				s->accept_resume = hc_now_ms() + WS_ACCEPT_BACKOFF_MS;
			}
			break;
		}
		if (s->nconns >= s->o->max_conns) {
			close(fd);
			continue;
		}
		err = conn_new(s, fd);
		if (err)
			fprintf(stderr, "%s: conn_new: %s\n", __func__, strerror(-err));
	}
}

static void ws_on_signal(struct ws *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
		s->stop = 1;
}

static void ws_on_conn(struct conn *c, uint32_t events)
{
	int err;

	/* A reset peer: whatever it sent last is gone with it. */
	if (events & EPOLLERR) {
		conn_free(c);
		return;
	}
	err = conn_run(c);
	/* A hung-up peer sends nothing more; once what it sent is read there
	 * is nobody to write to either. */
	if (err || (events & EPOLLHUP))
		conn_free(c);
}

static int ws_run(struct ws *s)
{
	struct epoll_event evs[WS_EVENTS];
	int i, n, timeout, err = 0;

	while (!s->stop) {
		timeout = ws_timers(s);
		n = epoll_wait(s->epfd, evs, WS_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "%s: epoll_wait: %s\n", __func__, strerror(errno));
			goto out;
		}
		/* Only a connection's own event frees it, and each appears at
		 * most once per batch, so no later event points to freed memory. */
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &s->lfd)
				ws_accept(s);
			else if (evs[i].data.ptr == &s->sfd)
				ws_on_signal(s);
			else
				ws_on_conn(evs[i].data.ptr, evs[i].events);
		}
	}
out:
	return err;
}

/* --- TLS setup ------------------------------------------------------------ */

static void tls_log_errors(const char *func, const char *what)
{
	unsigned long code = ERR_get_error();
	char text[256];

	if (code)
		ERR_error_string_n(code, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "unknown error");
	fprintf(stderr, "%s: %s: %s\n", func, what, text);
	ERR_clear_error();
}

static int tls_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int err = 0;

	if (!ext) {
		err = -EINVAL;
		goto out;
	}
	if (!X509_add_ext(x, ext, -1))
		err = -ENOMEM;
	X509_EXTENSION_free(ext);
out:
	return err;
}

/* A fresh P-256 key and a self-signed certificate for it, valid from an hour
 * ago (clock skew) for a year, naming the loopback addresses and the bind
 * address so that a client may verify the host as well as pin the cert. */
static int tls_make_cert(const char *bind, EVP_PKEY **pkey_out, X509 **cert_out)
{
	uint64_t serial;
	X509V3_CTX v3;
	X509_NAME *name;
	EVP_PKEY *pkey;
	char san[256];
	X509 *x;
	int err = -EIO;

	pkey = EVP_EC_gen("P-256");
	if (!pkey) {
		tls_log_errors(__func__, "EVP_EC_gen");
		goto out;
	}
	x = X509_new();
	if (!x) {
		tls_log_errors(__func__, "X509_new");
		goto err_free_pkey;
	}
	if (RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1) {
		tls_log_errors(__func__, "RAND_bytes");
		goto err_free_x509;
	}
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) ||
	    !X509_set_pubkey(x, pkey) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)WS_CN, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name)) {
		tls_log_errors(__func__, "X509 fields");
		goto err_free_x509;
	}
	snprintf(san, sizeof(san), "DNS:" WS_CN ",DNS:localhost,IP:127.0.0.1,IP:::1");
	if (strcmp(bind, "0.0.0.0") && strcmp(bind, "::") && strcmp(bind, "127.0.0.1") &&
	    strcmp(bind, "::1") && !strchr(bind, '%'))
		snprintf(san + strlen(san), sizeof(san) - strlen(san), ",IP:%s", bind);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (tls_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    tls_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") ||
	    tls_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") ||
	    tls_add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
	    tls_add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") ||
	    tls_add_ext(x, &v3, NID_subject_alt_name, san)) {
		tls_log_errors(__func__, "X509 extensions");
		goto err_free_x509;
	}
	if (!X509_sign(x, pkey, EVP_sha256())) {
		tls_log_errors(__func__, "X509_sign");
		goto err_free_x509;
	}
	*pkey_out = pkey;
	*cert_out = x;
	return 0;

err_free_x509:
	X509_free(x);
err_free_pkey:
	EVP_PKEY_free(pkey);
out:
	return err;
}

static SSL_CTX *tls_ctx_new(const struct ws_opts *o)
{
	EVP_PKEY *pkey;
	SSL_CTX *ctx;
	X509 *x;
	int err = -EIO;

	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_log_errors(__func__, "SSL_CTX_new");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A peer that vanishes without close_notify is a plain EOF to us;
	 * renegotiation would only complicate the WANT_READ/WRITE dance. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Nothing resumes sessions here; tickets would only be extra
	 * post-handshake records for the client to digest. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (o->cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
			tls_log_errors(__func__, o->cert);
			goto err_free_ctx;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
			tls_log_errors(__func__, o->key);
			goto err_free_ctx;
		}
	} else {
		if (tls_make_cert(o->bind, &pkey, &x))
			goto err_free_ctx;
		/* The context takes its own references. */
		if (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
			tls_log_errors(__func__, "SSL_CTX_use_certificate");
			X509_free(x);
			EVP_PKEY_free(pkey);
			goto err_free_ctx;
		}
		X509_free(x);
		EVP_PKEY_free(pkey);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors(__func__, "certificate and key do not match");
		goto err_free_ctx;
	}
	return ctx;

err_free_ctx:
	SSL_CTX_free(ctx);
out:
	errno = -err;
	return NULL;
}

/* --- files ------------------------------------------------------------------ */

/* Written whole under a temporary name and renamed, so a reader polling for
 * the file never sees it half written. With cert, the PEM of cert; else
 * "ready\n". */
static int file_write_atomic(const char *path, X509 *cert)
{
	static const char msg[] = "ready\n";
	char *tmp;
	FILE *f;
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
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto err_unlink;
	}
	if (cert ? PEM_write_X509(f, cert) != 1 : fputs(msg, f) < 0) {
		err = errno ? -errno : -EIO;
		ERR_clear_error();
		fclose(f);
		goto err_unlink;
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
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

/* --- addresses --------------------------------------------------------------- */

/* --- the server: setup and teardown ------------------------------------------ */

static int ws_listen(struct ws *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
	struct sockaddr_storage ss;
	socklen_t sslen, len = sizeof(s->addr);
	int one = 1, err;

	err = hc_addr_parse(s->o->bind, s->o->port, &ss, &sslen);
	if (err)
		goto out;	/* the options were checked: cannot happen */
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		err = -errno;
		goto out;
	}
	/* A restart may rebind at once despite connections in TIME_WAIT. */
	if (setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&ss, sslen) < 0 ||
	    listen(s->lfd, WS_BACKLOG) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&s->addr, &len) < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0) {
		err = -errno;
		goto err_close_fd;
	}
	return 0;

err_close_fd:
	close(s->lfd);
	s->lfd = -1;
out:
	return err;
}

/* Room for max_conns connections if the hard limit allows; the accept
 * backoff copes with what it does not. */
static void ws_raise_nofile(unsigned int max_conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_conns + WS_FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fprintf(stderr, "%s: setrlimit: %s\n", __func__, strerror(errno));
}

/* Says goodbye to every connection, as far as one non-blocking write goes,
 * and frees everything. */
static void ws_free(struct ws *s)
{
	struct conn *c;

	while ((c = s->conns)) {
		if (c->state == CONN_OPEN && !ws_close(c, WS_CLOSE_GOING_AWAY))
			conn_flush(c);
		if (c->state != CONN_TLS && !c->ssl_dead) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		conn_free(c);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->epfd >= 0)
		close(s->epfd);
	SSL_CTX_free(s->ctx);
	free(s);
}

/* Returns the server listening, or NULL with errno set after saying why on
 * stderr. */
static struct ws *ws_new(const struct ws_opts *o)
{
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t mask;
	struct ws *s;
	int64_t now;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto out;
	}
	s->o = o;
	s->lfd = s->sfd = -1;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		err = -errno;
		fprintf(stderr, "%s: epoll_create1: %s\n", __func__, strerror(-err));
		goto err_free;
	}
	/* Signals become events on the loop, like any other input. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	ev.data.ptr = &s->sfd;
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sfd, &ev) < 0) {
		err = -errno;
		fprintf(stderr, "%s: signalfd: %s\n", __func__, strerror(-err));
		goto err_free;
	}
	s->ctx = tls_ctx_new(o);
	if (!s->ctx) {
		err = -errno;
		goto err_free;
	}
	err = ws_listen(s);
	if (err) {
		fprintf(stderr, "%s: bind %s port %u: %s\n", __func__, o->bind, o->port,
			strerror(-err));
		goto err_free;
	}
	now = hc_now_ms();
	s->next_stream = now + o->stream_ms;
	s->next_ping = now + o->ping_ms;
	s->next_sweep = now + WS_SWEEP_MS;
	return s;

err_free:
	ws_free(s);
out:
	errno = -err;
	return NULL;
}

/* --- options ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ws-server [--bind ADDR] [--port N] [--cert PEM --key PEM]\n"
		"                 [--write-cert PATH] [--max-msg N] [--stream-ms N]\n"
		"                 [--stream-size N] [--ping-ms N] [--max-conns N]\n"
		"                 [--ready-file PATH] [--help]\n"
		"TLS WebSocket (RFC 6455) echo and stream server on kernel sockets.\n"
		"  --bind ADDR        numeric IPv4 or IPv6 address (default 0.0.0.0)\n"
		"  --port N           TCP port (default 9443; 0 picks a free one)\n"
		"  --cert PEM, --key PEM\n"
		"                     certificate (chain) and key files; by default a P-256\n"
		"                     key and self-signed certificate (CN=" WS_CN ")\n"
		"                     are made in memory at start\n"
		"  --write-cert PATH  write the certificate in use (PEM) to PATH, to pin it\n"
		"  --max-msg N        largest message in bytes (default 1048576); larger\n"
		"                     ones close the connection with 1009\n"
		"  --stream-ms N      send every connection a stream message every N ms\n"
		"                     (default 0: off); format in harness/ws-server/ws_server.c\n"
		"  --stream-size N    pattern bytes per stream message (default 256)\n"
		"  --ping-ms N        ping every N ms, drop after 3 unanswered (default 1000;\n"
		"                     0: off)\n"
		"  --max-conns N      connections at once (default 1024); more are closed\n"
		"  --ready-file PATH  write \"ready\\n\" to PATH once listening\n"
		"Every data message is echoed back unchanged. Prints 'ws-server: listening\n"
		"tls=ADDR:PORT'. SIGTERM or SIGINT: prints 'ws-server: stopping: conns=N\n"
		"messages_in=N messages_out=N bytes_in=N bytes_out=N' (data messages and\n"
		"their payload bytes, stream messages included) and exits 0.\n");
}

/* Numeric options: getopt value OPT_NUM + index. */
#define OPT_NUM 1000
static const struct opt_num {
	const char *name;
	size_t off;			/* in struct ws_opts */
	unsigned int min, max;
	const char *what;
} opt_nums[] = {
	{"port", offsetof(struct ws_opts, port), 0, 65535, "a port (0-65535)"},
	{"max-msg", offsetof(struct ws_opts, max_msg), 1, 1U << 30, "a size (1-1073741824)"},
	{"stream-ms", offsetof(struct ws_opts, stream_ms), 0, 3600000,
	 "a period in ms (0-3600000)"},
	{"stream-size", offsetof(struct ws_opts, stream_size), 0, 16U << 20,
	 "a size (0-16777216)"},
	{"ping-ms", offsetof(struct ws_opts, ping_ms), 0, 3600000, "a period in ms (0-3600000)"},
	{"max-conns", offsetof(struct ws_opts, max_conns), 1, 1U << 20,
	 "a count (1-1048576)"},
};
#define OPT_NNUMS (int)(sizeof(opt_nums) / sizeof(opt_nums[0]))

/* Returns 0 or -EINVAL after naming the bad option on stderr. */
static int opts_parse(int argc, char **argv, struct ws_opts *o)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, OPT_NUM + 0},
		{"max-msg", required_argument, NULL, OPT_NUM + 1},
		{"stream-ms", required_argument, NULL, OPT_NUM + 2},
		{"stream-size", required_argument, NULL, OPT_NUM + 3},
		{"ping-ms", required_argument, NULL, OPT_NUM + 4},
		{"max-conns", required_argument, NULL, OPT_NUM + 5},
		{"bind", required_argument, NULL, 'b'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"write-cert", required_argument, NULL, 'w'},
		{"ready-file", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const struct opt_num *num;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char **path;
	int opt, err = 0;

	*o = (struct ws_opts){.bind = "0.0.0.0", .port = 9443, .max_msg = 1U << 20,
			      .stream_size = 256, .ping_ms = 1000, .max_conns = 1024};
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt >= OPT_NUM && opt < OPT_NUM + OPT_NNUMS) {
			num = &opt_nums[opt - OPT_NUM];
			if (hc_parse_uint(optarg, num->min, num->max,
				       (unsigned int *)((char *)o + num->off))) {
				fprintf(stderr, "%s: --%s: '%s' is not %s\n", __func__, num->name,
					optarg, num->what);
				err = -EINVAL;
				goto out;
			}
			continue;
		}
		switch (opt) {
		case 'b':
			o->bind = optarg;
			continue;
		case 'h':
			o->help = 1;
			goto out;
		case 'c':
			path = &o->cert;
			break;
		case 'k':
			path = &o->key;
			break;
		case 'w':
			path = &o->write_cert;
			break;
		case 'r':
			path = &o->ready_file;
			break;
		default:
			/* getopt has named the option already. */
			fprintf(stderr, "%s: try --help\n", __func__);
			err = -EINVAL;
			goto out;
		}
		if (!*optarg) {
			fprintf(stderr, "%s: --%s: empty path\n", __func__,
				opt == 'c' ? "cert" : opt == 'k' ? "key" :
				opt == 'w' ? "write-cert" : "ready-file");
			err = -EINVAL;
			goto out;
		}
		*path = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", __func__, argv[optind]);
		err = -EINVAL;
		goto out;
	}
	if (!o->cert != !o->key) {
		fprintf(stderr, "%s: --%s: needs --%s as well\n", __func__,
			o->cert ? "cert" : "key", o->cert ? "key" : "cert");
		err = -EINVAL;
		goto out;
	}
	if (o->cert && (access(o->cert, R_OK) || access(o->key, R_OK))) {
		fprintf(stderr, "%s: --%s: %s: %s\n", __func__,
			access(o->cert, R_OK) ? "cert" : "key",
			access(o->cert, R_OK) ? o->cert : o->key, strerror(errno));
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
	struct sigaction sa = {.sa_handler = SIG_IGN};
	char addr[128];		/* "[ADDR%SCOPE]:PORT" */
	struct ws_opts o;
	struct ws *s;
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
	ws_raise_nofile(o.max_conns);
	s = ws_new(&o);
	if (!s)
		goto out;
	if (o.write_cert && file_write_atomic(o.write_cert, SSL_CTX_get0_certificate(s->ctx)))
		goto err_free_ws;
	hc_addr_format(&s->addr, addr, sizeof(addr));
	printf("ws-server: listening tls=%s\n", addr);
	fflush(stdout);
	if (o.ready_file && file_write_atomic(o.ready_file, NULL))
		goto err_free_ws;
	if (ws_run(s))
		goto err_free_ws;
	printf("ws-server: stopping: conns=%llu messages_in=%llu messages_out=%llu "
	       "bytes_in=%llu bytes_out=%llu\n", s->accepted, s->messages_in,
	       s->messages_out, s->bytes_in, s->bytes_out);
	fflush(stdout);
	code = 0;
err_free_ws:
	ws_free(s);
out:
	return code;
}
