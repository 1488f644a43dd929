/* libFuzzer target: the control protocol's framing and line parser. The
 * bytes are a stream of request lines as faultd reads them (each line to
 * ctl_request_parse), and of reply lines as faultctl reads them
 * (ctl_client_recv over a socket pair). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void server_side(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char why[256];
		json_t *req = ctl_request_parse(p, len, why, sizeof(why));

		if (req && !json_is_object(req))
			abort();
		if (!req && !why[0])
			abort();
		json_decref(req);
		p += len + 1;
	}
}

/* faultctl's reader: whatever the daemon sends, it ends in NULL. */
static void client_side(const uint8_t *data, size_t size)
{
	int sv[2];
	json_t *msg;

	if (size > 64 * 1024 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	close(sv[1]);
	for (int i = 0; i <= (int)size && (msg = ctl_client_recv(sv[0])); i++)
		json_decref(msg);
	close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	server_side(data, size);
	client_side(data, size);
	return 0;
}
