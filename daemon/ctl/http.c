#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "report.h"
#include "util.h"

#define HTTP_DASH_RUNS 200	/* runs the dashboard lists */
#define HTTP_MAX_HEADERS 8192	/* request line and headers, bytes */
#define HTTP_MAX_BODY 1024	/* a GET has none; a little is tolerated */
#define HTTP_TIMEOUT_S 10	/* a client that sends or reads slower is dropped */

struct http_server {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct http_source src;
	unsigned port;
};

static void send_buf(struct evhttp_request *req, int code, const char *type,
		     struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, code == 200 ? "OK" : code == 404 ? "Not Found" :
			  "Error", body);
}

static void send_json(struct evhttp_request *req, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (b && text) {
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
		send_buf(req, 200, "application/json", b);
	} else if (b) {
		evbuffer_add_printf(b, "{\"error\": \"not found\"}\n");
		send_buf(req, j ? 500 : 404, "application/json", b);
	}
	free(text);
	if (b)
		evbuffer_free(b);
}

static void metrics(struct http_server *h, struct evhttp_request *req)
{
	json_t *st = h->src.status(h->src.arg), *runs = h->src.runs(h->src.arg);
	struct evbuffer *b = evbuffer_new();

	if (b) {
		metrics_render(b, st, runs);
		send_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
		evbuffer_free(b);
	}
	json_decref(st);
	json_decref(runs);
}

/* Text into the page, escaped as the reports escape it (report_escape). */
static void html_text(struct evbuffer *b, const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f) {
		report_escape(f, s);
		fclose(f);
		evbuffer_add(b, buf, len);
	}
	free(buf);
}

/* Recent runs, newest first, and per scenario its verdicts across runs as
 * a strip of coloured cells (the trend a soak shows at a glance). */
static void dashboard(struct http_server *h, struct evhttp_request *req)
{
	json_t *runs = h->src.runs(h->src.arg), *row, *by_sc = json_object();
	struct evbuffer *b = evbuffer_new();
	const char *name;
	json_t *list;
	size_t i;

	if (!b || !by_sc)
		goto out;
	evbuffer_add_printf(b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
		"<title>faultd</title><style>body{font-family:sans-serif;margin:1.5em}"
		"table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
		"text-align:left}.PASS{background:#2e7d32;color:#fff}.FAIL{background:#c62828;"
		"color:#fff}.INCONCLUSIVE{background:#f9a825}.ERROR{background:#6a1b9a;color:#fff}"
		".cell{display:inline-block;width:14px;height:14px;margin:1px}</style></head>"
		"<body><h1>faultd</h1><h2>Scenarios</h2><table id=\"trends\">"
		"<tr><th>scenario</th><th>runs</th><th>verdicts, oldest to newest</th></tr>");
	json_array_foreach(runs, i, row) {
		const char *sc = json_string_value(json_object_get(row, "scenario"));

		if (!sc || !json_object_get(row, "verdict"))
			continue;
		list = json_object_get(by_sc, sc);
		if (!list) {
			list = json_array();
			json_object_set_new(by_sc, sc, list);
		}
		json_array_insert(list, 0, row);	/* newest first in, oldest first out */
	}
	json_object_foreach(by_sc, name, list) {
		evbuffer_add(b, "<tr class=\"trend\"><td>", 22);
		html_text(b, name);
		evbuffer_add_printf(b, "</td><td>%zu</td><td>", json_array_size(list));
		json_array_foreach(list, i, row) {
			const char *v = json_string_value(json_object_get(row, "verdict"));

			evbuffer_add(b, "<a class=\"cell ", 15);
			html_text(b, v);
			evbuffer_add(b, "\" title=\"", 9);
			html_text(b, json_string_value(json_object_get(row, "run_id")));
			evbuffer_add(b, " ", 1);
			html_text(b, v);
			evbuffer_add(b, "\" href=\"/runs/", 14);
			html_text(b, json_string_value(json_object_get(row, "run_id")));
			evbuffer_add(b, "/report.html\"></a>", 18);
		}
		evbuffer_add(b, "</td></tr>", 10);
	}
	evbuffer_add_printf(b, "</table><h2>Recent runs</h2><table id=\"runs\"><tr><th>run</th>"
		"<th>scenario</th><th>state</th><th>verdict</th><th>started</th>"
		"<th>first failure</th></tr>");
	json_array_foreach(runs, i, row) {
		const char *v = json_string_value(json_object_get(row, "verdict"));
		const char *id = json_string_value(json_object_get(row, "run_id"));

		if (i >= HTTP_DASH_RUNS)
			break;
		evbuffer_add(b, "<tr class=\"run\"><td><a href=\"/runs/", 35);
		html_text(b, id);
		evbuffer_add(b, "/report.html\">", 14);
		html_text(b, id);
		evbuffer_add(b, "</a></td><td>", 13);
		html_text(b, json_string_value(json_object_get(row, "scenario")));
		evbuffer_add(b, "</td><td>", 9);
		html_text(b, json_string_value(json_object_get(row, "state")));
		evbuffer_add(b, "</td><td class=\"", 16);
		html_text(b, v ? v : "");
		evbuffer_add(b, "\">", 2);
		html_text(b, v ? v : "");
		evbuffer_add(b, "</td><td>", 9);
		html_text(b, json_string_value(json_object_get(row, "started_at")));
		evbuffer_add(b, "</td><td>", 9);
		html_text(b, json_string_value(json_object_get(row, "first_failure")));
		evbuffer_add(b, "</td></tr>", 10);
	}
	evbuffer_add_printf(b, "</table><p><a href=\"/metrics\">/metrics</a> · "
			    "<a href=\"/runs\">/runs</a></p></body></html>\n");
	send_buf(req, 200, "text/html; charset=utf-8", b);
out:
	if (b)
		evbuffer_free(b);
	json_decref(by_sc);
	json_decref(runs);
}

static void serve_report_html(struct http_server *h, struct evhttp_request *req, const char *id)
{
	char path[PATH_MAX];
	struct evbuffer *b = evbuffer_new();
	struct stat st;
	int fd;

	/* The file goes out as the socket drains (sendfile or mmap), not
	 * read whole on the loop first. */
	snprintf(path, sizeof(path), "%s/%s/report.html", h->src.runs_dir, id);
	fd = b ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    evbuffer_add_file(b, fd, 0, st.st_size) == 0) {
		fd = -1;	/* the buffer owns it now */
		send_buf(req, 200, "text/html; charset=utf-8", b);
	} else if (b) {
		evbuffer_add_printf(b, "no HTML report for run %s\n", id);
		send_buf(req, 404, "text/plain", b);
	}
	if (fd >= 0)
		close(fd);
	if (b)
		evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	const char *uri = evhttp_request_get_uri(req);
	char id[16];

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	if (!strcmp(uri, "/metrics")) {
		metrics(h, req);
	} else if (!strcmp(uri, "/") || !strcmp(uri, "/index.html")) {
		dashboard(h, req);
	} else if (!strcmp(uri, "/runs")) {
		json_t *runs = h->src.runs(h->src.arg);

		send_json(req, runs);
		json_decref(runs);
	} else if (sscanf(uri, "/runs/%15[0-9a-f]", id) == 1 && util_valid_run_id(id)) {
		const char *rest = uri + 6 + strlen(id);

		if (!*rest || !strcmp(rest, "/")) {
			json_t *rep = h->src.report(h->src.arg, id);

			send_json(req, rep);
			json_decref(rep);
		} else if (!strcmp(rest, "/report.html")) {
			serve_report_html(h, req, id);
		} else {
			evhttp_send_error(req, 404, NULL);
		}
	} else {
		evhttp_send_error(req, 404, NULL);
	}
}

struct http_server *http__start(struct event_base *base, const char *addr, unsigned port,
				const struct http_source *src)
{
	struct http_server *h = calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof(ss);
	int err = 0;

	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->src = *src;
	h->http = evhttp_new(base);
	if (!h->http) {
		err = -ENOMEM;
		goto err_free;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET);
	/* Requests are GETs of a short path: anything bigger or slower is
	 * refused or dropped rather than buffered on the loop. */
	evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, HTTP_MAX_BODY);
	evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
	evhttp_set_gencb(h->http, on_request, h);
	h->sock = evhttp_bind_socket_with_handle(h->http, addr, (ev_uint16_t)port);
	if (!h->sock) {
		err = errno ? -errno : -EADDRINUSE;
		log_err("%s: cannot listen on %s:%u: %s", __func__, addr, port, strerror(-err));
		goto err_free;
	}
	if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss, &sl) == 0)
		h->port = ntohs(ss.ss_family == AF_INET6 ?
				((struct sockaddr_in6 *)&ss)->sin6_port :
				((struct sockaddr_in *)&ss)->sin_port);
	log_info("%s: http on %s:%u", __func__, addr, h->port);
	return h;
err_free:
	http__free(h);
	errno = -err;
	return NULL;
}

unsigned http__port(const struct http_server *h)
{
	return h->port;
}

void http__free(struct http_server *h)
{
	if (!h)
		return;
	if (h->http)
		evhttp_free(h->http);
	free(h);
}
