/* dpdk-client: incident 1 as a workload. A WebSocket client on DPDK:
 * net_af_packet on a veth end, lwIP on top (dp_port.c), OpenSSL with a
 * memory BIO pair whose ciphertext this code moves to and from lwIP
 * sockets, and a byte ring that assembles decrypted bytes into frames.
 * It sends --rate messages/s of --size bytes to a TLS WebSocket echo
 * server, verifies every echo (and any streamed message) end to end, and
 * reconnects with backoff after any error, timeout or link loss.
 *
 * The event-loop object (struct loop) owns the shared TLS BIO state, as
 * the incident's FLoop did. Two of the incident's bugs can be switched on:
 *   --bug=double-construct  the reconnect re-assigns the loop from a fresh
 *       temporary (ctx.loop = Loop{}); the temporary's destructor frees the
 *       shared BIO state the loop still points to, and the loop frees its
 *       staging buffer again when it starts: glibc aborts on the double
 *       free at the first reconnect.
 *   --bug=null-pop  a pong is discarded with ring_pop_front(ring, NULL, n)
 *       and memcpy(NULL, ...) faults within about a second of connecting.
 *
 * One line per connect and per failure on stdout; USDT counters connects,
 * failures, messages, bad (and mbuf_in_use from dp_port.c). SIGTERM or
 * SIGINT: close handshake, teardown, rte_eal_cleanup, summary, exit 0. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>

#include "hc.h"
#include "lwip/sockets.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "faultd/usdt.h"

#include "dp_port.h"
#include "ring.h"

#define DC_SLICE_MS		50	/* longest wait before looking at the stop flag */
#define DC_BACKOFF_START_MS	50
#define DC_BACKOFF_MAX_MS	1000
#define DC_PING_MS		1000	/* our pings; the pong must come within the timeout */
#define DC_RING_CAP		(256 * 1024)
#define DC_TLS_BUF		(17 * 1024)	/* one TLS record of ciphertext and then some */
#define DC_MSG_MAX		(1024 * 1024)
#define DC_WINDOW_FAST		16	/* --rate 0: messages in flight */
#define DC_WINDOW_MAX		256	/* --rate N: cap on messages in flight */
#define DC_SENT_SLOTS		1024	/* send times, indexed by seq */
#define DC_MAGIC		"FDDC"	/* at offset 8: tells our echoes from streamed messages */
#define DC_ARP_WAIT_MS		5000

enum dc_bug { DC_BUG_NONE, DC_BUG_DOUBLE_CONSTRUCT, DC_BUG_NULL_POP };

struct dc_opts {
	const char *prefix, *iface, *addr_arg, *server_arg, *ca;
	in_addr_t addr, mask;
	struct sockaddr_in server;
	char server_ip[INET_ADDRSTRLEN];
	unsigned int rate, size, timeout_ms, duration_s;
	enum dc_bug bug;
	int help;
};

/* The shared TLS BIO state. One per thread at a time, as the incident's
 * FLoop kept its shared_rbio/shared_wbio: a loop constructed while one
 * exists attaches to it, and the destructor frees it. The first two words
 * are written only when it is made, so that once freed, the allocator's
 * own bookkeeping (tcache next and key) is all that changes in it. */
struct tls_shared {
	uint64_t gen;			/* which construction made it */
	uint64_t reserved;
	unsigned char *buf;		/* staging: ciphertext from wbio to lwip_send */
	size_t cap, start, len;
	SSL *ssl;			/* this connection's; owns rbio and wbio */
	BIO *rbio;			/* network -> SSL */
	BIO *wbio;			/* SSL -> network */
	int cur_sock;			/* lwIP socket the ciphertext goes to */
};

static __thread struct tls_shared *tls_shared_current;
static uint64_t tls_shared_gens;

struct loop {
	struct tls_shared *shared;
	struct ring ring;		/* decrypted bytes, assembled into frames */
	unsigned char *msg;		/* the data message being assembled */
	size_t msg_len, msg_cap;
	int msg_op;			/* its opcode; 0: none under way */
	int sock;			/* lwIP socket, -1: none */
	/* Per connection. */
	uint64_t send_seq, echo_seq;	/* next to send, next echo expected */
	long long sent_at[DC_SENT_SLOTS];
	long long up_ms, next_ping_ms, ping_sent_ms;	/* ping_sent_ms 0: no pong awaited */
	uint64_t stream_seq;		/* next streamed seq expected */
	int close_sent, close_rcvd;
};

struct dc {
	const struct dc_opts *o;
	struct dp_port *dp;
	SSL_CTX *ssl_ctx;
	struct loop loop;
	long long start_ms, deadline_ms;
	unsigned long long attempts, connects, failures, messages, bad, streamed;
	unsigned int link_downs;	/* as of the session's start */
	uint64_t rng;
	unsigned char scratch[65536 + 64];	/* > DC_TLS_BUF and any --size */
};

static volatile sig_atomic_t dc_stop_signal;

static void dc_on_signal(int sig)
{
	dc_stop_signal = sig;
}

static double dc_elapsed(const struct dc *c)
{
	return (hc_now_ms() - c->start_ms) / 1000.0;
}

static int dc_stopping(const struct dc *c)
{
	return dc_stop_signal || (c->deadline_ms && hc_now_ms() >= c->deadline_ms);
}

static uint64_t dc_rand(struct dc *c)
{
	/* xorshift64*: mask keys need to be unpredictable to no one here. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1DULL;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Our message: 8-byte big-endian seq, "FDDC", pattern, FNV-1a 32 of all
 * that before it, big-endian. */
static void msg_fill(unsigned char *m, size_t n, uint64_t seq)
{
	put_be64(m, seq);
	memcpy(m + 8, DC_MAGIC, 4);
	for (size_t i = 12; i < n - 4; i++)
		m[i] = (unsigned char)(seq * 31 + i);
	put_be32(m + n - 4, fnv1a(m, n - 4));
}

/* --- the loop object and its shared TLS BIO state ------------------------- */

static int loop_construct(struct loop *l)
{
	struct tls_shared *s = tls_shared_current;
	int err;

	*l = (struct loop){.sock = -1};
	err = ring_init(&l->ring, DC_RING_CAP);
	if (err)
		return err;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			ring_fini(&l->ring);
			return -ENOMEM;
		}
		s->gen = ++tls_shared_gens;
		s->cur_sock = -1;
		tls_shared_current = s;
	}
	l->shared = s;
	FAULTD_OBJ_CREATE("loop", s->gen);
	return 0;
}

/* Frees what the loop owns: the shared BIO state (its SSL with both BIOs,
 * its staging buffer), the ring and the message buffer. */
static void loop_destruct(struct loop *l)
{
	struct tls_shared *s = l->shared;

	if (s) {
		FAULTD_OBJ_DESTROY("loop", s->gen);
		SSL_free(s->ssl);
		free(s->buf);
		free(s);
		if (tls_shared_current == s)
			tls_shared_current = NULL;
	}
	ring_fini(&l->ring);
	free(l->msg);
	*l = (struct loop){.sock = -1};
}

/* Readies the loop for a connection on sock: a fresh SSL over a fresh
 * memory BIO pair, and a staging buffer (the previous connection's is
 * released first). */
static int loop_start(struct dc *c, struct loop *l, int sock)
{
	struct tls_shared *s = l->shared;
	int err = -ENOMEM;

	free(s->buf);
	s->buf = malloc(DC_TLS_BUF);
	if (!s->buf)
		goto out;
	s->cap = DC_TLS_BUF;
	s->start = s->len = 0;
	s->ssl = SSL_new(c->ssl_ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->ssl || !s->rbio || !s->wbio) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		SSL_free(s->ssl);
		s->ssl = NULL;
		goto out;
	}
	/* An empty memory BIO says "retry", not EOF. */
	BIO_set_mem_eof_return(s->rbio, -1);
	BIO_set_mem_eof_return(s->wbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_connect_state(s->ssl);
	if (c->o->ca)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), c->o->server_ip);
	s->cur_sock = sock;
	l->sock = sock;
	ring_discard(&l->ring, ring_len(&l->ring));
	l->msg_len = 0;
	l->msg_op = 0;
	err = 0;
out:
	return err;
}

/* The connection is gone: its SSL (and BIOs) with it. */
static void loop_stop(struct loop *l)
{
	struct tls_shared *s = l->shared;

	SSL_free(s->ssl);
	s->ssl = NULL;
	s->rbio = s->wbio = NULL;
	s->cur_sock = -1;
	s->start = s->len = 0;
	l->sock = -1;
}

/* Before a reconnect: a new loop object for the new connection. */
static int loop_renew(struct dc *c)
{
	struct loop tmp;
	int err;

	if (c->o->bug != DC_BUG_DOUBLE_CONSTRUCT) {
		loop_destruct(&c->loop);
		return loop_construct(&c->loop);
	}
	/* The incident's `ctx.loop = Loop{};`: a temporary is constructed
	 * while ctx.loop is alive, so it attaches to the same shared BIO
	 * state; the assignment copies it member by member; and the
	 * temporary's destructor, at the end of the statement, frees the
	 * shared state that ctx.loop now points to. (The old ring and
	 * message buffer leak, as a default operator= would leak them.) */
	err = loop_construct(&tmp);
	if (err)
		return err;
	c->loop = tmp;
	loop_destruct(&tmp);
	return 0;
}

/* --- lwIP socket and TLS over memory BIOs --------------------------------- */

static int dc_wait(const struct dc *c, int sock, short events, long long deadline)
{
	struct pollfd pfd = {.fd = sock, .events = events};
	long long left;
	int r;

	for (;;) {
		if (dc_stopping(c))
			return -EINTR;
		left = deadline - hc_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		/* lwip_poll, not lwip_select: Debian's lwIP has no select. */
		pfd.revents = 0;
		r = lwip_poll(&pfd, 1, left < DC_SLICE_MS ? (int)left : DC_SLICE_MS);
		if (r < 0)
			return -errno;
		if (r > 0) {
			if (pfd.revents & POLLNVAL)
				return -EBADF;
			return pfd.revents;
		}
	}
}

static int tls_fill(struct dc *c, struct loop *l);

/* Moves SSL's output (wbio) through the staging buffer to the socket. */
static int tls_flush(struct dc *c, struct loop *l, long long deadline)
{
	struct tls_shared *s = l->shared;
	ssize_t n;
	int r, err = 0;

	for (;;) {
		if (s->len == 0) {
			r = BIO_read(s->wbio, s->buf, (int)s->cap);
			if (r <= 0)
				break;
			s->start = 0;
			s->len = (size_t)r;
		}
		n = lwip_send(l->sock, s->buf + s->start, s->len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Keep reading while the send side is full: the server
			 * blocks on its echoes otherwise, stops reading ours, and
			 * neither side moves until a timeout. Ciphertext waits in
			 * rbio for the next dc_receive. */
			r = dc_wait(c, l->sock, POLLOUT | POLLIN, deadline);
			if (r > 0 && (r & POLLIN))
				r = tls_fill(c, l);
			if (r < 0) {
				err = r;
				break;
			}
			continue;
		}
		if (n < 0) {
			err = -errno;
			break;
		}
		s->start += (size_t)n;
		s->len -= (size_t)n;
	}
	return err;
}

/* Reads what the socket has into rbio. Returns bytes read (0: none yet),
 * -ECONNRESET on EOF, or what lwIP said. */
static int tls_fill(struct dc *c, struct loop *l)
{
	struct tls_shared *s = l->shared;
	ssize_t n;
	int total = 0;

	for (;;) {
		n = lwip_recv(l->sock, c->scratch, sizeof(c->scratch), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			return -errno;
		}
		if (n == 0)
			return total ? total : -ECONNRESET;
		BIO_write(s->rbio, c->scratch, (int)n);
		total += (int)n;
	}
}

/* Decrypts all that can be into the ring. */
static int tls_read_into_ring(struct dc *c, struct loop *l)
{
	SSL *ssl = l->shared->ssl;
	int r, room;

	for (;;) {
		room = (int)(ring_room(&l->ring) < sizeof(c->scratch) ? ring_room(&l->ring) :
			     sizeof(c->scratch));
		if (room == 0)
			return 0;	/* the caller takes frames off first */
		r = SSL_read(ssl, c->scratch, room);
		if (r > 0) {
			ring_push(&l->ring, c->scratch, (size_t)r);
			continue;
		}
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_WANT_READ:
			return 0;
		case SSL_ERROR_ZERO_RETURN:
			return -ECONNRESET;
		default:
			return -EPROTO;
		}
	}
}

static int tls_handshake(struct dc *c, struct loop *l, long long deadline)
{
	SSL *ssl = l->shared->ssl;
	int r, err;

	for (;;) {
		r = SSL_do_handshake(ssl);
		err = tls_flush(c, l, deadline);
		if (err)
			return err;
		if (r == 1)
			return 0;
		if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
			unsigned long e = ERR_get_error();

			fprintf(stderr, "%s: %s\n", __func__,
				e ? ERR_reason_error_string(e) : "handshake failed");
			ERR_clear_error();
			return -EPROTO;
		}
		err = dc_wait(c, l->sock, POLLIN, deadline);
		if (err < 0)
			return err;
		err = tls_fill(c, l);
		if (err < 0)
			return err;
	}
}

static int tls_write(struct dc *c, struct loop *l, const void *buf, size_t n,
		     long long deadline)
{
	/* A memory wbio takes everything: SSL_write completes at once. */
	if (SSL_write(l->shared->ssl, buf, (int)n) != (int)n)
		return -EPROTO;
	return tls_flush(c, l, deadline);
}

/* --- WebSocket ----------------------------------------------------------- */

enum { WS_CONT = 0, WS_TEXT = 1, WS_BIN = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

/* One masked frame, FIN set. */
static int ws_send(struct dc *c, struct loop *l, int op, const void *payload, size_t n,
		   long long deadline)
{
	unsigned char *f, *p;
	size_t hdr = 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + 4;
	uint32_t key = (uint32_t)dc_rand(c);
	unsigned char mask[4];
	int err;

	f = malloc(hdr + n);
	if (!f)
		return -ENOMEM;
	f[0] = 0x80 | (unsigned char)op;
	if (n < 126) {
		f[1] = 0x80 | (unsigned char)n;
	} else if (n < 65536) {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(n >> 8);
		f[3] = (unsigned char)n;
	} else {
		f[1] = 0x80 | 127;
		put_be64(f + 2, n);
	}
	put_be32(mask, key);
	memcpy(f + hdr - 4, mask, 4);
	p = f + hdr;
	for (size_t i = 0; i < n; i++)
		p[i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
	err = tls_write(c, l, f, hdr + n, deadline);
	free(f);
	return err;
}

static const char *ws_header(const char *head, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':') {
			p += 3 + len;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
	}
	return NULL;
}

static int ws_handshake(struct dc *c, struct loop *l, long long deadline)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char nonce[16], sha[20];
	char key[32], want[32], req[512], head[4096], cat[128];
	const char *accept;
	size_t have = 0;
	int err, n;

	for (int i = 0; i < 16; i++)
		nonce[i] = (unsigned char)dc_rand(c);
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	snprintf(cat, sizeof(cat), "%s%s", key, guid);
	EVP_Digest(cat, strlen(cat), sha, NULL, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)want, sha, sizeof(sha));
	n = snprintf(req, sizeof(req),
		     "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\nUser-Agent: faultd-dpdk-client\r\n\r\n",
		     c->o->server_arg, key);
	err = tls_write(c, l, req, (size_t)n, deadline);
	if (err)
		return err;
	/* The response ends at the first blank line; frames may follow it in
	 * the same record and stay in the ring. */
	for (;;) {
		size_t len = ring_len(&l->ring);

		len = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
		ring_peek(&l->ring, head, 0, len);
		head[len] = '\0';
		char *end = strstr(head, "\r\n\r\n");
		if (end) {
			have = (size_t)(end - head) + 4;
			*end = '\0';
			break;
		}
		if (len == sizeof(head) - 1)
			return -EPROTO;
		err = dc_wait(c, l->sock, POLLIN, deadline);
		if (err < 0)
			return err;
		err = tls_fill(c, l);
		if (err < 0)
			return err;
		err = tls_read_into_ring(c, l);
		if (err < 0)
			return err;
	}
	ring_discard(&l->ring, have);
	accept = ws_header(head, "Sec-WebSocket-Accept");
	if (strncmp(head, "HTTP/1.1 101", 12) || !accept || strncmp(accept, want, strlen(want))) {
		fprintf(stderr, "%s: upgrade refused or bad Sec-WebSocket-Accept: %.80s\n",
			__func__, head);
		return -EPROTO;
	}
	return 0;
}

static void dc_counter_bad(struct dc *c, const char *why, uint64_t seq)
{
	FAULTD_COUNTER("bad", ++c->bad);
	if (c->bad <= 10)
		fprintf(stderr, "dpdk-client: bad message (%s) seq=%llu\n", why,
			(unsigned long long)seq);
}

/* An echo of ours, or a message the server streams. */
static void dc_message(struct dc *c, struct loop *l, const unsigned char *m, size_t n)
{
	const struct dc_opts *o = c->o;
	uint64_t seq;

	if (n >= 16 && memcmp(m + 8, DC_MAGIC, 4) == 0) {
		unsigned char *want = c->scratch;

		seq = get_be64(m);
		if (seq != l->echo_seq || l->echo_seq >= l->send_seq) {
			dc_counter_bad(c, "echo out of order", seq);
			return;
		}
		l->echo_seq++;
		msg_fill(want, o->size, seq);
		if (n != o->size || memcmp(m, want, n)) {
			dc_counter_bad(c, "echo corrupted", seq);
			return;
		}
		FAULTD_COUNTER("messages", ++c->messages);
		return;
	}
	/* Streamed by harness/ws-server (its header comment defines it):
	 * seq from 0 per connection, L, L bytes of an LCG pattern seeded
	 * with seq, FNV-1a 32 of everything before it; all big-endian. */
	seq = n >= 16 ? get_be64(m) : 0;
	if (n < 16 || (size_t)get_be32(m + 8) + 16 != n) {
		dc_counter_bad(c, "stream message malformed", seq);
		return;
	}
	if (seq != l->stream_seq) {
		dc_counter_bad(c, "stream sequence gap", seq);
		l->stream_seq = seq + 1;
		return;
	}
	l->stream_seq = seq + 1;
	uint32_t x = (uint32_t)seq ^ 0x9e3779b9u;
	for (size_t i = 12; i < n - 4; i++) {
		x = x * 1664525u + 1013904223u;
		if (m[i] != (unsigned char)(x >> 24)) {
			dc_counter_bad(c, "stream pattern", seq);
			return;
		}
	}
	if (get_be32(m + n - 4) != fnv1a(m, n - 4)) {
		dc_counter_bad(c, "stream checksum", seq);
		return;
	}
	c->streamed++;
	FAULTD_COUNTER("messages", ++c->messages);
}

/* Takes every complete frame off the ring. Returns 0, or -ECONNRESET once
 * the server has closed, -EPROTO on a protocol error. */
static int ws_process(struct dc *c, struct loop *l, long long deadline)
{
	unsigned char h[14], ctl[125];
	size_t hlen, plen;
	int op, fin, err;

	for (;;) {
		if (ring_peek(&l->ring, h, 0, 2))
			return 0;
		fin = h[0] & 0x80;
		op = h[0] & 0x0f;
		if (h[1] & 0x80)
			return -EPROTO;		/* a server must not mask */
		plen = h[1] & 0x7f;
		hlen = plen == 126 ? 4 : plen == 127 ? 10 : 2;
		if (ring_peek(&l->ring, h, 0, hlen))
			return 0;
		if (plen == 126)
			plen = (size_t)h[2] << 8 | h[3];
		else if (plen == 127)
			plen = (size_t)get_be64(h + 2);
		if (plen > DC_MSG_MAX || hlen + plen > l->ring.cap)
			return -EMSGSIZE;
		if (ring_len(&l->ring) < hlen + plen)
			return 0;
		ring_discard(&l->ring, hlen);
		if (op >= WS_CLOSE) {
			if (!fin || plen > sizeof(ctl))
				return -EPROTO;
			if (op == WS_PONG && c->o->bug == DC_BUG_NULL_POP) {
				/* The incident's read_pop_front(nullptr, size): a
				 * message nobody needs is "discarded" by copying
				 * it to NULL. */
				ring_pop_front(&l->ring, NULL, plen);
				l->ping_sent_ms = 0;
				continue;
			}
			ring_pop_front(&l->ring, ctl, plen);
			if (op == WS_PING) {
				err = ws_send(c, l, WS_PONG, ctl, plen, deadline);
				if (err)
					return err;
			} else if (op == WS_PONG) {
				l->ping_sent_ms = 0;
			} else if (op == WS_CLOSE) {
				l->close_rcvd = 1;
				if (!l->close_sent) {
					l->close_sent = 1;
					ws_send(c, l, WS_CLOSE, ctl, plen < 2 ? plen : 2, deadline);
				}
				return -ECONNRESET;
			} else {
				return -EPROTO;
			}
			continue;
		}
		if ((op == WS_CONT) != (l->msg_op != 0))
			return -EPROTO;		/* continuation without a start, or vice versa */
		if (op != WS_CONT)
			l->msg_op = op;
		if (l->msg_len + plen > DC_MSG_MAX)
			return -EMSGSIZE;
		if (l->msg_len + plen > l->msg_cap) {
			size_t cap = l->msg_cap ? l->msg_cap : 4096;
			unsigned char *m;

			while (cap < l->msg_len + plen)
				cap *= 2;
			m = realloc(l->msg, cap);
			if (!m)
				return -ENOMEM;
			l->msg = m;
			l->msg_cap = cap;
		}
		ring_pop_front(&l->ring, l->msg + l->msg_len, plen);
		l->msg_len += plen;
		if (fin) {
			dc_message(c, l, l->msg, l->msg_len);
			l->msg_len = 0;
			l->msg_op = 0;
		}
	}
}

/* Reads and handles whatever has arrived. */
static int dc_receive(struct dc *c, struct loop *l, long long deadline)
{
	int err;

	err = tls_fill(c, l);
	if (err < 0)
		return err;
	do {
		err = tls_read_into_ring(c, l);
		if (err < 0)
			return err;
		err = ws_process(c, l, deadline);
		if (err < 0)
			return err;
	} while (BIO_ctrl_pending(l->shared->rbio) > 0 || SSL_pending(l->shared->ssl) > 0);
	return 0;
}

/* --- the session ---------------------------------------------------------- */

static int dc_connect(struct dc *c, int *sockp)
{
	long long deadline = hc_now_ms() + c->o->timeout_ms;
	int sock, err, soerr = 0, one = 1;
	socklen_t len = sizeof(soerr);

	sock = lwip_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (sock < 0)
		return -errno;
	*sockp = sock;
	if (lwip_fcntl(sock, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	/* Every message is its own TLS record: Nagle would hold each behind
	 * the previous one's ACK. */
	lwip_setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (lwip_connect(sock, (const struct sockaddr *)&c->o->server, sizeof(c->o->server)) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	err = dc_wait(c, sock, POLLOUT, deadline);
	if (err < 0)
		return err;
	if (lwip_getsockopt(sock, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return -soerr;
}

/* A failed session is reset (SO_LINGER 0), not closed gracefully: lwIP
 * would hold its unacknowledged data and TIME_WAIT for minutes. */
static void dc_sock_close(int sock, int abortive)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (sock < 0)
		return;
	if (abortive)
		lwip_setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	lwip_close(sock);
}

/* The close handshake, when stopping while connected. */
static void dc_close_handshake(struct dc *c, struct loop *l)
{
	long long deadline = hc_now_ms() + c->o->timeout_ms;
	unsigned char code[2] = {0x03, 0xe8};	/* 1000, normal closure */
	struct pollfd pfd = {.fd = l->sock, .events = POLLIN};

	if (!l->close_sent) {
		l->close_sent = 1;
		if (ws_send(c, l, WS_CLOSE, code, sizeof(code), deadline))
			return;
	}
	while (!l->close_rcvd && hc_now_ms() < deadline) {
		pfd.revents = 0;
		if (lwip_poll(&pfd, 1, DC_SLICE_MS) <= 0)
			continue;
		if (dc_receive(c, l, deadline) < 0)
			break;
	}
	SSL_shutdown(l->shared->ssl);
	tls_flush(c, l, deadline);
}

/* Sends what is due. Returns 0 or an error. */
static int dc_send_due(struct dc *c, struct loop *l, long long now)
{
	const struct dc_opts *o = c->o;
	unsigned char *m = c->scratch;
	uint64_t due;
	unsigned int window = o->rate ? DC_WINDOW_MAX : DC_WINDOW_FAST;
	int err;

	for (;;) {
		if (l->send_seq - l->echo_seq >= window)
			return 0;
		if (o->rate) {
			due = (uint64_t)(now - l->up_ms) * o->rate / 1000 + 1;
			if (l->send_seq >= due)
				return 0;
		}
		msg_fill(m, o->size, l->send_seq);
		l->sent_at[l->send_seq % DC_SENT_SLOTS] = now;
		l->send_seq++;
		err = ws_send(c, l, WS_BIN, m, o->size, now + o->timeout_ms);
		if (err)
			return err;
	}
}

/* Exchanges messages until something fails or the client stops.
 * Returns the error (-EINTR when stopping). */
static int dc_exchange(struct dc *c, struct loop *l)
{
	const struct dc_opts *o = c->o;
	struct pollfd pfd = {.fd = l->sock, .events = POLLIN};
	long long now, wait;
	unsigned char ping[8];
	int err, r;

	l->up_ms = hc_now_ms();
	l->next_ping_ms = l->up_ms + DC_PING_MS;
	for (;;) {
		if (dc_stopping(c))
			return -EINTR;
		if (dp_port_link_downs(c->dp) != c->link_downs)
			return -ENETDOWN;
		now = hc_now_ms();
		err = dc_send_due(c, l, now);
		if (err)
			return err;
		if (now >= l->next_ping_ms) {
			put_be64(ping, (uint64_t)now);
			err = ws_send(c, l, WS_PING, ping, sizeof(ping), now + o->timeout_ms);
			if (err)
				return err;
			if (!l->ping_sent_ms)
				l->ping_sent_ms = now;
			l->next_ping_ms = now + DC_PING_MS;
		}
		if (l->echo_seq < l->send_seq &&
		    now - l->sent_at[l->echo_seq % DC_SENT_SLOTS] > o->timeout_ms)
			return -ETIMEDOUT;
		if (l->ping_sent_ms && now - l->ping_sent_ms > o->timeout_ms)
			return -ETIMEDOUT;
		wait = DC_SLICE_MS;
		if (o->rate && l->send_seq - l->echo_seq < DC_WINDOW_MAX) {
			long long next = l->up_ms + (long long)(l->send_seq * 1000 / o->rate);

			wait = next - now;
			wait = wait < 1 ? 1 : wait > DC_SLICE_MS ? DC_SLICE_MS : wait;
		}
		/* Ciphertext a flush already took off the socket, or records
		 * SSL holds, would not wake a poll. */
		if (BIO_ctrl_pending(l->shared->rbio) > 0 || SSL_pending(l->shared->ssl) > 0)
			wait = 0;
		pfd.revents = 0;
		r = lwip_poll(&pfd, 1, (int)wait);
		if (r < 0)
			return -errno;
		if (r == 0 && wait)
			continue;
		err = dc_receive(c, l, hc_now_ms() + o->timeout_ms);
		if (err)
			return err;
	}
}

static void dc_report_failure(struct dc *c, int connected, long long since, int err)
{
	FAULTD_COUNTER("failures", ++c->failures);
	printf("dpdk-client: %s after %.1f s (%s) attempt=%llu connects=%llu failures=%llu "
	       "messages=%llu bad=%llu mbuf_in_use=%u t=%.3f\n",
	       connected ? "connection lost" : "connect failed", (hc_now_ms() - since) / 1000.0,
	       hc_errname(-err), c->attempts, c->connects, c->failures, c->messages, c->bad,
	       dp_port_mbuf_in_use(c->dp), dc_elapsed(c));
}

/* One attempt. Returns 1 if it connected, 0 if not, -EINTR when stopping,
 * another negative errno if the client cannot go on. */
static int dc_session(struct dc *c)
{
	const struct dc_opts *o = c->o;
	struct loop *l = &c->loop;
	long long start = hc_now_ms(), deadline, up_at = 0;
	int sock = -1, err, connected = 0;

	c->attempts++;
	c->link_downs = dp_port_link_downs(c->dp);
	err = dc_connect(c, &sock);
	if (err)
		goto teardown;
	err = loop_start(c, l, sock);
	if (err)
		goto teardown;
	deadline = hc_now_ms() + o->timeout_ms;
	err = tls_handshake(c, l, deadline);
	if (!err)
		err = ws_handshake(c, l, deadline);
	if (err)
		goto teardown;
	up_at = hc_now_ms();
	connected = 1;
	FAULTD_COUNTER("connects", ++c->connects);
	printf("dpdk-client: connected attempt=%llu connects=%llu failures=%llu messages=%llu "
	       "bad=%llu mbuf_in_use=%u t=%.3f\n", c->attempts, c->connects, c->failures,
	       c->messages, c->bad, dp_port_mbuf_in_use(c->dp), dc_elapsed(c));
	err = dc_exchange(c, l);
	if (err == -EINTR)
		dc_close_handshake(c, l);

teardown:
	if (l->shared->ssl)
		loop_stop(l);
	dc_sock_close(sock, err != -EINTR);
	if (err == -EINTR)
		return -EINTR;
	dc_report_failure(c, connected, up_at ? up_at : start, err);
	return connected;
}

/* Sleeps ms, or less if the client is told to stop. */
static void dc_sleep(const struct dc *c, unsigned int ms)
{
	long long deadline = hc_now_ms() + ms, left;

	while (!dc_stopping(c) && (left = deadline - hc_now_ms()) > 0)
		usleep((useconds_t)(left < DC_SLICE_MS ? left : DC_SLICE_MS) * 1000);
}

static void dc_wait_network(struct dc *c)
{
	in_addr_t hop = c->o->server.sin_addr.s_addr;
	long long deadline = hc_now_ms() + DC_ARP_WAIT_MS;

	while (!dc_stopping(c) && hc_now_ms() < deadline && !dp_port_neighbor_ready(c->dp, hop))
		dc_sleep(c, 100);
	printf("dpdk-client: network %s after %.3f s\n",
	       dp_port_neighbor_ready(c->dp, hop) ? "up" : "not answering", dc_elapsed(c));
}

/* While the link is down there is nothing to try: wait for it, as a
 * device waits for its carrier, instead of failing attempt after attempt.
 * Returns 1 if it came (back) up, 0 if it was up all along. */
static int dc_wait_link(const struct dc *c)
{
	if (dp_port_link_up(c->dp))
		return 0;
	while (!dc_stopping(c) && !dp_port_link_up(c->dp))
		usleep(10 * 1000);
	return 1;
}

static int dc_run(struct dc *c)
{
	unsigned int backoff = DC_BACKOFF_START_MS;
	int r;

	for (;;) {
		r = dc_session(c);
		if (r == -EINTR || dc_stopping(c))
			return 0;
		if (r < 0)
			return r;
		if (r > 0)
			backoff = DC_BACKOFF_START_MS;
		if (dc_wait_link(c))
			backoff = DC_BACKOFF_START_MS;	/* a new link: start over */
		dc_sleep(c, backoff);
		backoff = backoff * 2 > DC_BACKOFF_MAX_MS ? DC_BACKOFF_MAX_MS : backoff * 2;
		if (dc_stopping(c))
			return 0;
		r = loop_renew(c);
		if (r)
			return r;
	}
}

/* --- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpdk-client --file-prefix P --iface IF --addr A.B.C.D/LEN --server IP:PORT\n"
		"                   [--rate N] [--size N] [--timeout-ms MS] [--duration-s S]\n"
		"                   [--bug=double-construct|null-pop] [--ca PEM] [--help]\n"
		"A TLS WebSocket client on lwIP over DPDK (net_af_packet on a veth end).\n"
		"  --file-prefix P      EAL file prefix, unique per run (required)\n"
		"  --iface IF           veth end in this namespace for net_af_packet (required)\n"
		"  --addr A.B.C.D/LEN   lwIP's address on that L2, not the kernel's (required)\n"
		"  --server IP:PORT     TLS WebSocket echo server (required)\n"
		"  --rate N             messages per second (default 200; 0: as fast as\n"
		"                       echoes return, %d in flight)\n"
		"  --size N             message size in bytes, 16-65536 (default 512)\n"
		"  --timeout-ms MS      handshake, echo and pong timeout (default 1000)\n"
		"  --duration-s S       run S seconds (default 0: until SIGTERM)\n"
		"  --bug=double-construct  re-assign the loop from a temporary at reconnect\n"
		"  --bug=null-pop       discard a pong with ring_pop_front(ring, NULL, n)\n"
		"  --ca PEM             verify the server against PEM (default: no verification)\n"
		"One line per connect and failure; USDT counters connects, failures,\n"
		"messages, bad, mbuf_in_use. SIGTERM or SIGINT: summary line, exit 0.\n",
		DC_WINDOW_FAST);
}

/* "A.B.C.D:PORT", keeping the address's text for certificate checks. */
static int parse_server(const char *s, struct dc_opts *o)
{
	if (hc_parse_ip4_port(s, &o->server) ||
	    !inet_ntop(AF_INET, &o->server.sin_addr, o->server_ip, sizeof(o->server_ip)))
		return -EINVAL;
	return 0;
}

/* An EAL file prefix becomes a directory name under /var/run/dpdk. */
static int valid_prefix(const char *s)
{
	if (!*s || strlen(s) > 64 || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

#define OPT_FAIL(...) do { fprintf(stderr, __VA_ARGS__); err = -EINVAL; goto out; } while (0)

static int opts_parse(int argc, char **argv, struct dc_opts *o)
{
	static const struct option longopts[] = {
		{"file-prefix", required_argument, NULL, 'p'},
		{"iface", required_argument, NULL, 'i'},
		{"addr", required_argument, NULL, 'a'},
		{"server", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'r'},
		{"size", required_argument, NULL, 'z'},
		{"timeout-ms", required_argument, NULL, 'T'},
		{"duration-s", required_argument, NULL, 'd'},
		{"bug", required_argument, NULL, 'B'},
		{"ca", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt, err = 0;

	*o = (struct dc_opts){.rate = 200, .size = 512, .timeout_ms = 1000};
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!valid_prefix(optarg))
				OPT_FAIL("%s: --file-prefix: '%s' is not a prefix ([A-Za-z0-9._-], "
					 "at most 64)\n", __func__, optarg);
			o->prefix = optarg;
			break;
		case 'i':
			if (!*optarg || strlen(optarg) >= 16 || strchr(optarg, ','))
				OPT_FAIL("%s: --iface: '%s' is not an interface name\n", __func__,
					 optarg);
			o->iface = optarg;
			break;
		case 'a':
			if (hc_parse_cidr(optarg, &o->addr, &o->mask))
				OPT_FAIL("%s: --addr: '%s' is not A.B.C.D/LEN (LEN 1-30)\n",
					 __func__, optarg);
			o->addr_arg = optarg;
			break;
		case 's':
			if (parse_server(optarg, o))
				OPT_FAIL("%s: --server: '%s' is not IPv4:PORT\n", __func__, optarg);
			o->server_arg = optarg;
			break;
		case 'r':
			if (hc_parse_uint(optarg, 0, 1000000, &o->rate))
				OPT_FAIL("%s: --rate: '%s' is not messages/s (0-1000000)\n",
					 __func__, optarg);
			break;
		case 'z':
			if (hc_parse_uint(optarg, 16, 65536, &o->size))
				OPT_FAIL("%s: --size: '%s' is not bytes (16-65536)\n", __func__,
					 optarg);
			break;
		case 'T':
			if (hc_parse_uint(optarg, 1, 3600 * 1000, &o->timeout_ms))
				OPT_FAIL("%s: --timeout-ms: '%s' is not milliseconds "
					 "(1-3600000)\n", __func__, optarg);
			break;
		case 'd':
			if (hc_parse_uint(optarg, 0, 365 * 86400, &o->duration_s))
				OPT_FAIL("%s: --duration-s: '%s' is not seconds\n", __func__,
					 optarg);
			break;
		case 'B':
			if (!strcmp(optarg, "double-construct"))
				o->bug = DC_BUG_DOUBLE_CONSTRUCT;
			else if (!strcmp(optarg, "null-pop"))
				o->bug = DC_BUG_NULL_POP;
			else
				OPT_FAIL("%s: --bug: unknown bug '%s' (known: double-construct, "
					 "null-pop)\n", __func__, optarg);
			break;
		case 'c':
			if (access(optarg, R_OK))
				OPT_FAIL("%s: --ca: '%s': %s\n", __func__, optarg, strerror(errno));
			o->ca = optarg;
			break;
		case 'h':
			o->help = 1;
			goto out;
		default:
			/* getopt has named the option already. */
			OPT_FAIL("%s: try --help\n", __func__);
		}
	}
	if (optind != argc)
		OPT_FAIL("%s: unexpected argument '%s'\n", __func__, argv[optind]);
	if (!o->prefix || !o->iface || !o->addr_arg || !o->server_arg)
		OPT_FAIL("%s: %s is required\n", __func__,
			 !o->prefix ? "--file-prefix" : !o->iface ? "--iface" :
			 !o->addr_arg ? "--addr" : "--server");
out:
	return err;
}

static SSL_CTX *dc_ssl_ctx(const struct dc_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (o->ca) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
			fprintf(stderr, "%s: %s: cannot load CA\n", __func__, o->ca);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* The test server's certificate is self-signed and made in
		 * memory: nothing to verify it against. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

static const char *bug_name(enum dc_bug b)
{
	return b == DC_BUG_DOUBLE_CONSTRUCT ? "double-construct" :
	       b == DC_BUG_NULL_POP ? "null-pop" : "none";
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = dc_on_signal};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigset_t stopsigs, old;
	static struct dc c;
	struct dc_opts o;
	double secs;
	int code = 2, err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (opts_parse(argc, argv, &o))
		goto out;
	code = 0;
	if (o.help) {
		usage(stdout);
		goto out;
	}
	code = 1;
	c.o = &o;
	c.start_ms = hc_now_ms();
	if (o.duration_s)
		c.deadline_ms = c.start_ms + (long long)o.duration_s * 1000;
	if (getrandom(&c.rng, sizeof(c.rng), 0) != sizeof(c.rng) || !c.rng)
		c.rng = (uint64_t)getpid() << 32 | (uint64_t)c.start_ms;
	/* LWIP_RAND() is rand(): unseeded, every run would reuse the same
	 * local ports and meet the last run's connection on the server. */
	srand((unsigned int)getpid() ^ (unsigned int)c.start_ms);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	c.ssl_ctx = dc_ssl_ctx(&o);
	if (!c.ssl_ctx)
		goto out;
	/* EAL's, lwIP's and our poll thread inherit a mask without the stop
	 * signals, so only this thread sees them. */
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopsigs, &old);
	c.dp = dp_port_open(o.prefix, o.iface, o.addr, o.mask);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!c.dp)
		goto err_ssl;
	err = loop_construct(&c.loop);
	if (err)
		goto err_port;
	FAULTD_COUNTER("connects", 0);
	FAULTD_COUNTER("failures", 0);
	FAULTD_COUNTER("messages", 0);
	FAULTD_COUNTER("bad", 0);
	printf("dpdk-client: started iface=%s addr=%s mac=%s server=%s rate=%u size=%u "
	       "bug=%s prefix=%s\n", o.iface, o.addr_arg, dp_port_mac(c.dp), o.server_arg,
	       o.rate, o.size, bug_name(o.bug), o.prefix);
	dc_wait_network(&c);
	err = dc_run(&c);
	if (err)
		fprintf(stderr, "dpdk-client: giving up: %s\n", strerror(-err));
	secs = dc_elapsed(&c);
	printf("dpdk-client: stopping: connects=%llu failures=%llu messages=%llu bad=%llu "
	       "msgs_per_s=%.0f streamed=%llu mbuf_in_use=%u\n", c.connects, c.failures,
	       c.messages, c.bad, secs > 0 ? c.messages / secs : 0.0, c.streamed,
	       dp_port_mbuf_in_use(c.dp));
	code = err ? 1 : 0;
	loop_destruct(&c.loop);
err_port:
	dp_port_close(c.dp);
err_ssl:
	SSL_CTX_free(c.ssl_ctx);
out:
	return code;
}
