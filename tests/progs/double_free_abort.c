/* A double free glibc catches: free(p) twice in a row puts p in the tcache
 * twice, glibc sees its key and aborts ("free(): double free detected in
 * tcache 2"). faultd must record the free before the abort. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct session {
	char name[40];
	char *buf;
};

static void session_close(struct session *s)
{
	free(s->buf);
}

int main(void)
{
	struct session s;

	strcpy(s.name, "8resu");
	s.buf = malloc(143);
	usleep(300 * 1000);
	session_close(&s);
	session_close(&s);	/* the bug: closed twice */
	return 0;
}
