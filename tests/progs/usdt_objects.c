/* Objects and messages with faultd USDT probes. Correct by default; with
 * --event-after-destroy an event reaches a destroyed object from another
 * thread; with --duplicate a message is received twice; with --leave
 * 3 messages are sent and never received and 2 objects never destroyed
 * before the end, which is exit(0), or abort() with --abort. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultd/usdt.h"

static int bug_event, bug_dup, bug_leave, end_abort;
static unsigned long long victim = 17;

static void *late_event(void *arg)
{
	(void)arg;
	usleep(50 * 1000);
	FAULTD_OBJ_EVENT("qpair", victim, "last_wqe");	/* after destroy */
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	for (int i = 1; i < argc; i++) {
		bug_event |= !strcmp(argv[i], "--event-after-destroy");
		bug_dup |= !strcmp(argv[i], "--duplicate");
		bug_leave |= !strcmp(argv[i], "--leave");
		end_abort |= !strcmp(argv[i], "--abort");
	}
	usleep(200 * 1000);
	for (unsigned long long id = 1; id <= 20; id++) {
		FAULTD_OBJ_CREATE("qpair", id);
		FAULTD_OBJ_EVENT("qpair", id, "io_done");
	}
	for (unsigned long long seq = 1; seq <= 50; seq++) {
		void *msg = malloc(32);

		FAULTD_MSG_SEND(1, seq, msg);
		FAULTD_MSG_RECV(1, seq, msg);
		if (bug_dup && seq == 30)
			FAULTD_MSG_RECV(1, seq, msg);	/* a stale re-dequeue */
		free(msg);
	}
	for (unsigned long long id = 1; id <= 20; id++)
		FAULTD_OBJ_DESTROY("qpair", id);
	if (bug_event) {
		pthread_create(&t, NULL, late_event, NULL);
		pthread_join(t, NULL);
	}
	if (bug_leave) {
		static char msgs[3][32];

		for (unsigned long long seq = 51; seq <= 53; seq++)
			FAULTD_MSG_SEND(1, seq, msgs[seq - 51]);
		FAULTD_OBJ_CREATE("qpair", 21);
		FAULTD_OBJ_CREATE("qpair", 22);
	}
	FAULTD_COUNTER("objects", 20);
	usleep(200 * 1000);
	printf("usdt_objects: done\n");
	fflush(stdout);
	if (end_abort)
		abort();
	return 0;
}
