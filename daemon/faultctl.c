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
#include "cli.h"
#include "journal.h"
#include "ctl.h"
#include "log.h"
#include "probe_util.h"
#include "replay.h"
#include "soak.h"
#include "util.h"

#define EXIT_USAGE 3


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
	json_t *rep = cli_request(cli, NULL, req);

	if (!rep)
		return EXIT_USAGE;
	if (!json_is_true(json_object_get(rep, "ok"))) {
		cli_print_reply_error(rep);
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
			cli_die_usage("report: unexpected argument '%s'", argv[i]);
		}
	}
	if (!id)
		cli_die_usage("report: needs a RUN id%s", "");
	if (!report_format_known(format))
		cli_die_usage("report: --format must be json, text, html, junit or sarif, not '%s'",
			  format);
	if (out && !*out)
		cli_die_usage("report: --output needs a PATH%s", "");
	if (!util_valid_run_id(id))
		cli_die_usage("report: '%s' is not a run id (6 hex digits)", id);
	fd = ctl_client_connect(cli->sock);
	if (fd >= 0) {
		close(fd);
		if (simple_request(cli, json_pack("{ssss}", "cmd", "report", "run_id", id), &rep))
			return EXIT_USAGE;
		report = json_incref(json_object_get(rep, "report"));
	} else {
		char path[PATH_MAX + 32];

		snprintf(path, sizeof(path), "%s/%s/report.json", cli->paths.runs_dir, id);
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
	journal_sweep(cli->paths.journal_dir, say_removed, &n);
	cgroup_root_init(cli->paths.cgroup_root, sizeof(cli->paths.cgroup_root), false);
	cgroups = cgroup_sweep(cli->paths.cgroup_root);
	if (cgroups > 0)
		printf("removed %d stale cgroup%s under %s\n", cgroups, cgroups == 1 ? "" : "s",
		       cli->paths.cgroup_root);
	if (n == 0 && cgroups <= 0)
		printf("nothing to clean up\n");
	return 0;
}

static int cmd_check(struct cli *cli, int argc, char **argv)
{
	struct run_opts opts = {
		.paths = &cli->paths,
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
			cli_die_usage("check: unknown argument '%s'", argv[i]);
		}
	}
	/* The table says what is missing; the warnings would say it twice. */
	if (log_get_level() == LOG_WARN)
		log_set_level(LOG_ERR);
	if (cli_local_begin(cli)) {
		cli_local_end(cli);
		return EXIT_USAGE;
	}
	err = check__run(cli->base, &opts, &caps);
	cli_local_end(cli);
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
	err = cli->local ? cli_local_run(cli, file, &row) : cli_daemon_run(cli, file, &row);
	cli_bar_clear(cli);
	*report = err ? NULL : cli->report;
	if (err)
		json_decref(cli->report);
	cli->report = NULL;
	return err;
}

static void soak_on_sigint(int sig)
{
	(void)sig;
	cli_stop_flag = 1;
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
			      .run_one = soak_one, .arg = cli, .stop = &cli_stop_flag};
	char **files = NULL;
	int opt, n = 0, code, err;
	char *end;

	while ((opt = getopt_long(argc, argv, "+q", longopts, NULL)) != -1) {
		switch (opt) {
		case 'L': cli->local = true; break;
		case 'd':
			o.duration_ms = soak_parse_duration(optarg);
			if (!o.duration_ms)
				cli_die_usage("soak: --duration: expected e.g. 8h, 30m, 90s, 1h30m, not '%s'",
					  optarg);
			break;
		case 'U': o.junit_path = optarg; break;
		case 'S': o.summary_path = optarg; break;
		case 'k':
			o.keep_runs = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg || o.keep_runs > 100000)
				cli_die_usage("soak: --keep: expected a number of run directories, not '%s'",
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
		cli_die_usage("soak: needs --duration%s", "");
	if (optind >= argc)
		cli_die_usage("soak: needs a scenario FILE or DIR%s", "");
	err = cli_expand_files(argv + optind, argc - optind, &files, &n);
	if (err == -ENOMEM) {
		fprintf(stderr, "faultctl: out of memory\n");
		return EXIT_USAGE;
	}
	if (err)
		cli_die_usage("soak: no scenario files in %s", argv[optind]);
	o.files = files;
	o.n_files = n;
	cli->quiet = true;	/* one line per run, not per cycle */
	if (cli->local) {
		if (cli_local_begin(cli)) {
			cli_local_end(cli);
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
	cli_local_end(cli);
	return code;
}

/* replay and shrink (ctl/replay.c, ctl/shrink.c) run scenarios as soak does. */
static volatile int *runner_begin(void *arg, bool local)
{
	struct cli *cli = arg;

	cli->local = local;
	cli->quiet = true;
	if (local) {
		cli_local_begin(cli);
		return &cli->soak_stop;
	}
	signal(SIGINT, soak_on_sigint);
	signal(SIGTERM, soak_on_sigint);
	return &cli_stop_flag;
}

static void runner_end(void *arg)
{
	cli_local_end(arg);
}

static int cmd_replay_shrink(struct cli *cli, int argc, char **argv)
{
	const struct ctl_runner rn = {.run_one = soak_one, .begin = runner_begin,
				      .end = runner_end, .arg = cli, .runs_dir = cli->paths.runs_dir};

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
		{"run", cli_cmd_run}, {"validate", cmd_validate}, {"list", cmd_list},
		{"status", cmd_status}, {"stop", cmd_stop}, {"report", cmd_report},
		{"cleanup", cmd_cleanup}, {"version", cmd_version}, {"soak", cmd_soak},
		{"check", cmd_check}, {"replay", cmd_replay_shrink}, {"shrink", cmd_replay_shrink},
	};
	struct cli cli = {.sock = CTL_DEFAULT_SOCK};
	int opt, lvl, code;

	log_set_prefix("faultctl");
	log_set_level(LOG_WARN);
	util_malloc_tune();	/* run --local runs the engine here */
	run_paths_default(&cli.paths);
	if (getenv("FAULTD_SOCKET"))
		cli.sock = getenv("FAULTD_SOCKET");
	while ((opt = getopt_long(argc, argv, "+s:r:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': cli.sock = optarg; break;
		case 'r': snprintf(cli.paths.runs_dir, sizeof(cli.paths.runs_dir), "%s", optarg); break;
		case 'H': snprintf(cli.paths.harness_dir, sizeof(cli.paths.harness_dir), "%s", optarg); break;
		case 'C': snprintf(cli.paths.cgroup_root, sizeof(cli.paths.cgroup_root), "%s", optarg); break;
		case 'J': snprintf(cli.paths.journal_dir, sizeof(cli.paths.journal_dir), "%s", optarg); break;
		case 'l':
			lvl = log_parse_level(optarg);
			if (lvl < 0)
				cli_die_usage("--log-level: '%s' is not error, warn, info or debug", optarg);
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
			/* A local run's uprobe links still being let go. */
			probe_links_settle(PROBE_SETTLE_MS);
			libevent_global_shutdown();
			return code;
		}
	}
	cli_die_usage("unknown command '%s'", argv[optind]);
	return EXIT_USAGE;
}
