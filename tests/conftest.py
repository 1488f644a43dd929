"""Fixtures shared by faultd's end-to-end tests.

Binaries come from $FAULTD_BUILD (default build/), so `make SANITIZER=address
test` runs the same tests against the sanitized build. Every daemon a test
starts is ended in `finally`, its output is logged with a prefix, and any
sanitizer report in it fails the test.
"""
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD = (REPO / os.environ.get("FAULTD_BUILD", "build")).resolve()
FAULTD = BUILD / "faultd"
FAULTCTL = BUILD / "faultctl"
# A sanitized faultd drives the plain workloads: a workload's bug must show
# as it does in the field (glibc's abort, a SIGSEGV), not as its own
# sanitizer's report. Scenarios with "asan": true still get the ASan build.
# The test programs are built without sanitizers in every build directory:
# a sanitized faultd runs the plain build's, as it does the harness (`make
# SANITIZER=address daemon` builds no programs of its own, and a run of a
# program that is not there ends at set-up: README.md, Building).
PLAIN_BUILD = BUILD.parent if BUILD.name.startswith("san-") else BUILD
PROGS = PLAIN_BUILD / "tests" / "progs"
if BUILD.name.startswith("san-"):
    os.environ.setdefault("FAULTD_HARNESS_DIR", str(PLAIN_BUILD / "harness"))


def cgroup2_mounts():
    """The cgroup2 mount points in /proc/self/mountinfo, in its order; faultd
    takes the first (daemon/cgroup.c): /sys/fs/cgroup on a pure v2 host,
    /sys/fs/cgroup/unified on a hybrid one."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.rstrip("\n").split(" ")
            sep = fields.index("-", 6) if "-" in fields[6:] else 0
            if sep and fields[sep + 1] == "cgroup2":
                mounts.append(pathlib.Path(re.sub(r"\\([0-3][0-7]{2})",
                                                  lambda m: chr(int(m[1], 8)), fields[4])))
    return mounts


CGROUP_MOUNT = next(iter(cgroup2_mounts()), None)
# Where faultd puts run cgroups by default: MOUNT/faultd/OWNER_PID/RUN_ID.
CGROUP_ROOT = CGROUP_MOUNT / "faultd" if CGROUP_MOUNT else pathlib.Path("/nonexistent")

SANITIZER_RE = re.compile(
    r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"ERROR: ThreadSanitizer|UndefinedBehaviorSanitizer)")


def assert_no_sanitizer_report(text, what):
    m = SANITIZER_RE.search(text or "")
    assert not m, f"sanitizer report in {what}:\n{text[max(0, m.start() - 200):m.start() + 3000]}"


def sanitizer_env():
    env = dict(os.environ)
    # Leak checking runs at exit of faultd/faultctl themselves; workloads
    # are not built with sanitizers, so the runtime is not inherited.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99")
    return env


class Result:
    def __init__(self, proc, stdout, stderr):
        self.returncode = proc.returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return f"<exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


def faultctl(*args, runs_dir=None, socket=None, timeout=120, check_sanitizer=True,
             cwd=REPO, env=None):
    """Run faultctl (with @env added to its environment); returns Result with
    exit code and output."""
    cmd = [str(FAULTCTL)]
    if runs_dir:
        cmd += ["--runs-dir", str(runs_dir)]
    if socket:
        cmd += ["--socket", str(socket)]
    cmd += [str(a) for a in args]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**sanitizer_env(), **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if check_sanitizer:
        assert_no_sanitizer_report(err, "faultctl stderr")
    return Result(proc, out, err)


def write_scenario(path, doc):
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def load_report(runs_dir, run_id):
    return json.loads((pathlib.Path(runs_dir) / run_id / "report.json").read_text())


def only_report(runs_dir):
    """The single run directory's report in runs_dir."""
    dirs = [d for d in pathlib.Path(runs_dir).iterdir() if d.is_dir()]
    assert len(dirs) == 1, f"expected one run in {runs_dir}, found {dirs}"
    return json.loads((dirs[0] / "report.json").read_text())


def invariant(report, name):
    for inv in report["invariants"]:
        if inv["name"] == name:
            return inv
    raise AssertionError(f"no invariant {name} in report: {report['invariants']}")


def owned_cgroups(pid):
    d = CGROUP_ROOT / str(pid)
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.exists() else []


def pids_alive(pids):
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            # A zombie is gone for our purposes only once reaped; report it.
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.append(pid)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return alive


def report_pids(report):
    return [p["pid"] for p in report.get("processes", [])] + \
           [w["pid"] for w in report["workloads"] if w["pid"]]


# Names of faultd's BPF programs; a link to one of them outliving its run
# is a leak.
OUR_PROGS = {"proc_fork", "proc_exec", "proc_exit",
             "malloc_enter", "calloc_enter", "realloc_enter", "reallocarray_e",
             "posix_memalign_", "aligned_alloc_e", "memalign_enter", "valloc_enter",
             "pvalloc_enter", "free_enter", "alloc_return", "count_fds", "count_calls",
             "obj_create", "obj_event", "obj_destroy", "msg_send", "msg_recv", "counter",
             "netfault", "netfault_in", "netfault_out", "sock_create", "uobj_create", "uobj_destroy",
             "exit_enter", "thread_regs"}


def _link_owners():
    """BPF link id -> a pid holding it open (from /proc/*/fdinfo)."""
    owners = {}
    for pid_dir in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            fdinfos = list((pid_dir / "fdinfo").iterdir())
        except OSError:
            continue
        for fdinfo in fdinfos:
            try:    # an fd closed while we read is that fd's, not the pid's
                m = re.search(r"^link_id:\s+(\d+)", fdinfo.read_text(), re.M)
            except OSError:
                continue
            if m:
                owners.setdefault(int(m[1]), int(pid_dir.name))
    return owners


def bpf_links_of_ours(wait_s=5):
    """Links of faultd's programs held by this test session's processes (or
    by nobody): a faultd another session or a person runs is not ours. A
    link seen is looked at again until @wait_s has passed: another
    session's process may have been exiting while we read, and a daemon
    lets a finished run's uprobe links go on its closer threads, each
    close waiting for the kernel's grace periods (1 to 2 s for the heap
    probe's perf-event uprobes, about 0.1 s as uprobe_multi links)."""
    ours = _bpf_links_of_ours_once()
    deadline = time.monotonic() + wait_s
    while ours and time.monotonic() < deadline:
        time.sleep(0.3)
        again = {link["id"] for link in _bpf_links_of_ours_once()}
        ours = [link for link in ours if link["id"] in again]
    return ours


def bpftool_links():
    """`bpftool link show`'s links. A link let go while bpftool walks the
    list (another test's run ending beside this one) makes it print an
    error entry and exit 255: read again, then keep what it could read."""
    for _ in range(5):
        out = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0:
            break
        time.sleep(0.1)
    try:
        links = json.loads(out.stdout or "[]")
    except ValueError:
        raise AssertionError(f"bpftool link show: {out.stderr or out.stdout}")
    return [link for link in links if "id" in link]


def _bpf_links_of_ours_once():
    links = bpftool_links()
    owners = _link_owners() if links else {}
    ours = []
    for link in links:
        owner = owners.get(link["id"])
        if owner and not _descends_from(owner, os.getpid()):
            continue
        prog = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(link["prog_id"])],
                              capture_output=True, text=True, timeout=30)
        if prog.returncode == 0 and json.loads(prog.stdout).get("name") in OUR_PROGS:
            ours.append(link)
    return ours


def assert_nothing_left(report, links=True):
    """No process of the run survives, its cgroup is gone, and (unless
    another run may still hold them) none of faultd's BPF links remain."""
    alive = pids_alive(report_pids(report))
    assert not alive, f"processes of run {report['run_id']} still alive: {alive}"
    leftovers = list(CGROUP_ROOT.glob(f"*/{report['run_id']}"))
    assert not leftovers, f"cgroups left: {leftovers}"
    if links:
        assert not bpf_links_of_ours(), "BPF links of faultd still attached"


JOURNAL_DIR = pathlib.Path("/var/lib/faultd/journal")


# faultd's names: fd + the 6-hex-digit run id, then "-NAME" for a namespace
# or "lINDEX" and an end letter for a link (docs/scenarios.md).
OUR_NETNS = re.compile(r"^fd[0-9a-f]{6}-")
OUR_LINK = re.compile(r"^fd[0-9a-f]{6}(l[0-9]+[abt]|b[0-9]+)$")


def _descends_from(pid, ancestor):
    for _ in range(64):
        if pid == ancestor:
            return True
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return False
    return False


def _foreign(name):
    """A faultd name whose run belongs to a live faultd that this test
    session did not start (another session, or a person at the shell): not
    ours to judge or delete. Its journal names the owner."""
    journal = JOURNAL_DIR / f"{name[2:8]}.journal"
    try:
        owner = int(journal.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return os.path.exists(f"/proc/{owner}") and not _descends_from(owner, os.getpid())


def our_journals():
    """Undo journals of runs of this session (or of dead owners)."""
    if not JOURNAL_DIR.exists():
        return []
    return sorted(j for j in JOURNAL_DIR.glob("*.journal") if not _foreign("fd" + j.stem + "-"))


# A run's teardown deletes its namespaces and links, then its journal. A
# name listed just before another worker's run went, whose journal was gone
# by the time it was read, is looked up once more after that read: still
# there, it is a dead owner's (or ours); gone, it was that run's.
def our_netns():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines()
            if OUR_NETNS.match(l) and not _foreign(l.split()[0])
            and os.path.exists(f"/run/netns/{l.split()[0]}")]


def our_links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [l.split(": ")[1].split("@")[0] for l in out.splitlines() if ": " in l]
    return [n for n in names if OUR_LINK.match(n) and not _foreign(n)
            and os.path.exists(f"/sys/class/net/{n}")]


# `make test` runs the suite in two passes (Makefile, TEST_JOBS): the tests
# below one at a time with the machine to themselves, the rest two at a
# time (pytest-xdist). Alone, by file or by test, because they
# - hold faults to a few ms, or reconnects to a window, under load made on
#   purpose (test_load, test_loop_bounds, the mid-run rate and delay
#   changes, lwIP's recovers), or count the children no_leak held at their
#   exits in a few seconds, each attached to after its fork (the held-at-
#   exit tests of test_no_leak);
# - kill -9 a faultd and look for what the next start sweeps: any other
#   faultd starting then sweeps the same dead owner, racing the look;
# - use the host's own faultd service, or both cores (qemu guests, the four
#   fuzzers).
ALONE = {
    "test_load.py": "*", "test_loop_bounds.py": "*", "test_kernels.py": "*",
    "test_fuzz.py": "*", "test_install.py": "*", "test_systemd.py": "*",
    "test_cgroup_host.py": "*", "test_review_defects.py": "*", "test_lwip.py": "*",
    "test_faults.py": {
        "test_kill_9_mid_run_then_restart_removes_namespaces_and_links",
        "test_faultctl_cleanup_by_hand",
        "test_kill_9_with_tc_filters_then_restart_frees_them",
        "test_rate_change_mid_run_takes_effect_within_100ms",
        "test_kill_9_at_ten_random_points_leaves_nothing",
        "test_delay_change_mid_run_takes_effect_within_100ms",
        "test_kill_9_with_tap_rate_and_delay_then_restart_leaves_nothing",
        "test_dpdk_runtime_dirs_of_dead_runs_are_swept",
        "test_bridge_joins_link_ends_and_routes_are_installed",
        "test_kill_9_at_twenty_random_points_of_every_fault_family_and_probe"},
    "test_daemon.py": {
        "test_kill_9_of_faultd_then_restart_sweeps_what_it_left",
        "test_faultd_in_its_own_pid_namespace_leaves_a_live_faultds_run_alone",
        "test_containers_faultd_sweeps_a_dead_containers_cgroups_not_a_live_ones"},
    "test_no_leak.py": {
        "test_a_child_held_at_exit_when_the_run_stops_is_scanned_whole",
        "test_a_child_held_at_exit_when_its_workload_times_out_is_scanned_whole",
        "test_a_child_held_at_exit_whose_parent_exits_meanwhile_is_scanned_whole"},
    "test_dpdk.py": {
        "test_kill_9_of_the_client_leaves_no_eal_directory",
        "test_kill_9_of_faultd_then_restart_removes_the_eal_directory"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "alone: run with the machine to itself "
                                       "(conftest.ALONE; make test's second pass)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        alone = ALONE.get(item.path.name, ())
        if alone == "*" or item.originalname in alone:
            item.add_marker(pytest.mark.alone)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """After every test: no namespace, link or journal of faultd's may
    remain. If one does, the test fails and it is removed (by name)."""
    yield
    netns, links = our_netns(), our_links()
    if netns or links:
        # What is still there a moment later, and still not another's, is
        # left behind.
        time.sleep(1)
        netns = [n for n in our_netns() if n in netns]
        links = [n for n in our_links() if n in links]
    journals = sorted(JOURNAL_DIR.glob("*.journal")) if JOURNAL_DIR.exists() else []
    for ns in netns:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for link in links:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    for j in journals:
        try:  # another worker's run may replay and remove its journal meanwhile
            text = j.read_text()
            owner = text.split()[1] if text.startswith("owner") else ""
            if not owner or not os.path.exists(f"/proc/{owner}"):
                j.unlink()
        except (OSError, IndexError):
            pass
    assert not netns and not links, f"left behind: namespaces {netns}, links {links}"


@pytest.fixture
def runs_dir(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture
def progs():
    return PROGS


class Daemon:
    def __init__(self, tmp_path, extra_args=(), sock=None, prefix=(), env=None):
        """@prefix: a command that ends by exec'ing faultd (its pid stays
        faultd's), e.g. a shell that first moves itself into a cgroup.
        @env: variables added to faultd's environment."""
        self.sock = pathlib.Path(sock) if sock else tmp_path / "faultd.sock"
        self.runs_dir = tmp_path / "daemon-runs"
        self.log_lines = []
        # Cleared, faultd's log is not read: its pipe fills, as a paused
        # terminal's would.
        self.reading = threading.Event()
        self.reading.set()
        cmd = [*prefix, str(FAULTD), "--socket", str(self.sock), "--runs-dir", str(self.runs_dir),
               "--log-level", "debug", *extra_args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env={**sanitizer_env(), **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # Its start sweeps a killed predecessor's runs first, waiting up to
        # 10 s for their dying processes.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"faultd exited {self.proc.returncode}:\n{self.log}")
            # "version" answers without a daemon: "status" needs one.
            if self.sock.exists() and faultctl("status", socket=self.sock).returncode == 0:
                return
            time.sleep(0.05)
        self.stop(sig=signal.SIGKILL)  # not left serving after the test
        raise AssertionError(f"faultd not ready in 30s:\n{self.log}")

    def _read(self):
        for line in self.proc.stdout:
            self.reading.wait()
            self.log_lines.append(line)
            print(f"[faultd] {line}", end="")

    @property
    def log(self):
        return "".join(self.log_lines)

    def ctl(self, *args, **kw):
        return faultctl(*args, socket=self.sock, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.reading.set()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"faultd did not exit on {sig}:\n{self.log}")
        self._reader.join(timeout=5)
        return self.proc.returncode


def interrupted(cmd, ready, timeout=30, **popen):
    """Run @cmd, reading its stdout, until ready(what it printed) holds (or
    @timeout s pass), then Ctrl-C it (SIGINT) and wait for its end: (the
    process, all it printed). Killed if it does not end in @timeout s."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, text=True, **popen)
    out = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ready("".join(out)):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    return proc, "".join(out)


@contextlib.contextmanager
def daemon_mid_run(tmp_path, scenario, started="started, pid"):
    """A faultd running @scenario for a `faultctl run` client, yielded as
    (daemon, client) once its log says @started. The test kills it
    (d.stop(sig=9)) to play a crash; on the way out the client is ended
    and the daemon killed whatever happened."""
    d = Daemon(tmp_path)
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", str(scenario)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and started not in d.log:
            time.sleep(0.05)
        yield d, client
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)


@contextlib.contextmanager
def successor(tmp_path):
    """The faultd that starts after a killed one (and replays its journals)."""
    again = tmp_path / "again"
    again.mkdir()
    d2 = Daemon(again)
    try:
        yield d2
    finally:
        assert d2.stop() == 0


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    try:
        yield d
    finally:
        code = d.stop()
        assert_no_sanitizer_report(d.log, "faultd output")
        assert code == 0, f"faultd exited {code}:\n{d.log}"
        assert not d.sock.exists(), "faultd left its socket behind"
        assert not owned_cgroups(d.proc.pid), "faultd left cgroups behind"
