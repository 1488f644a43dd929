/* faultctl run (cli.h): scenario files run in turn, locally or through
 * faultd, with a progress line per cycle, a summary table, and the report
 * written as JSON, JUnit, SARIF or HTML. */
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
#include "cli.h"
#include "ctl.h"
#include "journal.h"
#include "log.h"
#include "suppress.h"

volatile int cli_stop_flag;

void cli_die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "faultctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'faultctl --help'.\n");
	exit(EXIT_USAGE);
}

/* --- progress ---------------------------------------------------------------- */

void cli_bar_clear(struct cli *cli)
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
	cli_bar_clear(cli);
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

void cli_row_from_report(struct row *row, const json_t *rep)
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
	for (int i = 0; i < cli->n_slots; i++)
		if (cli->slots[i].run)
			run__stop(cli->slots[i].run, reason);
}

/* The run of one scenario file, started on cli->base with @cb's callbacks
 * (cb->paths and cb->suppressions are filled in); NULL with row->note
 * saying why. */
static struct run *local_start(struct cli *cli, const char *file, struct row *row,
			       const struct run_opts *cb)
{
	struct run_opts opts = {
		.paths = &cli->paths,
		.on_cycle = cb->on_cycle,
		.on_done = cb->on_done, .arg = cb->arg,
		.suppressions = cli->suppressions[0] ? cli->suppressions : NULL,
	};
	struct scenario *sc = NULL;
	struct run *r = NULL;
	char *errors = NULL;

	if (scenario_load(file, &sc, &errors)) {
		cli_bar_clear(cli);
		fputs(errors ? errors : "invalid scenario\n", stderr);
		snprintf(row->note, sizeof(row->note), "invalid scenario");
		free(errors);
		goto out;
	}
	snprintf(row->name, sizeof(row->name), "%s", sc->name);
	snprintf(row->expect, sizeof(row->expect), "%s", scenario_expect_name(sc->expect));
	cli->duration_s = sc->duration_s;
	r = run__new(cli->base, sc, &opts);
	if (!r) {
		snprintf(row->note, sizeof(row->note), "cannot create run: %s", strerror(errno));
		goto out;
	}
	if (!cli->quiet)
		printf("run %s: %s (%s)\n", run__id(r), sc->name, file);
	fflush(stdout);
	run__start(r);
out:
	return r;
}

int cli_local_run(struct cli *cli, const char *file, struct row *row)
{
	const struct run_opts cb = {.on_cycle = local_on_cycle, .on_done = local_on_done,
				    .arg = cli};

	cli->run = local_start(cli, file, row, &cb);
	if (!cli->run)
		return -EINVAL;
	event_base_dispatch(cli->base);
	run__free(cli->run);
	cli->run = NULL;
	return cli->report ? 0 : -EIO;
}

/* --- --local -j N: several runs at once ----------------------------------------- */

static void slot_on_cycle(struct run *r, const json_t *cycle, void *arg)
{
	struct cli_slot *slot = arg;

	(void)r;
	show_cycle(slot->cli, cycle);
}

/* On cli->base, from a run's end: its slot is done. */
static void slot_on_done(struct run *r, const json_t *report, void *arg)
{
	struct cli_slot *slot = arg;

	(void)r;
	slot->report = report ? json_incref((json_t *)report) : NULL;
	slot->done = true;
	event_base_loopbreak(slot->cli->base);
}

/* Files @files[0..n) into @rows and @reps (each run's report, or NULL), at
 * most cli->jobs at a time; none is started once a signal asked to stop. */
static void local_run_all(struct cli *cli, char **files, int n, struct row *rows, json_t **reps)
{
	int next = 0, running = 0;

	cli->slots = calloc((size_t)cli->jobs, sizeof(*cli->slots));
	if (!cli->slots) {
		for (int i = 0; i < n; i++)
			snprintf(rows[i].note, sizeof(rows[i].note), "out of memory");
		return;
	}
	cli->n_slots = cli->jobs;
	while (next < n || running) {
		for (int k = 0; k < cli->n_slots; k++) {
			struct cli_slot *slot = &cli->slots[k];

			if (slot->run && slot->done) {
				run__free(slot->run);
				slot->run = NULL;
				running--;
				reps[slot->file] = slot->report;
				if (slot->report && !cli->quiet) {
					report_text_line(stdout, slot->report);
					fflush(stdout);
				}
			}
			while (!slot->run && next < n && !cli->soak_stop) {
				const struct run_opts cb = {.on_cycle = slot_on_cycle,
							    .on_done = slot_on_done, .arg = slot};

				*slot = (struct cli_slot){.cli = cli, .file = next};
				slot->run = local_start(cli, files[next], &rows[next], &cb);
				next++;
				running += slot->run != NULL;
			}
		}
		for (; cli->soak_stop && next < n; next++)
			snprintf(rows[next].note, sizeof(rows[next].note), "not run: stopped");
		if (running)
			event_base_dispatch(cli->base);
	}
	free(cli->slots);
	cli->slots = NULL;
	cli->n_slots = 0;
}

/* --- talking to faultd ----------------------------------------------------------- */

int cli_connect(const struct cli *cli)
{
	int fd = ctl_client_connect(cli->sock);

	if (fd < 0)
		fprintf(stderr, "faultctl: cannot connect to faultd at %s: %s "
			"(is faultd running? 'faultctl run --local' needs no daemon)\n",
			cli->sock, strerror(-fd));
	return fd;
}

/* Send @req and read the first reply; NULL after printing why. */
json_t *cli_request(const struct cli *cli, int *fdp, json_t *req)
{
	json_t *rep = NULL;
	int fd, err;

	fd = cli_connect(cli);
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

void cli_print_reply_error(const json_t *rep)
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

int cli_daemon_run(struct cli *cli, const char *file, struct row *row)
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
	rep = cli_request(cli, &fd, json_pack("{ssssss%sbss*}", "cmd", "run", "file", abs,
					  "scenario", text, len, "watch", 1, "suppressions",
					  cli->suppressions[0] ? cli->suppressions : NULL));
	free(text);
	if (!rep) {
		snprintf(row->note, sizeof(row->note), "faultd unreachable");
		return -ECONNREFUSED;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		cli_print_reply_error(rep);
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
		if (cli_stop_flag && !stop_sent) {
			json_t *stop = json_pack("{ssss}", "cmd", "stop", "run_id", row->run_id);

			if (!stop || ctl_client_send(fd, stop))
				fprintf(stderr, "faultctl: cannot ask faultd to stop run %s\n",
					row->run_id);
			json_decref(stop);
			stop_sent = true;
		}
		msg = ctl_client_recv_until(fd, &cli_stop_flag);
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
int cli_expand_files(char **args, int n, char ***out, int *n_out)
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
int cli_local_begin(struct cli *cli)
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
	/* A terminal or pager that stops reading must not hold the runs. */
	if (log_writer_start())
		log_warn("%s: no log writer thread: lines are written as they are logged",
			 __func__);
	cgroup_root_init(cli->paths.cgroup_root, sizeof(cli->paths.cgroup_root), false);
	cgroup_sweep(cli->paths.cgroup_root);
	journal_sweep(cli->paths.journal_dir, NULL, NULL);
	return 0;
}

void cli_local_end(struct cli *cli)
{
	if (cli->base) {
		for (size_t i = 0; i < 2; i++)
			if (cli->sig_ev[i])
				event_free(cli->sig_ev[i]);
		event_base_free(cli->base);
		cli->base = NULL;
	}
	log_writer_stop();	/* what the log still holds is written */
}

int cli_cmd_run(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"local", no_argument, NULL, 'L'}, {"expect", no_argument, NULL, 'e'},
		{"json", required_argument, NULL, 'J'}, {"quiet", no_argument, NULL, 'q'},
		{"junit", required_argument, NULL, 'U'}, {"html", required_argument, NULL, 'T'},
		{"sarif", required_argument, NULL, 'F'},
		{"suppressions", required_argument, NULL, 'S'}, {"jobs", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	struct suppress *supp = NULL;
	char *end;
	char supp_err[512];
	json_t *reports, **reps;
	char **files = NULL;
	struct row *rows;
	int opt, n = 0, code = 0, mismatches = 0, errors = 0, err;
	int worst_rank = 0;

	cli->jobs = 1;
	while ((opt = getopt_long(argc, argv, "+eqj:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			errno = 0;
			cli->jobs = (int)strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || cli->jobs < 1 || cli->jobs > CLI_MAX_JOBS)
				cli_die_usage("run: -j %s: a number of runs at once, 1 to 64", optarg);
			break;
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
				cli_die_usage("run: --suppressions: %s", supp_err);
			}
			suppress_free(supp);
			supp = NULL;
			break;
		case 'h':
			printf("usage: faultctl run [--local [-j N]] [--expect] [--json PATH] [--junit PATH]\n"
			       "                    [--html PATH] [--sarif PATH] [--suppressions FILE]\n"
			       "                    [--quiet] FILE|DIR...\n"
			       "Run scenarios (in turn, or -j at once) and print one summary table.\n"
			       "  --local     run the engine in this process (no daemon needed)\n"
			       "  -j, --jobs N  with --local: up to N runs at once (default 1)\n"
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
		cli_die_usage("run: needs a scenario FILE or DIR%s", "");
	err = cli_expand_files(argv + optind, argc - optind, &files, &n);
	if (err == -ENOMEM) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	if (err)
		cli_die_usage("run: no scenario files in %s", argv[optind]);
	rows = calloc((size_t)n, sizeof(*rows));
	reps = calloc((size_t)n, sizeof(*reps));
	reports = json_array();
	if (!rows || !reps || !reports) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	if (cli->jobs > 1 && !cli->local)
		cli_die_usage("run: -j needs --local (through faultd, its own -j says how many "
			      "runs go at once)%s", "");
	/* One bar cannot show several runs: their cycle lines name them. */
	cli->tty = isatty(STDERR_FILENO) && !cli->quiet && cli->jobs <= 1;
	if (cli->local && cli_local_begin(cli)) {
		cli_local_end(cli);
		return EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		snprintf(rows[i].file, sizeof(rows[i].file), "%s", files[i]);
		snprintf(rows[i].expect, sizeof(rows[i].expect), "PASS");
		rows[i].verdict = V_ERROR;
	}
	if (cli->local) {
		local_run_all(cli, files, n, rows, reps);
	} else {
		for (int i = 0; i < n; i++) {
			cli->report = NULL;
			err = cli_daemon_run(cli, files[i], &rows[i]);
			cli_bar_clear(cli);
			if (!err && cli->report && !cli->quiet) {
				report_text_line(stdout, cli->report);
				fflush(stdout);
			}
			reps[i] = err ? NULL : cli->report;
			if (err)
				json_decref(cli->report);
			cli->report = NULL;
		}
	}
	/* In the files' order, whichever ended first. */
	for (int i = 0; i < n; i++) {
		if (!reps[i])
			continue;
		cli_row_from_report(&rows[i], reps[i]);
		json_array_append_new(reports, reps[i]);
	}
	free(reps);
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
	cli_local_end(cli);
	return code;
}

