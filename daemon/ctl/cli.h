/* faultctl's shared pieces (daemon/faultctl.c is the main): its options,
 * the summary table's rows, and running scenarios (cli_run.c): locally
 * with the engine in this process, or through faultd, with live progress. */
#ifndef FAULTD_CLI_H
#define FAULTD_CLI_H

#include <limits.h>
#include <stdbool.h>

#include <event2/event.h>
#include <jansson.h>

#include "report.h"
#include "run.h"
#include "util.h"

#define EXIT_USAGE 3
#define CLI_MAX_JOBS 64

struct cli;

struct cli_slot {			/* run --local -j: one run at a time */
	struct cli *cli;
	struct run *run;
	json_t *report;			/* owned once done */
	int file;			/* the index of its scenario file */
	bool done;
};

struct cli {
	const char *sock;
	struct run_paths paths;
	bool local, expect, quiet, tty;
	const char *json_path;
	const char *junit_path, *html_path, *sarif_path;
	char suppressions[PATH_MAX];	/* run --suppressions, absolute; "" if none */
	volatile int soak_stop;		/* a signal asked a soak to end */
	double duration_s;		/* of the run in progress, for the bar */
	bool bar_shown;
	/* --local */
	struct event_base *base;
	struct run *run;
	json_t *report;
	struct event *sig_ev[2];
	int jobs;			/* run -j */
	struct cli_slot *slots;		/* run -j: the runs going on */
	int n_slots;
};

struct row {				/* one line of the summary table */
	char file[PATH_MAX];
	char name[64];
	char run_id[RUN_ID_LEN];
	enum verdict verdict;
	char expect[16];
	double duration_s;
	char note[160];
};

/* Print "faultctl: " @fmt (with @arg) and a hint, and exit EXIT_USAGE. */
void cli_die_usage(const char *fmt, const char *arg) __attribute__((noreturn));
/* Erase the progress bar, if one is shown. */
void cli_bar_clear(struct cli *cli);
void cli_row_from_report(struct row *row, const json_t *rep);

/* --local: an event base and signal handling for runs in this process (0
 * or -errno), and their end; one scenario file run into @row (0, or
 * -errno with row->note saying why). */
int cli_local_begin(struct cli *cli);
void cli_local_end(struct cli *cli);
int cli_local_run(struct cli *cli, const char *file, struct row *row);

/* faultd: a connected socket (or -errno); one request and its reply (NULL
 * on error, *@fdp kept open for more if @fdp); a reply's error printed;
 * one scenario file run through faultd into @row. */
int cli_connect(const struct cli *cli);
json_t *cli_request(const struct cli *cli, int *fdp, json_t *req);
void cli_print_reply_error(const json_t *rep);
int cli_daemon_run(struct cli *cli, const char *file, struct row *row);

/* A daemon-mode soak's SIGINT/SIGTERM: a run through faultd asks it to
 * stop. */
extern volatile int cli_stop_flag;
/* Scenario files from @args (a directory: its *.json, sorted) into *@out
 * (malloc'd strings). 0 or -errno. */
int cli_expand_files(char **args, int n, char ***out, int *n_out);

/* faultctl run. */
int cli_cmd_run(struct cli *cli, int argc, char **argv);

#endif
