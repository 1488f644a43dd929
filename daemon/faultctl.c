/* faultctl: faultd's command line. Talks to faultd over its socket, or runs
 * the same engine in-process with --local. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "check.h"
#include "journal.h"
#include "ctl.h"
#include "inv.h"
#include "log.h"
#include "paths.h"
#include "replay.h"
#include "report.h"
#include "run.h"
#include "soak.h"
#include "suppress.h"
#include "util.h"

#define EXIT_USAGE 3

static volatile int soak_stop_flag;	/* a daemon-mode soak's SIGINT/SIGTERM */

struct cli {
	const char *sock;
	char runs_dir[PATH_MAX];
	char cgroup_root[PATH_MAX];
	char harness_dir[PATH_MAX];
	char journal_dir[PATH_MAX];
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

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "faultctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'faultctl --help'.\n");
	exit(EXIT_USAGE);
}

/* --- progress ---------------------------------------------------------------- */

static void bar_clear(struct cli *cli)
{
	if (cli->bar_shown) {
		fputs("\r\033[K", stderr);
		cli->bar_shown = false;
	}
}

static void show_cycle(struct cli *cli, const json_t *cyc)
{
	double t = (double)json_integer_value(json_object_get(cyc, "t_end_ms")) / 1000.0;
	int width = 30, fill;

	if (cli->quiet)
		return;
	bar_clear(cli);
	printf("  [%s] cycle %-4lld t=%7.1fs  procs=%-3lld rss=%lldkB\n",
	       json_string_value(json_object_get(cyc, "run_id")),
	       json_integer_value(json_object_get(cyc, "cycle")), t,
	       json_integer_value(json_object_get(cyc, "procs")),
	       json_integer_value(json_object_get(cyc, "rss_kb")));
	fflush(stdout);
	if (!cli->tty || cli->duration_s <= 0)
		return;
	fill = (int)(width * (t / cli->duration_s));
	fill = fill > width ? width : fill < 0 ? 0 : fill;
	fprintf(stderr, "[%.*s%*s] %5.1f/%.1fs", fill, "##############################",
		width - fill, "", t, cli->duration_s);
	cli->bar_shown = true;
}

static void row_from_report(struct row *row, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario"), *invs, *inv;
	size_t i;

	snprintf(row->name, sizeof(row->name), "%s",
		 json_string_value(json_object_get(sc, "name")) ?: "?");
	snprintf(row->run_id, sizeof(row->run_id), "%s",
		 json_string_value(json_object_get(rep, "run_id")) ?: "");
	snprintf(row->expect, sizeof(row->expect), "%s",
		 json_string_value(json_object_get(sc, "expect")) ?: "PASS");
	row->verdict = verdict_parse(json_string_value(json_object_get(rep, "verdict")));
	row->duration_s = json_number_value(json_object_get(rep, "duration_s"));
	row->note[0] = '\0';
	if (json_is_string(json_object_get(rep, "error")))
		snprintf(row->note, sizeof(row->note), "%s",
			 json_string_value(json_object_get(rep, "error")));
	invs = json_object_get(rep, "invariants");
	json_array_foreach(invs, i, inv) {
		if (row->note[0] || !strcmp(json_string_value(json_object_get(inv, "verdict")) ?: "", "PASS"))
			continue;
		snprintf(row->note, sizeof(row->note), "%s: %s",
			 json_string_value(json_object_get(inv, "name")) ?: "?",
			 json_string_value(json_object_get(inv, "summary")) ?: "");
	}
}

/* --- --local: the engine in this process --------------------------------------- */

static void local_on_cycle(struct run *r, const json_t *cycle, void *arg)
{
	(void)r;
	show_cycle(arg, cycle);
}

static void local_on_done(struct run *r, const json_t *report, void *arg)
{
	struct cli *cli = arg;

	(void)r;
	cli->report = report ? json_incref((json_t *)report) : NULL;
	event_base_loopbreak(cli->base);
}

static void local_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct cli *cli = arg;
	char reason[64];

	(void)what;
	snprintf(reason, sizeof(reason), "faultctl received %s", util_signame((int)sig));
	cli->soak_stop = 1;
	if (cli->run)
		run__stop(cli->run, reason);
}

static int local_run(struct cli *cli, const char *file, struct row *row)
{
	struct run_opts opts = {
		.runs_dir = cli->runs_dir, .cgroup_root = cli->cgroup_root,
		.harness_dir = cli->harness_dir, .journal_dir = cli->journal_dir,
		.on_cycle = local_on_cycle,
		.on_done = local_on_done, .arg = cli,
		.suppressions = cli->suppressions[0] ? cli->suppressions : NULL,
	};
	struct scenario *sc = NULL;
	char *errors = NULL;

	if (scenario_load(file, &sc, &errors)) {
		bar_clear(cli);
		fputs(errors ? errors : "invalid scenario\n", stderr);
		snprintf(row->note, sizeof(row->note), "invalid scenario");
		free(errors);
		return -EINVAL;
	}
	snprintf(row->name, sizeof(row->name), "%s", sc->name);
	snprintf(row->expect, sizeof(row->expect), "%s", scenario_expect_name(sc->expect));
	cli->duration_s = sc->duration_s;
	cli->run = run__new(cli->base, sc, &opts);
	if (!cli->run) {
		snprintf(row->note, sizeof(row->note), "cannot create run: %s", strerror(errno));
		return -errno;
	}
	if (!cli->quiet)
		printf("run %s: %s (%s)\n", run__id(cli->run), sc->name, file);
	run__start(cli->run);
	event_base_dispatch(cli->base);
	run__free(cli->run);
	cli->run = NULL;
	return cli->report ? 0 : -EIO;
}

/* --- talking to faultd ----------------------------------------------------------- */

static int connect_daemon(const struct cli *cli)
{
	int fd = ctl_client_connect(cli->sock);

	if (fd < 0)
		fprintf(stderr, "faultctl: cannot connect to faultd at %s: %s "
			"(is faultd running? 'faultctl run --local' needs no daemon)\n",
			cli->sock, strerror(-fd));
	return fd;
}

/* Send @req and read the first reply; NULL after printing why. */
static json_t *request(const struct cli *cli, int *fdp, json_t *req)
{
	json_t *rep = NULL;
	int fd, err;

	fd = connect_daemon(cli);
	if (fd < 0)
		goto out;
	err = ctl_client_send(fd, req);
	if (err) {
		fprintf(stderr, "faultctl: send: %s\n", strerror(-err));
		close(fd);
		goto out;
	}
	rep = ctl_client_recv(fd);
	if (!rep) {
		fprintf(stderr, "faultctl: no reply from faultd: %s\n",
			errno ? strerror(errno) : "connection closed");
		close(fd);
		goto out;
	}
	if (fdp)
		*fdp = fd;
	else
		close(fd);
out:
	json_decref(req);
	return rep;
}

static void print_reply_error(const json_t *rep)
{
	const json_t *errs = json_object_get(rep, "errors"), *e;
	size_t i;

	if (json_array_size(errs)) {
		json_array_foreach(errs, i, e)
			fprintf(stderr, "%s\n", json_string_value(e));
		return;
	}
	fprintf(stderr, "faultctl: %s\n", json_string_value(json_object_get(rep, "error")) ?: "error");
}

static int daemon_run(struct cli *cli, const char *file, struct row *row)
{
	char abs[PATH_MAX], *text = NULL;
	json_t *rep, *msg;
	bool stop_sent = false;
	size_t len = 0;
	int fd = -1, err;

	err = util_read_file(file, 1u << 20, &text, &len);
	if (err) {
		fprintf(stderr, "%s:1:1: (file): cannot read: %s\n", file, strerror(-err));
		snprintf(row->note, sizeof(row->note), "cannot read scenario");
		return err;
	}
	/* The daemon names this path in errors; keep it as the user gave it. */
	snprintf(abs, sizeof(abs), "%s", file);
	rep = request(cli, &fd, json_pack("{ssssss%sbss*}", "cmd", "run", "file", abs,
					  "scenario", text, len, "watch", 1, "suppressions",
					  cli->suppressions[0] ? cli->suppressions : NULL));
	free(text);
	if (!rep) {
		snprintf(row->note, sizeof(row->note), "faultd unreachable");
		return -ECONNREFUSED;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		print_reply_error(rep);
		snprintf(row->note, sizeof(row->note), "%s",
			 json_string_value(json_object_get(rep, "error")) ?: "refused");
		json_decref(rep);
		close(fd);
		return -EINVAL;
	}
	snprintf(row->run_id, sizeof(row->run_id), "%s",
		 json_string_value(json_object_get(rep, "run_id")) ?: "");
	if (!cli->quiet)
		printf("run %s: queued (%s)\n", row->run_id, file);
	json_decref(rep);
	cli->duration_s = 0;
	for (;;) {
		const char *ev;

		/* A soak's Ctrl-C: the run stops now (its report still comes),
		 * not when it would have ended. Asked on this connection: its
		 * reply is a line without "event", which the loop skips, and
		 * another connection would reset ctl.c's one read buffer. */
		if (soak_stop_flag && !stop_sent) {
			json_t *stop = json_pack("{ssss}", "cmd", "stop", "run_id", row->run_id);

			if (!stop || ctl_client_send(fd, stop))
				fprintf(stderr, "faultctl: cannot ask faultd to stop run %s\n",
					row->run_id);
			json_decref(stop);
			stop_sent = true;
		}
		msg = ctl_client_recv_until(fd, &soak_stop_flag);
		if (!msg && errno == EINTR)
			continue;
		if (!msg)
			break;
		ev = json_string_value(json_object_get(msg, "event"));

		if (ev && !strcmp(ev, "cycle")) {
			show_cycle(cli, msg);
		} else if (ev && !strcmp(ev, "started")) {
			if (!cli->quiet)
				printf("run %s: started\n", row->run_id);
		} else if (ev && !strcmp(ev, "done")) {
			json_t *report = json_object_get(msg, "report");

			cli->report = json_is_object(report) ? json_incref(report) : NULL;
			json_decref(msg);
			break;
		}
		json_decref(msg);
	}
	close(fd);
	if (!cli->report) {
		snprintf(row->note, sizeof(row->note), "lost the connection to faultd");
		return -EIO;
	}
	return 0;
}

/* --- run ----------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append @path (taken over) to @files; -ENOMEM, freeing @path, if it cannot. */
static int files_add(char ***files, int *count, char *path)
{
	char **grown;

	if (!path)
		return -ENOMEM;
	grown = realloc(*files, (size_t)(*count + 1) * sizeof(**files));
	if (!grown) {
		free(path);
		return -ENOMEM;
	}
	*files = grown;
	(*files)[(*count)++] = path;
	return 0;
}

/* A directory stands for its *.json files, in name order. -ENOENT when
 * there are none, -ENOMEM (nothing returned) when out of memory. */
static int expand_files(char **args, int n, char ***out, int *n_out)
{
	char **files = NULL;
	int count = 0, err = 0;

	for (int i = 0; i < n && !err; i++) {
		struct stat st;
		struct dirent *de;
		DIR *d;
		int first = count;

		if (stat(args[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			err = files_add(&files, &count, strdup(args[i]));
			continue;
		}
		d = opendir(args[i]);
		while (!err && d && (de = readdir(d))) {
			size_t l = strlen(de->d_name);
			char *path = NULL;

			if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
				continue;
			if (asprintf(&path, "%s%s%s", args[i],
				     args[i][strlen(args[i]) - 1] == '/' ? "" : "/", de->d_name) < 0)
				path = NULL;
			err = files_add(&files, &count, path);
		}
		if (d)
			closedir(d);
		if (!err)
			qsort(files + first, (size_t)(count - first), sizeof(*files), cmp_str);
	}
	if (err) {
		while (count > 0)
			free(files[--count]);
		free(files);
		files = NULL;
	}
	*out = files;
	*n_out = count;
	return err ? err : count ? 0 : -ENOENT;
}

static int write_json_out(const char *path, json_t *reports, int n)
{
	json_t *doc = n == 1 ? json_array_get(reports, 0) : reports;
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct stat st;
	int err;

	if (!text)
		return -ENOMEM;
	/* A report file is replaced atomically; stdout ("-"), a pipe or a
	 * device is written in place: renaming over it would replace it. */
	if (!strcmp(path, "-")) {
		err = fputs(text, stdout) < 0 || fputc('\n', stdout) < 0 ? -EIO : 0;
	} else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		FILE *f = fopen(path, "w");

		err = !f || fputs(text, f) < 0 ? -errno : 0;
		if (f && fclose(f) != 0 && !err)
			err = -errno;
	} else {
		err = util_write_atomic(path, text, strlen(text));
	}
	free(text);
	if (err)
		fprintf(stderr, "faultctl: --json %s: %s\n", path, strerror(-err));
	return err;
}

/* --junit, --sarif: every run in one file. */
static void write_list_out(const char *opt, const char *path, const json_t *reports,
			   int (*write)(json_t *const *, size_t, const char *))
{
	size_t n = json_array_size(reports);
	json_t **list = calloc(n, sizeof(*list));
	int err = -ENOMEM;

	for (size_t i = 0; list && i < n; i++)
		list[i] = json_array_get(reports, i);
	if (list)
		err = write(list, n, path);
	if (err)
		fprintf(stderr, "faultctl: %s %s: %s\n", opt, path, strerror(-err));
	free(list);
}

/* One run: the file; several: a directory of SCENARIO-RUN.html. */
static void write_html_out(const char *path, const json_t *reports)
{
	const json_t *rep;
	size_t i;

	if (json_array_size(reports) == 1) {
		if (report_html_write(json_array_get(reports, 0), path))
			fprintf(stderr, "faultctl: --html %s: cannot write\n", path);
		return;
	}
	if (util_mkdir_p(path, 0755)) {
		fprintf(stderr, "faultctl: --html %s: cannot make the directory\n", path);
		return;
	}
	json_array_foreach(reports, i, rep) {
		char file[PATH_MAX + 160];

		snprintf(file, sizeof(file), "%s/%s-%s.html", path,
			 json_string_value(json_object_get(json_object_get(rep, "scenario"), "name")),
			 json_string_value(json_object_get(rep, "run_id")));
		if (report_html_write(rep, file))
			fprintf(stderr, "faultctl: --html %s: cannot write\n", file);
	}
}

/* --local: faultctl is the daemon for this command: its own event base,
 * Ctrl-C stopping the run cleanly, and what an earlier killed run left
 * swept first. */
static int local_begin(struct cli *cli)
{
	cli->base = util_event_base();
	if (!cli->base) {
		fprintf(stderr, "faultctl: cannot create an event base\n");
		return -ENOMEM;
	}
	cli->sig_ev[0] = evsignal_new(cli->base, SIGINT, local_on_signal, cli);
	cli->sig_ev[1] = evsignal_new(cli->base, SIGTERM, local_on_signal, cli);
	if (!cli->sig_ev[0] || !cli->sig_ev[1] || evsignal_add(cli->sig_ev[0], NULL) ||
	    evsignal_add(cli->sig_ev[1], NULL)) {
		fprintf(stderr, "faultctl: cannot install signal events\n");
		return -ENOMEM;
	}
	cg_root_init(cli->cgroup_root, sizeof(cli->cgroup_root), false);
	cg_sweep(cli->cgroup_root);
	journal_sweep(cli->journal_dir, NULL, NULL);
	return 0;
}

static void local_end(struct cli *cli)
{
	if (cli->base) {
		for (size_t i = 0; i < 2; i++)
			if (cli->sig_ev[i])
				event_free(cli->sig_ev[i]);
		event_base_free(cli->base);
		cli->base = NULL;
	}
}

static int cmd_run(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"local", no_argument, NULL, 'L'}, {"expect", no_argument, NULL, 'e'},
		{"json", required_argument, NULL, 'J'}, {"quiet", no_argument, NULL, 'q'},
		{"junit", required_argument, NULL, 'U'}, {"html", required_argument, NULL, 'T'},
		{"sarif", required_argument, NULL, 'F'},
		{"suppressions", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	struct suppress *supp = NULL;
	char supp_err[512];
	json_t *reports;
	char **files = NULL;
	struct row *rows;
	int opt, n = 0, code = 0, mismatches = 0, errors = 0, err;
	int worst_rank = 0;

	while ((opt = getopt_long(argc, argv, "+eq", longopts, NULL)) != -1) {
		switch (opt) {
		case 'L': cli->local = true; break;
		case 'e': cli->expect = true; break;
		case 'J': cli->json_path = optarg; break;
		case 'U': cli->junit_path = optarg; break;
		case 'T': cli->html_path = optarg; break;
		case 'F': cli->sarif_path = optarg; break;
		case 'q': cli->quiet = true; break;
		case 'S':
			/* Checked here, so a bad line is a usage error before anything runs. */
			if (suppress_load(&supp, optarg, supp_err, sizeof(supp_err)) ||
			    !realpath(optarg, cli->suppressions)) {
				suppress_free(supp);
				die_usage("run: --suppressions: %s", supp_err);
			}
			suppress_free(supp);
			supp = NULL;
			break;
		case 'h':
			printf("usage: faultctl run [--local] [--expect] [--json PATH] [--junit PATH]\n"
			       "                    [--html PATH] [--sarif PATH] [--suppressions FILE]\n"
			       "                    [--quiet] FILE|DIR...\n"
			       "Run scenarios in turn and print one summary table.\n"
			       "  --local     run the engine in this process (no daemon needed)\n"
			       "  --expect    exit 0 when every verdict matches the scenario's \"expect\"\n"
			       "  --json PATH write the report there (an array for several runs; - is stdout)\n"
			       "  --junit PATH  JUnit XML: a testsuite per run, a testcase per invariant\n"
			       "  --html PATH   the HTML report (several runs: PATH is a directory)\n"
			       "  --sarif PATH  SARIF 2.1.0 for code scanning: a result per finding\n"
			       "  --suppressions FILE  silence known heap/fd findings (leak:FUNC, ...)\n"
			       "  --quiet     no per-cycle lines\n"
			       "Exit: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 usage/setup/scenario error.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		die_usage("run: needs a scenario FILE or DIR%s", "");
	err = expand_files(argv + optind, argc - optind, &files, &n);
	if (err == -ENOMEM) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	if (err)
		die_usage("run: no scenario files in %s", argv[optind]);
	rows = calloc((size_t)n, sizeof(*rows));
	reports = json_array();
	if (!rows || !reports) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	cli->tty = isatty(STDERR_FILENO) && !cli->quiet;
	if (cli->local && local_begin(cli)) {
		local_end(cli);
		return EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		struct row *row = &rows[i];
		int err;

		snprintf(row->file, sizeof(row->file), "%s", files[i]);
		snprintf(row->expect, sizeof(row->expect), "PASS");
		row->verdict = V_ERROR;
		cli->report = NULL;
		err = cli->local ? local_run(cli, files[i], row) : daemon_run(cli, files[i], row);
		bar_clear(cli);
		if (!err && cli->report) {
			row_from_report(row, cli->report);
			json_array_append(reports, cli->report);
			if (!cli->quiet) {
				report_text_line(stdout, cli->report);
				fflush(stdout);
			}
			json_decref(cli->report);
			cli->report = NULL;
		}
	}
	/* The summary table. */
	printf("\n%-13s %-13s %-32s %-7s %7s  %s\n", "VERDICT", "EXPECTED", "SCENARIO",
	       "RUN", "TIME", "FIRST FAILURE / NOTE");
	for (int i = 0; i < n; i++) {
		struct row *row = &rows[i];
		static const int rank[] = {[V_PASS] = 0, [V_INCONCLUSIVE] = 1,
					   [V_FAIL] = 2, [V_ERROR] = 3};
		bool matched = strcmp(verdict_name(row->verdict), row->expect) == 0;

		printf("%-13s %-13s %-32s %-7s %6.1fs  %s\n", verdict_name(row->verdict),
		       cli->expect ? (matched ? row->expect : "MISMATCH") : row->expect,
		       row->name[0] ? row->name : row->file, row->run_id, row->duration_s,
		       row->note);
		if (rank[row->verdict] > worst_rank)
			worst_rank = rank[row->verdict];
		mismatches += !matched;
		errors += row->verdict == V_ERROR;
	}
	if (cli->expect)
		printf("\n%d of %d scenarios gave the expected verdict\n", n - mismatches, n);
	if (cli->json_path && json_array_size(reports))
		write_json_out(cli->json_path, reports, (int)json_array_size(reports));
	if (cli->junit_path && json_array_size(reports))
		write_list_out("--junit", cli->junit_path, reports, report_junit_write);
	if (cli->sarif_path && json_array_size(reports))
		write_list_out("--sarif", cli->sarif_path, reports, report_sarif_write);
	if (cli->html_path)
		write_html_out(cli->html_path, reports);
	if (cli->expect)
		code = errors ? EXIT_USAGE : mismatches ? 1 : 0;
	else
		code = worst_rank == 3 ? 3 : worst_rank == 2 ? 1 : worst_rank == 1 ? 2 : 0;
	for (int i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(rows);
	json_decref(reports);
	local_end(cli);
	return code;
}

/* --- the other commands ---------------------------------------------------------- */

static int cmd_validate(struct cli *cli, int argc, char **argv)
{
	int bad = 0;

	(void)cli;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		printf("usage: faultctl validate FILE...\nCheck scenarios; print every error as "
		       "FILE:LINE:COL: key.path: message.\nExit 0 if all are valid, 3 if not.\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	for (int i = 1; i < argc; i++) {
		struct scenario *sc = NULL;
		char *errors = NULL;

		if (scenario_load(argv[i], &sc, &errors)) {
			fputs(errors ? errors : "invalid\n", stderr);
			bad++;
		} else {
			printf("%s: ok: scenario '%s', %zu workloads, %zu invariants\n", argv[i],
			       sc->name, sc->n_wl, sc->n_inv);
		}
		free(errors);
		scenario_free(sc);
	}
	return bad ? EXIT_USAGE : 0;
}

static int simple_request(struct cli *cli, json_t *req, json_t **out)
{
	json_t *rep = request(cli, NULL, req);

	if (!rep)
		return EXIT_USAGE;
	if (!json_is_true(json_object_get(rep, "ok"))) {
		print_reply_error(rep);
		json_decref(rep);
		return EXIT_USAGE;
	}
	*out = rep;
	return 0;
}

static int cmd_list(struct cli *cli, int argc, char **argv)
{
	const json_t *runs, *r;
	json_t *rep;
	size_t i;
	int code;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("usage: faultctl list [--json]\nRuns the daemon knows of, newest first.\n");
		return 0;
	}
	code = simple_request(cli, json_pack("{ss}", "cmd", "list"), &rep);
	if (code)
		return code;
	runs = json_object_get(rep, "runs");
	if (argc > 1 && !strcmp(argv[1], "--json")) {
		json_dumpf(runs, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%-8s %-9s %-13s %s\n", "RUN", "STATE", "VERDICT", "SCENARIO");
		json_array_foreach(runs, i, r)
			printf("%-8s %-9s %-13s %s\n",
			       json_string_value(json_object_get(r, "run_id")) ?: "?",
			       json_string_value(json_object_get(r, "state")) ?: "?",
			       json_string_value(json_object_get(r, "verdict")) ?: "-",
			       json_string_value(json_object_get(r, "scenario")) ?: "?");
	}
	json_decref(rep);
	return 0;
}

static int cmd_status(struct cli *cli, int argc, char **argv)
{
	json_t *req, *rep;
	int code;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("usage: faultctl status [RUN]\nThe daemon's state, or one run's.\n");
		return 0;
	}
	req = argc > 1 ? json_pack("{ssss}", "cmd", "status", "run_id", argv[1])
		       : json_pack("{ss}", "cmd", "status");
	code = simple_request(cli, req, &rep);
	if (code)
		return code;
	json_dumpf(json_object_get(rep, argc > 1 ? "status" : "daemon"), stdout,
		   JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(rep);
	return 0;
}

static int cmd_stop(struct cli *cli, int argc, char **argv)
{
	json_t *rep;
	int code;

	if (argc != 2 || !strcmp(argv[1], "--help")) {
		printf("usage: faultctl stop RUN\nStop a run: its workloads end, its report is "
		       "written (INCONCLUSIVE unless something already failed).\n");
		return argc == 2 ? 0 : EXIT_USAGE;
	}
	code = simple_request(cli, json_pack("{ssss}", "cmd", "stop", "run_id", argv[1]), &rep);
	if (code)
		return code;
	printf("run %s: stopping\n", argv[1]);
	json_decref(rep);
	return 0;
}

static int cmd_report(struct cli *cli, int argc, char **argv)
{
	const char *format = "text", *id = NULL, *out = NULL;
	json_t *report = NULL, *rep = NULL;
	int fd, err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf("usage: faultctl report RUN [--format json|text|html|junit|sarif] "
			       "[--output PATH]\n"
			       "A run's report; read from the runs directory if faultd is not running.\n"
			       "  --format html   one self-contained page: verdict, invariants with\n"
			       "                  evidence, fault timeline, per-cycle plots\n"
			       "  --format junit  JUnit XML for CI: a testcase per invariant\n"
			       "  --format sarif  SARIF 2.1.0 for code scanning: a result per finding\n"
			       "  --output PATH   write there (replaced atomically) instead of stdout\n");
			return 0;
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			format = argv[++i];
		} else if (!strncmp(argv[i], "--format=", 9)) {
			format = argv[i] + 9;
		} else if ((!strcmp(argv[i], "--output") || !strcmp(argv[i], "-o")) && i + 1 < argc) {
			out = argv[++i];
		} else if (!strncmp(argv[i], "--output=", 9)) {
			out = argv[i] + 9;
		} else if (!id) {
			id = argv[i];
		} else {
			die_usage("report: unexpected argument '%s'", argv[i]);
		}
	}
	if (!id)
		die_usage("report: needs a RUN id%s", "");
	if (!report_format_known(format))
		die_usage("report: --format must be json, text, html, junit or sarif, not '%s'",
			  format);
	if (out && !*out)
		die_usage("report: --output needs a PATH%s", "");
	if (!util_valid_run_id(id))
		die_usage("report: '%s' is not a run id (6 hex digits)", id);
	fd = ctl_client_connect(cli->sock);
	if (fd >= 0) {
		close(fd);
		if (simple_request(cli, json_pack("{ssss}", "cmd", "report", "run_id", id), &rep))
			return EXIT_USAGE;
		report = json_incref(json_object_get(rep, "report"));
	} else {
		char path[PATH_MAX + 32];

		snprintf(path, sizeof(path), "%s/%s/report.json", cli->runs_dir, id);
		report = json_load_file(path, 0, NULL);
		if (!report) {
			fprintf(stderr, "faultctl: no report for run %s (faultd not running, "
				"and %s unreadable)\n", id, path);
			return EXIT_USAGE;
		}
	}
	if (!json_is_object(report)) {
		fprintf(stderr, "faultctl: run %s has no report\n", id);
		json_decref(report);
		json_decref(rep);
		return EXIT_USAGE;
	}
	err = report_write_format(report, format, out);
	if (err)
		fprintf(stderr, "faultctl: report %s: %s: %s\n", id, out ? out : "stdout",
			strerror(-err));
	json_decref(report);
	json_decref(rep);
	return err ? EXIT_USAGE : 0;
}

static void say_removed(const char *what, void *arg)
{
	(*(int *)arg)++;
	printf("removed %s\n", what);
}

static int cmd_cleanup(struct cli *cli, int argc, char **argv)
{
	int n = 0, cgroups;

	if (argc > 1) {
		printf("usage: faultctl cleanup\nRemove what runs of a faultd or faultctl that is "
		       "no longer alive left behind:\nnamespaces and links (from their undo "
		       "journals in %s),\nand cgroups with any processes still in them. What "
		       "a live faultd owns is left alone.\n", JOURNAL_DEFAULT_DIR);
		return strcmp(argv[1], "--help") ? EXIT_USAGE : 0;
	}
	journal_sweep(cli->journal_dir, say_removed, &n);
	cg_root_init(cli->cgroup_root, sizeof(cli->cgroup_root), false);
	cgroups = cg_sweep(cli->cgroup_root);
	if (cgroups > 0)
		printf("removed %d stale cgroup%s under %s\n", cgroups, cgroups == 1 ? "" : "s",
		       cli->cgroup_root);
	if (n == 0 && cgroups <= 0)
		printf("nothing to clean up\n");
	return 0;
}

static int cmd_check(struct cli *cli, int argc, char **argv)
{
	struct run_opts opts = {
		.cgroup_root = cli->cgroup_root, .harness_dir = cli->harness_dir,
		.journal_dir = cli->journal_dir,
	};
	bool as_json = false;
	json_t *caps = NULL;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			as_json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: faultctl check [--json]\n\n"
			       "Load and attach every probe and fault mechanism once, against a\n"
			       "throwaway process in a throwaway pair of namespaces (a real run of\n"
			       "a built-in scenario), and print each feature: ok and how, or missing,\n"
			       "why, and what kernel or package gives it. Needs root.\n"
			       "Exit: 0 every core feature works, 1 one does not, 3 the check could\n"
			       "not run.\n");
			return 0;
		} else {
			die_usage("check: unknown argument '%s'", argv[i]);
		}
	}
	/* The table says what is missing; the warnings would say it twice. */
	if (log_get_level() == LOG_WARN)
		log_set_level(LOG_ERR);
	if (local_begin(cli)) {
		local_end(cli);
		return EXIT_USAGE;
	}
	err = check__run(cli->base, &opts, &caps);
	local_end(cli);
	if (caps && as_json)
		json_dumpf(caps, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	else if (caps)
		check_print(stdout, caps);
	if (as_json)
		putchar('\n');
	json_decref(caps);
	if (err && err != -ENOTSUP)
		fprintf(stderr, "faultctl: check: %s\n", strerror(-err));
	return !err ? 0 : err == -ENOTSUP ? 1 : EXIT_USAGE;
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	printf("faultctl %s (report schema %d)\n", FAULTD_VERSION, REPORT_SCHEMA_VERSION);
	return 0;
}

static int soak_one(void *arg, const char *file, json_t **report)
{
	struct cli *cli = arg;
	struct row row = {0};
	int err;

	cli->report = NULL;
	snprintf(row.expect, sizeof(row.expect), "PASS");
	err = cli->local ? local_run(cli, file, &row) : daemon_run(cli, file, &row);
	bar_clear(cli);
	*report = err ? NULL : cli->report;
	if (err)
		json_decref(cli->report);
	cli->report = NULL;
	return err;
}

static void soak_on_sigint(int sig)
{
	(void)sig;
	soak_stop_flag = 1;
}

static int cmd_soak(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"local", no_argument, NULL, 'L'}, {"duration", required_argument, NULL, 'd'},
		{"junit", required_argument, NULL, 'U'}, {"summary", required_argument, NULL, 'S'},
		{"keep", required_argument, NULL, 'k'}, {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	struct soak_opts o = {.keep_runs = 20, .summary_path = "soak-summary.json",
			      .run_one = soak_one, .arg = cli, .stop = &soak_stop_flag};
	char **files = NULL;
	int opt, n = 0, code, err;
	char *end;

	while ((opt = getopt_long(argc, argv, "+q", longopts, NULL)) != -1) {
		switch (opt) {
		case 'L': cli->local = true; break;
		case 'd':
			o.duration_ms = soak_parse_duration(optarg);
			if (!o.duration_ms)
				die_usage("soak: --duration: expected e.g. 8h, 30m, 90s, 1h30m, not '%s'",
					  optarg);
			break;
		case 'U': o.junit_path = optarg; break;
		case 'S': o.summary_path = optarg; break;
		case 'k':
			o.keep_runs = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg || o.keep_runs > 100000)
				die_usage("soak: --keep: expected a number of run directories, not '%s'",
					  optarg);
			break;
		case 'q': cli->quiet = true; o.quiet = true; break;
		case 'h':
			printf("usage: faultctl soak --duration D [--local] [--junit PATH] "
			       "[--summary PATH]\n"
			       "                     [--keep N] [--quiet] FILE|DIR...\n"
			       "Run the scenarios over and over until D (8h, 30m, 1h30m) has passed,\n"
			       "then print per scenario: runs, passes, fails, inconclusives, errors and\n"
			       "the first run that missed its expected verdict. A scenario that both\n"
			       "met and missed it is FLAKY.\n"
			       "  --junit PATH    one testcase per scenario; a miss is a failure\n"
			       "  --summary PATH  the aggregate as JSON, rewritten after every run\n"
			       "                  (default soak-summary.json)\n"
			       "  --keep N        run directories kept whole (default 20); older ones\n"
			       "                  are removed and stay as a line of the summary\n"
			       "Exit: 0 every run as expected, 1 a miss or a flaky scenario, 3 a\n"
			       "scenario that never ran.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (!o.duration_ms)
		die_usage("soak: needs --duration%s", "");
	if (optind >= argc)
		die_usage("soak: needs a scenario FILE or DIR%s", "");
	err = expand_files(argv + optind, argc - optind, &files, &n);
	if (err == -ENOMEM) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	if (err)
		die_usage("soak: no scenario files in %s", argv[optind]);
	o.files = files;
	o.n_files = n;
	cli->quiet = true;	/* one line per run, not per cycle */
	if (cli->local) {
		if (local_begin(cli)) {
			local_end(cli);
			return EXIT_USAGE;
		}
		o.stop = &cli->soak_stop;
	} else {
		/* No SA_RESTART: the signal interrupts the wait for the run,
		 * which is then stopped (daemon_run). */
		struct sigaction sa = {.sa_handler = soak_on_sigint};

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	code = soak_run(&o);
	for (int i = 0; i < n; i++)
		free(files[i]);
	free(files);
	local_end(cli);
	return code;
}

/* replay and shrink (ctl/replay.c, ctl/shrink.c) run scenarios as soak does. */
static volatile int *runner_begin(void *arg, bool local)
{
	struct cli *cli = arg;

	cli->local = local;
	cli->quiet = true;
	if (local) {
		local_begin(cli);
		return &cli->soak_stop;
	}
	signal(SIGINT, soak_on_sigint);
	signal(SIGTERM, soak_on_sigint);
	return &soak_stop_flag;
}

static void runner_end(void *arg)
{
	local_end(arg);
}

static int cmd_replay_shrink(struct cli *cli, int argc, char **argv)
{
	const struct ctl_runner rn = {.run_one = soak_one, .begin = runner_begin,
				      .end = runner_end, .arg = cli, .runs_dir = cli->runs_dir};

	return !strcmp(argv[0], "replay") ? replay_main(argc, argv, &rn) : shrink_main(argc, argv, &rn);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faultctl [--socket PATH] [--runs-dir DIR] COMMAND [ARGS]\n\n"
		"commands:\n"
		"  run [--local] [--expect] [--json PATH] [--junit PATH] [--html PATH]\n"
		"      [--sarif PATH] FILE|DIR...\n"
		"  soak --duration D [--local] [--junit PATH] [--keep N] FILE|DIR...\n"
		"  replay REPORT [--runs N] [--local]   run a report's fault timeline again\n"
		"  shrink REPORT|FILE [--budget 30m] [--runs N] [--local]\n"
		"                              the smallest fault schedule that still FAILs\n"
		"  validate FILE...            check scenario files\n"
		"  list                        runs the daemon knows of\n"
		"  status [RUN]                the daemon's or a run's state\n"
		"  stop RUN                    stop a run (its report is still written)\n"
		"  report RUN [--format json|text|html|junit|sarif] [--output PATH]\n"
		"  cleanup                     remove what dead runs left behind\n"
		"  check [--json]              what this host can do: each probe and fault,\n"
		"                              ok and how, or missing and why\n"
		"  version\n"
		"'faultctl COMMAND --help' tells more.\n\n"
		"options:\n"
		"  -s, --socket PATH    faultd's socket (default %s)\n"
		"  -r, --runs-dir DIR   reports (default %s)\n"
		"      --harness-dir DIR, --cgroup-root DIR   for --local runs\n"
		"  -l, --log-level LEVEL  error, warn (default), info, debug\n"
		"      --version        faultctl's version\n\n"
		"exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 usage, setup or scenario error\n",
		CTL_DEFAULT_SOCK, RUN_DEFAULT_DIR);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"runs-dir", required_argument, NULL, 'r'},
		{"harness-dir", required_argument, NULL, 'H'},
		{"cgroup-root", required_argument, NULL, 'C'},
		{"journal-dir", required_argument, NULL, 'J'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name;
		int (*fn)(struct cli *cli, int argc, char **argv);
	} cmds[] = {
		{"run", cmd_run}, {"validate", cmd_validate}, {"list", cmd_list},
		{"status", cmd_status}, {"stop", cmd_stop}, {"report", cmd_report},
		{"cleanup", cmd_cleanup}, {"version", cmd_version}, {"soak", cmd_soak},
		{"check", cmd_check}, {"replay", cmd_replay_shrink}, {"shrink", cmd_replay_shrink},
	};
	struct cli cli = {.sock = CTL_DEFAULT_SOCK};
	int opt, lvl, code;

	log_set_prefix("faultctl");
	log_set_level(LOG_WARN);
	snprintf(cli.runs_dir, sizeof(cli.runs_dir), "%s", RUN_DEFAULT_DIR);
	snprintf(cli.journal_dir, sizeof(cli.journal_dir), "%s", JOURNAL_DEFAULT_DIR);
	paths_harness_dir(cli.harness_dir, sizeof(cli.harness_dir));
	if (getenv("FAULTD_SOCKET"))
		cli.sock = getenv("FAULTD_SOCKET");
	while ((opt = getopt_long(argc, argv, "+s:r:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': cli.sock = optarg; break;
		case 'r': snprintf(cli.runs_dir, sizeof(cli.runs_dir), "%s", optarg); break;
		case 'H': snprintf(cli.harness_dir, sizeof(cli.harness_dir), "%s", optarg); break;
		case 'C': snprintf(cli.cgroup_root, sizeof(cli.cgroup_root), "%s", optarg); break;
		case 'J': snprintf(cli.journal_dir, sizeof(cli.journal_dir), "%s", optarg); break;
		case 'l':
			lvl = log_parse_level(optarg);
			if (lvl < 0)
				die_usage("--log-level: '%s' is not error, warn, info or debug", optarg);
			log_set_level((enum log_level)lvl);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': return cmd_version(&cli, 0, NULL);
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	log_route_libbpf();
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strcmp(cmds[i].name, argv[optind]) == 0) {
			char **sub = argv + optind;
			int subc = argc - optind;

			optind = 1;	/* each command parses its own options */
			code = cmds[i].fn(&cli, subc, sub);
			libevent_global_shutdown();
			return code;
		}
	}
	die_usage("unknown command '%s'", argv[optind]);
	return EXIT_USAGE;
}
