/* Incident 1's "free(): invalid pointer" in small: a session is freed, its
 * block is handed to a string, and a stale pointer to the session frees
 * the "buffer" it reads there, which is now text ("8resu..."). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct session {
	long id;
	long flags;
	char *buf;
	char pad[40];
};

static struct session *__attribute__((noinline)) session_new(void)
{
	struct session *s = calloc(1, sizeof(*s));

	s->buf = malloc(100);
	return s;
}

static void __attribute__((noinline)) session_free(struct session *s)
{
	free(s->buf);
	free(s);
}

static char *__attribute__((noinline)) name_new(void)
{
	char *n = malloc(sizeof(struct session));

	memset(n, 0, sizeof(struct session));
	memcpy(n + 16, "8resu\0\0\0", 8);	/* where the session's buf was */
	return n;
}

static void __attribute__((noinline)) session_reset(struct session *s)
{
	free(s->buf);	/* the bug: s was freed */
	s->buf = NULL;
}

int main(void)
{
	struct session *volatile s = session_new();
	char *name;

	usleep(300 * 1000);
	session_free(s);
	name = name_new();
	session_reset(s);
	free(name);
	return 0;
}
