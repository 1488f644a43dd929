"""`faultctl run --local`: the engine in-process on real processes, with the
process probe (tp_btf sched_process_*) attached before each workload's first
instruction."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import jsonschema
import pytest

from conftest import (FAULTCTL, REPO, assert_nothing_left, faultctl, invariant, only_report,
                      pids_alive, sanitizer_env, write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def scenario(name, workloads, invariants=None, **extra):
    doc = {"name": name, "seed": 11, "duration_s": 30, "sample_ms": 200,
           "workloads": workloads, **extra}
    if invariants is not None:
        doc["invariants"] = invariants
    return doc


def run_local(tmp_path, runs_dir, doc, *extra_args):
    path = write_scenario(tmp_path / f"{doc['name']}.json", doc)
    res = faultctl("run", "--local", *extra_args, path, runs_dir=runs_dir)
    report = only_report(runs_dir)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert_nothing_left(report)
    return res, report


def test_exit_zero_passes_with_valid_report(tmp_path, runs_dir, progs):
    doc = scenario("ok", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code"), "0"]}],
                   [{"name": "no_crash"}, {"name": "exit_ok"}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    assert rep["verdict"] == "PASS"
    assert rep["schema_version"] == 1
    assert rep["scenario"]["name"] == "ok" and len(rep["scenario"]["sha256"]) == 64
    assert rep["scenario"]["seed"] == 11
    assert rep["workloads"][0]["exit_code"] == 0
    assert rep["workloads"][0]["signal"] is None
    assert rep["probes"]["proc"]["attached"] is True
    assert rep["probes"]["proc"]["lost_events"] == 0
    assert rep["stop_reason"] == "every workload exited"
    assert len(rep["cycles"]) >= 1
    assert all(i["verdict"] == "PASS" for i in rep["invariants"])
    # Output captured into the run directory.
    out = pathlib.Path(rep["workloads"][0]["stdout"]).read_text()
    assert "exiting with 0" in out
    assert "PASS" in res.stdout and "ok" in res.stdout


def test_default_invariants_are_no_crash_and_exit_ok(tmp_path, runs_dir, progs):
    doc = scenario("defaults", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code")]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    assert [i["name"] for i in rep["invariants"]] == ["no_crash", "exit_ok"]


@pytest.mark.parametrize("prog,signame", [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_crash_fails_no_crash_with_signal(tmp_path, runs_dir, progs, prog, signame):
    doc = scenario(f"crash-{prog}", [{"name": "victim", "kind": "exec", "cmd": [str(progs / prog)]}],
                   [{"name": "no_crash"}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 1, res
    assert rep["verdict"] == "FAIL"
    inv = invariant(rep, "no_crash")
    assert inv["verdict"] == "FAIL"
    assert signame in inv["summary"]
    ev = inv["evidence"][0]
    assert ev["signal"] == signame
    assert ev["comm"] == prog
    assert ev["workload"] == "victim"
    assert ev["pid"] == rep["workloads"][0]["pid"]
    assert inv["first_violation_cycle"] >= 1
    assert inv["first_violation_at"].endswith("Z")
    assert rep["workloads"][0]["signal"] == signame
    assert "no_crash" in res.stdout and signame in res.stdout


def test_grandchild_crash_is_caught(tmp_path, runs_dir, progs):
    doc = scenario("grandchild", [{"name": "tree", "kind": "exec",
                                   "cmd": [str(progs / "grandchild_segv")]}],
                   [{"name": "no_crash"}, {"name": "exit_ok"}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 1, res
    # The root exited 0: only the tree-wide probe can see this crash.
    assert rep["workloads"][0]["exit_code"] == 0
    assert invariant(rep, "exit_ok")["verdict"] == "PASS"
    inv = invariant(rep, "no_crash")
    assert inv["verdict"] == "FAIL"
    ev = inv["evidence"][0]
    assert ev["signal"] == "SIGSEGV"
    assert ev["workload_root"] is False
    root = rep["workloads"][0]["pid"]
    assert ev["pid"] != root and ev["ppid"] != root  # two generations down
    procs = {p["pid"]: p for p in rep["processes"]}
    assert procs[ev["ppid"]]["ppid"] == root
    # The evidence names the way up: the middle process, then the root.
    assert [a["pid"] for a in ev["ancestry"]] == [ev["ppid"], root]


def test_sigpipe_is_not_a_crash_by_default(tmp_path, runs_dir):
    doc = scenario("pipe", [{"name": "pipe", "kind": "exec",
                             "cmd": ["/bin/sh", "-c", "yes | head -n 1 >/dev/null"]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    assert invariant(rep, "no_crash")["verdict"] == "PASS"


def test_child_ended_by_timeout_is_a_termination_not_a_crash(tmp_path, runs_dir, progs):
    """timeout(1) ends its child with SIGTERM, as designed: no_crash PASSes
    and lists the termination; named in "signals", it counts; a SIGSEGV in
    the same tree still FAILs."""
    cmd = ["/bin/sh", "-c", "timeout 0.5 sleep 5; exit 0"]
    doc = scenario("timeout", [{"name": "t", "kind": "exec", "cmd": cmd}],
                   [{"name": "no_crash"}, {"name": "no_crash", "signals": ["SIGTERM"]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    passed, counted = [i for i in rep["invariants"] if i["name"] == "no_crash"]
    assert passed["verdict"] == "PASS", passed
    term = passed["evidence"][0]
    assert term["kind"] == "termination" and term["signal"] == "SIGTERM", term
    assert term["comm"] == "sleep" and term["counted"] is False
    assert "terminations" in passed["summary"]
    assert counted["verdict"] == "FAIL" and "SIGTERM" in counted["summary"], counted
    assert res.returncode == 1, res

    cmd = ["/bin/sh", "-c", f"timeout 0.5 sleep 5; {progs / 'segv'}; exit 0"]
    doc = scenario("timeout-segv", [{"name": "t", "kind": "exec", "cmd": cmd}],
                   [{"name": "no_crash"}])
    runs2 = tmp_path / "runs2"
    runs2.mkdir()
    res, rep = run_local(tmp_path, runs2, doc)
    inv = invariant(rep, "no_crash")
    assert inv["verdict"] == "FAIL" and "SIGSEGV" in inv["summary"], inv
    assert inv["evidence"][0]["kind"] == "crash" and inv["evidence"][0]["counted"] is True
    assert any(e["kind"] == "termination" for e in inv["evidence"]), inv["evidence"]


def test_hang_past_timeout_is_killed_and_nothing_survives(tmp_path, runs_dir, progs):
    # It ignores SIGTERM and its children leave its process group: only the
    # cgroup kill after the grace period ends them all.
    doc = scenario("hang", [{"name": "stuck", "kind": "exec", "timeout_s": 1,
                             "stop_grace_ms": 300,
                             "cmd": [str(progs / "hang"), "--ignore-term", "--fork", "3"]}],
                   [{"name": "no_crash"}, {"name": "exit_ok"}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 1, res
    wl = rep["workloads"][0]
    assert wl["timed_out"] is True
    assert wl["signal"] == "SIGKILL"
    inv = invariant(rep, "exit_ok")
    assert inv["verdict"] == "FAIL"
    assert "timeout_s=1" in inv["summary"]
    assert inv["evidence"][0]["timed_out"] is True
    # Killing it was faultd's doing, not a crash.
    assert invariant(rep, "no_crash")["verdict"] == "PASS"
    # The root and its three children were all seen and all ended.
    assert len([p for p in rep["processes"] if p["comm"] == "hang"]) == 4
    assert all(p["exited"] for p in rep["processes"])


def test_nonzero_exit_fails_exit_ok(tmp_path, runs_dir, progs):
    doc = scenario("exit3", [{"name": "bad", "kind": "exec", "cmd": [str(progs / "exit_code"), "3"]}],
                   [{"name": "exit_ok"}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 1, res
    inv = invariant(rep, "exit_ok")
    assert inv["evidence"][0]["exit_code"] == 3
    assert "exited with code 3" in inv["summary"]


def test_allowed_codes(tmp_path, runs_dir, progs):
    doc = scenario("exit3ok", [{"name": "bad", "kind": "exec", "cmd": [str(progs / "exit_code"), "3"]}],
                   [{"name": "exit_ok", "codes": [0, 3]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res


def test_duration_ends_run_and_stops_workloads_without_blame(tmp_path, runs_dir, progs):
    doc = scenario("long", [{"name": "sleeper", "kind": "exec", "cmd": [str(progs / "hang")]}],
                   [{"name": "no_crash"}, {"name": "exit_ok"}], duration_s=1.5, sample_ms=250)
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    assert rep["stop_reason"] == "duration elapsed"
    assert rep["workloads"][0]["stopped_by_faultd"] is True
    assert 5 <= len(rep["cycles"]) <= 8
    assert [c["cycle"] for c in rep["cycles"]] == list(range(1, len(rep["cycles"]) + 1))
    assert rep["cycles"][0]["procs"] == 1
    # One progress line per cycle.
    assert res.stdout.count(" cycle ") >= 5


def test_missing_program_is_a_setup_error(tmp_path, runs_dir):
    doc = scenario("nope", [{"name": "nope", "kind": "exec", "cmd": ["/nonexistent/prog"]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 3, res
    assert rep["verdict"] == "ERROR"
    assert "cannot run '/nonexistent/prog'" in rep["error"]
    assert "No such file or directory" in rep["error"]


def test_output_capture_is_bounded_head_and_tail(tmp_path, runs_dir, progs):
    doc = scenario("chatty", [{"name": "chatty", "kind": "exec", "output_max_kb": 64,
                               "cmd": [str(progs / "chatty"), "200000"]}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    wl = rep["workloads"][0]
    text = pathlib.Path(wl["stdout"]).read_text()
    assert len(text) < 64 * 1024 + 200
    assert text.startswith("chatty line 0\n")
    assert text.rstrip().endswith("chatty: last line")
    assert "bytes omitted]" in text
    assert wl["output_dropped_bytes"] > 0
    assert pathlib.Path(wl["stderr"]).read_text() == "chatty: done\n"


def test_json_flag_writes_report(tmp_path, runs_dir, progs):
    doc = scenario("jsonout", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code")]}])
    path = write_scenario(tmp_path / "j.json", doc)
    out = tmp_path / "out.json"
    res = faultctl("run", "--local", "--json", out, path, runs_dir=runs_dir)
    assert res.returncode == 0, res
    rep = json.loads(out.read_text())
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert rep["run_id"] == only_report(runs_dir)["run_id"]


def test_workload_env_and_cwd(tmp_path, runs_dir):
    doc = scenario("env", [{"name": "env", "kind": "exec", "cwd": str(tmp_path),
                            "env": {"GREETING": "hello"},
                            "cmd": ["/bin/sh", "-c", 'echo "$GREETING $FAULTD_WORKLOAD $(pwd)"']}])
    res, rep = run_local(tmp_path, runs_dir, doc)
    assert res.returncode == 0, res
    out = pathlib.Path(rep["workloads"][0]["stdout"]).read_text()
    assert out.strip() == f"hello env {tmp_path}"


def test_several_files_one_table_and_expect(tmp_path, runs_dir, progs):
    good = write_scenario(tmp_path / "a-good.json", scenario(
        "good", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code")]}]))
    canary = write_scenario(tmp_path / "b-canary.json", scenario(
        "canary", [{"name": "c", "kind": "exec", "cmd": [str(progs / "segv")]}], expect="FAIL"))
    res = faultctl("run", "--local", "--quiet", good, canary, runs_dir=runs_dir)
    assert res.returncode == 1, res  # a FAIL without --expect
    res = faultctl("run", "--local", "--quiet", "--expect", good, canary, runs_dir=runs_dir)
    assert res.returncode == 0, res
    assert "2 of 2 scenarios gave the expected verdict" in res.stdout
    table = res.stdout.split("VERDICT", 1)[1]
    assert "good" in table and "canary" in table
    # A canary that does not fail is a mismatch.
    quiet = write_scenario(tmp_path / "c-quiet.json", scenario(
        "quiet-canary", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code")]}],
        expect="FAIL"))
    res = faultctl("run", "--local", "--quiet", "--expect", quiet, runs_dir=runs_dir)
    assert res.returncode == 1, res
    assert "MISMATCH" in res.stdout


# The bundled scenarios no other test runs as they are; test_dpdk, test_lwip,
# test_queues and test_faults run the others (and check their evidence).
DIRECTORY_SET = ["echo-loopback", "exec-child-crash", "exec-pass", "exec-timeout", "msgq",
                 "qpair"]


def test_directory_argument_runs_the_set_it_holds(tmp_path):
    """What `make run` does with scenarios/: every file of the directory,
    each verdict as expected, and the tally; here two at a time (-j 2),
    the summary and the reports in the files' order whichever ends first,
    and nothing of any run left."""
    for name in DIRECTORY_SET:
        shutil.copy(REPO / "scenarios" / f"{name}.json", tmp_path)
    out = tmp_path / "reports.json"
    res = faultctl("run", "--local", "-j", "2", "--expect", "--json", out, str(tmp_path),
                   timeout=900)
    assert res.returncode == 0, res
    n = len(DIRECTORY_SET)
    assert f"{n} of {n} scenarios gave the expected verdict" in res.stdout
    table = res.stdout.split("VERDICT", 1)[1]
    assert [l.split()[2] for l in table.splitlines()[1:n + 1]] == DIRECTORY_SET, table
    reps = json.loads(out.read_text())
    assert [r["scenario"]["name"] for r in reps] == DIRECTORY_SET
    # msgq and qpair (60 s each) ran side by side.
    span = {r["scenario"]["name"]: (r["started_at"], r["ended_at"]) for r in reps}
    assert span["qpair"][0] < span["msgq"][1] and span["msgq"][0] < span["qpair"][1], span
    for rep in reps:
        assert_nothing_left(rep)


def test_jobs_needs_local_and_a_count(tmp_path):
    path = REPO / "scenarios" / "exec-pass.json"
    for args, says in ((("-j", "2", path), "-j needs --local"),
                       (("--local", "-j", "0", path), "-j 0: a number of runs at once"),
                       (("--local", "-j", "x", path), "-j x: a number of runs at once")):
        res = faultctl("run", *args)
        assert res.returncode == 3 and says in res.stderr, res


def test_every_bundled_scenario_is_run_as_it_is_by_a_test():
    """Each file of scenarios/ gives its expected verdict in some test: in
    the directory set above, or by its path in another test file."""
    texts = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py"))
    for path in sorted((REPO / "scenarios").glob("*.json")):
        name = path.stem
        named = (f'scenarios/{name}.json' in texts or f'"scenarios" / "{name}.json"' in texts
                 or f'run_scenario("{name}"' in texts)
        assert name in DIRECTORY_SET or named, f"{path.name} is run by no test"


def test_faultd_once(tmp_path, runs_dir, progs):
    from conftest import FAULTD
    doc = scenario("once", [{"name": "c", "kind": "exec", "cmd": [str(progs / "segv")]}])
    path = write_scenario(tmp_path / "once.json", doc)
    proc = subprocess.run([str(FAULTD), "--runs-dir", str(runs_dir), "--once", str(path)],
                          capture_output=True, text=True, timeout=60, env=sanitizer_env())
    assert proc.returncode == 1, proc
    assert "verdict: FAIL" in proc.stdout
    rep = only_report(runs_dir)
    assert invariant(rep, "no_crash")["verdict"] == "FAIL"
    assert_nothing_left(rep)


def test_progress_bar_on_a_tty(tmp_path, runs_dir, progs):
    """On a terminal, faultctl draws a progress bar under the cycle lines."""
    import pty
    import select
    doc = scenario("tty", [{"name": "s", "kind": "exec", "cmd": ["/bin/sleep", "1"]}],
                   duration_s=5, sample_ms=200)
    path = write_scenario(tmp_path / "tty.json", doc)
    from conftest import FAULTCTL
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(FAULTCTL), [str(FAULTCTL), "--runs-dir", str(runs_dir), "run",
                                 "--local", str(path)])
    out = b""
    try:
        while True:
            r, _, _ = select.select([fd], [], [], 30)
            if not r:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "[###" in text and "/5.0s" in text, text   # the bar, against duration_s
    assert "\r\x1b[K" in text                          # erased before each line
    assert text.count(" cycle ") >= 4


def test_json_to_a_device_is_written_in_place_not_replaced(tmp_path, runs_dir, progs):
    """--json /dev/stdout must not rename a file over the device."""
    import stat
    doc = scenario("jsondev", [{"name": "ok", "kind": "exec", "cmd": [str(progs / "exit_code")]}])
    path = write_scenario(tmp_path / "d.json", doc)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    res = faultctl("run", "--local", "--quiet", "--json", fifo, path, runs_dir=runs_dir)
    out, _ = reader.communicate(timeout=30)
    assert res.returncode == 0, res
    assert json.loads(out)["verdict"] == "PASS"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_ctrl_c_of_jobs_stops_every_run_and_starts_no_more(tmp_path, runs_dir):
    """`run --local -j 2` of three long scenarios: Ctrl-C stops both runs
    going on (each still reported, nothing of it left) and the third is not
    started: the table says so."""
    from conftest import interrupted, our_links, our_netns
    for i in range(3):
        doc = scenario(f"long-{i}", [{"name": "w", "kind": "exec", "netns": "c",
                                       "cmd": ["sleep", "60"]}], duration_s=60)
        doc["topology"] = {"namespaces": ["c", "s"],
                           "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]}
        write_scenario(tmp_path / f"long-{i}.json", doc)
    out = tmp_path / "reports.json"
    # Ctrl-C once both runs print their cycles.
    proc, text = interrupted(
        [FAULTCTL, "--runs-dir", runs_dir, "run", "--local", "-j", "2", "--json", out, tmp_path],
        lambda text: len({l.split("]")[0] for l in text.splitlines() if "] cycle" in l}) >= 2,
        stderr=subprocess.DEVNULL, env=sanitizer_env())
    reps = json.loads(out.read_text())
    assert [r["scenario"]["name"] for r in reps] == ["long-0", "long-1"], text
    for rep in reps:
        assert rep["stop_reason"] == "faultctl received SIGINT", rep["stop_reason"]
        assert not [n for n in our_netns() + our_links() if rep["run_id"] in n]
        assert_nothing_left(rep, links=False)
    assert re.search(r"ERROR .*/long-2\.json +0\.0s  not run: stopped", text), text
    assert proc.returncode == 3, text


def test_workloads_run_at_faultctls_niceness_not_the_set_ups(tmp_path, runs_dir):
    """A run's thread is niced while it sets up (BPF loads, attaches) so that
    other runs' faults go first; the workloads it forks then are not: they
    run at faultctl's own niceness, here 3, as they would without faultd."""
    doc = scenario("nice", [{"name": "n", "kind": "exec",
                             "cmd": ["/bin/sh", "-c", "cut -d' ' -f19 /proc/self/stat"]}],
                   [{"name": "exit_ok"}])
    path = write_scenario(tmp_path / "nice.json", doc)
    res = subprocess.run(["nice", "-n", "3", str(FAULTCTL), "--runs-dir", str(runs_dir),
                          "run", "--local", "--quiet", str(path)],
                         capture_output=True, text=True, timeout=60, env=sanitizer_env())
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    assert pathlib.Path(rep["workloads"][0]["stdout"]).read_text().strip() == "3"
    assert_nothing_left(rep)
