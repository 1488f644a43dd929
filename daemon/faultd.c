/* faultd: the daemon. Accepts scenarios on a Unix socket, queues runs, runs
 * them on one libevent loop, streams progress to clients that watch. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <systemd/sd-daemon.h>

#include "cgroup.h"
#include "check.h"
#include "journal.h"
#include "ctl.h"
#include "log.h"
#include "probe_util.h"
#include "report.h"
#include "serve.h"
#include "run.h"
#include "util.h"


static struct faultd fd_state;

/* --- lifecycle ------------------------------------------------------------------ */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct faultd *d = arg;
	char reason[64];

	(void)what;
	if (sig == SIGHUP) {
		log_info("%s: SIGHUP ignored", __func__);
		return;
	}
	if (d->stopping) {
		log_warn("%s: %s again; still tearing down", __func__, util_signame((int)sig));
		return;
	}
	d->stopping = true;
	sd_notify(0, "STOPPING=1");
	log_info("%s: %s: stopping runs and exiting", __func__, util_signame((int)sig));
	snprintf(reason, sizeof(reason), "faultd received %s", util_signame((int)sig));
	for (struct job *j = d->jobs; j; j = j->next) {
		if (run__state(j->run) == RUN_DONE)
			continue;
		if (run__state(j->run) == RUN_QUEUED && !j->announced) {
			j->announced = true;
			d->running++;
		}
		run__stop(j->run, reason);
	}
	if (d->running == 0)
		event_base_loopexit(d->base, NULL);
}

/* Under systemd with WatchdogSec=: the loop proves it turns by sending
 * WATCHDOG=1 at half the interval. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

static int watchdog_start(struct faultd *d)
{
	uint64_t usec = 0;
	struct timeval tv;
	int err = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
		goto out;
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	d->watchdog_ev = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
	if (!d->watchdog_ev || event_add(d->watchdog_ev, &tv)) {
		err = -ENOMEM;
		goto out;
	}
	log_info("%s: systemd watchdog every %llums", __func__,
		 (unsigned long long)(usec / 2000));
out:
	return err;
}

/* "9464" or "127.0.0.1:9464": loopback only, as nothing here is for
 * other machines. */
static int parse_http(struct faultd *d, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	struct in_addr a;
	char *end;
	long port;

	snprintf(d->http_addr, sizeof(d->http_addr), "%.*s",
		 colon ? (int)(colon - arg) : (int)strlen("127.0.0.1"), colon ? arg : "127.0.0.1");
	port = strtol(colon ? colon + 1 : arg, &end, 10);
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, d->http_addr, &a) != 1 ||
	    (ntohl(a.s_addr) >> 24) != 127) {
		d->http_addr[0] = '\0';
		return -EINVAL;
	}
	d->http_port = (unsigned)port;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faultd [options]\n"
		"       faultd --once FILE\n"
		"       faultd --check\n"
		"Runs workloads under scripted faults, watches them with eBPF and\n"
		"decides PASS / FAIL / INCONCLUSIVE. Control it with faultctl.\n\n"
		"  -s, --socket PATH      control socket (default %s)\n"
		"  -r, --runs-dir DIR     reports and logs (default %s)\n"
		"      --cgroup-root DIR  cgroup v2 parent for runs (default: MOUNT/faultd,\n"
		"                         MOUNT the cgroup2 mount in /proc/self/mountinfo)\n"
		"      --cgroup-delegated started by systemd with Delegate=yes: move into\n"
		"                         OWN/daemon, runs below OWN/runs (OWN: its cgroup)\n"
		"      --harness-dir DIR  bundled workloads (default: harness/ next to faultd)\n"
		"      --journal-dir DIR  undo journals (default " JOURNAL_DEFAULT_DIR ")\n"
		"  -j, --max-concurrent N runs at once (default 1)\n"
		"      --once FILE        run one scenario without a socket, print the\n"
		"                         report, exit with its verdict's code\n"
		"      --check            try every probe and fault mechanism once and print\n"
		"                         what works here (exit 0: every core feature does)\n"
		"  -l, --log-level LEVEL  error, warn, info (default), debug\n"
		"      --http [ADDR:]PORT serve /metrics, /runs, /runs/ID and a dashboard on a\n"
		"                         loopback address (default 127.0.0.1; PORT 0: any)\n"
		"  -h, --help\n"
		"      --version\n",
		CTL_DEFAULT_SOCK, RUN_DEFAULT_DIR);
}

static void on_once_done(struct run *r, const json_t *report, void *arg)
{
	(void)r;
	(void)arg;
	if (report)
		report_text(stdout, report);
	event_base_loopbreak(fd_state.base);
}

/* --once: Ctrl-C or SIGTERM stops the run; its teardown undoes what it set
 * up and its report is still written. */
static void on_once_signal(evutil_socket_t sig, short what, void *arg)
{
	char reason[64];

	(void)what;
	snprintf(reason, sizeof(reason), "faultd received %s", util_signame((int)sig));
	log_info("%s: %s: stopping the run", __func__, util_signame((int)sig));
	run__stop(arg, reason);
}

static int run_once(struct faultd *d, const char *file)
{
	struct run_opts opts = {
		.paths = &d->paths,
		.on_done = on_once_done,
	};
	struct event *sig[2] = {NULL, NULL};
	struct scenario *sc = NULL;
	char *errors = NULL;
	struct run *r;
	int code = 3;

	if (scenario_load(file, &sc, &errors)) {
		fputs(errors ? errors : "invalid scenario\n", stderr);
		free(errors);
		return 3;
	}
	r = run__new(d->base, sc, &opts);
	if (!r) {
		log_err("%s: cannot create run: %s", __func__, strerror(errno));
		return 3;
	}
	sig[0] = evsignal_new(d->base, SIGINT, on_once_signal, r);
	sig[1] = evsignal_new(d->base, SIGTERM, on_once_signal, r);
	if (!sig[0] || !sig[1] || evsignal_add(sig[0], NULL) || evsignal_add(sig[1], NULL)) {
		log_err("%s: cannot install signal events", __func__);
		goto out;
	}
	run__start(r);
	event_base_dispatch(d->base);
	if (run__report(r))
		code = verdict_exit_code(verdict_parse(json_string_value(
			json_object_get(run__report(r), "verdict"))));
out:
	for (size_t i = 0; i < 2; i++)
		if (sig[i])
			event_free(sig[i]);
	run__free(r);
	return code;
}

/* --check: the capability table, exit 0 when every core feature works. */
static int run_check(struct faultd *d)
{
	struct run_opts opts = {
		.paths = &d->paths,
	};
	json_t *caps = NULL;
	int err;

	err = check__run(d->base, &opts, &caps);
	if (caps)
		check_print(stdout, caps);
	json_decref(caps);
	if (err && err != -ENOTSUP)
		log_err("%s: the check could not run: %s", __func__, strerror(-err));
	return !err ? 0 : err == -ENOTSUP ? 1 : 3;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"runs-dir", required_argument, NULL, 'r'},
		{"cgroup-root", required_argument, NULL, 'C'},
		{"cgroup-delegated", no_argument, NULL, 'D'},
		{"harness-dir", required_argument, NULL, 'H'},
		{"journal-dir", required_argument, NULL, 'J'},
		{"max-concurrent", required_argument, NULL, 'j'},
		{"once", required_argument, NULL, 'o'},
		{"check", no_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"http", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct faultd *d = &fd_state;
	const char *once = NULL;
	bool check = false, level_given = false, cgroup_delegated = false;
	int opt, code = 0, lvl, err;

	log_set_prefix("faultd");
	util_malloc_tune();
	d->max_concurrent = 1;
	snprintf(d->sock_path, sizeof(d->sock_path), "%s", CTL_DEFAULT_SOCK);
	run_paths_default(&d->paths);
	while ((opt = getopt_long(argc, argv, "s:r:j:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (strlen(optarg) >= sizeof(d->sock_path)) {
				fprintf(stderr, "faultd: --socket: path too long\n");
				return 3;
			}
			snprintf(d->sock_path, sizeof(d->sock_path), "%s", optarg);
			break;
		case 'r':
			snprintf(d->paths.runs_dir, sizeof(d->paths.runs_dir), "%s", optarg);
			break;
		case 'C':
			snprintf(d->paths.cgroup_root, sizeof(d->paths.cgroup_root), "%s", optarg);
			break;
		case 'D':
			cgroup_delegated = true;
			break;
		case 'H':
			snprintf(d->paths.harness_dir, sizeof(d->paths.harness_dir), "%s", optarg);
			break;
		case 'J':
			snprintf(d->paths.journal_dir, sizeof(d->paths.journal_dir), "%s", optarg);
			break;
		case 'j':
			d->max_concurrent = atoi(optarg);
			if (d->max_concurrent < 1 || d->max_concurrent > 64) {
				fprintf(stderr, "faultd: --max-concurrent: expected 1..64\n");
				return 3;
			}
			break;
		case 'o':
			once = optarg;
			break;
		case 'c':
			check = true;
			break;
		case 'P':
			if (parse_http(d, optarg)) {
				fprintf(stderr, "faultd: --http: expected PORT or ADDR:PORT on a "
					"loopback address, not '%s'\n", optarg);
				return 3;
			}
			break;
		case 'l':
			lvl = log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "faultd: --log-level: expected error, warn, info or debug\n");
				return 3;
			}
			log_set_level((enum log_level)lvl);
			level_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("faultd %s (report schema %d)\n", FAULTD_VERSION, REPORT_SCHEMA_VERSION);
			return 0;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (cgroup_delegated && d->paths.cgroup_root[0]) {
		fprintf(stderr, "faultd: --cgroup-root and --cgroup-delegated exclude each other\n");
		return 3;
	}
	if (optind != argc) {
		fprintf(stderr, "faultd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 3;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "faultd: must run as root (BPF, namespaces, cgroups)\n");
		return 3;
	}
	if (!once && !check)
		log_use_journal();
	log_route_libbpf();
	signal(SIGPIPE, SIG_IGN);
	d->started_ns = util_now_ns();
	d->totals = json_object();	/* runs since start, for /metrics' counters */
	d->base = util_event_base();
	if (!d->base) {
		log_err("%s: event_base_new failed", __func__);
		return 3;
	}
	/* A slow reader of the log must not hold a run's fault timers. */
	err = log_writer_start();
	if (err)
		log_warn("%s: no log writer thread (%s): lines are written as they are logged",
			 __func__, strerror(-err));
	/* Without a usable cgroup root faultd still serves status and reports;
	 * the caps table says why, and every run fails at setup saying so. */
	cgroup_root_init(d->paths.cgroup_root, sizeof(d->paths.cgroup_root), cgroup_delegated);
	/* Runs of a killed predecessor left cgroups (and maybe processes),
	 * namespaces and links: its journals say what. */
	cgroup_sweep(d->paths.cgroup_root);
	journal_sweep(d->paths.journal_dir, NULL, NULL);
	if (once) {
		code = run_once(d, once);
		goto out_base;
	}
	if (check) {
		/* The table says what is missing; the log would say it twice. */
		if (!level_given)
			log_set_level(LOG_ERR);
		code = run_check(d);
		goto out_base;
	}
	d->ctl = ctl_server_open(d->base, d->sock_path, serve_request, serve_conn_close, d);
	if (!d->ctl) {
		log_err("%s: cannot serve %s: %s", __func__, d->sock_path, strerror(errno));
		code = 3;
		goto out_base;
	}
	d->sigterm_ev = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigint_ev = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sighup_ev = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (!d->sigterm_ev || !d->sigint_ev || !d->sighup_ev ||
	    evsignal_add(d->sigterm_ev, NULL) || evsignal_add(d->sigint_ev, NULL) ||
	    evsignal_add(d->sighup_ev, NULL)) {
		log_err("%s: cannot install signal events", __func__);
		code = 3;
		goto out_ctl;
	}
	if (d->http_addr[0]) {
		struct http_source src = {.status = serve_status, .runs = serve_runs,
					  .report = serve_report, .runs_dir = d->paths.runs_dir, .arg = d};

		d->http = http__start(d->base, d->http_addr, d->http_port, &src);
		if (!d->http) {
			code = 3;
			goto out_ctl;
		}
	}
	if (watchdog_start(d)) {
		log_err("%s: cannot start the watchdog timer", __func__);
		code = 3;
		goto out_ctl;
	}
	log_info("%s: faultd %s ready (pid %d)", __func__, FAULTD_VERSION, (int)getpid());
	/* Type=notify: the journals are swept and the socket answers. */
	sd_notifyf(0, "READY=1\nSTATUS=serving %s\nMAINPID=%d", d->sock_path, (int)getpid());
	event_base_dispatch(d->base);
	log_info("%s: exiting", __func__);
out_ctl:
	http__free(d->http);
	ctl_server_close(d->ctl);
	while (d->jobs) {
		struct job *j = d->jobs;

		d->jobs = j->next;
		serve_job_free(j);
	}
	json_decref(d->disk_rows);
	json_decref(d->totals);
	if (d->sigterm_ev)
		event_free(d->sigterm_ev);
	if (d->sigint_ev)
		event_free(d->sigint_ev);
	if (d->sighup_ev)
		event_free(d->sighup_ev);
	if (d->watchdog_ev)
		event_free(d->watchdog_ev);
out_base:
	/* Runs' uprobe links still being let go: side by side here, not one
	 * by one in the kernel's exit. */
	probe_links_settle(PROBE_SETTLE_MS);
	event_base_free(d->base);
	libevent_global_shutdown();
	log_writer_stop();
	return code;
}
