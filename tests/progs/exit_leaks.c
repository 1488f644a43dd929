/* What no_leak judges at exit. argv[1] picks the case:
 *   lost      one 48-byte block whose only pointer is dropped (lose_it)
 *   global    blocks kept by a global pointer
 *   stack     a block kept by a local of main when main calls exit()
 *   chain     a block kept only by another block that a global keeps
 *   list N    a list of 1 + N nodes whose head pointer is dropped
 *   fork      the child drops a block (child_leak); the parent keeps its own
 *   return    a block kept by a global when main returns (not exit())
 *   thread    a block kept only by a local of a thread blocked in sleep()
 *             when main calls exit()
 *   register  a block kept only in a register (r12) of a thread blocked in
 *             pause() when main calls exit() (x86-64)
 *   serve     drops a block (lose_it), then waits; SIGTERM makes it exit()
 *   wait      drops a block, then waits; SIGTERM kills it (no exit()) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct node {
	struct node *next;
	char payload[56];
};

static void *kept;

static void lose_it(void)
{
	char *p = malloc(48);

	memset(p, 0x41, 48);
	p = NULL;
}

static void child_leak(void)
{
	char *p = malloc(96);

	memset(p, 0x42, 96);
	p = NULL;
}

static void drop_list(int n)
{
	struct node *head = calloc(1, sizeof(*head));

	for (int i = 0; i < n; i++) {
		struct node *x = calloc(1, sizeof(*x));

		x->next = head->next;
		head->next = x;
	}
	head = NULL;
}

static volatile int thread_ready;

static void *holder(void *arg)
{
	char *volatile mine = malloc(500);

	(void)arg;
	memset(mine, 0x43, 500);
	thread_ready = 1;
	for (;;)
		sleep(10);
	return NULL;
}

static void *reg_holder(void *arg)
{
	void *p = malloc(321);

	(void)arg;
	memset(p, 0x44, 321);
	thread_ready = 1;
	/* The pointer goes to r12 and its memory copy is zeroed; then the
	 * thread waits in pause() forever with it in r12 alone. */
	__asm__ volatile("mov %1, %%r12\n\t"
			 "movq $0, %0\n\t"
			 "xor %1, %1\n\t"
			 "1: mov $34, %%eax\n\t"
			 "syscall\n\t"
			 "jmp 1b\n\t"
			 : "+m"(p) : "r"(p) : "r12", "rax", "rcx", "r11", "memory");
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "lost";
	void *volatile local = NULL;

	if (!strcmp(mode, "lost")) {
		lose_it();
	} else if (!strcmp(mode, "global") || !strcmp(mode, "return")) {
		kept = malloc(4000);
		memset(kept, 0, 4000);
	} else if (!strcmp(mode, "stack")) {
		local = malloc(300);
		memset(local, 0, 300);
	} else if (!strcmp(mode, "chain")) {
		void **outer = malloc(64);

		memset(outer, 0, 64);
		outer[3] = malloc(700);	/* an interior slot points to the inner block */
		kept = outer;
	} else if (!strcmp(mode, "list")) {
		drop_list(argc > 2 ? atoi(argv[2]) : 5);
	} else if (!strcmp(mode, "thread")) {
		pthread_t t;

		pthread_create(&t, NULL, holder, NULL);
		while (!thread_ready)
			usleep(1000);
	} else if (!strcmp(mode, "register")) {
		pthread_t t;

		pthread_create(&t, NULL, reg_holder, NULL);
		while (!thread_ready)
			usleep(1000);
		usleep(20 * 1000);	/* into pause() */
	} else if (!strcmp(mode, "serve") || !strcmp(mode, "wait")) {
		if (!strcmp(mode, "serve"))
			signal(SIGTERM, on_term);
		lose_it();
		printf("%s: waiting\n", mode);
		fflush(stdout);
		for (;;)
			pause();
	} else if (!strcmp(mode, "fork")) {
		pid_t pid;

		kept = malloc(128);
		pid = fork();
		if (pid == 0) {
			usleep(300 * 1000);	/* faultd follows the child from its fork on */
			child_leak();
			exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	printf("%s done\n", mode);
	fflush(stdout);
	if (!strcmp(mode, "return"))
		return 0;
	exit(local ? 0 : 0);
}
